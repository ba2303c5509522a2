#include <tg_config.h>
#include <tg_core.h>
#include <tg_http.h>
#include <tg_ssl.h>
#include <tg_event.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <sys/ioctl.h>


#define TG_HTTP_LINGER_MS 2000
#define TG_HTTP_STOP_IDLE_GRACE_MS 1000 /* idle keep-alive kept while stopping */
#define TG_HTTP_REQUEST_POOL_SIZE (16 * 1024) /* request + its spans */
/*
 * A plain connection that stays idle this long drops its bufferevent (its
 * two buffers and two events: ~1 KiB) and waits on a bare read event
 * until its next request or its deadline: thousands of idle keep-alive
 * clients then cost ~0.8 KiB each. A busy client's next request arrives
 * well within it and never pays the extra epoll_ctl calls.
 */
#define TG_HTTP_PARK_MS 250

tg_http_worker_t  tg_http_worker;

static void tg_http_client_read_handler(struct bufferevent *bev, void *ctx);
static void tg_http_client_write_handler(struct bufferevent *bev, void *ctx);
static void tg_http_client_event_handler(struct bufferevent *bev, short what,
    void *ctx);
static void tg_http_timer_handler(evutil_socket_t fd, short what, void *ctx);
static void tg_http_linger_read_handler(struct bufferevent *bev, void *ctx);
static void tg_http_linger_event_handler(struct bufferevent *bev, short what,
    void *ctx);
static tg_http_request_t *tg_http_request_new(tg_http_conn_t *c);
static tg_pool_t *tg_http_pool_get(void);
static void tg_http_pool_put(tg_pool_t *pool);
static void tg_http_handle_request(tg_http_request_t *r);
static void tg_http_parse_error(tg_http_conn_t *c, llhttp_errno_t err);
static void tg_http_finalize_now(tg_http_request_t *r);
static int tg_http_parse_target(tg_http_request_t *r);
static void tg_http_linger_close(tg_http_conn_t *c, int complete);
static int tg_http_setup_bev(tg_http_conn_t *c);
static void tg_http_idle(tg_http_conn_t *c, int64_t timeout);
static int64_t tg_http_idle_left(tg_http_conn_t *c);
static int tg_http_park(tg_http_conn_t *c);
static void tg_http_parked_handler(evutil_socket_t fd, short what, void *ctx);


static void
tg_http_sockaddr_text(struct sockaddr *sa, char *text, size_t len, int *port)
{
    if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *) sa)->sin6_addr, text,
                  (socklen_t) len);
        *port = ntohs(((struct sockaddr_in6 *) sa)->sin6_port);
    } else if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *) sa)->sin_addr, text,
                  (socklen_t) len);
        *port = ntohs(((struct sockaddr_in *) sa)->sin_port);
    } else {
        snprintf(text, len, "unix");
        *port = 0;
    }
}


/*
 * Whether a listening address leaves the local address of its connections
 * open (0.0.0.0, ::, port 0): only then does a connection need
 * getsockname().
 */
static int
tg_http_addr_wildcard(const struct sockaddr_storage *ss)
{
    const struct sockaddr_in   *sin;
    const struct sockaddr_in6  *sin6;

    if (ss->ss_family == AF_INET) {
        sin = (const struct sockaddr_in *) ss;
        return sin->sin_addr.s_addr == htonl(INADDR_ANY)
               || sin->sin_port == 0;
    }
    if (ss->ss_family == AF_INET6) {
        sin6 = (const struct sockaddr_in6 *) ss;
        return IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr)
               || sin6->sin6_port == 0;
    }
    return 1;
}


void
tg_http_init_connection(int fd, struct sockaddr *sa, socklen_t len,
    tg_listen_t *ls)
{
    tg_http_conn_t          *c;
    struct sockaddr_storage  local;
    socklen_t                llen;

    if (tg_event_worker.nconns + 1 >= (size_t) tg_cycle->main.worker_connections)
    {
        tg_log_error(TG_LOG_WARN, &tg_log_global, 0,
                     "%" PRId64 " worker_connections are not enough",
                     tg_cycle->main.worker_connections);
        tg_event_accept_pause(100);
    }

    /*
     * The connection is one allocation: everything a request needs comes
     * from its request pool, which only exists while a request runs, so
     * an idle keep-alive connection costs this struct and its bev.
     */
    c = calloc(1, sizeof(tg_http_conn_t));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->listen = ls;
    c->number = ++tg_http_worker.next_number;
    c->log = tg_log_global;
    c->log.connection = c->number;
    c->peerlen = (socklen_t) tg_min((size_t) len, sizeof(c->peer));
    memcpy(&c->peer, sa, c->peerlen);
    tg_http_sockaddr_text(sa, c->peer_text, sizeof(c->peer_text),
                          &c->peer_port);
    /* TCP_NODELAY comes from the listening socket */
    if (tg_http_addr_wildcard(&ls->addr)) {
        llen = sizeof(local);
        if (getsockname(fd, (struct sockaddr *) &local, &llen) == 0) {
            tg_http_sockaddr_text((struct sockaddr *) &local, c->local_text,
                                  sizeof(c->local_text), &c->local_port);
        }
    } else {
        tg_http_sockaddr_text((struct sockaddr *) &ls->addr, c->local_text,
                              sizeof(c->local_text), &c->local_port);
    }

    if (ls->ssl) {
        SSL  *ssl = SSL_new(ls->ssl_ctx);

        if (ssl == NULL) {
            goto failed;
        }
        c->bev = bufferevent_openssl_socket_new(tg_event_worker.base, fd, ssl,
                                                BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE
                                                    | BEV_OPT_DEFER_CALLBACKS);
        if (c->bev == NULL) {
            SSL_free(ssl);
            goto failed;
        }
        /* clients that skip close_notify are the norm, not an attack */
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    }
    c->timer = evtimer_new(tg_event_worker.base, tg_http_timer_handler, c);
    if (c->timer == NULL || tg_http_setup_bev(c) != TG_OK) {
        goto failed;
    }
    llhttp_init(&c->parser, HTTP_REQUEST, &tg_http_request_settings);
    c->parser.data = c;

    c->next = tg_http_worker.conns;
    if (c->next) {
        c->next->prev = c;
    }
    tg_http_worker.conns = c;
    tg_event_worker.nconns++;

    /* the first request must arrive within client_header_timeout */
    c->idle_since_ms = tg_time_ms();
    tg_http_idle(c, tg_cycle->main.client_header_timeout);
    tg_log_debug(&c->log, "accepted %s:%d", c->peer_text, c->peer_port);
    return;

failed:
    tg_log_error(TG_LOG_ALERT, &tg_log_global, 0,
                 "cannot set up a connection: out of memory");
    if (c->timer) {
        event_free(c->timer);
    }
    if (c->bev) {
        tg_event_bev_free(c->bev);
    }
    if (c->bev == NULL || !ls->ssl) {
        close(fd);
    }
    free(c);
}


