/*
 * hutch-helper: the few jobs that must happen in a single-threaded process.
 *
 * Node is multithreaded from its first instruction, and the kernel refuses
 * setns(CLONE_NEWUSER) and setns(CLONE_NEWNS) to a multithreaded caller. So
 * the user namespace is built here (mkns) and joined here before Node starts
 * (run). Everything else the engine does stays in TypeScript.
 *
 *   hutch-helper run [ARGS...]   (or this executable under any other name:
 *                                 bin/hutch is a link to it)
 *       Start hutch: find the pinned Node and dist/hutch.cjs from this
 *       executable's place in the package; if a live pause process is
 *       recorded under the runtime directory, join its user and mount
 *       namespaces (the directory is found exactly as src/config/paths.ts
 *       finds it); then exec Node with ARGS. `hutch unshare CMD` in a
 *       settled store execs CMD directly (see unshare_fast).
 *   hutch-helper mkns PIDFILE UIDMAP GIDMAP
 *       Create a user + mount namespace kept alive by a pause process and
 *       record its pid in PIDFILE. A map is "tool:ARGS" (ARGS are the
 *       triples handed to newuidmap/newgidmap) or "direct:OUTSIDE" (a single
 *       mapping of OUTSIDE to 0, written without the setuid tools).
 *   hutch-helper probe-overlay DIR [userxattr]
 *       In a private mount namespace, mount kernel overlay over DIR/{lower,upper,work} on DIR/merged,
 *       write through it, check the write landed in upper, unmount.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAUSE_NAME "hutch-pause"

static void die(const char *what) {
  fprintf(stderr, "hutch-helper: %s: %s\n", what, strerror(errno));
  exit(125);
}

/* Global options that take a value; must match src/cli/global-options.ts. */
static const char *const VALUE_OPTS[] = {"--root", "--runroot", "--storage-driver", "--runtime",
                                         "--log-level", "--config", NULL};

static int takes_value(const char *opt) {
  for (int i = 0; VALUE_OPTS[i]; i++)
    if (strcmp(opt, VALUE_OPTS[i]) == 0) return 1;
  return 0;
}

/* The value of global option NAME ("--runroot") given before the command
 * word, or NULL; *cmd gets the command word's index (argc if none). */
static const char *global_opt(int argc, char **argv, const char *name, int *cmd) {
  const char *found = NULL;
  size_t n = strlen(name);
  int i = 0;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (a[0] != '-') break;
    if (strncmp(a, name, n) == 0 && a[n] == '=') found = a + n + 1;
    else if (strcmp(a, name) == 0 && i + 1 < argc) found = argv[i + 1];
    if (takes_value(a)) i++;
  }
  if (cmd) *cmd = i;
  return found;
}

static int is_dir_of_mine(const char *path) {
  struct stat st;
  return path && *path == '/' && stat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid();
}

/* --runroot given before the command wins, then HUTCH_RUNROOT, then
 * $XDG_RUNTIME_DIR/hutch, then /tmp/hutch-run-UID. */
static void runroot_from(int argc, char **argv, char *out, size_t len) {
  const char *flag = global_opt(argc, argv, "--runroot", NULL);
  const char *env = getenv("HUTCH_RUNROOT");
  /* `su` keeps the caller's XDG_RUNTIME_DIR: use it only when it is ours. */
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  if (flag) snprintf(out, len, "%s", flag);
  else if (env && *env) snprintf(out, len, "%s", env);
  else if (is_dir_of_mine(xdg)) snprintf(out, len, "%s/hutch", xdg);
  else snprintf(out, len, "/tmp/hutch-run-%u", (unsigned)getuid());
}

