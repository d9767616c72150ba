/*
 * hutch_sys.node: system calls Node has no binding for, made in-process so
 * that hot paths (a container start, a layer unpack, every store lock) never
 * spawn a process for them. Each function is a thin wrapper: arguments in,
 * result out, errno turned into an Error with the usual Node `code`.
 *
 *   flock(fd, exclusive, wait) -> boolean   kernel-released advisory lock
 *   unlock(fd)
 *   mount(source, target, fstype, flags, data)
 *   umount(target, flags)
 *   mknod(path, mode, major, minor)
 *   lsetxattr(path, name, Buffer)   lgetxattr(path, name) -> Buffer | null
 *   llistxattr(path) -> string[]    lremovexattr(path, name)
 *   connectSeqpacket(path) -> fd    shutdownWrite(fd)   shutdownBoth(fd)
 *     conmon's attach socket is SOCK_SEQPACKET, which Node's net module
 *     cannot open; hutch reads and writes the returned fd with fs calls.
 *   exchange(a, b)   renameat2(RENAME_EXCHANGE): two paths swap in one step,
 *     so a volume's content is replaced whole (a rollback) with no moment
 *     where neither the old nor the new tree is in place.
 *   newNetns(path)   a new network namespace, its loopback up, bound at
 *     path (an existing file). Made on a short-lived thread: a namespace
 *     switch is per thread, and a rootless process could not switch back
 *     to the host's network namespace, which its user namespace does not own.
 *   spawn(file, argv, env, fds) -> pid   pipe() -> [r, w]
 *   waitpid(pid) -> exit code | null (never blocks)   isatty(fd) -> boolean
 *     Starting conmon for a container start. Node's child_process (and
 *     node:tty for a terminal check) load its net and stream machinery,
 *     about 8 ms of every `run`, for a process whose only channel is a
 *     pipe of one line; posix_spawn (a vfork) with the fds given, signals
 *     back to their defaults (Node ignores SIGPIPE), reaped by waitpid.
 *
 * Built against the stable Node-API ABI (napi_min.h), so one build runs on
 * every Node that hutch supports, without Node's headers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "napi_min.h"

#define MAX_ARGS 6
#define PATH_BUF 4096

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  char msg[PATH_BUF + 128];
  const char *code = strerrorname_np(err);
  if (!code) code = "EUNKNOWN";
  snprintf(msg, sizeof msg, "%s: %s%s%s", syscall, strerror(err), path ? " " : "", path ? path : "");
  napi_value jcode, jmsg, error, jsys, jerrno;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg);
  napi_create_error(env, jcode, jmsg, &error);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &jsys);
  napi_set_named_property(env, error, "syscall", jsys);
  napi_create_int32(env, -err, &jerrno);
  napi_set_named_property(env, error, "errno", jerrno);
  if (path) {
    napi_value jpath;
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &jpath);
    napi_set_named_property(env, error, "path", jpath);
  }
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

typedef struct {
  size_t argc;
  napi_value argv[MAX_ARGS];
} args_t;

static int get_args(napi_env env, napi_callback_info info, args_t *a, size_t want) {
  a->argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &a->argc, a->argv, NULL, NULL) != napi_ok) return -1;
  if (a->argc < want) {
    throw_type(env, "hutch_sys: too few arguments");
    return -1;
  }
  return 0;
}

/* Copies a string argument; an empty or null value gives NULL when allowed. */
static int get_str(napi_env env, napi_value v, char *buf, size_t len, int nullable, char **out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (nullable && (t == napi_null || t == napi_undefined)) {
    *out = NULL;
    return 0;
  }
  size_t n;
  if (t != napi_string || napi_get_value_string_utf8(env, v, buf, len, &n) != napi_ok || n >= len - 1) {
    throw_type(env, "hutch_sys: expected a string argument");
    return -1;
  }
  *out = buf;
  return 0;
}

static int get_int(napi_env env, napi_value v, int64_t *out) {
  if (napi_get_value_int64(env, v, out) != napi_ok) {
    throw_type(env, "hutch_sys: expected a number argument");
    return -1;
  }
  return 0;
}

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