/*
 * The bufferevent of a plain connection (at accept, and again when a
 * parked one wakes up). It does not own the socket: a parked connection
 * frees it and keeps the descriptor; tg_http_close_connection closes it.
 */
static int
tg_http_setup_bev(tg_http_conn_t *c)
{
    if (c->bev == NULL) {
        /*
         * No deferred callbacks: nothing we call on this bev runs one of
         * its callbacks synchronously (triggers ask for deferral
         * themselves), and deferral costs a queue round per event.
         */
        c->bev = bufferevent_socket_new(tg_event_worker.base, c->fd, 0);
        if (c->bev == NULL) {
            return TG_ERROR;
        }
        tg_event_bev_reader(c->bev);
    }
    bufferevent_setcb(c->bev, tg_http_client_read_handler,
                      tg_http_client_write_handler,
                      tg_http_client_event_handler, c);
    /*
     * No read watermark: libevent re-arms the read event whenever input
     * drops below one, several times per request. Input is bounded by
     * tg_http_client_read_handler instead.
     */
    bufferevent_enable(c->bev, c->listen->ssl ? EV_READ | EV_WRITE : EV_READ);
    if (!c->listen->ssl) {
        bufferevent_disable(c->bev, EV_WRITE); /* see tg_http_flush */
    }
    bufferevent_set_timeouts(c->bev, NULL,
                             tg_http_tv(tg_cycle->main.send_timeout));
    return TG_OK;
}


/*
 * Between requests (idle_since_ms set): the connection may wait up to
 * timeout ms for the next request. Plain connections are parked once
 * they stayed idle for TG_HTTP_PARK_MS of it.
 */
static void
tg_http_idle(tg_http_conn_t *c, int64_t timeout)
{
    c->idle_timeout = timeout;
    if (!c->listen->ssl && timeout > TG_HTTP_PARK_MS) {
        tg_http_set_timer(c, TG_HTTP_PARK_MS);
        return;
    }
    tg_http_set_timer(c, timeout);
}


/* ms left of the idle connection's timeout (<= 0: it ran out) */
static int64_t
tg_http_idle_left(tg_http_conn_t *c)
{
    return c->idle_timeout - (int64_t) (tg_time_ms() - c->idle_since_ms);
}


/*
 * Frees the bufferevent of an idle plain connection and waits for its
 * socket to become readable (or the rest of its idle timeout) on the
 * connection's own event. TG_OK, or TG_DECLINED when it cannot park (the
 * timeout ran out, TLS, bytes buffered): the caller closes it then.
 */
static int
tg_http_park(tg_http_conn_t *c)
{
    int64_t  left;

    left = tg_http_idle_left(c);
    if (left <= 0 || c->listen->ssl || c->bev == NULL
        || tg_event_input_length(c->bev)
        || evbuffer_get_length(bufferevent_get_output(c->bev)))
    {
        return TG_DECLINED;
    }
    tg_event_bev_free(c->bev);
    c->bev = NULL;
    event_del(c->timer);
    c->deadline.timer_at = 0;
    c->deadline.at = 0;
    event_assign(c->timer, tg_event_worker.base, c->fd, EV_READ,
                 tg_http_parked_handler, c);
    event_add(c->timer, tg_event_timeout(left));
    tg_log_debug(&c->log, "idle: parked for %" PRId64 " ms", left);
    return TG_OK;
}


static void
tg_http_parked_handler(evutil_socket_t fd, short what, void *ctx)
{
    int64_t          left;
    tg_http_conn_t  *c = ctx;

    if (!(what & EV_READ)) {
        tg_http_close_connection(c); /* keep-alive or header timeout */
        return;
    }
    /*
     * Bytes (or the client's close) arrived: back to a bufferevent, whose
     * read event reports them on the next loop round.
     */
    event_assign(c->timer, tg_event_worker.base, -1, 0, tg_http_timer_handler,
                 c);
    if (tg_http_setup_bev(c) != TG_OK) {
        tg_log_error(TG_LOG_ALERT, &c->log, 0,
                     "cannot resume a connection: out of memory");
        tg_http_close_connection(c);
        return;
    }
    left = tg_http_idle_left(c);
    tg_http_set_timer(c, left > 0 ? left : 1);
}


/*
 * Request pools are kept per worker between requests, so an idle
 * connection holds none and a busy one mallocs nothing per request.
 */
static tg_pool_t *
tg_http_pool_get(void)
{
    if (tg_http_worker.nfree_pools) {
        return tg_http_worker.free_pools[--tg_http_worker.nfree_pools];
    }
    return tg_pool_create(TG_HTTP_REQUEST_POOL_SIZE);
}