/* The pid in PIDFILE if it names a live pause process of ours, else 0. */
static pid_t live_pause(const char *pidfile) {
  int fd = open(pidfile, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0;
  struct stat st;
  char buf[32] = {0};
  ssize_t n = -1;
  if (fstat(fd, &st) == 0 && st.st_uid == getuid()) n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  pid_t pid = (pid_t)atol(buf);
  if (pid <= 1) return 0;

  char path[64], comm[32] = {0};
  snprintf(path, sizeof path, "/proc/%d", (int)pid);
  if (stat(path, &st) != 0 || st.st_uid != getuid()) return 0;
  snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  n = read(fd, comm, sizeof comm - 1);
  close(fd);
  if (n <= 0) return 0;
  if (comm[n - 1] == '\n') comm[n - 1] = 0;
  if (strcmp(comm, PAUSE_NAME) != 0) return 0;
  /* A killed pause process that nobody reaped yet is a zombie: not alive. */
  char stat_buf[512] = {0};
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  n = read(fd, stat_buf, sizeof stat_buf - 1);
  close(fd);
  const char *paren = n > 0 ? strrchr(stat_buf, ')') : NULL;
  if (!paren || paren[1] != ' ' || paren[2] == 'Z' || paren[2] == 'X') return 0;
  return pid;
}

/* setns(CLONE_NEWNS) moves the caller to the new namespace's root; the same
 * path exists there (the namespace mirrors the host's mounts), so go back to
 * it: `hutch save -o x.tar` must write where the user stands. */
static int join(pid_t pid) {
  char cwd[4096];
  int have_cwd = getcwd(cwd, sizeof cwd) != NULL;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
  int userfd = open(path, O_RDONLY | O_CLOEXEC);
  snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)pid);
  int mntfd = open(path, O_RDONLY | O_CLOEXEC);
  int ok = userfd >= 0 && mntfd >= 0 && setns(userfd, CLONE_NEWUSER) == 0 &&
           setns(mntfd, CLONE_NEWNS) == 0 && setresgid(0, 0, 0) == 0 && setresuid(0, 0, 0) == 0;
  if (userfd >= 0) close(userfd);
  if (mntfd >= 0) close(mntfd);
  if (ok && have_cwd && chdir(cwd) != 0) {
    /* Unreachable inside the namespace: stay at / rather than fail the command. */
  }
  return ok ? 0 : -1;
}

/* The package root is two levels above this executable (native/build/). */
static int package_root(char *out, size_t len) {
  ssize_t n = readlink("/proc/self/exe", out, len - 1);
  if (n <= 0) return -1;
  out[n] = 0;
  for (int up = 0; up < 3; up++) {
    char *slash = strrchr(out, '/');
    if (!slash) return -1;
    *slash = 0;
  }
  return 0;
}

static int is_exec(const char *path) { return access(path, X_OK) == 0; }

/* ---- `hutch unshare` without Node -------------------------------------
 * Once the launcher has joined the namespace, `hutch unshare CMD` has only
 * to exec CMD with the store named in HUTCH_* variables. When everything that
 * could change that is known here, do it at once and save Node's start-up;
 * otherwise return and let Node do it (src/engine/unshare.ts), which also
 * gives the error messages. Node must be used when: the boot changed (stale
 * state to clear), a config file exists (it may move the store), the store
 * is missing or of another format, unshare got options, or exec fails.
 * Must agree with src/config/paths.ts and src/store/store.ts (STORE_FORMAT). */
#define STORE_FORMAT_TEXT "\"format\": 1"

static int read_small(const char *path, char *buf, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, len - 1);
  close(fd);
  if (n < 0) return -1;
  buf[n] = 0;
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = 0;
  return 0;
}

static int nonempty(const char *s) { return s && *s; }

