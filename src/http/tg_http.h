#ifndef _TG_HTTP_H_INCLUDED_
#define _TG_HTTP_H_INCLUDED_

/*
 * The HTTP/1.1 proxy: client connections, one request in flight per
 * connection (pipelined requests wait in the input buffer), upstream
 * attempts with raw relay of bodies so chunked framing passes unchanged.
 */

#include <tg_cycle.h>
#include <tg_http_types.h>
#include <tg_span.h>
#include <tg_span_sink.h>
#include <tg_http_upstream.h>
#include <tg_http_route.h>
#include <llhttp.h>
#include <tg_event.h>

/*
 * Request phases. A module takes part through the tg_http_module_t its
 * tg_module_t.ctx points at; the handlers of a phase run in module order.
 */
typedef enum {
    TG_HTTP_REQUEST_HEADERS_PHASE = 0, /* after trace context, before routing */
    TG_HTTP_CONTENT_PHASE,             /* may answer itself: returns TG_DONE */
    TG_HTTP_LOG_PHASE,                 /* request finished: log, span export */
    TG_HTTP_PHASES
} tg_http_phase_e;

/* A phase handler: TG_OK/TG_DECLINED to go on, TG_DONE when it answered. */
typedef int (*tg_http_hook_pt)(tg_http_request_t *r);

typedef struct {
    tg_http_hook_pt  hooks[TG_HTTP_PHASES];
} tg_http_module_t;

/*
 * Runs a phase's handlers in order; returns the first TG_DONE or TG_ERROR,
 * else TG_OK. The lists are built when the worker starts (tg_http_module's
 * init_process).
 */
int tg_http_run_phase(tg_http_request_t *r, tg_http_phase_e phase);

/*
 * The end of a request for logs and spans, run once (r->logged): the LOG
 * phase, then the request's sampled spans published to the span sink
 * (tg_span_sink.h) with origin r->answered_by. Call it after the SERVER
 * span ended (tg_http_trace_server_end).
 */
void tg_http_log_request(tg_http_request_t *r);

/* the HTTP/1.1 server, a built-in module (tg_http_conn.c) */
extern tg_module_t  tg_http_module;

/* a configured timeout for libevent; 0 or less: none */
#define tg_http_tv(ms) ((ms) > 0 ? tg_event_timeout(ms) : NULL)

struct bufferevent;
struct event;
struct evbuffer;

/* header flags from the known-header table (tg_http_headers.c) */
#define TG_HTTP_HDR_HOP        0x0001 /* hop-by-hop: never forwarded */
#define TG_HTTP_HDR_LIST       0x0002 /* list grammar: may be joined */
#define TG_HTTP_HDR_SECRET     0x0004 /* never logged or captured */
#define TG_HTTP_HDR_DROP       0x0008 /* named in Connection, or replaced */
#define TG_HTTP_HDR_HOST       0x0010
#define TG_HTTP_HDR_CONNECTION 0x0020
#define TG_HTTP_HDR_CL         0x0040
#define TG_HTTP_HDR_TE         0x0080
#define TG_HTTP_HDR_EXPECT     0x0100
#define TG_HTTP_HDR_XFF        0x0200
#define TG_HTTP_HDR_TRACE      0x0400 /* trace context: rewritten by us */
#define TG_HTTP_HDR_UA         0x0800
#define TG_HTTP_HDR_UPGRADE    0x1000
#define TG_HTTP_HDR_XFWD       0x2000 /* X-Forwarded-Proto/Host: ours */
#define TG_HTTP_HDR_PROP       0x4000 /* B3 and Jaeger propagation */

struct tg_http_header_s {
    tg_str_t  name;
    tg_str_t  value;
    uint32_t  flags;
};

/*
 * Our own check of a chunked body's framing (RFC 9112 7.1), run over the
 * bytes that llhttp accepted before they go upstream: every line ends in
 * CRLF (no bare CR or LF anywhere, trailer section included), every chunk's
 * data is followed by CRLF, and the body ends exactly where llhttp ended
 * the message. The upstream gets the bytes as they came, so a framing it
 * could read differently must never reach it. Zeroed at the body's start.
 */
typedef struct {
    uint64_t  left;     /* chunk data bytes still to come */
    unsigned  state:4;
    unsigned  digits:5;
} tg_http_chunked_t;

