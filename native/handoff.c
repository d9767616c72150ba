/*
 * hutch-handoff: serves a container's published TCP ports from sockets in
 * the host's network namespace, handed to the container's own server.
 *
 *   hutch-handoff [--resume] SOCKET [--gateway IP] SPEC...
 *     SOCKET  a unix socket path where the OCI runtime sends the container's
 *             seccomp listener (the spec's linux.seccomp.listenerPath)
 *     IP      the address at which the container reaches the host's loopback
 *             (host.containers.internal)
 *     SPEC    HOST_IP,HOST_PORT,CONTAINER_PORT (HOST_IP empty: every address)
 *
 * The container runs with a seccomp filter that stops its bind() calls and
 * asks this helper (SECCOMP_RET_USER_NOTIF). A TCP bind to a published
 * container port gets, instead of the container's socket, a socket of the
 * same kind made here, in the host's namespace, bound to the published host
 * address and port (SECCOMP_IOCTL_NOTIF_ADDFD puts it in place of the
 * container's descriptor). The server then listens and accepts on the host
 * itself: a client's connection is one plain TCP connection to the server,
 * with no relay in the path, as fast as the host's own loopback, and the
 * server sees every client's real address. Every other bind goes on as if
 * nothing had stopped it.
 *
 * With --gateway, connect() is stopped too: a TCP connection to the
 * gateway's address gets a socket made here, connected to the same port on
 * the host's loopback, again one plain loopback connection. Other connects
 * go on untouched.
 *
 * It must run in the user namespace that owns the container's processes
 * (pidfd_getfd needs the right to trace them) and in the host's network
 * namespace. Prints "ready" once its socket listens. Single-threaded,
 * epoll.
 *
 * A keeper process (forked at start, listening on SOCKET.keep) holds a
 * copy of every seccomp listener. If hutch-handoff is killed, the
 * container's next bind() waits instead of failing, and `hutch-handoff
 * --resume` (what `hutch system check --repair` starts) takes the listeners
 * back from the keeper and goes on: the helper is restartable without
 * touching the container.
 *
 * Ends on SIGTERM, or by itself when its socket file is removed
 * (hutch removes the container's network files when it releases them, and so
 * does `system check` after a command killed mid-way); sockets already
 * handed over stay with the container, so its ports keep working without it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_SPECS 64

typedef struct {
  int any; /* no host address given: every address */
  struct in_addr v4;
  int port, container_port;
} spec_t;

static spec_t specs[MAX_SPECS];
static int nspecs;
static struct in_addr gateway;
static int has_gateway;
static struct seccomp_notif_sizes sizes;

static void die(const char *what) {
  fprintf(stderr, "hutch-handoff: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int parse_spec(const char *s, spec_t *sp) {
  char ip[64];
  const char *c1 = strchr(s, ',');
  if (!c1 || (size_t)(c1 - s) >= sizeof ip) return -1;
  memcpy(ip, s, (size_t)(c1 - s));
  ip[c1 - s] = 0;
  memset(sp, 0, sizeof *sp);
  if (ip[0] == 0 || strcmp(ip, "0.0.0.0") == 0) sp->any = 1;
  else if (inet_pton(AF_INET, ip, &sp->v4) != 1) return -1;
  if (sscanf(c1 + 1, "%d,%d", &sp->port, &sp->container_port) != 2) return -1;
  return sp->port > 0 && sp->port < 65536 && sp->container_port > 0 && sp->container_port < 65536 ? 0 : -1;
}

static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
static int pidfd_getfd_(int pidfd, int fd) { return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0); }

static void respond(int nfd, struct seccomp_notif_resp *resp, __u64 id, int error, int cont) {
  memset(resp, 0, sizes.seccomp_notif_resp);
  resp->id = id;
  resp->error = error ? -error : 0;
  resp->val = 0;
  resp->flags = cont ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0;
  /* ENOENT: the process went away meanwhile; nothing to answer. */
  ioctl(nfd, SECCOMP_IOCTL_NOTIF_SEND, resp);
}

static int get_int(int fd, int level, int name, int *out) {
  socklen_t len = sizeof *out;
  return getsockopt(fd, level, name, out, &len);
}