static void
tg_http_pool_put(tg_pool_t *pool)
{
    if (pool == NULL) {
        return;
    }
    tg_pool_reset(pool);
    if ((int64_t) tg_http_worker.nfree_pools < TG_HTTP_POOL_CACHE) {
        tg_http_worker.free_pools[tg_http_worker.nfree_pools++] = pool;
        return;
    }
    tg_pool_destroy(pool);
}


void
tg_http_close_connection(tg_http_conn_t *c)
{
    if (c->processing) {
        /* tg_http_process_input is on the stack: it closes on its way out */
        c->close_pending = 1;
        return;
    }
    if (c->r) {
        /*
         * A request cut short (client gone, upstream died mid-response,
         * timeouts) still ends its spans and gets its access-log line.
         */
        tg_http_upstream_abort(c->r);
        if (!c->r->logged) {
            c->r->aborted = 1;
            tg_http_trace_server_end(c->r);
            tg_http_log_request(c->r);
        }
        c->r = NULL;
    }
    if (c->prev) {
        c->prev->next = c->next;
    } else if (tg_http_worker.conns == c) {
        tg_http_worker.conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    tg_event_worker.nconns--;
    if (c->timer) {
        event_free(c->timer);
    }
    if (c->bev) {
        tg_event_bev_free(c->bev);
    }
    if (!c->listen->ssl && c->fd != -1) {
        close(c->fd); /* a TLS bev closes its socket itself */
    }
    tg_http_pool_put(c->rpool);
    free(c);
}


/* tg_http_module's drain hook */
static size_t
tg_http_drain(tg_cycle_t *cycle)
{
    return tg_http_shutdown_connections();
}


/* per phase, the handlers of every module in order, NULL-terminated, and
   the module of each */
static tg_http_hook_pt     tg_http_phase_hooks[TG_HTTP_PHASES][16];
static const tg_module_t  *tg_http_phase_modules[TG_HTTP_PHASES][16];


int
tg_http_run_phase(tg_http_request_t *r, tg_http_phase_e phase)
{
    int               rc;
    tg_http_hook_pt  *h;

    for (h = tg_http_phase_hooks[phase]; *h; h++) {
        if (phase == TG_HTTP_CONTENT_PHASE) {
            /* set before: the answer may finish r inside the handler */
            r->answered_by =
                tg_http_phase_modules[phase][h - tg_http_phase_hooks[phase]];
        }
        rc = (*h)(r);
        if (rc == TG_DONE || rc == TG_ERROR) {
            return rc;
        }
    }
    if (phase == TG_HTTP_CONTENT_PHASE) {
        r->answered_by = NULL;
    }
    return TG_OK;
}


void
tg_http_log_request(tg_http_request_t *r)
{
    size_t           n;
    tg_span_t       *spans;
    tg_span_batch_t  b;

    if (r->logged) {
        return;
    }
    r->logged = 1;
    tg_http_run_phase(r, TG_HTTP_LOG_PHASE);
    n = tg_http_request_spans(r, &spans);
    if (n) {
        b.spans = spans;
        b.n = n;
        b.service = &tg_cycle->trace.service_name;
        b.origin = r->answered_by;
        b.received = 0;
        b.local = 0;
        tg_span_publish(&b);
    }
}


/*
 * Collects the modules' phase handlers, and gives every listener ([main]
 * and admin pages' own, all HTTP for now) its handler.
 */
static int
tg_http_init_process(tg_cycle_t *cycle)
{
    size_t                   i, p, n[TG_HTTP_PHASES];
    tg_listen_t             *ls;
    const tg_http_module_t  *hm;

    memset(n, 0, sizeof(n));
    memset(tg_http_phase_hooks, 0, sizeof(tg_http_phase_hooks));
    memset(tg_http_phase_modules, 0, sizeof(tg_http_phase_modules));
    for (i = 0; tg_modules[i]; i++) {
        hm = tg_modules[i]->ctx;
        for (p = 0; hm && p < TG_HTTP_PHASES; p++) {
            if (hm->hooks[p] == NULL) {
                continue;
            }
            if (n[p] == tg_nelts(tg_http_phase_hooks[p]) - 1) {
                tg_log_error(TG_LOG_EMERG, &tg_log_global, 0,
                             "too many phase handlers");
                return TG_ERROR;
            }
            tg_http_phase_modules[p][n[p]] = tg_modules[i];
            tg_http_phase_hooks[p][n[p]++] = hm->hooks[p];
        }
    }

    ls = cycle->main.listens.elts;
    for (i = 0; i < cycle->main.listens.nelts; i++) {
        if (ls[i].handler == NULL) {
            ls[i].handler = tg_http_init_connection;
        }
    }
    return TG_OK;
}


static void
tg_http_exit_process(tg_cycle_t *cycle)
{
    while (tg_http_worker.conns) {
        tg_http_close_connection(tg_http_worker.conns);
    }
    tg_upstream_close_idle(cycle);
}


/*
 * The HTTP/1.1 server, a module without a section of its own: first in
 * tg_modules[], so its connections close before other modules' exit
 * hooks run (their last spans and log lines included).
 */
tg_module_t  tg_http_module = {
    .init_process = tg_http_init_process,
    .exit_process = tg_http_exit_process,
    .drain = tg_http_drain,
};


size_t
tg_http_shutdown_connections(void)
{
    tg_http_conn_t  *c, *next;

    u_char           byte;

    for (c = tg_http_worker.conns; c; c = next) {
        next = c->next;
        c->closing = 1;
        /*
         * Only a connection between requests is closed, and only after it
         * stayed idle for a grace period: a busy client's next request is
         * answered with "Connection: close" instead, so it never races a
         * close. A fresh connection gets its first request served, and
         * one whose next request already sits in the socket buffer too.
         */
        if (c->r == NULL && !c->lingering && c->requests > 0
            && tg_time_ms() - c->idle_since_ms >= TG_HTTP_STOP_IDLE_GRACE_MS
            && (c->bev == NULL
                || tg_event_input_length(c->bev) == 0)
            && recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0
            && (errno == EAGAIN || errno == EWOULDBLOCK))
        {
            tg_http_close_connection(c);
        }
    }
    return tg_event_worker.nconns;
}


/*
 * Sets the connection's deadline ms from now (ms <= 0: none). The timer
 * event moves only when it would fire too late: every request on a busy
 * keep-alive connection sets a header deadline and then the park delay,
 * and re-adding the event each time cost more than parsing the request.
 * A timer that fires early is set again for what is left (see
 * tg_http_timer_handler); one with no deadline left does nothing.
 */
void
tg_http_set_timer(tg_http_conn_t *c, int64_t ms)
{
    tg_event_deadline_set(&c->deadline, c->timer, ms);
}


static void
tg_http_timer_handler(evutil_socket_t fd, short what, void *ctx)
{
    tg_http_conn_t  *c = ctx;

    if (!tg_event_deadline_passed(&c->deadline, c->timer)) {
        return;
    }

    if (c->r == NULL && !c->lingering && tg_http_park(c) == TG_OK) {
        return;
    }
    if (c->lingering || c->r == NULL) {
        /* keep-alive idle timeout, or the lingering close ran out */
        tg_http_close_connection(c);
        return;
    }
    if (c->r->tunnel.active) {
        tg_http_tunnel_close(c->r, "timeout");
        return;
    }
    if (c->r->state == TG_HTTP_READ_HEADERS) {
        tg_log_error(TG_LOG_INFO, &c->log, 0,
                     "client timed out sending the request header");
        c->r->keepalive = 0;
        tg_http_send_special(c->r, 408);
    }
}


static void
tg_http_client_read_handler(struct bufferevent *bev, void *ctx)
{
    tg_http_conn_t  *c = ctx;

    if (tg_http_process_input(c) != TG_OK) {
        return;
    }
    /*
     * Bytes that wait (pipelined requests behind one in flight) stop the
     * reading at a bound; finalizing the request reads again.
     */
    if (!c->close_pending && !c->lingering && c->r
        && c->r->state != TG_HTTP_READ_HEADERS && !c->r->tunnel.active
        && tg_event_input_length(bev)
               > (size_t) tg_cycle->main.proxy_buffer_size)
    {
        bufferevent_disable(bev, EV_READ);
    }
}


/* Enables reading unless it is on: libevent re-adds the event otherwise. */
void
tg_http_read_on(struct bufferevent *bev)
{
    if (!(bufferevent_get_enabled(bev) & EV_READ)) {
        bufferevent_enable(bev, EV_READ);
    }
}


static void
tg_http_client_write_handler(struct bufferevent *bev, void *ctx)
{
    tg_http_conn_t     *c = ctx;
    tg_http_request_t  *r = c->r;

    tg_http_write_done(bev, c->listen->ssl);
    if (r == NULL) {
        return;
    }
    if (r->tunnel.active && r->state != TG_HTTP_DONE) {
        tg_http_tunnel_drained(r, 1);
        return;
    }
    if (r->state == TG_HTTP_DONE) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
            tg_http_finalize_now(r);
        }
        return;
    }
    if (r->upstream.throttled && r->upstream.uc) {
        /* the client drained below the low mark: read the upstream again */
        r->upstream.throttled = 0;
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        tg_http_read_on(r->upstream.uc->bev);
        bufferevent_trigger(r->upstream.uc->bev, EV_READ, BEV_OPT_DEFER_CALLBACKS);
    }
}