/*
 * The upstream side of a request (r->upstream): the pool of its route,
 * the server and connection of the current attempt, the response parser
 * and what it read. Zeroed with the request; each retry starts the
 * response state over (tg_http_upstream_next). Only the upstream code
 * writes it; logs and spans read it.
 */
typedef struct {
    tg_upstream_t           *conf;          /* [upstream NAME] of the route */
    tg_upstream_server_t    *server;        /* of the current attempt */
    tg_upstream_conn_t      *uc;
    uint64_t                 tried;         /* bitmap of server indexes */
    int                      attempts;
    unsigned                 reused:1;      /* uc came from the idle cache */
    unsigned                 body_started:1; /* body bytes went upstream */
    unsigned                 request_sent:1; /* head + body handed to the
                                                socket */
    unsigned                 got_bytes:1;   /* some response byte arrived */
    unsigned                 headers_done:1;
    unsigned                 chunked:1;
    unsigned                 done:1;        /* response fully read */
    unsigned                 throttled:1;   /* not read: the client is slow */
    llhttp_t                 parser;
    tg_array_t               headers;       /* tg_http_header_t */
    tg_str_t                 reason;
    int                      status;        /* as the upstream sent it */
    int                      result;        /* of the last attempt, for logs:
                                               its status, or 502/504 */
    int64_t                  content_length; /* -1: none */
    uint64_t                 body_bytes;    /* response body bytes read */
    uint64_t                 presend;       /* body bytes sent with the head,
                                               still in the upstream input */
    /* the last attempt, Unix ns, the clock of the spans and start_ns */
    uint64_t                 start_ns;
    uint64_t                 header_ns;
    uint64_t                 end_ns;        /* 0: the access log uses its
                                               own time */
} tg_http_upstream_state_t;

/* An Upgrade of the request (r->tunnel), once the upstream answered 101. */
typedef struct {
    unsigned  requested:1;  /* a GET that asked to upgrade */
    unsigned  active:1;     /* 101 received: bytes relayed both ways */
    unsigned  closing:1;
    unsigned  abort:1;      /* close without flushing */
    unsigned  error:1;
} tg_http_tunnel_state_t;

/* request states */
typedef enum {
    TG_HTTP_READ_HEADERS = 0,
    TG_HTTP_UPSTREAM_CONNECT,   /* waiting for a connection */
    TG_HTTP_SEND_BODY,          /* relaying the request body */
    TG_HTTP_WAIT_RESPONSE,      /* request sent, reading the response */
    TG_HTTP_SEND_RESPONSE,      /* response being written to the client */
    TG_HTTP_DONE                /* last byte queued; waiting for drain */
} tg_http_state_e;

#define TG_HTTP_MAX_ATTEMPTS 16

struct tg_http_request_s {
    tg_http_conn_t          *c;
    tg_pool_t               *pool;      /* reset after the request */
    tg_http_state_e          state;
    uint64_t                 start_ns;
    uint64_t                 end_ns;        /* tg_http_request_end_ns() */

    /* request line and headers */
    tg_str_t                 method;
    tg_str_t                 uri;       /* as received */
    tg_str_t                 path;      /* normalised, no query */
    tg_str_t                 raw_path;  /* as received, no query */
    tg_str_t                 upstream_path; /* as sent upstream */
    tg_str_t                 query;     /* after '?', without it */
    tg_str_t                 host;      /* Host or absolute-form authority */
    unsigned                 http_minor:4;
    unsigned                 http_major:4;
    tg_array_t               headers;   /* tg_http_header_t */
    size_t                   header_bytes;
    tg_str_t                 cur_name;
    tg_str_t                 cur_value;
    int64_t                  content_length; /* -1: none */
    tg_http_chunked_t        chunk_check;
    unsigned                 trailers;  /* trailer fields so far */
    unsigned                 chunked:1;
    unsigned                 expect_continue:1;
    unsigned                 keepalive:1;
    unsigned                 body_done:1;    /* request fully read */
    unsigned                 headers_done:1;
    unsigned                 head:1;
    unsigned                 idempotent:1;
    unsigned                 sent_continue:1;
    unsigned                 response_started:1; /* head sent to client */
    unsigned                 response_close:1;   /* close after response */
    unsigned                 response_dechunk:1; /* 1.0 client, chunked */
    unsigned                 client_throttled:1;
    unsigned                 logged:1;
    unsigned                 aborted:1;        /* closed before its end */
    uint64_t                 request_body_bytes;
    uint64_t                 bytes_sent;    /* to the client, head included */
    uint64_t                 body_bytes_sent; /* body bytes to the client;
                                                 0: access log falls back to
                                                 response_body_bytes */
    int                      err_status;    /* set by parse callbacks */