/* Options a server sets before bind() that matter to how the socket listens; the new socket gets them too. */
static void copy_options(int from, int to, int family) {
  static const int opts[][2] = {
      {SOL_SOCKET, SO_REUSEADDR}, {SOL_SOCKET, SO_REUSEPORT},  {SOL_SOCKET, SO_KEEPALIVE},
      {IPPROTO_TCP, TCP_NODELAY}, {IPPROTO_TCP, TCP_DEFER_ACCEPT}, {IPPROTO_TCP, TCP_FASTOPEN},
  };
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
    int v;
    if (get_int(from, opts[i][0], opts[i][1], &v) == 0 && v != 0)
      setsockopt(to, opts[i][0], opts[i][1], &v, sizeof v);
  }
  if (family == AF_INET6) {
    int v;
    if (get_int(from, IPPROTO_IPV6, IPV6_V6ONLY, &v) == 0) setsockopt(to, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v);
  }
}

/* The published host side for a container port, or NULL. */
static const spec_t *spec_for(int container_port) {
  for (int i = 0; i < nspecs; i++)
    if (specs[i].container_port == container_port) return &specs[i];
  return NULL;
}

/*
 * A bind() the filter stopped. Returns the errno to answer with, 0 for
 * success (the socket was handed over), or -1 to let the bind go on.
 */