static void
tg_http_client_event_handler(struct bufferevent *bev, short what, void *ctx)
{
    tg_http_conn_t     *c = ctx;
    tg_http_request_t  *r = c->r;

    if (r && r->tunnel.active && r->state != TG_HTTP_DONE) {
        tg_http_tunnel_close(r, (what & BEV_EVENT_EOF) ? "client closed"
                                                        : "error");
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        if (what & BEV_EVENT_WRITING) {
            tg_log_error(TG_LOG_INFO, &c->log, 0,
                         "client timed out reading the response");
            if (r) {
                r->error_type = "timeout";
            }
            tg_http_close_connection(c);
            return;
        }
        /* body read timeout */
        tg_log_error(TG_LOG_INFO, &c->log, 0,
                     "client timed out sending the request body");
        if (r && !r->response_started) {
            tg_http_upstream_abort(r);
            r->keepalive = 0;
            tg_http_send_special(r, 408);
            return;
        }
        tg_http_close_connection(c);
        return;
    }

    if (what & BEV_EVENT_EOF) {
        /*
         * The client stopped sending. What it sent before may still wait
         * in the input buffer (a body held while the upstream connects,
         * pipelined requests): that is served, and the connection closes
         * after the last complete request. tg_http_process_input ends an
         * incomplete one once the buffer runs dry.
         */
        c->input_eof = 1;
        bufferevent_disable(bev, EV_READ);
        if (r == NULL || r->state == TG_HTTP_READ_HEADERS
            || r->state == TG_HTTP_SEND_BODY)
        {
            tg_http_process_input(c);
        }
        return;
    }

    if (what & BEV_EVENT_ERROR) {
        char  text[256];

        if (c->listen->ssl && tg_ssl_error_text(bev, text, sizeof(text)) != 0)
        {
            tg_log_error(TG_LOG_INFO, &c->log, 0,
                         "TLS error with %s:%d%s: %s", c->peer_text,
                         c->peer_port, c->requests || r ? "" : " (handshake)",
                         text);
            if (r) {
                r->status = r->response_started ? r->status : 499;
            }
            tg_http_close_connection(c);
            return;
        }
        tg_log_error(TG_LOG_INFO, &c->log, EVUTIL_SOCKET_ERROR(),
                     "client connection error");
        if (r) {
            r->status = r->response_started ? r->status : 499;
        }
        tg_http_close_connection(c);
    }
}


