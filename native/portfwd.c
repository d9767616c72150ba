/*
 * hutch-portfwd: hutch's own listener for published ports where pasta
 * cannot serve: ports that admit only some clients (--publish-allow) on the
 * host's loopback, which pasta splices in from the container's own
 * loopback so that clients cannot be told apart; and every published port
 * of a container on a user network.
 *
 *   hutch-portfwd NETNS ALLOW... -- LISTEN...
 *     NETNS   the container's network namespace file
 *     ALLOW   CIDR, IPv4 or IPv6 (e.g. 127.0.0.2/32, ::1/128)
 *     LISTEN  [udp:]HOST_IP,HOST_PORT,CONTAINER_PORT[,CONTAINER_IP]; with
 *             CONTAINER_IP, clients off loopback keep their address too
 *             (keep_source)
 *
 * It listens in the host's network namespace, then moves itself into the
 * container's: every later socket is made there. A client outside the
 * allowlist is reset at once (SO_LINGER 0). An allowed client is relayed
 * to the container's loopback from a socket bound to the client's own
 * address (any 127.0.0.0/8 or ::1 address is local in every namespace), so
 * the container's server sees who connected. Single-threaded, epoll, no
 * allocation per byte. Prints "ready" on stdout once listening and in the
 * namespace, then detaches from it. Ends on SIGTERM or SIGKILL; nothing it
 * holds outlives it, so hutch may kill and restart it at any time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_ALLOW 64
#define MAX_LISTEN 64
/* Bytes a relay holds per direction: the kernel pipe it splices through. */
#define PIPE_BYTES (1 << 20)

typedef struct {
  int family;
  unsigned char addr[16];
  int prefix;
} cidr_t;

typedef struct {
  int fd;
  int family;
  int container_port;
  /* The container's own address on its network, for clients that are not on loopback (see keep_source). */
  struct in_addr target;
  int has_target;
  int udp;
} listener_t;

typedef struct conn conn_t;

/*
 * One direction of a relay: bytes spliced from `from` into a kernel pipe,
 * waiting to be spliced out to `to`. The bytes never come up to this
 * process (no copy through user space), which is what lets a relay on
 * loopback run near the speed of loopback itself.
 */
typedef struct {
  int rd, wr; /* the pipe's ends */
  size_t len, cap;
  int eof;
} pipe_t;

struct conn {
  int client, server;
  int connected;
  pipe_t up;   /* client -> server */
  pipe_t down; /* server -> client */
};

/* epoll data: which fd of which connection, or a listener. */
typedef struct {
  int kind; /* 0 TCP listener, 1 client side, 2 server side, 3 UDP listener, 4 UDP session */
  void *ptr;
} tag_t;

static cidr_t allow[MAX_ALLOW];
static int nallow;
static listener_t listeners[MAX_LISTEN];
static int nlisten;
static int ep;

static void die(const char *what) {
  fprintf(stderr, "hutch-portfwd: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int parse_cidr(const char *s, cidr_t *c) {
  char addr[64];
  const char *slash = strchr(s, '/');
  size_t n = slash ? (size_t)(slash - s) : strlen(s);
  if (n >= sizeof addr) return -1;
  memcpy(addr, s, n);
  addr[n] = 0;
  memset(c, 0, sizeof *c);
  if (inet_pton(AF_INET, addr, c->addr) == 1) {
    c->family = AF_INET;
    c->prefix = slash ? atoi(slash + 1) : 32;
    return c->prefix >= 0 && c->prefix <= 32 ? 0 : -1;
  }
  if (inet_pton(AF_INET6, addr, c->addr) == 1) {
    c->family = AF_INET6;
    c->prefix = slash ? atoi(slash + 1) : 128;
    return c->prefix >= 0 && c->prefix <= 128 ? 0 : -1;
  }
  return -1;
}

static int in_cidr(int family, const unsigned char *a, const cidr_t *c) {
  if (family != c->family) return 0;
  int full = c->prefix / 8, rest = c->prefix % 8;
  if (memcmp(a, c->addr, (size_t)full) != 0) return 0;
  if (rest == 0) return 1;
  unsigned char mask = (unsigned char)(0xff << (8 - rest));
  return (a[full] & mask) == (c->addr[full] & mask);
}

/* An IPv4 client on an IPv6 socket arrives as ::ffff:a.b.c.d: judged as IPv4. */
static int allowed(const struct sockaddr_storage *ss) {
  int family = ss->ss_family;
  const unsigned char *a;
  if (family == AF_INET) {
    a = (const unsigned char *)&((const struct sockaddr_in *)ss)->sin_addr;
  } else {
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
      family = AF_INET;
      a = a6->s6_addr + 12;
    } else {
      a = a6->s6_addr;
    }
  }
  for (int i = 0; i < nallow; i++)
    if (in_cidr(family, a, &allow[i])) return 1;
  return 0;
}