static napi_value js_flock(napi_env env, napi_callback_info info) {
  args_t a;
  int64_t fd;
  bool exclusive, wait;
  if (get_args(env, info, &a, 3) || get_int(env, a.argv[0], &fd)) return NULL;
  napi_get_value_bool(env, a.argv[1], &exclusive);
  napi_get_value_bool(env, a.argv[2], &wait);
  int op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
  int rc;
  do rc = flock((int)fd, op);
  while (rc != 0 && errno == EINTR);
  napi_value result;
  if (rc != 0 && errno == EWOULDBLOCK) {
    napi_get_boolean(env, false, &result);
    return result;
  }
  if (rc != 0) return throw_errno(env, errno, "flock", NULL);
  napi_get_boolean(env, true, &result);
  return result;
}

static napi_value js_unlock(napi_env env, napi_callback_info info) {
  args_t a;
  int64_t fd;
  if (get_args(env, info, &a, 1) || get_int(env, a.argv[0], &fd)) return NULL;
  if (flock((int)fd, LOCK_UN) != 0) return throw_errno(env, errno, "flock", NULL);
  return undefined(env);
}

static napi_value js_mount(napi_env env, napi_callback_info info) {
  args_t a;
  static char src[PATH_BUF], tgt[PATH_BUF], fst[256], data[4 * PATH_BUF];
  char *psrc, *ptgt, *pfst, *pdata;
  int64_t flags;
  if (get_args(env, info, &a, 5) || get_str(env, a.argv[0], src, sizeof src, 1, &psrc) ||
      get_str(env, a.argv[1], tgt, sizeof tgt, 0, &ptgt) ||
      get_str(env, a.argv[2], fst, sizeof fst, 1, &pfst) || get_int(env, a.argv[3], &flags) ||
      get_str(env, a.argv[4], data, sizeof data, 1, &pdata))
    return NULL;
  if (mount(psrc, ptgt, pfst, (unsigned long)flags, pdata) != 0)
    return throw_errno(env, errno, "mount", ptgt);
  return undefined(env);
}

static napi_value js_umount(napi_env env, napi_callback_info info) {
  args_t a;
  static char tgt[PATH_BUF];
  char *ptgt;
  int64_t flags;
  if (get_args(env, info, &a, 2) || get_str(env, a.argv[0], tgt, sizeof tgt, 0, &ptgt) ||
      get_int(env, a.argv[1], &flags))
    return NULL;
  if (umount2(ptgt, (int)flags) != 0) return throw_errno(env, errno, "umount2", ptgt);
  return undefined(env);
}

static napi_value js_mknod(napi_env env, napi_callback_info info) {
  args_t a;
  static char path[PATH_BUF];
  char *ppath;
  int64_t mode, major_, minor_;
  if (get_args(env, info, &a, 4) || get_str(env, a.argv[0], path, sizeof path, 0, &ppath) ||
      get_int(env, a.argv[1], &mode) || get_int(env, a.argv[2], &major_) ||
      get_int(env, a.argv[3], &minor_))
    return NULL;
  if (mknod(ppath, (mode_t)mode, makedev((unsigned)major_, (unsigned)minor_)) != 0)
    return throw_errno(env, errno, "mknod", ppath);
  return undefined(env);
}

static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  args_t a;
  static char path[PATH_BUF], name[256];
  char *ppath, *pname;
  void *data;
  size_t len;
  if (get_args(env, info, &a, 3) || get_str(env, a.argv[0], path, sizeof path, 0, &ppath) ||
      get_str(env, a.argv[1], name, sizeof name, 0, &pname))
    return NULL;
  if (napi_get_buffer_info(env, a.argv[2], &data, &len) != napi_ok)
    return throw_type(env, "hutch_sys: lsetxattr value must be a Buffer");
  if (lsetxattr(ppath, pname, data, len, 0) != 0) return throw_errno(env, errno, "lsetxattr", ppath);
  return undefined(env);
}