static tg_http_request_t *
tg_http_request_new(tg_http_conn_t *c)
{
    tg_http_request_t  *r;

    if (c->rpool == NULL) {
        c->rpool = tg_http_pool_get();
        if (c->rpool == NULL) {
            return NULL;
        }
    }
    r = tg_pcalloc(c->rpool, sizeof(tg_http_request_t));
    if (r == NULL
        || tg_array_init(&r->headers, c->rpool, 16, sizeof(tg_http_header_t))
               != TG_OK)
    {
        return NULL;
    }
    r->c = c;
    r->pool = c->rpool;
    r->state = TG_HTTP_READ_HEADERS;
    r->content_length = -1;
    r->upstream.content_length = -1;
    r->start_ns = tg_time_now_ns();
    c->r = r;
    return r;
}


/*
 * Feeds the client's bytes to the parser one contiguous chunk at a time:
 * header bytes are consumed here, body bytes move raw to the upstream's
 * output (chunked framing passes unchanged), and a pause at the end of a
 * message leaves pipelined requests queued in the input buffer.
 * Returns TG_OK while c lives, TG_DONE when c may be gone (closed here, or
 * handed to a tunnel that may have closed it): the caller must not touch c.
 */
int
tg_http_process_input(tg_http_conn_t *c)
{
    size_t              n, consumed;
    const char         *data, *reason;
    llhttp_errno_t      err;
    struct evbuffer    *up = NULL;
    tg_http_request_t  *r;

    if (c->processing || c->lingering) {
        return TG_OK;
    }
    if (c->r && c->r->tunnel.active) {
        tg_http_tunnel_relay(c->r, 1);
        return TG_DONE;
    }
    c->processing = 1;

    for (;;) {
        r = c->r;
        if (c->close_pending) {
            break;
        }
        if (r == NULL) {
            if (tg_event_input_length(c->bev) == 0) {
                if (c->input_eof) {
                    c->close_pending = 1; /* served all the client sent */
                }
                break;
            }
            r = tg_http_request_new(c);
            if (r == NULL) {
                tg_log_error(TG_LOG_ALERT, &c->log, 0, "out of memory");
                c->processing = 0;
                tg_http_close_connection(c);
                return TG_DONE;
            }
            tg_http_set_timer(c, tg_cycle->main.client_header_timeout);
        }

        if (r->state != TG_HTTP_READ_HEADERS && r->state != TG_HTTP_SEND_BODY)
        {
            break;
        }
        if (r->state == TG_HTTP_SEND_BODY) {
            if (r->body_done) {
                break;
            }
            up = bufferevent_get_output(r->upstream.uc->bev);
            if (tg_http_throttle(c->bev, r->upstream.uc->bev, r->upstream.server->ssl)) {
                /* the upstream is slow to take the body */
                r->client_throttled = 1;
                break;
            }
        }
        n = tg_event_input_peek(c->bev, &data);
        if (n == 0) {
            if (c->input_eof) {
                /* nothing more will come: this request stays incomplete */
                if (r->uri.len || r->headers.nelts
                    || r->state == TG_HTTP_SEND_BODY)
                {
                    tg_log_error(TG_LOG_INFO, &c->log, 0,
                                 "client closed the connection while "
                                 "sending the request");
                    r->status = 499;
                }
                c->close_pending = 1;
            }
            break;
        }
        err = llhttp_execute(&c->parser, data, n);
        if (err == HPE_OK) {
            consumed = n;
        } else if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
            consumed = (size_t) (llhttp_get_error_pos(&c->parser) - data);
        } else {
            consumed = 0;
        }
        reason = NULL;
        if (err != HPE_OK && err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE)
        {
            reason = llhttp_get_error_reason(&c->parser);
        } else if (r->state == TG_HTTP_SEND_BODY && r->chunked
                   && tg_http_chunked_check(&r->chunk_check,
                                            (const u_char *) data, consumed)
                          != (r->body_done ? TG_DONE : TG_OK))
        {
            reason = "chunked framing (line ends, chunk ends)";
        }
        if (reason != NULL) {
            if (r->state == TG_HTTP_SEND_BODY) {
                /* the body broke mid-way: the upstream may hold part of
                   it, so its connection is closed, never reused */
                tg_log_error(TG_LOG_INFO, &c->log, 0,
                             "invalid request body from %s: %s",
                             c->peer_text, reason);
                r->error_type = "invalid_request";
                r->body_done = 0;
                if (!r->response_started) {
                    tg_http_upstream_abort(r);
                    r->keepalive = 0;
                    tg_http_send_special(r, r->err_status ? r->err_status
                                                          : 400);
                    break;
                }
                c->processing = 0;
                tg_http_close_connection(c);
                return TG_DONE;
            }
            tg_http_parse_error(c, err);
            break;
        }

        if (r->state == TG_HTTP_SEND_BODY) {
            if (consumed) {
                if (tg_event_input_move(c->bev, up, consumed) != TG_OK) {
                    tg_log_error(TG_LOG_ALERT, &c->log, 0, "out of memory");
                    c->processing = 0;
                    tg_http_close_connection(c);
                    return TG_DONE;
                }
                r->upstream.body_started = 1;
            }
            if (r->body_done) {
                r->state = TG_HTTP_WAIT_RESPONSE;
                bufferevent_set_timeouts(
                    c->bev, NULL, tg_http_tv(tg_cycle->main.send_timeout));
                break;
            }
            continue;
        }

        /* reading headers */
        tg_event_input_drain(c->bev, consumed);
        if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
            tg_http_set_timer(c, 0); /* the header arrived in time */
            if (err == HPE_PAUSED && !r->body_done) {
                /* paused at the end of the headers: the body comes next */
                llhttp_resume(&c->parser);
            }
            tg_http_handle_request(r);
            if (c->close_pending || c->lingering) {
                break; /* answered and closing */
            }
            /* still this request (body or upstream next), or it was
               answered at once and a pipelined one may follow */
            continue;
        }
    }

    if (!c->close_pending && c->r && c->r->upstream.uc
        && c->r->state >= TG_HTTP_SEND_BODY)
    {
        /* what this round relayed goes out now; a request that failed
           in the same round was aborted before anything was written */
        tg_http_flush(c->r->upstream.uc->bev, c->r->upstream.server->ssl);
    }
    c->processing = 0;
    if (c->close_pending) {
        tg_http_close_connection(c);
        return TG_DONE;
    }
    return TG_OK;
}