/* Tags are kept per fd so that MOD can reuse them. */
static tag_t *tags[65536];

static void add_fd(int fd, int kind, void *ptr, unsigned events) {
  if (fd < 0 || fd >= 65536) {
    close(fd);
    return;
  }
  tag_t *t = tags[fd];
  if (!t) {
    t = malloc(sizeof *t);
    if (!t) die("malloc");
    tags[fd] = t;
  }
  t->kind = kind;
  t->ptr = ptr;
  struct epoll_event ev = {.events = events, .data.ptr = t};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl add");
}

static void set_events(int fd, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = tags[fd]};
  epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

/* A direction's pipe, as large as an unprivileged process may make it (the default is 64 KiB). */
static int open_pipe(pipe_t *p) {
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return -1;
  p->rd = fds[0];
  p->wr = fds[1];
  int cap = fcntl(p->wr, F_SETPIPE_SZ, PIPE_BYTES);
  if (cap < 0) cap = fcntl(p->wr, F_GETPIPE_SZ);
  p->cap = cap > 0 ? (size_t)cap : 65536;
  return 0;
}

static void close_pipe(pipe_t *p) {
  if (p->cap == 0) return;
  close(p->rd);
  close(p->wr);
  p->cap = 0;
}

static void drop(conn_t *c) {
  /* Events for these fds may still be in this round's batch: they must find nothing. */
  tags[c->client]->ptr = NULL;
  tags[c->server]->ptr = NULL;
  epoll_ctl(ep, EPOLL_CTL_DEL, c->client, NULL);
  epoll_ctl(ep, EPOLL_CTL_DEL, c->server, NULL);
  close(c->client);
  close(c->server);
  close_pipe(&c->up);
  close_pipe(&c->down);
  free(c);
}

/* Which events each side wants now: read while there is room, write while there is data. */
static void rearm(conn_t *c) {
  unsigned ce = 0, se = 0;
  if (!c->connected) {
    se = EPOLLOUT;
  } else {
    if (!c->up.eof && c->up.len < c->up.cap) ce |= EPOLLIN;
    if (c->down.len > 0) ce |= EPOLLOUT;
    if (!c->down.eof && c->down.len < c->down.cap) se |= EPOLLIN;
    if (c->up.len > 0) se |= EPOLLOUT;
  }
  set_events(c->client, ce);
  set_events(c->server, se);
}

/* Moves bytes: read into p from `from`, write out of p to `to`. Returns -1 when the connection is done for. */
static int pump(int from, int to, pipe_t *p, int can_read, int can_write) {
  const unsigned flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
  if (can_read && !p->eof && p->len < p->cap) {
    ssize_t n = splice(from, NULL, p->wr, NULL, p->cap - p->len, flags);
    if (n > 0) p->len += (size_t)n;
    else if (n == 0) p->eof = 1;
    else if (errno != EAGAIN && errno != EINTR) return -1;
  }
  while (can_write && p->len > 0) {
    ssize_t n = splice(p->rd, NULL, to, NULL, p->len, flags);
    if (n > 0) {
      p->len -= (size_t)n;
    } else {
      if (n < 0 && errno != EAGAIN && errno != EINTR) return -1;
      break;
    }
  }
  /* The reader said all it will say and it has all been passed on: half-close. */
  if (p->eof && p->len == 0) shutdown(to, SHUT_WR);
  return 0;
}

/*
 * A connection from a client that is not on this host's loopback, made so
 * that the container's server sees the client's own address: bound to that
 * (non-local) address with IP_TRANSPARENT, marked, to the container's
 * address. hutch sets up the namespace so that the server's replies to
 * marked connections are routed back here (a conntrack mark and a local
 * route in a table of their own); both need CAP_NET_ADMIN in the
 * namespace's owner, which hutch is.
 */
static int keep_source(int fd) {
  int one = 1, mark = 1;
  if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) != 0) return -1;
  return setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark);
}

/*
 * A socket in the container's namespace to the container's port, bound to
 * the client's own address: a loopback address as it is (127.0.0.0/8 and
 * ::1 are local everywhere), another with keep_source when the container's
 * address is known, else none (the client then arrives from loopback).
 * Connected (TCP: connecting). Returns -1 when no socket could be made.
 */