static int handle_bind(int nfd, const struct seccomp_notif *req) {
  int target = (int)req->data.args[0];
  __u64 uaddr = req->data.args[1];
  socklen_t alen = (socklen_t)req->data.args[2];
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  if (alen < sizeof(struct sockaddr_in) || alen > sizeof ss) return -1;
  struct iovec local = {&ss, alen}, remote = {(void *)(uintptr_t)uaddr, alen};
  if (process_vm_readv((pid_t)req->pid, &local, 1, &remote, 1, 0) != (ssize_t)alen) return -1;
  /* The address was read from a process that might have been replaced meanwhile: only trust it if not. */
  __u64 id = req->id;
  if (ioctl(nfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0) return -1;

  int family = ss.ss_family, port;
  if (family == AF_INET) port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  else if (family == AF_INET6 && alen >= sizeof(struct sockaddr_in6)) port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  else return -1;
  const spec_t *sp = spec_for(port);
  if (!sp) return -1;

  int pidfd = pidfd_open_((pid_t)req->pid);
  if (pidfd < 0) return -1;
  int orig = pidfd_getfd_(pidfd, target);
  close(pidfd);
  if (orig < 0) return -1;
  int type = 0, proto = 0, domain = 0, result = -1;
  if (get_int(orig, SOL_SOCKET, SO_TYPE, &type) != 0 || type != SOCK_STREAM ||
      get_int(orig, SOL_SOCKET, SO_PROTOCOL, &proto) != 0 || proto != IPPROTO_TCP ||
      get_int(orig, SOL_SOCKET, SO_DOMAIN, &domain) != 0 || domain != family) {
    close(orig);
    return -1;
  }
  int fl = fcntl(orig, F_GETFL), fdfl = fcntl(orig, F_GETFD);
  int s = socket(family, SOCK_STREAM | ((fl >= 0 && (fl & O_NONBLOCK)) ? SOCK_NONBLOCK : 0), 0);
  if (s < 0) {
    result = errno;
    close(orig);
    return result;
  }
  copy_options(orig, s, family);
  close(orig);

  struct sockaddr_storage host;
  socklen_t hlen;
  memset(&host, 0, sizeof host);
  if (family == AF_INET) {
    struct sockaddr_in *h = (struct sockaddr_in *)&host;
    h->sin_family = AF_INET;
    h->sin_port = htons((unsigned short)sp->port);
    h->sin_addr.s_addr = sp->any ? htonl(INADDR_ANY) : sp->v4.s_addr;
    hlen = sizeof *h;
  } else {
    struct sockaddr_in6 *h = (struct sockaddr_in6 *)&host;
    h->sin6_family = AF_INET6;
    h->sin6_port = htons((unsigned short)sp->port);
    if (sp->any) {
      h->sin6_addr = in6addr_any;
    } else {
      /* An IPv4 host address on an IPv6 socket: its mapped form, which needs dual-stack. */
      int off = 0;
      setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
      h->sin6_addr.s6_addr[10] = h->sin6_addr.s6_addr[11] = 0xff;
      memcpy(h->sin6_addr.s6_addr + 12, &sp->v4, 4);
    }
    hlen = sizeof *h;
  }
  if (bind(s, (struct sockaddr *)&host, hlen) != 0) {
    result = errno;
    close(s);
    return result;
  }
  struct seccomp_notif_addfd add = {
      .id = req->id,
      .flags = SECCOMP_ADDFD_FLAG_SETFD,
      .srcfd = (__u32)s,
      .newfd = (__u32)target,
      .newfd_flags = (fdfl >= 0 && (fdfl & FD_CLOEXEC)) ? O_CLOEXEC : 0,
  };
  result = ioctl(nfd, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0 ? errno : 0;
  close(s);
  return result;
}

/* Waits up to 5 s for a non-blocking connect to end; returns its errno (0: connected). */
static int finish_connect(int s) {
  struct pollfd p = {.fd = s, .events = POLLOUT};
  if (poll(&p, 1, 5000) != 1) return ETIMEDOUT;
  int err = 0;
  return get_int(s, SOL_SOCKET, SO_ERROR, &err) == 0 ? err : errno;
}

/*
 * A connect() the filter stopped. Returns the errno to answer with, 0 for
 * success (a connected socket was handed over), or -1 to let it go on.
 */
static int handle_connect(int nfd, const struct seccomp_notif *req) {
  int target = (int)req->data.args[0];
  socklen_t alen = (socklen_t)req->data.args[2];
  struct sockaddr_in sin;
  if (!has_gateway || alen < sizeof sin) return -1;
  struct iovec local = {&sin, sizeof sin}, remote = {(void *)(uintptr_t)req->data.args[1], sizeof sin};
  if (process_vm_readv((pid_t)req->pid, &local, 1, &remote, 1, 0) != (ssize_t)sizeof sin) return -1;
  __u64 id = req->id;
  if (ioctl(nfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0) return -1;
  if (sin.sin_family != AF_INET || sin.sin_addr.s_addr != gateway.s_addr) return -1;

  int pidfd = pidfd_open_((pid_t)req->pid);
  if (pidfd < 0) return -1;
  int orig = pidfd_getfd_(pidfd, target);
  close(pidfd);
  if (orig < 0) return -1;
  int type = 0, proto = 0, domain = 0;
  struct sockaddr_in bound;
  socklen_t blen = sizeof bound;
  /* Only a plain TCP socket not bound yet: one bound to a chosen address or port keeps its own path. */
  if (get_int(orig, SOL_SOCKET, SO_TYPE, &type) != 0 || type != SOCK_STREAM ||
      get_int(orig, SOL_SOCKET, SO_PROTOCOL, &proto) != 0 || proto != IPPROTO_TCP ||
      get_int(orig, SOL_SOCKET, SO_DOMAIN, &domain) != 0 || domain != AF_INET ||
      getsockname(orig, (struct sockaddr *)&bound, &blen) != 0 || bound.sin_port != 0) {
    close(orig);
    return -1;
  }
  int fl = fcntl(orig, F_GETFL), fdfl = fcntl(orig, F_GETFD);
  int nonblocking = fl >= 0 && (fl & O_NONBLOCK);
  int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (s < 0) {
    int e = errno;
    close(orig);
    return e;
  }
  copy_options(orig, s, AF_INET);
  close(orig);
  struct sockaddr_in lo = {.sin_family = AF_INET, .sin_port = sin.sin_port, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int err = connect(s, (struct sockaddr *)&lo, sizeof lo) == 0 ? 0 : errno;
  /* A blocking caller gets the outcome; a non-blocking one gets EINPROGRESS and polls the handed socket. */
  if (err == EINPROGRESS && !nonblocking) err = finish_connect(s);
  if (err != 0 && err != EINPROGRESS) {
    close(s);
    return err;
  }
  if (!nonblocking) fcntl(s, F_SETFL, fcntl(s, F_GETFL) & ~O_NONBLOCK);
  struct seccomp_notif_addfd add = {
      .id = req->id,
      .flags = SECCOMP_ADDFD_FLAG_SETFD,
      .srcfd = (__u32)s,
      .newfd = (__u32)target,
      .newfd_flags = (fdfl >= 0 && (fdfl & FD_CLOEXEC)) ? O_CLOEXEC : 0,
  };
  int r = ioctl(nfd, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0 ? errno : err;
  close(s);
  return r;
}

static void on_notify(int nfd) {
  struct seccomp_notif *req = calloc(1, sizes.seccomp_notif);
  struct seccomp_notif_resp *resp = calloc(1, sizes.seccomp_notif_resp);
  if (!req || !resp) die("calloc");
  if (ioctl(nfd, SECCOMP_IOCTL_NOTIF_RECV, req) == 0) {
    int r = req->data.nr == SYS_bind ? handle_bind(nfd, req) : req->data.nr == SYS_connect ? handle_connect(nfd, req) : -1;
    respond(nfd, resp, req->id, r > 0 ? r : 0, r < 0);
  }
  free(req);
  free(resp);
}

/* The runtime's message: the container's state as JSON, with the seccomp listener as SCM_RIGHTS. */
static int receive_listener(int conn) {
  char payload[8192];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  for (;;) {
    struct iovec iov = {payload, sizeof payload};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        int fd;
        memcpy(&fd, CMSG_DATA(c), sizeof fd);
        return fd;
      }
    }
  }
}

/* --- The keeper of the listeners ------------------------------------- */

static char keep_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

static int send_fd(int sock, char tag, int fd) {
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {&tag, 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (fd >= 0) {
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof u.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* One message: its tag, and the fd it carries (-1 when none). Returns the tag, or 0 at the end. */
static char recv_fd(int sock, int *fd) {
  char tag = 0;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {&tag, 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  *fd = -1;
  if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1) return 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(fd, CMSG_DATA(c), sizeof *fd);
  return tag;
}

static int keep_connect(void) {
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  strcpy(sun.sun_path, keep_path);
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s >= 0 && connect(s, (struct sockaddr *)&sun, sizeof sun) == 0) return s;
  if (s >= 0) close(s);
  return -1;
}

/* Hands the keeper a copy of a listener: 'S' with the fd. */
static void keep(int nfd) {
  int s = keep_connect();
  if (s < 0) return;
  send_fd(s, 'S', nfd);
  close(s);
}

/*
 * The keeper: stores listeners ('S'), gives them all back ('G': an 'F' per
 * listener, then 'E'), lets go of those whose processes are all gone, and
 * ends with the main socket file, as the helper does.
 */
static void keeper(int ls, int in, const char *name) {
  int fds[1024], n = 0;
  for (;;) {
    struct pollfd p[2 + 1024];
    p[0] = (struct pollfd){.fd = ls, .events = POLLIN};
    p[1] = (struct pollfd){.fd = in, .events = POLLIN};
    for (int i = 0; i < n; i++) p[2 + i] = (struct pollfd){.fd = fds[i], .events = 0};
    if (poll(p, (nfds_t)(2 + n), -1) < 0) continue;
    if (p[1].revents & POLLIN) {
      char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
      ssize_t len;
      while ((len = read(in, buf, sizeof buf)) > 0) {
        for (char *q = buf; q < buf + len;) {
          const struct inotify_event *e = (const struct inotify_event *)q;
          if ((e->mask & IN_DELETE_SELF) || (e->len > 0 && strcmp(e->name, name) == 0)) {
            unlink(keep_path);
            _exit(0);
          }
          q += sizeof *e + e->len;
        }
      }
    }
    for (int i = n - 1; i >= 0; i--) {
      if (p[2 + i].revents & (POLLHUP | POLLERR)) {
        close(fds[i]);
        fds[i] = fds[--n];
      }
    }
    if (!(p[0].revents & POLLIN)) continue;
    int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) continue;
    int fd;
    char tag = recv_fd(c, &fd);
    if (tag == 'S' && fd >= 0 && n < 1024) fds[n++] = fd;
    else if (fd >= 0) close(fd);
    if (tag == 'G') {
      for (int i = 0; i < n; i++) send_fd(c, 'F', fds[i]);
      send_fd(c, 'E', -1);
    }
    close(c);
  }
}

/* Starts the keeper: its socket listens before this returns. */
static void start_keeper(const char *name, const char *dir) {
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  strcpy(sun.sun_path, keep_path);
  unlink(keep_path);
  int ls = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  mode_t old = umask(077);
  if (ls < 0 || bind(ls, (struct sockaddr *)&sun, sizeof sun) != 0 || listen(ls, 16) != 0) die("keeper socket");
  umask(old);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid > 0) {
    close(ls);
    return;
  }
  int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (in < 0 || inotify_add_watch(in, dir, IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF) < 0) _exit(1);
  /* Its own session: a signal to the helper's group is not one to the keeper. */
  setsid();
  int devnull = open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
  }
  keeper(ls, in, name);
}

/* --resume: the listeners the keeper holds. */
static int take_back(int ep) {
  int s = keep_connect();
  if (s < 0) return -1;
  if (send_fd(s, 'G', -1) != 0) {
    close(s);
    return -1;
  }
  int got = 0, fd;
  for (char tag; (tag = recv_fd(s, &fd)) == 'F';) {
    if (fd < 0) continue;
    struct epoll_event nev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &nev) != 0) close(fd);
    else got++;
  }
  close(s);
  return got;
}

