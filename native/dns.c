/*
 * hutch-dns: the name server of hutch's user networks. A container on a
 * network asks the network's gateway address, and gets the addresses of the
 * other containers on that network by name; every other name is passed on to
 * the host's resolvers. It is the one piece that must tell networks apart, so
 * that a container never learns names of a network it is not on.
 *
 *   hutch-dns [--netns PATH] [--port N] RECORDS_FILE UPSTREAM...
 *     PATH          network namespace file to serve in (setns before binding)
 *     N             port for UDP and TCP (default 53)
 *     RECORDS_FILE  read at start and on SIGHUP; lines:
 *                     listen ADDR [internal] serve on IPv4 ADDR (a gateway);
 *                                           internal: never forward its
 *                                           other names (NXDOMAIN)
 *                     host ADDR NAME IP     at ADDR, NAME has address IP
 *                                           (IPv4: A; IPv6: AAAA)
 *                   '#' comments, blank and unknown lines are ignored
 *     UPSTREAM      IPv4 resolver, IP or IP:PORT, tried in order, 2 s each,
 *                   asked from the namespace hutch-dns was started in
 *
 * Each listen address has its own sockets, so the socket a query came in on
 * says which network asks, and only that network's records answer it. A
 * known name gets its A records with TTL 0 (containers come and go) and
 * NODATA for other types, so resolvers do not go on to ask elsewhere; PTR
 * queries for known addresses get the first name. Other queries are
 * forwarded unchanged over UDP under a fresh random ID, and the reply is
 * returned under the client's ID; SERVFAIL when no upstream answers.
 *
 * Single-threaded, epoll; signals arrive through a signalfd. Prints "ready"
 * on stdout once listening. Ends on SIGTERM; holds no state worth keeping,
 * so hutch may kill and restart it at any time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LISTEN 256
#define MAX_UPSTREAM 8
#define MAX_CONN 64
#define MAX_PENDING 512
#define UPSTREAM_MS 2000
#define IDLE_MS 10000
#define UDP_MAX 512 /* answers of our own; EDNS is not spoken, so plain DNS's limit */
#define MSG_MAX 65535

enum { K_UDP, K_TCP, K_CONN, K_UPSTREAM, K_SIGNAL };
enum { READING, WAITING, WRITING };

typedef struct {
  struct in_addr scope, ip;
  unsigned char ip6[16];
  int v6; /* an IPv6 address (AAAA), in ip6 */
  char name[254]; /* lowercase, no trailing dot */
} host_t;

typedef struct {
  struct in_addr addr;
  int udp, tcp; /* -1 when closed */
} listener_t;

typedef struct {
  int fd; /* -1 when free */
  unsigned gen; /* bumped on close, so a late forward reply cannot reach a new connection */
  int state;
  struct in_addr scope;
  long long last;
  unsigned char *buf; /* the query being read, then the reply being written */
  size_t have, off, len;
} conn_t;

/* Who asked: a UDP client at a listen address, or a TCP connection. */
typedef struct {
  struct in_addr scope;
  struct sockaddr_in peer;
  int conn; /* -1 for UDP */
  unsigned gen;
} client_t;

typedef struct {
  int used;
  uint16_t uid, qid; /* ID sent upstream, the client's ID */
  int up;            /* upstream being asked */
  long long deadline;
  client_t cl;
  unsigned char *q; /* the query, with uid in place of qid */
  size_t qlen, qend; /* qend: end of the question */
} pending_t;

static host_t *hosts;
static size_t nhosts;
/* Listen addresses of internal networks: names that are not theirs get NXDOMAIN, never an upstream's answer. */
static struct in_addr internal[MAX_LISTEN];
static int ninternal;
static listener_t listeners[MAX_LISTEN];
static struct sockaddr_in ups[MAX_UPSTREAM];
static int nups;
static conn_t conns[MAX_CONN];
static pending_t pending[MAX_PENDING];
static int ep, upfd, port = 53;
static const char *records_path;
static unsigned char out[MSG_MAX], rx[MSG_MAX];