static void
tg_http_parse_error(tg_http_conn_t *c, llhttp_errno_t err)
{
    int                 status;
    tg_http_request_t  *r = c->r;

    status = r->err_status ? r->err_status : 400;
    tg_log_error(TG_LOG_INFO, &c->log, 0, "bad request from %s: %s (%s)",
                 c->peer_text, llhttp_get_error_reason(&c->parser),
                 llhttp_errno_name(err));
    r->keepalive = 0;
    r->error_type = "invalid_request";
    /*
     * What the request line said is known when the error came later
     * (413, 431): the span, the log line and trust_incoming_context
     * should see the method, the path, the version and the route.
     */
    if (r->uri.len) {
        r->method.data = (u_char *) llhttp_method_name(
            (llhttp_method_t) llhttp_get_method(&c->parser));
        r->method.len = strlen((char *) r->method.data);
        r->http_major = c->parser.http_major;
        r->http_minor = c->parser.http_minor;
        if (tg_http_parse_target(r) == TG_OK) {
            r->route = tg_http_route_find(tg_http_routes(tg_cycle), &r->path);
        }
    } else {
        r->method.len = 0;
        r->method.data = (u_char *) "";
    }
    tg_http_trace_start(r);
    tg_http_send_special(r, status);
}


static int
tg_http_find_host(tg_http_request_t *r)
{
    size_t             i, n;
    tg_http_header_t  *h;

    h = r->headers.elts;
    n = 0;
    for (i = 0; i < r->headers.nelts; i++) {
        if (h[i].flags & TG_HTTP_HDR_HOST) {
            if (n++ == 0 && r->host.len == 0) {
                r->host = h[i].value;
            }
        }
    }
    if (n > 1) {
        return TG_ERROR; /* RFC 9112 3.2: more than one Host is a 400 */
    }
    if (n == 0 && r->http_minor >= 1) {
        return TG_ERROR;
    }
    for (i = 0; i < r->host.len; i++) {
        if (r->host.data[i] <= ' ' || r->host.data[i] == '/'
            || r->host.data[i] == '@' || r->host.data[i] >= 0x7f)
        {
            return TG_ERROR;
        }
    }
    return TG_OK;
}


/* splits the request target into path and query; absolute-form too */
static int
tg_http_parse_target(tg_http_request_t *r)
{
    u_char  *p, *end, *q;
    size_t   skip;

    p = r->uri.data;
    end = r->uri.data + r->uri.len;
    if (r->uri.len == 0) {
        return TG_ERROR;
    }
    if (p[0] != '/') {
        skip = 0;
        if (r->uri.len > 7 && strncasecmp((char *) p, "http://", 7) == 0) {
            skip = 7;
        } else if (r->uri.len > 8
                   && strncasecmp((char *) p, "https://", 8) == 0)
        {
            skip = 8;
        } else {
            return TG_ERROR;
        }
        p += skip;
        for (q = p; q < end && *q != '/' && *q != '?'; q++) {
            /* authority */
        }
        if (q == p) {
            return TG_ERROR;
        }
        /* RFC 9112 3.2.2: the absolute-form authority replaces Host */
        r->host.data = p;
        r->host.len = (size_t) (q - p);
        p = q;
        if (p == end || *p == '?') {
            /* "http://host" or "http://host?x" means path "/" */
            r->path.data = (u_char *) "/";
            r->path.len = 1;
            if (p < end) {
                r->query.data = p + 1;
                r->query.len = (size_t) (end - p - 1);
            }
            return TG_OK;
        }
    }
    q = memchr(p, '?', (size_t) (end - p));
    if (q) {
        r->query.data = q + 1;
        r->query.len = (size_t) (end - q - 1);
        end = q;
    }
    r->raw_path.data = p;
    r->raw_path.len = (size_t) (end - p);
    if (tg_cycle->main.reject_ambiguous_paths
        && tg_http_path_ambiguous(&r->raw_path))
    {
        return TG_DECLINED;
    }
    r->path.data = tg_pnalloc(r->pool, (size_t) (end - p) + 1);
    if (r->path.data == NULL) {
        return TG_ERROR;
    }
    memcpy(r->path.data, p, (size_t) (end - p));
    r->path.len = (size_t) (end - p);
    return tg_http_path_normalize(&r->path);
}