static void unshare_fast(int argc, char **argv, const char *runroot) {
  int cmd;
  char path[4400], a[128], b[128], root[4200], store[8192];
  global_opt(argc, argv, "--runroot", &cmd);
  if (cmd >= argc || strcmp(argv[cmd], "unshare") != 0) return;
  if (cmd + 1 < argc && argv[cmd + 1][0] == '-') return;

  snprintf(path, sizeof path, "%s/boot-id", runroot);
  if (read_small(path, a, sizeof a) != 0 || read_small("/proc/sys/kernel/random/boot_id", b, sizeof b) != 0 ||
      strcmp(a, b) != 0)
    return;

  const char *home = getenv("HOME"), *xdg_config = getenv("XDG_CONFIG_HOME"), *xdg_data = getenv("XDG_DATA_HOME");
  if (global_opt(argc, argv, "--config", NULL) || nonempty(getenv("HUTCH_CONFIG"))) return;
  if (nonempty(xdg_config)) snprintf(path, sizeof path, "%s/hutch/hutch.toml", xdg_config);
  else if (nonempty(home)) snprintf(path, sizeof path, "%s/.config/hutch/hutch.toml", home);
  else return;
  if (access(path, F_OK) == 0) return;

  const char *flag_root = global_opt(argc, argv, "--root", NULL), *env_root = getenv("HUTCH_ROOT");
  if (nonempty(flag_root)) snprintf(root, sizeof root, "%s", flag_root);
  else if (nonempty(env_root)) snprintf(root, sizeof root, "%s", env_root);
  else if (nonempty(xdg_data)) snprintf(root, sizeof root, "%s/hutch", xdg_data);
  else if (nonempty(home)) snprintf(root, sizeof root, "%s/.local/share/hutch", home);
  else return;
  snprintf(path, sizeof path, "%s/store.json", root);
  if (read_small(path, store, sizeof store) != 0) return;
  const char *fmt = strstr(store, STORE_FORMAT_TEXT);
  if (!fmt || (fmt[strlen(STORE_FORMAT_TEXT)] >= '0' && fmt[strlen(STORE_FORMAT_TEXT)] <= '9')) return;

  /* The environment the command gets, as src/engine/unshare.ts builds it. */
  extern char **environ;
  size_t n = 0;
  while (environ[n]) n++;
  char **envp = calloc(n + 4, sizeof *envp);
  if (!envp) return;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const char *e = environ[i];
    if (!strncmp(e, "HUTCH_ROOT=", 11) || !strncmp(e, "HUTCH_RUNROOT=", 14) || !strncmp(e, "HUTCH_ROOTLESS=", 15) ||
        !strncmp(e, "HUTCH_JOINED=", 13) || !strncmp(e, "HUTCH_REEXEC=", 13))
      continue;
    envp[k++] = (char *)e;
  }
  static char e_root[4300], e_runroot[4300];
  snprintf(e_root, sizeof e_root, "HUTCH_ROOT=%s", root);
  snprintf(e_runroot, sizeof e_runroot, "HUTCH_RUNROOT=%s", runroot);
  envp[k++] = e_root;
  envp[k++] = e_runroot;
  envp[k++] = "HUTCH_ROOTLESS=1";
  envp[k] = NULL;

  char *shell_argv[2] = {NULL, NULL};
  char **cargv = argv + cmd + 1;
  if (cmd + 1 >= argc) {
    const char *sh = getenv("SHELL");
    shell_argv[0] = (char *)(nonempty(sh) ? sh : "/bin/sh");
    cargv = shell_argv;
  }
  execvpe(cargv[0], cargv, envp);
  free(envp); /* not found or not executable: Node reports it properly */
}

static int cmd_run(int argc, char **argv) {
  char pkg[4096], node[4300], bundle[4300];
  if (package_root(pkg, sizeof pkg) != 0) die("find the hutch package");
  const char *env_node = getenv("HUTCH_NODE");
  if (env_node && *env_node) snprintf(node, sizeof node, "%s", env_node);
  else {
    snprintf(node, sizeof node, "%s/node_modules/node/bin/node", pkg);
    /* Installed as a dependency, the pinned Node is a sibling package. */
    if (!is_exec(node)) snprintf(node, sizeof node, "%s/../node/bin/node", pkg);
    if (!is_exec(node)) snprintf(node, sizeof node, "node");
  }
  snprintf(bundle, sizeof bundle, "%s/dist/hutch.cjs", pkg);
  if (access(bundle, R_OK) != 0) {
    fprintf(stderr, "hutch: %s is missing: run 'npm run build' in %s\n", bundle, pkg);
    return 125;
  }
  if (getuid() != 0 && !getenv("HUTCH_NO_JOIN") && !getenv("HUTCH_JOINED")) {
    char runroot[4096], pidfile[4200];
    runroot_from(argc, argv, runroot, sizeof runroot);
    snprintf(pidfile, sizeof pidfile, "%s/pause.pid", runroot);
    pid_t pid = live_pause(pidfile);
    /* A failed join is not fatal: Node finds itself outside and rebuilds. */
    if (pid > 0 && join(pid) == 0) {
      char val[32];
      snprintf(val, sizeof val, "%d", (int)pid);
      unshare_fast(argc, argv, runroot);
      setenv("HUTCH_JOINED", val, 1);
    }
  }
  /* Node's compile cache, from the first module on (the entry included),
   * in the user's own cache directory: a shared /tmp one could be planted. */
  if (!getenv("NODE_COMPILE_CACHE")) {
    const char *cache = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[4200];
    if (cache && *cache == '/') snprintf(dir, sizeof dir, "%s/hutch/node-compile-cache", cache);
    else if (home && *home == '/') snprintf(dir, sizeof dir, "%s/.cache/hutch/node-compile-cache", home);
    else dir[0] = 0;
    if (dir[0]) {
      setenv("NODE_COMPILE_CACHE", dir, 1);
      setenv("HUTCH_SET_COMPILE_CACHE", "1", 1);
    }
  }
  char **av = calloc((size_t)argc + 7, sizeof *av);
  if (!av) die("calloc");
  av[0] = node;
  av[1] = "--disable-warning=ExperimentalWarning";
  /* A young generation big enough that a command's allocations (ps reading
   * hundreds of records) need no scavenge: V8 starts it at 1 MB and grows it
   * only after collecting. Pages are committed as used, so an idle process
   * is no bigger. */
  av[2] = "--min-semi-space-size=16";
  /* The bundle's two modules are loaded by the paths given: without these,
   * Node's module loader resolves each through realpath in JavaScript, an
   * lstat per path component and ~3 ms of every command. The path is the
   * package's own (found above), and the bundle imports nothing by name. */
  av[3] = "--preserve-symlinks";
  av[4] = "--preserve-symlinks-main";
  av[5] = bundle;
  for (int i = 0; i < argc; i++) av[6 + i] = argv[i];
  execvp(node, av);
  fprintf(stderr, "hutch: cannot run Node (%s): %s\n", node, strerror(errno));
  fprintf(stderr, "hutch: run 'npm install' in %s, or set HUTCH_NODE\n", pkg);
  return 125;
}