static void die(const char *what) {
  fprintf(stderr, "hutch-dns: %s: %s\n", what, strerror(errno));
  exit(1);
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned get16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
static void put16(unsigned char *p, unsigned v) {
  p[0] = (unsigned char)(v >> 8);
  p[1] = (unsigned char)v;
}
static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }

static void watch(int fd, int op, int kind, int idx, unsigned events) {
  struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)kind << 32 | (uint32_t)idx};
  if (epoll_ctl(ep, op, fd, &ev) != 0 && op == EPOLL_CTL_ADD) die("epoll_ctl");
}

/* A record's name as queries will be compared with it: NULL unless a valid DNS name. */
static const char *norm_name(char *s) {
  size_t n = strlen(s), label = 0;
  if (n > 0 && s[n - 1] == '.') s[--n] = 0;
  if (n == 0 || n > 253) return NULL;
  for (size_t i = 0; i <= n; i++) {
    if (s[i] == '.' || s[i] == 0) {
      if (label == 0 || label > 63) return NULL;
      label = 0;
    } else {
      s[i] = lower(s[i]);
      label++;
    }
  }
  return s;
}

/* --- The records file ------------------------------------------------- */

static int same(struct in_addr a, struct in_addr b) { return a.s_addr == b.s_addr; }

static void close_conn(conn_t *c) {
  close(c->fd); /* closing also takes it out of the epoll set */
  c->fd = -1;
  c->gen++;
}