    /* routing, and the attempts at the route's upstream */
    tg_http_route_t         *route;
    const tg_module_t       *answered_by;   /* CONTENT handler that answered */
    tg_http_upstream_state_t upstream;
    tg_http_tunnel_state_t   tunnel;
    int                      status;        /* sent to the client */
    const char              *error_type;    /* span error.type */

    /* trace context */
    u_char                   trace_id[16];
    u_char                   span_id[8];        /* our SERVER span */
    u_char                   parent_id[8];      /* remote parent, or zero */
    u_char                   client_span_id[8]; /* current attempt */
    uint8_t                  trace_flags;
    unsigned                 sampled:1;
    unsigned                 has_parent:1;
    unsigned                 trace_repaired:1;
    u_char                   trace_hex[33];     /* for logs */
    tg_str_t                 tracestate;
    tg_str_t                 x_trace_id;
    tg_str_t                 x_trace_id_rejected; /* escaped, for the span */
    unsigned                 has_link:1;
    u_char                   link_trace_id[16];
    u_char                   link_span_id[8];
    tg_span_t               *spans;         /* SERVER first, then CLIENTs */
    size_t                   nspans;
    size_t                   spans_cap;
    unsigned                 nspans_done:1;  /* SERVER span filled */
};

struct tg_http_conn_s {
    struct bufferevent      *bev;
    int                      fd;
    tg_pool_t               *rpool;      /* request pool while one runs */
    tg_log_t                 log;
    uint64_t                 number;
    tg_listen_t             *listen;
    union {                          /* listeners are TCP over IPv4/6 */
        struct sockaddr      sa;
        struct sockaddr_in   sin;
        struct sockaddr_in6  sin6;
    }                        peer;
    socklen_t                peerlen;
    char                     peer_text[48];
    int                      peer_port;
    char                     local_text[48];
    int                      local_port;
    llhttp_t                 parser;
    tg_http_request_t       *r;
    struct event            *timer;      /* keep-alive and header deadlines */
    uint64_t                 requests;
    tg_event_deadline_t      deadline;    /* on timer */
    uint64_t                 idle_since_ms; /* last request finished */
    int64_t                  idle_timeout;  /* ms allowed from idle_since */
    tg_http_conn_t          *next;       /* worker's list of connections */
    tg_http_conn_t          *prev;
    unsigned                 closing:1;  /* close after the current response */
    unsigned                 lingering:1;
    unsigned                 input_eof:1;
    unsigned                 processing:1; /* inside tg_http_process_input */
    unsigned                 close_pending:1; /* closed while processing */
};

/*
 * Request pools kept for reuse per worker. The sanitizer pass builds with
 * 0, so that every finished request's memory is freed and a use after
 * the end of a request is caught.
 */
#ifndef TG_HTTP_POOL_CACHE
#define TG_HTTP_POOL_CACHE 64
#endif

/* per worker */
typedef struct {
    tg_http_conn_t     *conns;        /* every open client connection */
    uint64_t            next_number;
    tg_pool_t          *free_pools[TG_HTTP_POOL_CACHE + 1]; /* reset
                                          request pools for reuse */
    size_t              nfree_pools;
    uint64_t            trace_repairs;  /* duplicated contexts repaired */
} tg_http_worker_t;

extern tg_http_worker_t  tg_http_worker;

/* Accepts a client connection on fd (worker loop). */
void tg_http_init_connection(int fd, struct sockaddr *sa, socklen_t len,
    tg_listen_t *ls);

/* Closes a client connection; the caller must not touch c afterwards. */
void tg_http_close_connection(tg_http_conn_t *c);

/*
 * Graceful stop: idle connections are closed now, busy ones after their
 * current response. Returns the number still open.
 */
size_t tg_http_shutdown_connections(void);