static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  args_t a;
  static char path[PATH_BUF], name[256];
  char *ppath, *pname;
  if (get_args(env, info, &a, 2) || get_str(env, a.argv[0], path, sizeof path, 0, &ppath) ||
      get_str(env, a.argv[1], name, sizeof name, 0, &pname))
    return NULL;
  ssize_t n = lgetxattr(ppath, pname, NULL, 0);
  if (n < 0 && errno == ENODATA) {
    napi_value nul;
    napi_get_null(env, &nul);
    return nul;
  }
  if (n < 0) return throw_errno(env, errno, "lgetxattr", ppath);
  void *data;
  napi_value buf;
  if (napi_create_buffer(env, (size_t)n, &data, &buf) != napi_ok) return NULL;
  n = lgetxattr(ppath, pname, data, (size_t)n);
  if (n < 0) return throw_errno(env, errno, "lgetxattr", ppath);
  return buf;
}

static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  args_t a;
  static char path[PATH_BUF];
  char *ppath;
  if (get_args(env, info, &a, 1) || get_str(env, a.argv[0], path, sizeof path, 0, &ppath)) return NULL;
  ssize_t n = llistxattr(ppath, NULL, 0);
  if (n < 0) return throw_errno(env, errno, "llistxattr", ppath);
  char *names = malloc((size_t)n + 1);
  if (!names) return throw_errno(env, ENOMEM, "llistxattr", ppath);
  n = llistxattr(ppath, names, (size_t)n);
  if (n < 0) {
    int err = errno;
    free(names);
    return throw_errno(env, err, "llistxattr", ppath);
  }
  napi_value arr;
  napi_create_array(env, &arr);
  uint32_t i = 0;
  for (ssize_t off = 0; off < n; off += (ssize_t)strlen(names + off) + 1) {
    napi_value s;
    napi_create_string_utf8(env, names + off, NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, arr, i++, s);
  }
  free(names);
  return arr;
}

static napi_value js_lremovexattr(napi_env env, napi_callback_info info) {
  args_t a;
  static char path[PATH_BUF], name[256];
  char *ppath, *pname;
  if (get_args(env, info, &a, 2) || get_str(env, a.argv[0], path, sizeof path, 0, &ppath) ||
      get_str(env, a.argv[1], name, sizeof name, 0, &pname))
    return NULL;
  if (lremovexattr(ppath, pname) != 0) return throw_errno(env, errno, "lremovexattr", ppath);
  return undefined(env);
}

static napi_value js_connect_seqpacket(napi_env env, napi_callback_info info) {
  args_t a;
  static char path[PATH_BUF];
  char *ppath;
  if (get_args(env, info, &a, 1) || get_str(env, a.argv[0], path, sizeof path, 0, &ppath)) return NULL;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(ppath) >= sizeof addr.sun_path) return throw_errno(env, ENAMETOOLONG, "connect", ppath);
  strcpy(addr.sun_path, ppath);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket", ppath);
  int rc;
  do rc = connect(fd, (struct sockaddr *)&addr, sizeof addr);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "connect", ppath);
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

static napi_value shutdown_how(napi_env env, napi_callback_info info, int how) {
  args_t a;
  int64_t fd;
  if (get_args(env, info, &a, 1) || get_int(env, a.argv[0], &fd)) return NULL;
  if (shutdown((int)fd, how) != 0 && errno != ENOTCONN) return throw_errno(env, errno, "shutdown", NULL);
  return undefined(env);
}

static napi_value js_shutdown_write(napi_env env, napi_callback_info info) {
  return shutdown_how(env, info, SHUT_WR);
}

/* Wakes a read blocked on the socket in a pool thread (it returns 0), so a
 * detaching client can exit without waiting for the container's next output. */
static napi_value js_shutdown_both(napi_env env, napi_callback_info info) {
  return shutdown_how(env, info, SHUT_RDWR);
}

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* Through syscall(2): glibc's renameat2 wrapper is newer than some libcs hutch builds on. */
static napi_value js_exchange(napi_env env, napi_callback_info info) {
  args_t a;
  static char one[PATH_BUF], two[PATH_BUF];
  char *pone, *ptwo;
  if (get_args(env, info, &a, 2) || get_str(env, a.argv[0], one, sizeof one, 0, &pone) ||
      get_str(env, a.argv[1], two, sizeof two, 0, &ptwo))
    return NULL;
  if (syscall(SYS_renameat2, AT_FDCWD, pone, AT_FDCWD, ptwo, RENAME_EXCHANGE) != 0)
    return throw_errno(env, errno, "renameat2", pone);
  return undefined(env);
}