static int open_listener(listener_t *l, int idx, int at_start) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = l->addr};
  int one = 1;
  l->udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  l->tcp = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (l->udp < 0 || l->tcp < 0 || setsockopt(l->tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(l->udp, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      bind(l->tcp, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(l->tcp, 64) != 0) {
    int err = errno;
    fprintf(stderr, "hutch-dns: listen on %s port %d: %s%s\n", inet_ntoa(l->addr), port, strerror(err),
            err == EADDRNOTAVAIL ? " (tried again on reload)" : "");
    close(l->udp);
    close(l->tcp);
    l->udp = l->tcp = -1;
    /* At start any other failure (port taken, no permission) will not mend by itself. */
    if (at_start && err != EADDRNOTAVAIL) exit(1);
    return -1;
  }
  watch(l->udp, EPOLL_CTL_ADD, K_UDP, idx, EPOLLIN);
  watch(l->tcp, EPOLL_CTL_ADD, K_TCP, idx, EPOLLIN);
  return 0;
}

/* Closes listeners no longer wanted (and their connections), opens new ones. */
static void sync_listeners(const struct in_addr *want, int nwant, int at_start) {
  for (int i = 0; i < MAX_LISTEN; i++) {
    listener_t *l = &listeners[i];
    if (l->udp < 0) continue;
    int keep = 0;
    for (int j = 0; j < nwant && !keep; j++) keep = same(want[j], l->addr);
    if (keep) continue;
    close(l->udp);
    close(l->tcp);
    l->udp = l->tcp = -1;
    for (int c = 0; c < MAX_CONN; c++)
      if (conns[c].fd >= 0 && same(conns[c].scope, l->addr)) close_conn(&conns[c]);
  }
  for (int j = 0; j < nwant; j++) {
    int have = 0, free_slot = -1;
    for (int i = 0; i < MAX_LISTEN && !have; i++) {
      if (listeners[i].udp >= 0) have = same(listeners[i].addr, want[j]);
      else if (free_slot < 0) free_slot = i;
    }
    if (have || free_slot < 0) continue;
    listeners[free_slot].addr = want[j];
    open_listener(&listeners[free_slot], free_slot, at_start);
  }
}

/* Reads the records file; on failure keeps what it had. */
static int load(int at_start) {
  FILE *f = fopen(records_path, "re");
  if (!f) {
    fprintf(stderr, "hutch-dns: read %s: %s\n", records_path, strerror(errno));
    return -1;
  }
  host_t *nh = NULL;
  size_t nn = 0, cap = 0, linecap = 0;
  struct in_addr want[MAX_LISTEN];
  int nwant = 0, nint = 0;
  struct in_addr nint_addr[MAX_LISTEN];
  char *line = NULL;
  while (getline(&line, &linecap, f) >= 0) {
    char *save, *w = strtok_r(line, " \t\r\n", &save);
    char *a = w ? strtok_r(NULL, " \t\r\n", &save) : NULL;
    struct in_addr addr;
    if (!w || w[0] == '#') continue;
    if (strcmp(w, "listen") != 0 && strcmp(w, "host") != 0) continue; /* a later hutch's: not ours */
    if (!a || inet_pton(AF_INET, a, &addr) != 1) {
      fprintf(stderr, "hutch-dns: %s: bad %s line ignored\n", records_path, w);
    } else if (strcmp(w, "listen") == 0) {
      int dup = 0;
      for (int j = 0; j < nwant; j++) dup |= same(want[j], addr);
      if (!dup && nwant < MAX_LISTEN) want[nwant++] = addr;
      char *flag = strtok_r(NULL, " \t\r\n", &save);
      if (flag && strcmp(flag, "internal") == 0 && nint < MAX_LISTEN) nint_addr[nint++] = addr;
    } else {
      char *name = strtok_r(NULL, " \t\r\n", &save), *ip = strtok_r(NULL, " \t\r\n", &save);
      host_t h = {.scope = addr};
      if (ip && strchr(ip, ':')) h.v6 = 1;
      if (!name || !ip || strlen(name) >= sizeof h.name || !norm_name(name) ||
          (h.v6 ? inet_pton(AF_INET6, ip, h.ip6) : inet_pton(AF_INET, ip, &h.ip)) != 1) {
        fprintf(stderr, "hutch-dns: %s: bad %s line ignored\n", records_path, w);
        continue;
      }
      strcpy(h.name, name);
      if (nn == cap) {
        cap = cap ? cap * 2 : 64;
        host_t *g = realloc(nh, cap * sizeof *nh);
        if (!g) die("realloc");
        nh = g;
      }
      nh[nn++] = h;
    }
  }
  free(line);
  fclose(f);
  free(hosts);
  hosts = nh;
  nhosts = nn;
  memcpy(internal, nint_addr, (size_t)nint * sizeof *internal);
  ninternal = nint;
  sync_listeners(want, nwant, at_start);
  return 0;
}

/* --- Answers ---------------------------------------------------------- */

/*
 * The question's name at q[off], dotted and lowercase. Returns the offset
 * after it, 0 when malformed. Compression is refused: no client puts a
 * pointer in a question. *plain is 0 when a label holds a '.' or NUL, which
 * no dotted name can match.
 */
static size_t read_name(const unsigned char *q, size_t len, size_t off, char *name, int *plain) {
  size_t o = off, n = 0;
  *plain = 1;
  for (;;) {
    if (o >= len) return 0;
    unsigned l = q[o++];
    if (l == 0) break;
    if (l > 63 || o + l > len || o + l - off > 254) return 0;
    if (n) name[n++] = '.';
    for (unsigned i = 0; i < l; i++) {
      char c = (char)q[o + i];
      if (c == '.' || c == 0) *plain = 0;
      name[n++] = lower(c);
    }
    o += l;
  }
  name[n] = 0;
  return o;
}

/* The header and question of a reply to q, with flags and counts set. */
static size_t reply_head(const unsigned char *q, size_t qend, unsigned rcode, int aa) {
  memcpy(out, q, qend);
  out[2] = (unsigned char)(0x80 | (q[2] & 0x79) | (aa ? 0x04 : 0)); /* QR, opcode and RD kept */
  out[3] = (unsigned char)(0x80 | rcode);                            /* RA */
  put16(out + 4, qend > 12);
  memset(out + 6, 0, 6);
  return qend;
}

/* Appends one answer RR naming the question (pointer to offset 12); 0 when it does not fit. */
static int add_rr(size_t *n, size_t max, unsigned type, const unsigned char *rdata, size_t rdlen) {
  if (*n + 12 + rdlen > max) return 0;
  unsigned char *p = out + *n;
  put16(p, 0xc00c);
  put16(p + 2, type);
  put16(p + 4, 1);
  memset(p + 6, 0, 4); /* TTL 0: containers come and go */
  put16(p + 10, (unsigned)rdlen);
  memcpy(p + 12, rdata, rdlen);
  *n += 12 + rdlen;
  put16(out + 6, get16(out + 6) + 1);
  return 1;
}

/* The first name of IP at scope, for "d.c.b.a.in-addr.arpa". */
static const char *ptr_name(struct in_addr scope, const char *name) {
  static const char suffix[] = ".in-addr.arpa";
  size_t n = strlen(name), s = sizeof suffix - 1;
  char digits[16];
  unsigned char b[4];
  if (n <= s || n - s >= sizeof digits || strcmp(name + n - s, suffix) != 0) return NULL;
  memcpy(digits, name, n - s);
  digits[n - s] = 0;
  if (inet_pton(AF_INET, digits, b) != 1) return NULL;
  unsigned char ip[4] = {b[3], b[2], b[1], b[0]};
  for (size_t i = 0; i < nhosts; i++)
    if (!hosts[i].v6 && same(hosts[i].scope, scope) && memcmp(&hosts[i].ip, ip, 4) == 0) return hosts[i].name;
  return NULL;
}

/*
 * Builds the reply to query q (from a client at scope) in `out`: its length;
 * 0 when q is malformed; -1 when the name is not ours, to be forwarded
 * (*qend is then the end of the question).
 */
static long answer(struct in_addr scope, const unsigned char *q, size_t len, size_t max, size_t *qend) {
  char name[256];
  int plain;
  if (len < 12 || (q[2] & 0x80)) return 0; /* a reply, never answered: no loops */
  if ((q[2] & 0x78) != 0) return (long)reply_head(q, 12, 4, 0); /* not a QUERY: NOTIMP */
  if (get16(q + 4) != 1 || get16(q + 6) != 0 || get16(q + 8) != 0) return 0;
  size_t p = read_name(q, len, 12, name, &plain);
  if (p == 0 || p + 4 > len) return 0;
  unsigned qtype = get16(q + p), qclass = get16(q + p + 2);
  *qend = p + 4;
  if (qclass != 1 || !plain) return -1;
  size_t n = reply_head(q, *qend, 0, 1);
  const char *ptr = qtype == 12 ? ptr_name(scope, name) : NULL;
  if (ptr) {
    unsigned char wire[256];
    size_t w = 0;
    for (const char *s = ptr; *s;) { /* a stored name: valid, at most 253 characters */
      size_t l = strcspn(s, ".");
      wire[w++] = (unsigned char)l;
      memcpy(wire + w, s, l);
      w += l;
      s += l + (s[l] == '.');
    }
    wire[w++] = 0;
    if (!add_rr(&n, max, 12, wire, w)) out[2] |= 0x02;
    return (long)n;
  }
  int known = 0;
  for (size_t i = 0; i < nhosts; i++) {
    if (!same(hosts[i].scope, scope) || strcmp(hosts[i].name, name) != 0) continue;
    known = 1;
    /* Other types get NODATA: the name is ours, there is no more to find. */
    if (qtype == 1 && !hosts[i].v6 && !add_rr(&n, max, 1, (const unsigned char *)&hosts[i].ip, 4))
      out[2] |= 0x02; /* TC */
    if (qtype == 28 && hosts[i].v6 && !add_rr(&n, max, 28, hosts[i].ip6, 16)) out[2] |= 0x02;
  }
  return known ? (long)n : -1;
}

/* --- Replies and forwarding ------------------------------------------- */

static void set_state(conn_t *c, int state) {
  c->state = state;
  unsigned events = state == READING ? EPOLLIN : state == WRITING ? EPOLLOUT : 0;
  watch(c->fd, EPOLL_CTL_MOD, K_CONN, (int)(c - conns), events);
}

static void flush(conn_t *c) {
  while (c->off < c->len) {
    ssize_t n = write(c->fd, c->buf + c->off, c->len - c->off);
    if (n > 0) {
      c->off += (size_t)n;
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (c->state != WRITING) set_state(c, WRITING);
      return;
    } else {
      close_conn(c);
      return;
    }
  }
  c->have = 0;
  c->last = now_ms();
  set_state(c, READING);
}

static void deliver(const client_t *cl, const unsigned char *m, size_t len) {
  if (cl->conn < 0) {
    for (int i = 0; i < MAX_LISTEN; i++)
      if (listeners[i].udp >= 0 && same(listeners[i].addr, cl->scope)) {
        sendto(listeners[i].udp, m, len, 0, (const struct sockaddr *)&cl->peer, sizeof cl->peer);
        return;
      }
    return;
  }
  conn_t *c = &conns[cl->conn];
  if (c->fd < 0 || c->gen != cl->gen) return; /* the client left meanwhile */
  put16(c->buf, (unsigned)len);
  memcpy(c->buf + 2, m, len);
  c->off = 0;
  c->len = len + 2;
  flush(c);
}

static void finish(pending_t *p, const unsigned char *m, size_t len) {
  deliver(&p->cl, m, len);
  free(p->q);
  p->used = 0;
}

/* Sends p to its upstream, or the next that takes it; SERVFAIL when none is left. */
static void ask(pending_t *p) {
  for (; p->up < nups; p->up++) {
    if (sendto(upfd, p->q, p->qlen, 0, (struct sockaddr *)&ups[p->up], sizeof ups[0]) == (ssize_t)p->qlen) {
      p->deadline = now_ms() + UPSTREAM_MS;
      return;
    }
  }
  put16(p->q, p->qid);
  finish(p, out, reply_head(p->q, p->qend, 2, 0));
}

static void forward(const client_t *cl, const unsigned char *q, size_t len, size_t qend) {
  pending_t *p = NULL;
  for (int i = 0; i < MAX_PENDING && !p; i++)
    if (!pending[i].used) p = &pending[i];
  if (!p || nups == 0 || !(p->q = malloc(len))) {
    deliver(cl, out, reply_head(q, qend, 2, 0)); /* SERVFAIL */
    return;
  }
  /* A random ID not in use: a spoofed reply must guess it. */
  uint16_t uid;
  for (int clash = 1; clash;) {
    if (getrandom(&uid, sizeof uid, GRND_NONBLOCK) != sizeof uid) uid = (uint16_t)rand();
    clash = 0;
    for (int i = 0; i < MAX_PENDING; i++) clash |= pending[i].used && pending[i].uid == uid;
  }
  memcpy(p->q, q, len);
  put16(p->q, uid);
  *p = (pending_t){
      .used = 1, .uid = uid, .qid = (uint16_t)get16(q), .cl = *cl, .q = p->q, .qlen = len, .qend = qend};
  ask(p);
}

/* Runs a query from cl. Returns 0 when it was malformed. */
static int handle(const client_t *cl, const unsigned char *q, size_t len) {
  size_t qend = 0;
  long r = answer(cl->scope, q, len, cl->conn < 0 ? UDP_MAX : MSG_MAX, &qend);
  if (r == 0) return 0;
  int closed = 0;
  for (int i = 0; i < ninternal; i++) closed |= same(internal[i], cl->scope);
  if (r > 0) {
    deliver(cl, out, (size_t)r);
  } else if (closed) {
    deliver(cl, out, reply_head(q, qend, 3, 0)); /* NXDOMAIN: an internal network reaches nothing outside */
  } else {
    if (cl->conn >= 0) set_state(&conns[cl->conn], WAITING);
    forward(cl, q, len, qend);
  }
  return 1;
}

static void on_upstream(void) {
  for (;;) {
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(upfd, rx, sizeof rx, 0, (struct sockaddr *)&from, &flen);
    if (n < 0) return;
    if (n < 12 || !(rx[2] & 0x80)) continue;
    for (int i = 0; i < MAX_PENDING; i++) {
      pending_t *p = &pending[i];
      if (!p->used || p->uid != get16(rx) || (size_t)n < p->qend) continue;
      /* From an upstream asked for it (a late reply from an earlier one is as good), to its question. */
      int ok = 0;
      for (int u = 0; u <= p->up && u < nups; u++)
        ok |= from.sin_addr.s_addr == ups[u].sin_addr.s_addr && from.sin_port == ups[u].sin_port;
      for (size_t k = 12; k < p->qend && ok; k++) ok = lower((char)rx[k]) == lower((char)p->q[k]);
      if (!ok) continue;
      put16(rx, p->qid);
      finish(p, rx, (size_t)n);
      break;
    }
  }
}

/* --- Clients ---------------------------------------------------------- */

static void on_udp(listener_t *l) {
  for (int k = 0; k < 64; k++) { /* then let the others have a turn */
    client_t cl = {.scope = l->addr, .conn = -1};
    socklen_t plen = sizeof cl.peer;
    ssize_t n = recvfrom(l->udp, rx, sizeof rx, 0, (struct sockaddr *)&cl.peer, &plen);
    if (n < 0) return;
    handle(&cl, rx, (size_t)n); /* malformed: ignored */
  }
}

static void on_accept(listener_t *l) {
  for (;;) {
    int fd = accept4(l->tcp, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    conn_t *c = NULL;
    for (int i = 0; i < MAX_CONN && !c; i++)
      if (conns[i].fd < 0) c = &conns[i];
    if (c && !c->buf) c->buf = malloc(2 + MSG_MAX);
    if (!c || !c->buf) { /* full: this client can retry, the others keep their connections */
      close(fd);
      continue;
    }
    c->fd = fd;
    c->scope = l->addr;
    c->have = 0;
    c->last = now_ms();
    c->state = READING;
    watch(fd, EPOLL_CTL_ADD, K_CONN, (int)(c - conns), EPOLLIN);
  }
}

/* Reads one length-prefixed query at a time; the next waits in the socket until this one is answered. */
static void on_conn(conn_t *c, unsigned events) {
  if (c->fd < 0) return;
  if (c->state == WRITING) {
    flush(c);
    return;
  }
  if (c->state == WAITING) {
    if (events & (EPOLLERR | EPOLLHUP)) close_conn(c);
    return;
  }
  for (;;) {
    size_t need = c->have < 2 ? 2 : 2 + get16(c->buf);
    if (c->have == need) break;
    ssize_t n = read(c->fd, c->buf + c->have, need - c->have);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0 || (c->have + (size_t)n == 2 && get16(c->buf) == 0)) {
      close_conn(c);
      return;
    }
    c->have += (size_t)n;
    c->last = now_ms();
  }
  client_t cl = {.scope = c->scope, .conn = (int)(c - conns), .gen = c->gen};
  if (!handle(&cl, c->buf + 2, c->have - 2)) close_conn(c);
}

/* Retries or fails forwards past their deadline, closes idle connections: ms until the next such event. */
static int expire(void) {
  long long now = now_ms(), next = now + 60000;
  for (int i = 0; i < MAX_PENDING; i++) {
    pending_t *p = &pending[i];
    if (p->used && p->deadline <= now) {
      p->up++;
      ask(p);
    }
    if (p->used && p->deadline < next) next = p->deadline;
  }
  for (int i = 0; i < MAX_CONN; i++) {
    conn_t *c = &conns[i];
    if (c->fd < 0 || c->state == WAITING) continue;
    if (now - c->last >= IDLE_MS) close_conn(c);
    else if (c->last + IDLE_MS < next) next = c->last + IDLE_MS;
  }
  return (int)(next - now);
}

static int parse_upstream(const char *s, struct sockaddr_in *sa) {
  char ip[INET_ADDRSTRLEN];
  const char *colon = strchr(s, ':');
  size_t n = colon ? (size_t)(colon - s) : strlen(s);
  char *end = NULL;
  long p = colon ? strtol(colon + 1, &end, 10) : 53;
  if (n >= sizeof ip || p < 1 || p > 65535 || (end && *end)) return -1;
  memcpy(ip, s, n);
  ip[n] = 0;
  *sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
  return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv) {
  const char *netns = NULL;
  int i = 1;
  for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
    if (strcmp(argv[i], "--netns") == 0) {
      netns = argv[i + 1];
      continue;
    }
    char *end;
    long p = strtol(argv[i + 1], &end, 10);
    if (strcmp(argv[i], "--port") != 0 || p < 1 || p > 65535 || *end) break;
    port = (int)p;
  }
  if (i >= argc || argv[i][0] == '-') {
    fprintf(stderr, "usage: hutch-dns [--netns PATH] [--port N] RECORDS_FILE UPSTREAM...\n");
    return 2;
  }
  records_path = argv[i++];
  for (; i < argc; i++) {
    if (nups == MAX_UPSTREAM || parse_upstream(argv[i], &ups[nups]) != 0) {
      fprintf(stderr, "hutch-dns: bad upstream %s (at most %d, IPv4 IP or IP:PORT)\n", argv[i], MAX_UPSTREAM);
      return 2;
    }
    nups++;
  }
  signal(SIGPIPE, SIG_IGN);
  /* Signals as events in the loop: a reload never runs in the middle of a reply. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGHUP);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigprocmask(SIG_BLOCK, &sigs, NULL);
  int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) die("signalfd");
  /*
   * The socket that asks the upstreams is made before moving: it stays in
   * the starter's (the host's) network namespace, so the host's resolvers
   * answer as they answer the host, those on its loopback included.
   */
  upfd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (upfd < 0) die("socket");
  if (netns) {
    int ns = open(netns, O_RDONLY | O_CLOEXEC);
    if (ns < 0) die("open network namespace");
    if (setns(ns, CLONE_NEWNET) != 0) die("join network namespace");
    close(ns);
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  watch(upfd, EPOLL_CTL_ADD, K_UPSTREAM, 0, EPOLLIN);
  watch(sfd, EPOLL_CTL_ADD, K_SIGNAL, 0, EPOLLIN);
  for (int k = 0; k < MAX_LISTEN; k++) listeners[k].udp = listeners[k].tcp = -1;
  for (int k = 0; k < MAX_CONN; k++) conns[k].fd = -1;
  if (load(1) != 0) return 1;
  /* Ready: say so, and let go of the starter's pipe (stderr stays, for reload errors). */
  if (write(1, "ready\n", 6) != 6) return 1;
  int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (devnull >= 0) dup2(devnull, 1);
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(ep, evs, 64, expire());
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int k = 0; k < n; k++) {
      int kind = (int)(evs[k].data.u64 >> 32), idx = (int)(uint32_t)evs[k].data.u64;
      /* A socket closed earlier in this batch: its slot is -1, or reused and nonblocking. */
      if (kind == K_UDP && listeners[idx].udp >= 0) on_udp(&listeners[idx]);
      else if (kind == K_TCP && listeners[idx].tcp >= 0) on_accept(&listeners[idx]);
      else if (kind == K_CONN) on_conn(&conns[idx], evs[k].events);
      else if (kind == K_UPSTREAM) on_upstream();
      else if (kind == K_SIGNAL) {
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == sizeof si) {
          if (si.ssi_signo != SIGHUP) return 0;
          load(0);
        }
      }
    }
  }
}