static void
tg_http_handle_request(tg_http_request_t *r)
{
    int                 rc, conn, method;
    size_t              i;
    tg_http_conn_t     *c = r->c;
    tg_http_header_t   *h;

    method = llhttp_get_method(&c->parser);
    r->method.data = (u_char *) llhttp_method_name((llhttp_method_t) method);
    r->method.len = strlen((char *) r->method.data);
    r->head = method == HTTP_HEAD;
    r->idempotent = method == HTTP_GET || method == HTTP_HEAD
                    || method == HTTP_PUT || method == HTTP_DELETE
                    || method == HTTP_OPTIONS || method == HTTP_TRACE;
    r->http_major = c->parser.http_major;
    r->http_minor = c->parser.http_minor;
    if (!r->headers_done) {
        r->keepalive = llhttp_should_keep_alive(&c->parser) ? 1 : 0;
    }
    c->log.trace_id = NULL;

    if (method == HTTP_CONNECT) {
        tg_http_trace_start(r);
        r->keepalive = 0;
        tg_http_send_special(r, 405);
        return;
    }
    rc = tg_http_parse_target(r);
    if (rc != TG_OK || tg_http_find_host(r) != TG_OK) {
        tg_log_error(TG_LOG_INFO, &c->log, 0,
                     rc == TG_DECLINED
                         ? "ambiguous path from %s (reject_ambiguous_paths)"
                         : "bad request target or Host from %s",
                     c->peer_text);
        r->error_type = "invalid_request";
        r->keepalive = 0;
        tg_http_trace_start(r);
        tg_http_send_special(r, 400);
        return;
    }

    conn = tg_http_parse_connection_tokens(r, &r->headers);
    if (conn & 1) {
        r->keepalive = 0;
    }
    if (llhttp_get_upgrade(&c->parser)) {
        /* a GET asking to upgrade may become a tunnel; the connection
           never serves another request either way */
        r->keepalive = 0;
        r->tunnel.requested = method == HTTP_GET && r->http_minor >= 1 && (conn & 4);
    }
    h = r->headers.elts;
    for (i = 0; i < r->headers.nelts; i++) {
        if (h[i].flags & TG_HTTP_HDR_EXPECT) {
            if (!tg_str_caseeq_c(&h[i].value, "100-continue")) {
                tg_http_trace_start(r);
                r->keepalive = 0;
                tg_http_send_special(r, 417);
                return;
            }
            r->expect_continue = r->http_minor >= 1 && !r->body_done;
        }
    }

    r->route = tg_http_route_find(tg_http_routes(tg_cycle), &r->path);
    tg_http_trace_start(r);

    if (tg_http_run_phase(r, TG_HTTP_REQUEST_HEADERS_PHASE) == TG_DONE
        || tg_http_run_phase(r, TG_HTTP_CONTENT_PHASE) == TG_DONE)
    {
        return;
    }

    if (tg_cycle->main.health.len && tg_str_eq(&r->path, &tg_cycle->main.health)
        && (method == HTTP_GET || method == HTTP_HEAD))
    {
        r->route = NULL;
        tg_http_send_special(r, 200);
        return;
    }

    if (r->route == NULL) {
        if (r->path.len == 1 && tg_cycle->page_index.len
            && (method == HTTP_GET || method == HTTP_HEAD))
        {
            tg_http_send_special(r, 200); /* the index page */
            return;
        }
        tg_http_send_special(r, 404);
        return;
    }
    r->upstream.conf = r->route->upstream;
    tg_http_upstream_start(r);
}


/*
 * Writes what bev's output holds right away. On a plain socket the write
 * event stays off while writes complete at once, so a response costs no
 * epoll_ctl; it is switched on only when the socket buffer is full (and
 * back off by tg_http_write_done). TLS bevs always write through their
 * own event. Returns 1 when the output is empty.
 */
int
tg_http_flush(struct bufferevent *bev, int ssl)
{
    int               err;
    ssize_t           n;
    struct evbuffer  *out;

    out = bufferevent_get_output(bev);
    if (evbuffer_get_length(out) == 0) {
        return 1;
    }
    if (ssl || (bufferevent_get_enabled(bev) & EV_WRITE)) {
        bufferevent_enable(bev, EV_WRITE);
        return 0;
    }
    /* a bufferevent keeps its output's drain end frozen between writes */
    evbuffer_unfreeze(out, 1);
    n = tg_event_write(out, bufferevent_getfd(bev));
    err = errno;
    evbuffer_freeze(out, 1);
    if (n < 0) {
        if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
            /* the write event meets the error again and reports it */
            bufferevent_enable(bev, EV_WRITE);
            return 0;
        }
    }
    if (evbuffer_get_length(out) == 0) {
        return 1;
    }
    bufferevent_enable(bev, EV_WRITE);
    return 0;
}


/*
 * Writes iov[0..n) on bev with one writev(2) from where the bytes lie,
 * when the socket is plain and nothing waits in the output before them;
 * what the socket does not take goes to the output buffer, with the write
 * event on (it also meets an error again and reports it). TG_DECLINED
 * when it cannot (TLS, output pending): the caller buffers. TG_ERROR when
 * out of memory.
 */
int
tg_http_sendv(struct bufferevent *bev, int ssl, const struct iovec *iov,
    int n)
{
    int               i;
    size_t            sent;
    ssize_t           w;
    struct evbuffer  *out;

    out = bufferevent_get_output(bev);
    if (ssl || evbuffer_get_length(out)
        || (bufferevent_get_enabled(bev) & EV_WRITE))
    {
        return TG_DECLINED;
    }
    w = tg_event_sendv(bufferevent_getfd(bev), iov, n);
    sent = w > 0 ? (size_t) w : 0;
    for (i = 0; i < n && sent >= iov[i].iov_len; i++) {
        sent -= iov[i].iov_len;
    }
    if (i == n) {
        return TG_OK;
    }
    for ( /* void */ ; i < n; i++, sent = 0) {
        if (evbuffer_add(out, (u_char *) iov[i].iov_base + sent,
                         iov[i].iov_len - sent)
            != 0)
        {
            return TG_ERROR;
        }
    }
    bufferevent_enable(bev, EV_WRITE);
    return TG_OK;
}