static int run_map_tool(const char *tool, pid_t child, const char *args) {
  /* args are whitespace-separated numbers: split into argv. */
  char *copy = strdup(args);
  char *av[256];
  int ac = 0;
  av[ac++] = (char *)tool;
  char pidbuf[32];
  snprintf(pidbuf, sizeof pidbuf, "%d", (int)child);
  av[ac++] = pidbuf;
  for (char *tok = strtok(copy, " \t"); tok && ac < 254; tok = strtok(NULL, " \t")) av[ac++] = tok;
  av[ac] = NULL;
  pid_t p = fork();
  if (p < 0) die("fork");
  if (p == 0) {
    execvp(tool, av);
    fprintf(stderr, "hutch-helper: cannot run %s: %s\n", tool, strerror(errno));
    _exit(127);
  }
  int status;
  while (waitpid(p, &status, 0) < 0 && errno == EINTR) {
  }
  free(copy);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int write_file(const char *path, const char *data) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, data, strlen(data));
  close(fd);
  return n == (ssize_t)strlen(data) ? 0 : -1;
}

static int apply_map(pid_t child, const char *spec, int is_uid) {
  if (strncmp(spec, "tool:", 5) == 0)
    return run_map_tool(is_uid ? "newuidmap" : "newgidmap", child, spec + 5);
  if (strncmp(spec, "direct:", 7) == 0) {
    char path[64], line[64];
    if (!is_uid) {
      /* The kernel requires setgroups to be denied before an unprivileged gid_map. */
      snprintf(path, sizeof path, "/proc/%d/setgroups", (int)child);
      if (write_file(path, "deny") != 0) return -1;
    }
    snprintf(path, sizeof path, "/proc/%d/%s_map", (int)child, is_uid ? "uid" : "gid");
    snprintf(line, sizeof line, "0 %s 1\n", spec + 7);
    return write_file(path, line);
  }
  fprintf(stderr, "hutch-helper: bad map %s\n", spec);
  return -1;
}

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}