/*
 * The finished spans of a request, for LOG phase hooks: the SERVER span
 * first, then one CLIENT span per upstream attempt, in order. *spans points
 * at an array owned by the request (valid during the hook only). Only
 * sampled requests have spans (0 otherwise).
 */
size_t tg_http_request_spans(tg_http_request_t *r, tg_span_t **spans);

/* internal, between the http files */
int tg_http_process_input(tg_http_conn_t *c); /* TG_DONE: c may be gone */
int tg_http_send_special(tg_http_request_t *r, int status);
/*
 * Answers a request with a response a module made: status, Content-Type,
 * extra header lines (each ending in CRLF, or NULL) and the body moved
 * out of body (NULL: empty). Keep-alive, Server, Date, X-Trace-ID and
 * traceresponse as for the gateway's own answers. Returns TG_DONE, for a
 * CONTENT hook to return.
 */
int tg_http_send_response(tg_http_request_t *r, int status, const char *type,
    const char *extra, struct evbuffer *body);
void tg_http_upstream_start(tg_http_request_t *r);
void tg_http_upstream_abort(tg_http_request_t *r);
void tg_http_request_done(tg_http_request_t *r);

/*
 * When the request ended (Unix ns), read from the clock once: the SERVER
 * span's end and the access log's time are the same instant.
 */
static inline uint64_t
tg_http_request_end_ns(tg_http_request_t *r)
{
    if (r->end_ns == 0) {
        r->end_ns = tg_time_now_ns();
    }
    return r->end_ns;
}
/* Whether the connection may serve another request after this one. */
int tg_http_keepalive_allowed(tg_http_request_t *r);
int tg_http_flush(struct bufferevent *bev, int ssl);
int tg_http_sendv(struct bufferevent *bev, int ssl, const struct iovec *iov,
    int n);
int tg_http_send(struct bufferevent *bev, int ssl, const u_char *data,
    size_t len);
int tg_http_throttle(struct bufferevent *src, struct bufferevent *dst,
    int dst_ssl);
void tg_http_read_on(struct bufferevent *bev);
void tg_http_set_timer(tg_http_conn_t *c, int64_t ms);
void tg_http_write_done(struct bufferevent *bev, int ssl);
void tg_http_tunnel_start(tg_http_request_t *r);
void tg_http_tunnel_relay(tg_http_request_t *r, int from_client);
void tg_http_tunnel_drained(tg_http_request_t *r, int to_client);
void tg_http_tunnel_close(tg_http_request_t *r, const char *why);
const char *tg_http_status_reason(int status);
int tg_http_header_flags(const tg_str_t *name);
int tg_http_parse_connection_tokens(tg_http_request_t *r, tg_array_t *headers);

/*
 * Whether a 101's Upgrade names only protocols the client asked for
 * (RFC 9110 7.8: the server switches to one of those), and at least one.
 * Compares the members of r->upstream.headers' Upgrade fields with those of
 * r->headers', case-insensitively and whole (with the "/version").
 */
int tg_http_upgrade_matches(tg_http_request_t *r);
void tg_http_trace_start(tg_http_request_t *r);
void tg_http_trace_client_attempt(tg_http_request_t *r);
void tg_http_trace_client_end(tg_http_request_t *r);
void tg_http_trace_server_end(tg_http_request_t *r);
u_char *tg_http_trace_add_request_headers(tg_http_request_t *r, u_char *p);
int tg_http_trace_skip_response_header(tg_http_request_t *r,
    const tg_str_t *name);
/* Writes the trace headers of a response at p (at most
   tg_http_trace_response_headers_max() bytes); returns the end. */
u_char *tg_http_trace_response_headers(tg_http_request_t *r, u_char *p);
size_t tg_http_trace_response_headers_max(void);
extern const llhttp_settings_t  tg_http_request_settings;

/*
 * Runs the chunked framing check over the next len body bytes. Returns
 * TG_OK when they are well framed and the body goes on, TG_DONE when the
 * body ended exactly at the last of them, TG_ERROR when the framing is
 * broken or bytes follow the end.
 */
int tg_http_chunked_check(tg_http_chunked_t *ck, const u_char *p, size_t len);
extern const llhttp_settings_t  tg_http_response_settings;

#endif /* _TG_HTTP_H_INCLUDED_ */