typedef struct {
  const char *path;
  int err;
  const char *step;
} netns_job;

static void *netns_thread(void *arg) {
  netns_job *job = arg;
  if (unshare(CLONE_NEWNET) != 0) {
    job->err = errno;
    job->step = "unshare";
    return NULL;
  }
  /* Loopback is down in a new namespace; crun leaves a joined one as it is. */
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0 ||
      (ifr.ifr_flags |= IFF_UP | IFF_RUNNING, ioctl(s, SIOCSIFFLAGS, &ifr) != 0)) {
    job->err = errno;
    job->step = "bring up loopback";
  } else if (mount("/proc/thread-self/ns/net", job->path, NULL, MS_BIND, NULL) != 0) {
    job->err = errno;
    job->step = "mount";
  }
  if (s >= 0) close(s);
  return NULL;
}

static napi_value js_new_netns(napi_env env, napi_callback_info info) {
  args_t a;
  static char path[PATH_BUF];
  char *ppath;
  if (get_args(env, info, &a, 1) || get_str(env, a.argv[0], path, sizeof path, 0, &ppath)) return NULL;
  netns_job job = {ppath, 0, NULL};
  pthread_t t;
  int rc = pthread_create(&t, NULL, netns_thread, &job);
  if (rc != 0) return throw_errno(env, rc, "pthread_create", NULL);
  pthread_join(t, NULL);
  if (job.err) return throw_errno(env, job.err, job.step, ppath);
  return undefined(env);
}