static int upstream(const listener_t *l, const struct sockaddr_storage *peer, int type) {
  int v4 = peer->ss_family == AF_INET ||
           IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)peer)->sin6_addr);
  struct sockaddr_storage src, dst;
  socklen_t len;
  memset(&src, 0, sizeof src);
  memset(&dst, 0, sizeof dst);
  if (v4) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&src, *d4 = (struct sockaddr_in *)&dst;
    s4->sin_family = d4->sin_family = AF_INET;
    if (peer->ss_family == AF_INET) s4->sin_addr = ((const struct sockaddr_in *)peer)->sin_addr;
    else memcpy(&s4->sin_addr, ((const struct sockaddr_in6 *)peer)->sin6_addr.s6_addr + 12, 4);
    d4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d4->sin_port = htons((unsigned short)l->container_port);
    len = sizeof(struct sockaddr_in);
  } else {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&src, *d6 = (struct sockaddr_in6 *)&dst;
    s6->sin6_family = d6->sin6_family = AF_INET6;
    s6->sin6_addr = ((const struct sockaddr_in6 *)peer)->sin6_addr;
    d6->sin6_addr = in6addr_loopback;
    d6->sin6_port = htons((unsigned short)l->container_port);
    len = sizeof(struct sockaddr_in6);
  }
  int fd = socket(v4 ? AF_INET : AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (v4 && l->has_target && ntohl(((struct sockaddr_in *)&src)->sin_addr.s_addr) >> 24 != 127) {
    if (keep_source(fd) == 0 && bind(fd, (struct sockaddr *)&src, len) == 0) {
      ((struct sockaddr_in *)&dst)->sin_addr = l->target;
    } else {
      /* Not allowed here after all: from loopback, unbound. */
      close(fd);
      fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) return -1;
    }
  } else if (bind(fd, (struct sockaddr *)&src, len) != 0) { /* unbound: the kernel picks */
  }
  if (connect(fd, (struct sockaddr *)&dst, len) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

static void on_accept(listener_t *l) {
  for (;;) {
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    int cfd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) return;
    if (!allowed(&peer)) {
      struct linger lg = {1, 0};
      setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      close(cfd);
      continue;
    }
    int sfd = upstream(l, &peer, SOCK_STREAM);
    if (sfd < 0) {
      close(cfd);
      continue;
    }
    conn_t *c = calloc(1, sizeof *c);
    if (!c) die("calloc");
    if (open_pipe(&c->up) != 0 || open_pipe(&c->down) != 0) {
      close_pipe(&c->up);
      free(c);
      close(cfd);
      close(sfd);
      continue;
    }
    c->client = cfd;
    c->server = sfd;
    add_fd(cfd, 1, c, 0);
    add_fd(sfd, 2, c, EPOLLOUT);
  }
}

/*
 * UDP: one session per client address, a connected socket in the container's
 * namespace (made by upstream()), ended after a minute without traffic.
 * Datagrams from clients outside the allowlist are dropped.
 */
#define MAX_SESSIONS 256
#define SESSION_IDLE 60

typedef struct {
  int fd;
  listener_t *l;
  struct sockaddr_storage peer;
  socklen_t plen;
  time_t last;
} session_t;

static session_t sessions[MAX_SESSIONS];
static char dgram[65536];

static void end_session(session_t *s) {
  tags[s->fd]->ptr = NULL;
  epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
  close(s->fd);
  s->fd = 0;
}

static session_t *session_for(listener_t *l, const struct sockaddr_storage *peer, socklen_t plen) {
  session_t *free_slot = NULL, *oldest = NULL;
  for (int i = 0; i < MAX_SESSIONS; i++) {
    session_t *s = &sessions[i];
    if (s->fd <= 0) {
      if (!free_slot) free_slot = s;
      continue;
    }
    if (s->l == l && s->plen == plen && memcmp(&s->peer, peer, plen) == 0) return s;
    if (!oldest || s->last < oldest->last) oldest = s;
  }
  session_t *s = free_slot;
  if (!s) {
    end_session(oldest);
    s = oldest;
  }
  int fd = upstream(l, peer, SOCK_DGRAM);
  if (fd < 0) return NULL;
  s->fd = fd;
  s->l = l;
  memcpy(&s->peer, peer, plen);
  s->plen = plen;
  add_fd(fd, 4, s, EPOLLIN);
  return s;
}

static void on_datagram(listener_t *l) {
  for (;;) {
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    ssize_t n = recvfrom(l->fd, dgram, sizeof dgram, 0, (struct sockaddr *)&peer, &plen);
    if (n < 0) return;
    if (!allowed(&peer)) continue;
    session_t *s = session_for(l, &peer, plen);
    if (!s) continue;
    s->last = time(NULL);
    send(s->fd, dgram, (size_t)n, 0);
  }
}