static int cmd_mkns(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: hutch-helper mkns PIDFILE UIDMAP GIDMAP [ADOPT_PID]\n");
    return 125;
  }
  /* ADOPT_PID: a live process of the user's still inside the old namespace
   * (a running container's conmon). The new pause process joins its
   * namespaces instead of building new ones, so running containers and their
   * mounts stay reachable when the previous pause process has died. */
  pid_t adopt = argc == 4 ? (pid_t)atol(argv[3]) : 0;
  const char *pidfile = argv[0];
  char lockpath[4200], tmppath[4200];
  snprintf(lockpath, sizeof lockpath, "%s.lock", pidfile);
  snprintf(tmppath, sizeof tmppath, "%s.tmp", pidfile);

  /* Serialise concurrent builders; the kernel drops the lock if we die. */
  int lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lockfd < 0 || flock(lockfd, LOCK_EX) != 0) die("lock pause.pid");
  pid_t existing = live_pause(pidfile);
  if (existing > 0) {
    printf("%d\n", (int)existing);
    return 0;
  }

  int up[2], down[2];
  if (pipe2(up, O_CLOEXEC) != 0 || pipe2(down, O_CLOEXEC) != 0) die("pipe");
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    char c = 0;
    close(lockfd);
    close(up[0]);
    close(down[1]);
    if (adopt > 0) {
      if (join(adopt) != 0) {
        fprintf(stderr, "hutch-helper: joining the namespaces of process %d: %s\n", (int)adopt, strerror(errno));
        _exit(1);
      }
      if (write(up[1], "a", 1) != 1) _exit(1);
    } else {
      if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
        fprintf(stderr, "hutch-helper: unshare(user, mount): %s\n", strerror(errno));
        _exit(1);
      }
      if (write(up[1], "u", 1) != 1) _exit(1);
      if (read(down[0], &c, 1) != 1 || c != 'm') _exit(1);
    }
    if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) {
      fprintf(stderr, "hutch-helper: become root in namespace: %s\n", strerror(errno));
      _exit(1);
    }
    /* Host mounts still propagate in; ours never propagate out. */
    if (adopt <= 0 && mount("none", "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) {
      fprintf(stderr, "hutch-helper: make / rslave: %s\n", strerror(errno));
      _exit(1);
    }
    setsid();
    int fd = open(tmppath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    if (fd < 0 || write(fd, buf, len) != len || fsync(fd) != 0 || close(fd) != 0 ||
        rename(tmppath, pidfile) != 0) {
      fprintf(stderr, "hutch-helper: write %s: %s\n", pidfile, strerror(errno));
      _exit(1);
    }
    prctl(PR_SET_NAME, PAUSE_NAME, 0, 0, 0);
    /* Let go of the caller's stdio first: it may be waiting for EOF. */
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
      dup2(devnull, 2);
      if (devnull > 2) close(devnull);
    }
    if (write(up[1], "p", 1) != 1) _exit(1);
    close(up[1]);
    if (chdir("/") != 0) _exit(1);
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGTERM);
    sigdelset(&all, SIGKILL);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGTERM, on_term);
    for (;;) pause();
  }

  close(up[1]);
  close(down[0]);
  char c = 0;
  if (read(up[0], &c, 1) != 1 || (c != 'u' && c != 'a')) {
    waitpid(child, NULL, 0);
    fprintf(stderr, "hutch-helper: the namespace could not be created\n");
    return 1;
  }
  if (c == 'a') goto started; /* joined an existing namespace: its mappings stand */
  if (apply_map(child, argv[1], 1) != 0 || apply_map(child, argv[2], 0) != 0) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    fprintf(stderr, "hutch-helper: setting the id mappings failed\n");
    return 1;
  }
  if (write(down[1], "m", 1) != 1) die("signal pause process");
started:
  if (read(up[0], &c, 1) != 1 || c != 'p') {
    waitpid(child, NULL, 0);
    fprintf(stderr, "hutch-helper: the pause process failed to start\n");
    return 1;
  }
  printf("%d\n", (int)child);
  return 0;
}

static int cmd_probe_overlay(int argc, char **argv) {
  if (argc < 1) {
    fprintf(stderr, "usage: hutch-helper probe-overlay DIR [userxattr]\n");
    return 125;
  }
  const char *dir = argv[0];
  int userxattr = argc > 1 && strcmp(argv[1], "userxattr") == 0;
  char lower[4200], upper[4200], work[4200], merged[4200], opts[17000], path[4300];
  snprintf(lower, sizeof lower, "%s/lower", dir);
  snprintf(upper, sizeof upper, "%s/upper", dir);
  snprintf(work, sizeof work, "%s/work", dir);
  snprintf(merged, sizeof merged, "%s/merged", dir);
  snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s%s", lower, upper, work,
           userxattr ? ",userxattr" : "");
  /* A private mount namespace keeps the probe's mount from being seen. An
   * unprivileged caller outside hutch's namespace gets a throwaway user
   * namespace mapping just itself, which is all kernel overlay needs. */
  if (getuid() != 0) {
    uid_t uid = getuid();
    gid_t gid = getgid();
    char line[64];
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) die("unshare(user, mount)");
    if (write_file("/proc/self/setgroups", "deny") != 0) die("deny setgroups");
    snprintf(line, sizeof line, "0 %u 1\n", (unsigned)uid);
    if (write_file("/proc/self/uid_map", line) != 0) die("write uid_map");
    snprintf(line, sizeof line, "0 %u 1\n", (unsigned)gid);
    if (write_file("/proc/self/gid_map", line) != 0) die("write gid_map");
  } else if (unshare(CLONE_NEWNS) != 0) {
    die("unshare(mount)");
  }
  if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("make / private");
  if (mount("overlay", merged, "overlay", 0, opts) != 0) die("mount overlay");
  snprintf(path, sizeof path, "%s/probe", merged);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) die("write through overlay");
  close(fd);
  snprintf(path, sizeof path, "%s/probe", upper);
  struct stat st;
  if (stat(path, &st) != 0) die("find write in upper layer");
  if (umount2(merged, 0) != 0) die("unmount overlay");
  return 0;
}