/* A string array argument as a NULL-terminated vector (malloc'd; free_strv). */
static void free_strv(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

static char **get_strv(napi_env env, napi_value v) {
  uint32_t n;
  if (napi_get_array_length(env, v, &n) != napi_ok) {
    throw_type(env, "hutch_sys: expected an array of strings");
    return NULL;
  }
  char **out = calloc((size_t)n + 1, sizeof *out);
  if (!out) {
    throw_errno(env, ENOMEM, "calloc", NULL);
    return NULL;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    napi_valuetype t;
    size_t len;
    if (napi_get_element(env, v, i, &e) != napi_ok || napi_typeof(env, e, &t) != napi_ok || t != napi_string ||
        napi_get_value_string_utf8(env, e, NULL, 0, &len) != napi_ok) {
      free_strv(out);
      throw_type(env, "hutch_sys: expected an array of strings");
      return NULL;
    }
    out[i] = malloc(len + 1);
    if (!out[i]) {
      free_strv(out);
      throw_errno(env, ENOMEM, "malloc", NULL);
      return NULL;
    }
    napi_get_value_string_utf8(env, e, out[i], len + 1, &len);
  }
  return out;
}

#define SPAWN_FDS 16

/* fds[i] becomes fd i of the child; a negative entry gives it /dev/null. Every
 * other descriptor of Node's is close-on-exec. */
static napi_value js_spawn(napi_env env, napi_callback_info info) {
  args_t a;
  static char file[PATH_BUF];
  char *pfile;
  uint32_t nfd;
  if (get_args(env, info, &a, 4) || get_str(env, a.argv[0], file, sizeof file, 0, &pfile)) return NULL;
  if (napi_get_array_length(env, a.argv[3], &nfd) != napi_ok || nfd > SPAWN_FDS)
    return throw_type(env, "hutch_sys: spawn takes at most 16 fds");
  int src[SPAWN_FDS], dups[SPAWN_FDS];
  for (uint32_t i = 0; i < nfd; i++) {
    napi_value e;
    int64_t fd;
    dups[i] = -1;
    if (napi_get_element(env, a.argv[3], i, &e) != napi_ok || get_int(env, e, &fd)) return NULL;
    src[i] = (int)fd;
  }
  char **argv = get_strv(env, a.argv[1]);
  if (!argv) return NULL;
  char **envp = get_strv(env, a.argv[2]);
  if (!envp) {
    free_strv(argv);
    return NULL;
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  int err = 0;
  /* Each source is first copied above the targets, so that placing one
   * never overwrites another still to be placed (fds [1, 0] swaps them). */
  for (uint32_t i = 0; i < nfd && !err; i++) {
    if (src[i] < 0) {
      err = posix_spawn_file_actions_addopen(&fa, (int)i, "/dev/null", O_RDWR, 0);
    } else if ((dups[i] = fcntl(src[i], F_DUPFD_CLOEXEC, SPAWN_FDS)) < 0) {
      err = errno;
    } else {
      err = posix_spawn_file_actions_adddup2(&fa, dups[i], (int)i);
    }
  }
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  if (!err) err = posix_spawnattr_setsigdefault(&at, &all);
  if (!err) err = posix_spawnattr_setsigmask(&at, &none);
  if (!err) err = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  if (!err) err = posix_spawn(&pid, pfile, &fa, &at, argv, envp);
  for (uint32_t i = 0; i < nfd; i++)
    if (dups[i] >= 0) close(dups[i]);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  free_strv(argv);
  free_strv(envp);
  if (err) return throw_errno(env, err, "posix_spawn", pfile);
  napi_value result;
  napi_create_int32(env, (int32_t)pid, &result);
  return result;
}

static napi_value js_pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return throw_errno(env, errno, "pipe2", NULL);
  napi_value arr, r, w;
  napi_create_array(env, &arr);
  napi_create_int32(env, fds[0], &r);
  napi_create_int32(env, fds[1], &w);
  napi_set_element(env, arr, 0, r);
  napi_set_element(env, arr, 1, w);
  return arr;
}

/* The child's exit code (128 + signal when killed), or null while it runs: never blocks. */
static napi_value js_waitpid(napi_env env, napi_callback_info info) {
  args_t a;
  int64_t pid;
  if (get_args(env, info, &a, 1) || get_int(env, a.argv[0], &pid)) return NULL;
  int status, rc;
  do rc = waitpid((pid_t)pid, &status, WNOHANG);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) return throw_errno(env, errno, "waitpid", NULL);
  napi_value result;
  if (rc == 0) {
    napi_get_null(env, &result);
    return result;
  }
  napi_create_int32(env, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), &result);
  return result;
}

static napi_value js_isatty(napi_env env, napi_callback_info info) {
  args_t a;
  int64_t fd;
  if (get_args(env, info, &a, 1) || get_int(env, a.argv[0], &fd)) return NULL;
  napi_value result;
  napi_get_boolean(env, isatty((int)fd) == 1, &result);
  return result;
}

static void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

NAPI_EXPORT int32_t node_api_module_get_api_version_v1(void) { return 8; }

NAPI_EXPORT napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  export_fn(env, exports, "flock", js_flock);
  export_fn(env, exports, "unlock", js_unlock);
  export_fn(env, exports, "mount", js_mount);
  export_fn(env, exports, "umount", js_umount);
  export_fn(env, exports, "mknod", js_mknod);
  export_fn(env, exports, "lsetxattr", js_lsetxattr);
  export_fn(env, exports, "lgetxattr", js_lgetxattr);
  export_fn(env, exports, "llistxattr", js_llistxattr);
  export_fn(env, exports, "lremovexattr", js_lremovexattr);
  export_fn(env, exports, "connectSeqpacket", js_connect_seqpacket);
  export_fn(env, exports, "shutdownWrite", js_shutdown_write);
  export_fn(env, exports, "shutdownBoth", js_shutdown_both);
  export_fn(env, exports, "newNetns", js_new_netns);
  export_fn(env, exports, "exchange", js_exchange);
  export_fn(env, exports, "spawn", js_spawn);
  export_fn(env, exports, "pipe", js_pipe);
  export_fn(env, exports, "waitpid", js_waitpid);
  export_fn(env, exports, "isatty", js_isatty);
  return exports;
}