static void on_reply(session_t *s) {
  for (;;) {
    ssize_t n = recv(s->fd, dgram, sizeof dgram, 0);
    if (n < 0) return;
    s->last = time(NULL);
    sendto(s->l->fd, dgram, (size_t)n, 0, (struct sockaddr *)&s->peer, s->plen);
  }
}

static void expire_sessions(void) {
  time_t now = time(NULL);
  for (int i = 0; i < MAX_SESSIONS; i++)
    if (sessions[i].fd > 0 && now - sessions[i].last > SESSION_IDLE) end_session(&sessions[i]);
}

static int listen_on(const char *spec, listener_t *l) {
  char ip[64];
  l->udp = strncmp(spec, "udp:", 4) == 0;
  if (l->udp) spec += 4;
  int hp, cp;
  const char *c1 = strchr(spec, ',');
  const char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
  if (!c1 || !c2 || (size_t)(c1 - spec) >= sizeof ip) return -1;
  memcpy(ip, spec, (size_t)(c1 - spec));
  ip[c1 - spec] = 0;
  hp = atoi(c1 + 1);
  cp = atoi(c2 + 1);
  const char *c3 = strchr(c2 + 1, ',');
  if (c3) {
    if (inet_pton(AF_INET, c3 + 1, &l->target) != 1) return -1;
    l->has_target = 1;
  }
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof ss);
  if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
    ss.ss_family = AF_INET;
    ((struct sockaddr_in *)&ss)->sin_port = htons((unsigned short)hp);
    len = sizeof(struct sockaddr_in);
  } else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
    ss.ss_family = AF_INET6;
    ((struct sockaddr_in6 *)&ss)->sin6_port = htons((unsigned short)hp);
    len = sizeof(struct sockaddr_in6);
  } else {
    return -1;
  }
  int fd = socket(ss.ss_family, (l->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0) return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, len) != 0 || (!l->udp && listen(fd, 128) != 0)) {
    fprintf(stderr, "hutch-portfwd: listen on %s port %d: %s\n", ip, hp, strerror(errno));
    return -1;
  }
  l->fd = fd;
  l->family = ss.ss_family;
  l->container_port = cp;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: hutch-portfwd NETNS ALLOW... -- HOST_IP,HOST_PORT,CONTAINER_PORT...\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int i = 2;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    if (nallow == MAX_ALLOW || parse_cidr(argv[i], &allow[nallow]) != 0) {
      fprintf(stderr, "hutch-portfwd: bad allowed network %s\n", argv[i]);
      return 2;
    }
    nallow++;
  }
  for (i++; i < argc; i++) {
    if (nlisten == MAX_LISTEN || listen_on(argv[i], &listeners[nlisten]) != 0) return 1;
    nlisten++;
  }
  int ns = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (ns < 0) die("open network namespace");
  if (setns(ns, CLONE_NEWNET) != 0) die("join network namespace");
  close(ns);
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  for (i = 0; i < nlisten; i++) add_fd(listeners[i].fd, listeners[i].udp ? 3 : 0, &listeners[i], EPOLLIN);
  /* Ready: say so, and let go of the starter's pipe and terminal. */
  if (write(1, "ready\n", 6) != 6) return 1;
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) {
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
  }
  setsid();
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(ep, evs, 64, 5000);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    expire_sessions();
    for (int k = 0; k < n; k++) {
      tag_t *t = evs[k].data.ptr;
      if (!t || !t->ptr) continue;
      if (t->kind == 0) {
        on_accept(t->ptr);
        continue;
      }
      if (t->kind == 3) {
        on_datagram(t->ptr);
        continue;
      }
      if (t->kind == 4) {
        on_reply(t->ptr);
        continue;
      }
      conn_t *c = t->ptr;
      unsigned e = evs[k].events;
      if (t->kind == 2 && !c->connected) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->server, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0) {
          drop(c);
          continue;
        }
        c->connected = 1;
        rearm(c);
        continue;
      }
      int r = 0;
      if (t->kind == 1) {
        r = pump(c->client, c->server, &c->up, (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0, 0);
        if (r == 0) r = pump(c->server, c->client, &c->down, 0, (e & EPOLLOUT) != 0);
      } else {
        r = pump(c->server, c->client, &c->down, (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0, 0);
        if (r == 0) r = pump(c->client, c->server, &c->up, 0, (e & EPOLLOUT) != 0);
      }
      /* Done when either side failed, or both said all they had and it was passed on. */
      if (r != 0 || (c->up.eof && c->down.eof && c->up.len == 0 && c->down.len == 0)) {
        drop(c);
        continue;
      }
      /* Data just read can often be written at once. */
      pump(c->client, c->server, &c->up, 0, 1);
      pump(c->server, c->client, &c->down, 0, 1);
      rearm(c);
    }
  }
}
