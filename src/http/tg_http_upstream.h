#ifndef _TG_HTTP_UPSTREAM_H_INCLUDED_
#define _TG_HTTP_UPSTREAM_H_INCLUDED_

/*
 * Upstream pools: servers resolved at configuration time, smooth weighted
 * round robin, backup servers, passive health (max_fails within
 * fail_timeout marks a server down for fail_timeout) and a per-worker cache
 * of idle keep-alive connections per server.
 *
 * Runtime fields live in the cycle, which each worker owns after fork, so
 * they need no locking and reset when a reload starts new workers.
 */

#include <tg_event.h>
#include <tg_http_types.h>

struct bufferevent;
struct event;
struct event_base;

typedef struct tg_upstream_conn_s  tg_upstream_conn_t;

struct tg_upstream_conn_s {
    struct bufferevent    *bev;
    struct event          *timer;     /* read and keep-alive deadlines */
    tg_upstream_server_t  *server;
    tg_upstream_conn_t    *next;      /* idle list */
    tg_upstream_conn_t    *prev;
    uint64_t               requests;  /* served on this connection */
    uint64_t               number;    /* for logs */
    tg_event_deadline_t    deadline;  /* on timer */
};

struct tg_upstream_server_s {
    tg_str_t                 text;    /* "127.0.0.1:9001" as written */
    tg_str_t                 host;    /* host part, for spans and logs */
    int                      port;
    struct sockaddr_storage  addr;
    socklen_t                addrlen;
    int64_t                  weight;
    int64_t                  max_fails;
    int64_t                  fail_timeout; /* ms */
    unsigned                 backup:1;
    unsigned                 ssl:1;   /* https:// */
    tg_upstream_t           *upstream;
    /* per worker */
    int64_t                  current_weight;
    int64_t                  fails;
    uint64_t                 failures;  /* every failed attempt (status) */
    uint64_t                 first_fail_ms;
    uint64_t                 down_until_ms;
    tg_upstream_conn_t      *idle;     /* most recently used first */
    size_t                   nidle;
};

struct tg_upstream_s {
    tg_str_t     name;
    tg_array_t   servers;            /* tg_upstream_server_t */
    int64_t      keepalive;          /* idle connections kept per server */
    int64_t      keepalive_timeout;  /* ms */
    int64_t      keepalive_requests;
    int64_t      connect_timeout;    /* ms */
    int64_t      send_timeout;       /* ms */
    int64_t      read_timeout;       /* ms */
    int64_t      next_upstream_tries;/* 0: every server once */
    tg_str_t     host;               /* Host sent upstream; empty: client's */
    int          ssl_verify;         /* https servers: verify the peer */
    tg_str_t     ssl_trusted_certificate; /* CA file; empty: system store */
    tg_str_t     ssl_server_name;    /* SNI and the name verified */
    tg_str_t     ssl_certificate;    /* client certificate, optional */
    tg_str_t     ssl_certificate_key;
    void        *ssl_ctx;            /* SSL_CTX * when a server is https */
    const char  *conf_file;
    int          conf_line;
    unsigned     used:1;
};

/*
 * [upstream NAME], a built-in module: its conf is the cycle's array of
 * tg_upstream_t *, in the order written. init_conf fills defaults, checks
 * every upstream and builds the TLS client context of those with an https
 * server.
 */
extern tg_module_t  tg_upstream_module;

#define tg_upstreams(cycle)                                                    \
    ((tg_array_t *) tg_module_conf(cycle, tg_upstream_module))

/* Builds u->ssl_ctx from its ssl_* settings; TG_ERROR with conf_error. */
int tg_upstream_ssl_ctx(tg_cycle_t *cycle, tg_upstream_t *u);

/* Looks an upstream up by name; NULL when absent. */
tg_upstream_t *tg_upstream_find(tg_cycle_t *cycle, tg_str_t *name);

/*
 * Picks the next server: smooth weighted round robin over the primary
 * servers that are up and not in tried[] (a bitmap of server indexes),
 * then the backup ones. NULL when none is left.
 */
tg_upstream_server_t *tg_upstream_next(tg_upstream_t *u, uint64_t *tried,
    uint64_t now_ms);

/* Passive health: records a failed or successful attempt. */
void tg_upstream_fail(tg_upstream_server_t *s, uint64_t now_ms);
void tg_upstream_success(tg_upstream_server_t *s);

/*
 * Takes an idle keep-alive connection to s, or NULL. The caller owns it
 * and installs its own callbacks.
 */
tg_upstream_conn_t *tg_upstream_idle_get(tg_upstream_server_t *s);

/*
 * Returns a connection after a complete response: cached for reuse when
 * the pool has room and it served fewer than keepalive_requests, else
 * closed. Never fails; the caller must not touch uc afterwards.
 */
void tg_upstream_idle_put(tg_upstream_conn_t *uc);

/*
 * Sets the connection's read deadline ms from now (ms <= 0: none): the
 * longest wait for the upstream's next bytes while a response is awaited
 * (read_timeout, set again after every read), or the keep-alive timeout
 * of an idle connection. When it passes, the bufferevent stops reading
 * and its event callback gets BEV_EVENT_READING | BEV_EVENT_TIMEOUT, as
 * from a bufferevent read timeout. The timer event moves only when it
 * would fire too late, so a deadline costs no libevent call per request
 * or per read. Worker thread.
 */
void tg_upstream_set_timer(tg_upstream_conn_t *uc, int64_t ms);

/* Closes and frees a connection (not in the idle list). */
void tg_upstream_conn_close(tg_upstream_conn_t *uc);

/* Closes every cached idle connection (worker shutdown). */
void tg_upstream_close_idle(tg_cycle_t *cycle);

/* Index of s in its upstream's server array. */
#define tg_upstream_server_index(s)                                           \
    ((size_t) ((s) - (tg_upstream_server_t *) (s)->upstream->servers.elts))

#endif /* _TG_HTTP_UPSTREAM_H_INCLUDED_ */