int main(int argc, char **argv) {
  int resume = argc > 1 && strcmp(argv[1], "--resume") == 0;
  if (resume) {
    argv++;
    argc--;
  }
  if (argc < 3) {
    fprintf(stderr, "usage: hutch-handoff SOCKET [--gateway IP] HOST_IP,HOST_PORT,CONTAINER_PORT...\n");
    return 2;
  }
  int first = 2;
  if (strcmp(argv[2], "--gateway") == 0) {
    if (argc < 4 || inet_pton(AF_INET, argv[3], &gateway) != 1) {
      fprintf(stderr, "hutch-handoff: --gateway needs an IPv4 address\n");
      return 2;
    }
    has_gateway = 1;
    first = 4;
  }
  for (int i = first; i < argc; i++) {
    if (nspecs == MAX_SPECS || parse_spec(argv[i], &specs[nspecs]) != 0) {
      fprintf(stderr, "hutch-handoff: bad port spec \"%s\"\n", argv[i]);
      return 2;
    }
    nspecs++;
  }
  signal(SIGPIPE, SIG_IGN);
  if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0) die("seccomp notification sizes");

  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (strlen(argv[1]) >= sizeof sun.sun_path) {
    fprintf(stderr, "hutch-handoff: socket path too long: %s\n", argv[1]);
    return 2;
  }
  if (strlen(argv[1]) + 5 >= sizeof sun.sun_path) {
    fprintf(stderr, "hutch-handoff: socket path too long: %s\n", argv[1]);
    return 2;
  }
  snprintf(keep_path, sizeof keep_path, "%s.keep", argv[1]);
  if (!resume) {
    /* First, so that the keeper holds nothing of the helper's own. */
    char kdir[sizeof sun.sun_path], kbase[sizeof sun.sun_path];
    strcpy(kdir, argv[1]);
    strcpy(kbase, argv[1]);
    unlink(argv[1]); /* a leftover's deletion must come before the keeper watches for it */
    start_keeper(basename(kbase), dirname(kdir));
  }
  /* Resumed, the socket is made aside and renamed over the old one: the keeper ends when the name is deleted. */
  snprintf(sun.sun_path, sizeof sun.sun_path, resume ? "%s.new" : "%s", argv[1]);
  unlink(sun.sun_path);
  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (ls < 0) die("socket");
  mode_t old = umask(077);
  if (bind(ls, (struct sockaddr *)&sun, sizeof sun) != 0) die(sun.sun_path);
  umask(old);
  if (listen(ls, 16) != 0) die("listen");
  if (resume && rename(sun.sun_path, argv[1]) != 0) die("rename");

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) != 0) die("epoll_ctl");
  /* Its socket file going away means the container's network was released: nothing left to serve. */
  char dir[sizeof sun.sun_path], base[sizeof sun.sun_path];
  strcpy(dir, argv[1]);
  strcpy(base, argv[1]);
  const char *name = basename(base);
  int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (in < 0 || inotify_add_watch(in, dirname(dir), IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF) < 0)
    die("inotify");
  struct epoll_event iev = {.events = EPOLLIN, .data.fd = in};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, in, &iev) != 0) die("epoll_ctl");
  struct stat st;
  if (stat(argv[1], &st) != 0) return 0; /* removed before the watch began */
  if (resume && take_back(ep) < 0) {
    fprintf(stderr, "hutch-handoff: no keeper answers at %s: the container must be restarted\n", keep_path);
    return 1;
  }

  if (write(1, "ready\n", 6) != 6) return 1;
  int devnull = open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    dup2(devnull, 1);
    if (devnull > 2) close(devnull);
  }

  struct epoll_event events[32];
  for (;;) {
    int n = epoll_wait(ep, events, 32, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == in) {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t len;
        while ((len = read(in, buf, sizeof buf)) > 0) {
          for (char *p = buf; p < buf + len;) {
            const struct inotify_event *e = (const struct inotify_event *)p;
            if ((e->mask & IN_DELETE_SELF) || (e->len > 0 && strcmp(e->name, name) == 0)) return 0;
            p += sizeof *e + e->len;
          }
        }
      } else if (fd == ls) {
        /* The runtime connects once per process it starts with the filter (the container, each exec). */
        int conn = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (conn < 0) continue;
        int nfd = receive_listener(conn);
        close(conn);
        if (nfd < 0) continue;
        keep(nfd);
        struct epoll_event nev = {.events = EPOLLIN, .data.fd = nfd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, nfd, &nev) != 0) close(nfd);
      } else {
        if (events[i].events & EPOLLIN) on_notify(fd);
        if (events[i].events & (EPOLLHUP | EPOLLERR)) {
          /* Every process of that filter is gone. */
          epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
          close(fd);
        }
      }
    }
  }
}