/* Sends data on bev: tg_http_sendv(), else buffered and flushed. */
int
tg_http_send(struct bufferevent *bev, int ssl, const u_char *data,
    size_t len)
{
    int           rc;
    struct iovec  iov;

    iov.iov_base = (void *) data;
    iov.iov_len = len;
    rc = tg_http_sendv(bev, ssl, &iov, 1);
    if (rc != TG_DECLINED) {
        return rc;
    }
    if (evbuffer_add(bufferevent_get_output(bev), data, len) != 0) {
        return TG_ERROR;
    }
    tg_http_flush(bev, ssl);
    return TG_OK;
}


/*
 * Back-pressure between two connections: when dst's output holds
 * proxy_buffer_size bytes that a flush cannot hand to the kernel, src is
 * no longer read. The flush left dst's write event on, and dst's write
 * handler resumes src once the output drained to half. Returns 1 when
 * src was stopped. Below the bound nothing is flushed here: the caller
 * writes once for all it moved.
 */
int
tg_http_throttle(struct bufferevent *src, struct bufferevent *dst,
    int dst_ssl)
{
    size_t            limit;
    struct evbuffer  *out;

    limit = (size_t) tg_cycle->main.proxy_buffer_size;
    out = bufferevent_get_output(dst);
    if (evbuffer_get_length(out) < limit || tg_http_flush(dst, dst_ssl)
        || evbuffer_get_length(out) < limit)
    {
        return 0;
    }
    bufferevent_disable(src, EV_READ);
    bufferevent_setwatermark(dst, EV_WRITE, limit / 2, 0);
    return 1;
}


/* From a write handler: an emptied plain socket goes back to direct writes. */
void
tg_http_write_done(struct bufferevent *bev, int ssl)
{
    if (!ssl && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        bufferevent_disable(bev, EV_WRITE);
    }
}


int
tg_http_keepalive_allowed(tg_http_request_t *r)
{
    tg_http_conn_t  *c = r->c;

    return r->keepalive && r->body_done && !c->closing
           && !tg_event_worker.shutting_down
           && tg_cycle->main.keepalive_timeout > 0
           && c->requests + 1 < (uint64_t) tg_cycle->main.keepalive_requests;
}


void
tg_http_request_done(tg_http_request_t *r)
{
    tg_http_conn_t  *c = r->c;

    r->state = TG_HTTP_DONE;
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    if (tg_http_flush(c->bev, c->listen->ssl)) {
        tg_http_finalize_now(r);
    }
    /* else the write handler finalizes once the output drained */
}


static void
tg_http_finalize_now(tg_http_request_t *r)
{
    int              keepalive, complete;
    tg_http_conn_t  *c = r->c;

    if (r->upstream.uc) {
        tg_http_upstream_abort(r);
    }
    tg_http_trace_server_end(r);
    tg_http_log_request(r);
    /*
     * A response that did not announce "Connection: close" keeps the
     * connection: closing it now, even while stopping, would race the
     * client's next request. Stopping workers answer that one with
     * "Connection: close", or close the connection once it stayed idle.
     */
    complete = r->body_done && llhttp_get_errno(&c->parser) == HPE_PAUSED;
    keepalive = !r->response_close && r->keepalive && complete
                && tg_cycle->main.keepalive_timeout > 0;
    c->requests++;

    c->r = NULL;
    c->log.trace_id = NULL;
    c->idle_since_ms = tg_time_ms();
    tg_http_pool_put(c->rpool);
    c->rpool = NULL;

    if (!keepalive) {
        tg_http_linger_close(c, complete);
        return;
    }
    llhttp_resume(&c->parser);
    tg_http_read_on(c->bev);
    if (tg_event_input_length(c->bev)) {
        /* a pipelined request is already waiting */
        tg_http_process_input(c);
        return;
    }
    tg_http_idle(c, tg_cycle->main.keepalive_timeout);
}


/*
 * Closing right after the response could turn unread request bytes into
 * an RST that destroys the response in flight: shut the write side and
 * discard input until the client closes, for at most a short while. A
 * request that was read whole, with nothing after it in our buffer or in
 * the socket's, has no such bytes: its socket closes now (the usual
 * "Connection: close" exchange) and the connection is freed from its
 * timer in this loop round, so that callers up the stack still hold it.
 */
static void
tg_http_linger_close(tg_http_conn_t *c, int complete)
{
    int  pending;

    c->lingering = 1;
    if (!c->input_eof && !c->listen->ssl && complete
        && tg_event_input_length(c->bev) == 0
        && ioctl(c->fd, FIONREAD, &pending) == 0 && pending == 0)
    {
        /* no event is left on the descriptor before it is closed */
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        close(c->fd);
        c->fd = -1;
        c->deadline.at = 1; /* passed: tg_http_timer_handler frees c */
        event_active(c->timer, EV_TIMEOUT, 1);
        return;
    }
    if (c->input_eof || c->listen->ssl || shutdown(c->fd, SHUT_WR) < 0) {
        tg_http_close_connection(c);
        return;
    }
    tg_event_input_drain(c->bev, tg_event_input_length(c->bev));
    bufferevent_setcb(c->bev, tg_http_linger_read_handler, NULL,
                      tg_http_linger_event_handler, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_disable(c->bev, EV_WRITE);
    bufferevent_enable(c->bev, EV_READ);
    tg_http_set_timer(c, tg_event_worker.shutting_down ? TG_HTTP_LINGER_MS / 4
                                                      : TG_HTTP_LINGER_MS);
}


static void
tg_http_linger_read_handler(struct bufferevent *bev, void *ctx)
{
    tg_event_input_drain(bev, tg_event_input_length(bev));
}


static void
tg_http_linger_event_handler(struct bufferevent *bev, short what, void *ctx)
{
    tg_http_close_connection(ctx);
}