/* A process that ended but was not reaped yet is not alive. */
static int is_zombie(pid_t pid) {
  char path[64], stat_buf[512] = {0};
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 1;
  ssize_t n = read(fd, stat_buf, sizeof stat_buf - 1);
  close(fd);
  const char *paren = n > 0 ? strrchr(stat_buf, ')') : NULL;
  return !paren || paren[1] != ' ' || paren[2] == 'Z' || paren[2] == 'X';
}

/* Whether the directory holding PATH exists. */
static int parent_exists(const char *path) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir) return 1;
  *slash = 0;
  struct stat st;
  return stat(dir, &st) == 0;
}

/* ---- `exit-hook OWNER_FILE RUNTIME RUNTIME_ROOT ID CMD ARG...` -----------
 * conmon's exit command. A foreground `hutch run` cleans up after its own
 * container and says so in OWNER_FILE (its pid). While that process lives,
 * starting Node for `hutch container cleanup` would only find the work done:
 * the hook then does the one step the foreground command leaves to it, the
 * runtime's delete of the ended container (RUNTIME --root=RUNTIME_ROOT
 * delete --force ID), so that command need not wait for it; the same when
 * that command already removed the container (its bundle is gone). Otherwise
 * (detached containers, or a foreground command that was killed) it execs
 * the cleanup command. */
static int cmd_exit_hook(int argc, char **argv) {
  if (argc < 5) return 125;
  char buf[32] = {0};
  int owned = 0;
  if (read_small(argv[0], buf, sizeof buf) == 0) {
    pid_t owner = (pid_t)atol(buf);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d", (int)owner);
    struct stat st;
    owned = owner > 1 && stat(path, &st) == 0 && !is_zombie(owner);
  } else if (errno == ENOENT && !parent_exists(argv[0])) {
    /* The bundle is gone: a foreground `run --rm` saw the exit first, removed
     * the container and ended before this hook ran. The cleanup command would
     * find no container; the runtime's state is all that is left. */
    owned = 1;
  }
  if (owned) {
    char root[4200];
    snprintf(root, sizeof root, "--root=%s", argv[2]);
    char *del[] = {argv[1], root, "delete", "--force", argv[3], NULL};
    execv(argv[1], del);
    return 0;
  }
  /* Which conmon ended: cleanup ignores the exit of a monitor the container no longer has. */
  char monitor[32];
  snprintf(monitor, sizeof monitor, "%d", (int)getppid());
  setenv("HUTCH_MONITOR_PID", monitor, 1);
  execv(argv[4], argv + 4);
  perror("hutch-helper exit-hook: exec");
  return 127;
}

int main(int argc, char **argv) {
  /* Called as bin/hutch (a link to this file), it is hutch itself: a shell
   * script in between cost every command about 1.5 ms. */
  if (argc < 1) return 125;
  const char *base = strrchr(argv[0], '/');
  base = base ? base + 1 : argv[0];
  if (strcmp(base, "hutch-helper") != 0) return cmd_run(argc - 1, argv + 1);
  if (argc < 2) {
    fprintf(stderr, "usage: hutch-helper run|mkns|probe-overlay|exit-hook ...\n");
    return 125;
  }
  if (strcmp(argv[1], "run") == 0) return cmd_run(argc - 2, argv + 2);
  if (strcmp(argv[1], "mkns") == 0) return cmd_mkns(argc - 2, argv + 2);
  if (strcmp(argv[1], "probe-overlay") == 0) return cmd_probe_overlay(argc - 2, argv + 2);
  if (strcmp(argv[1], "exit-hook") == 0) return cmd_exit_hook(argc - 2, argv + 2);
  fprintf(stderr, "hutch-helper: unknown mode %s\n", argv[1]);
  return 125;
}
