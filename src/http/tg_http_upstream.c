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
#include <openssl/x509v3.h>


static uint64_t  tg_upstream_conn_number;

static void tg_http_upstream_connect(tg_http_request_t *r);
static struct bufferevent *tg_http_upstream_ssl_bev(tg_http_request_t *r,
    tg_upstream_server_t *s);
static void tg_http_upstream_send_request(tg_http_request_t *r);
static void tg_http_upstream_read_handler(struct bufferevent *bev, void *ctx);
static void tg_http_upstream_write_handler(struct bufferevent *bev,
    void *ctx);
static void tg_http_upstream_event_handler(struct bufferevent *bev,
    short what, void *ctx);
static int tg_http_upstream_process(tg_http_request_t *r);
static void tg_http_upstream_next(tg_http_request_t *r, const char *etype,
    int status);
static void tg_http_upstream_finish(tg_http_request_t *r);
static int tg_http_upstream_send_head(tg_http_request_t *r);
static int tg_http_upstream_head_out(tg_http_request_t *r, u_char *head,
    size_t hlen);
static u_char *tg_http_upstream_framing(tg_http_request_t *r, u_char *p);
static void tg_upstream_idle_read_handler(struct bufferevent *bev,
    void *ctx);
static void tg_upstream_idle_event_handler(struct bufferevent *bev,
    short what, void *ctx);
static void tg_upstream_timer_handler(evutil_socket_t fd, short what,
    void *ctx);


void
tg_upstream_conn_close(tg_upstream_conn_t *uc)
{
    if (uc->timer) {
        event_free(uc->timer);
    }
    if (uc->bev) {
        tg_event_bev_free(uc->bev);
    }
    free(uc);
}


/*
 * Upstream read deadlines, set the way tg_http_set_timer() sets the
 * client's: the bufferevent has no read timeout (libevent would re-add
 * the read event for every request and re-schedule its timer on every
 * read), the deadline moves with each read, and the timer event moves
 * only when it would fire too late. A timer that fires early is set
 * again for what is left.
 */
void
tg_upstream_set_timer(tg_upstream_conn_t *uc, int64_t ms)
{
    tg_event_deadline_set(&uc->deadline, uc->timer, ms);
}


static void
tg_upstream_timer_handler(evutil_socket_t fd, short what, void *ctx)
{
    void                  *arg;
    tg_upstream_conn_t    *uc = ctx;
    bufferevent_event_cb   eventcb;

    if (!tg_event_deadline_passed(&uc->deadline, uc->timer)) {
        return;
    }
    /* what a bufferevent read timeout does, for whoever owns uc now */
    bufferevent_disable(uc->bev, EV_READ);
    bufferevent_getcb(uc->bev, NULL, NULL, &eventcb, &arg);
    if (eventcb) {
        eventcb(uc->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, arg);
    }
}


tg_upstream_conn_t *
tg_upstream_idle_get(tg_upstream_server_t *s)
{
    tg_upstream_conn_t  *uc;

    uc = s->idle;
    if (uc == NULL) {
        return NULL;
    }
    s->idle = uc->next;
    if (s->idle) {
        s->idle->prev = NULL;
    }
    s->nidle--;
    uc->next = NULL;
    uc->prev = NULL;
    return uc;
}


static void
tg_upstream_idle_remove(tg_upstream_conn_t *uc)
{
    tg_upstream_server_t  *s = uc->server;

    if (uc->prev) {
        uc->prev->next = uc->next;
    } else {
        s->idle = uc->next;
    }
    if (uc->next) {
        uc->next->prev = uc->prev;
    }
    s->nidle--;
}


void
tg_upstream_idle_put(tg_upstream_conn_t *uc)
{
    tg_upstream_t         *u;
    tg_upstream_server_t  *s;

    s = uc->server;
    u = s->upstream;
    if (tg_event_worker.shutting_down || s->nidle >= (size_t) u->keepalive
        || uc->requests >= (uint64_t) u->keepalive_requests)
    {
        tg_upstream_conn_close(uc);
        return;
    }
    /* an idle connection only waits for the upstream to close it */
    bufferevent_setcb(uc->bev, tg_upstream_idle_read_handler, NULL,
                      tg_upstream_idle_event_handler, uc);
    bufferevent_setwatermark(uc->bev, EV_WRITE, 0, 0);
    tg_upstream_set_timer(uc, u->keepalive_timeout);
    tg_http_read_on(uc->bev);
    uc->prev = NULL;
    uc->next = s->idle;
    if (s->idle) {
        s->idle->prev = uc;
    }
    s->idle = uc;
    s->nidle++;
}


static void
tg_upstream_idle_read_handler(struct bufferevent *bev, void *ctx)
{
    /* bytes on an idle connection mean it is out of step: drop it */
    tg_upstream_conn_t  *uc = ctx;

    tg_upstream_idle_remove(uc);
    tg_upstream_conn_close(uc);
}


static void
tg_upstream_idle_event_handler(struct bufferevent *bev, short what,
    void *ctx)
{
    tg_upstream_conn_t  *uc = ctx;

    tg_upstream_idle_remove(uc);
    tg_upstream_conn_close(uc);
}


void
tg_upstream_close_idle(tg_cycle_t *cycle)
{
    size_t                 i, j;
    tg_upstream_t        **up;
    tg_upstream_conn_t    *uc;
    tg_upstream_server_t  *s;

    up = tg_upstreams(cycle)->elts;
    for (i = 0; i < tg_upstreams(cycle)->nelts; i++) {
        s = up[i]->servers.elts;
        for (j = 0; j < up[i]->servers.nelts; j++) {
            while ((uc = tg_upstream_idle_get(&s[j])) != NULL) {
                tg_upstream_conn_close(uc);
            }
        }
    }
}


/* The path the upstream gets (also url.full of CLIENT spans), once. */
static void
tg_http_upstream_path(tg_http_request_t *r)
{
    if (r->upstream_path.data != NULL) {
        return;
    }
    r->upstream_path = r->path;
    if (r->route->strip_prefix && r->route->prefix.len > 1) {
        r->upstream_path.data += r->route->prefix.len;
        r->upstream_path.len -= r->route->prefix.len;
        if (r->upstream_path.len == 0) {
            r->upstream_path.data = (u_char *) "/";
            r->upstream_path.len = 1;
        }
    }
}


void
tg_http_upstream_start(tg_http_request_t *r)
{
    tg_http_upstream_path(r);
    r->upstream.uc = NULL;
    r->upstream.server = tg_upstream_next(r->upstream.conf, &r->upstream.tried, tg_time_ms());
    if (r->upstream.server == NULL) {
        tg_log_error(TG_LOG_ERR, &r->c->log, 0,
                     "no live upstreams in \"" TG_STR_FMT "\"",
                     TG_STR_ARG(&r->upstream.conf->name));
        if (r->upstream.attempts == 0) {
            r->error_type = "no_live_upstreams";
        }
        tg_http_send_special(r, r->upstream.result == 504 ? 504 : 502);
        return;
    }
    r->upstream.attempts++;
    r->upstream.start_ns = tg_time_now_ns();
    r->upstream.header_ns = 0;
    r->upstream.end_ns = 0;
    tg_http_trace_client_attempt(r);
    r->upstream.got_bytes = 0;
    r->upstream.request_sent = 0;

    r->upstream.uc = tg_upstream_idle_get(r->upstream.server);
    if (r->upstream.uc) {
        r->upstream.reused = 1;
        bufferevent_setcb(r->upstream.uc->bev, tg_http_upstream_read_handler,
                          tg_http_upstream_write_handler,
                          tg_http_upstream_event_handler, r);
        tg_http_upstream_send_request(r);
        return;
    }
    r->upstream.reused = 0;
    tg_http_upstream_connect(r);
}


/* A TLS client bev: SNI and the verified name from ssl_server_name, else
   the server's host (an address is checked as an IP SAN). */
static struct bufferevent *
tg_http_upstream_ssl_bev(tg_http_request_t *r, tg_upstream_server_t *s)
{
    SSL                 *ssl;
    u_char              *name;
    tg_upstream_t       *u = s->upstream;
    struct bufferevent  *bev;
    struct in6_addr      a6;

    ssl = SSL_new(u->ssl_ctx);
    if (ssl == NULL) {
        return NULL;
    }
    name = tg_pstrdup0(r->pool, u->ssl_server_name.len ? &u->ssl_server_name
                                                        : &s->host);
    if (name == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    if (inet_pton(AF_INET, (char *) name, &a6) != 1
        && inet_pton(AF_INET6, (char *) name, &a6) != 1)
    {
        SSL_set_tlsext_host_name(ssl, (char *) name);
        if (u->ssl_verify) {
            SSL_set1_host(ssl, (char *) name);
        }
    } else if (u->ssl_verify) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), (char *) name);
    }
    bev = bufferevent_openssl_socket_new(tg_event_worker.base, -1, ssl,
                                         BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE
                                             | BEV_OPT_DEFER_CALLBACKS);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}


static void
tg_http_upstream_connect(tg_http_request_t *r)
{
    int                    err;
    tg_upstream_conn_t    *uc;
    tg_upstream_server_t  *s = r->upstream.server;

    uc = calloc(1, sizeof(tg_upstream_conn_t));
    if (uc == NULL) {
        goto failed;
    }
    uc->server = s;
    uc->number = ++tg_upstream_conn_number;
    uc->timer = evtimer_new(tg_event_worker.base, tg_upstream_timer_handler, uc);
    if (uc->timer == NULL) {
        free(uc);
        goto failed;
    }
    if (s->ssl) {
        uc->bev = tg_http_upstream_ssl_bev(r, s);
    } else {
        uc->bev = bufferevent_socket_new(tg_event_worker.base, -1,
                                         BEV_OPT_CLOSE_ON_FREE);
    }
    if (uc->bev == NULL) {
        tg_upstream_conn_close(uc);
        goto failed;
    }
    r->upstream.uc = uc;
    r->state = TG_HTTP_UPSTREAM_CONNECT;
    bufferevent_setcb(uc->bev, tg_http_upstream_read_handler,
                      tg_http_upstream_write_handler,
                      tg_http_upstream_event_handler, r);
    /*
     * While connecting, the write timeout is the connect timeout; a TLS
     * handshake also waits for reads, so it gets the read timeout too.
     * Once connected, reads are timed by uc->timer.
     */
    bufferevent_set_timeouts(uc->bev,
                             s->ssl ? tg_http_tv(s->upstream->connect_timeout)
                                    : NULL,
                             tg_http_tv(s->upstream->connect_timeout));
    if (bufferevent_socket_connect(uc->bev, (struct sockaddr *) &s->addr,
                                   (int) s->addrlen)
        < 0)
    {
        err = errno;
        if (r->upstream.uc != uc) {
            /* libevent already ran the event handler, which moved on */
            return;
        }
        tg_log_error(TG_LOG_ERR, &r->c->log, err,
                     "connect() to " TG_STR_FMT " failed",
                     TG_STR_ARG(&s->text));
        tg_http_upstream_next(r, err == ECONNREFUSED ? "connection_refused"
                                                     : "connect_error",
                              502);
        return;
    }
    if (!s->ssl) {
        tg_event_bev_reader(uc->bev); /* the bev has its socket now */
    }
    return;

failed:
    tg_log_error(TG_LOG_ALERT, &r->c->log, 0, "out of memory for upstream");
    tg_http_send_special(r, 500);
}


/*
 * The body framing the upstream gets is the one llhttp parsed, written
 * canonically: the client's Transfer-Encoding and Content-Length lines are
 * never copied (tg_http_parse_check_te() let only one "chunked" line in).
 * Writes at most 30 bytes.
 */
static u_char *
tg_http_upstream_framing(tg_http_request_t *r, u_char *p)
{
    if (r->chunked) {
        return (u_char *) mempcpy(p, "Transfer-Encoding: chunked\r\n", 28);
    }
    if (r->content_length >= 0) {
        p += sprintf((char *) p, "Content-Length: %" PRId64 "\r\n",
                     r->content_length);
    }
    return p;
}


/* Request line and headers as the upstream receives them. */
static int
tg_http_upstream_build_head(tg_http_request_t *r, u_char **head,
    size_t *hlen)
{
    u_char             *buf, *p;
    size_t              i, len, xff_len;
    tg_str_t            path, host, *xff;
    tg_http_header_t   *h;
    tg_http_conn_t     *c = r->c;

    tg_http_upstream_path(r);
    path = r->upstream_path;
    host = r->upstream.conf->host.len ? r->upstream.conf->host : r->host;
    if (host.len == 0) {
        host = r->upstream.server->text;
    }

    xff = NULL;
    xff_len = 0;
    h = r->headers.elts;
    len = r->method.len + path.len + r->query.len + host.len + 64;
    for (i = 0; i < r->headers.nelts; i++) {
        if (h[i].flags & TG_HTTP_HDR_XFF) {
            if (xff == NULL) {
                xff = &h[i].value;
            }
            xff_len += h[i].value.len + 2;
        }
        len += h[i].name.len + h[i].value.len + 4;
    }
    len += xff_len + sizeof("X-Forwarded-For: , \r\n") + sizeof(c->peer_text)
           + sizeof("X-Forwarded-Proto: https\r\n")
           + sizeof("X-Forwarded-Host: \r\n") + r->host.len + 1024
           + r->tracestate.len + r->x_trace_id.len
           + tg_cycle->trace.x_trace_id.len;

    buf = tg_pnalloc(r->pool, len);
    if (buf == NULL) {
        return TG_ERROR;
    }
    p = buf;
    p = (u_char *) mempcpy(p, r->method.data, r->method.len);
    *p++ = ' ';
    p = (u_char *) mempcpy(p, path.data, path.len);
    if (r->query.data) {
        *p++ = '?';
        p = (u_char *) mempcpy(p, r->query.data, r->query.len);
    }
    p = (u_char *) mempcpy(p, " HTTP/1.1\r\nHost: ", 17);
    p = (u_char *) mempcpy(p, host.data, host.len);
    *p++ = CR;
    *p++ = LF;

    for (i = 0; i < r->headers.nelts; i++) {
        if (h[i].flags
            & (TG_HTTP_HDR_HOP | TG_HTTP_HDR_DROP | TG_HTTP_HDR_HOST
               | TG_HTTP_HDR_TRACE | TG_HTTP_HDR_XFF | TG_HTTP_HDR_XFWD
               | TG_HTTP_HDR_CL | TG_HTTP_HDR_TE))
        {
            continue;
        }
        p = (u_char *) mempcpy(p, h[i].name.data, h[i].name.len);
        *p++ = ':';
        *p++ = ' ';
        p = (u_char *) mempcpy(p, h[i].value.data, h[i].value.len);
        *p++ = CR;
        *p++ = LF;
    }
    p = tg_http_upstream_framing(r, p);

    p = (u_char *) mempcpy(p, "X-Forwarded-For: ", 17);
    if (xff) {
        for (i = 0; i < r->headers.nelts; i++) {
            if (h[i].flags & TG_HTTP_HDR_XFF) {
                p = (u_char *) mempcpy(p, h[i].value.data, h[i].value.len);
                *p++ = ',';
                *p++ = ' ';
            }
        }
    }
    p = (u_char *) stpcpy((char *) p, c->peer_text);
    p = (u_char *) mempcpy(p, "\r\nX-Forwarded-Proto: ", 21);
    p = (u_char *) stpcpy((char *) p, c->listen->ssl ? "https" : "http");
    if (r->host.len) {
        p = (u_char *) mempcpy(p, "\r\nX-Forwarded-Host: ", 20);
        p = (u_char *) mempcpy(p, r->host.data, r->host.len);
    }
    *p++ = CR;
    *p++ = LF;
    if (r->tunnel.requested) {
        for (i = 0; i < r->headers.nelts; i++) {
            if (h[i].flags & TG_HTTP_HDR_UPGRADE) {
                p = (u_char *) mempcpy(p, "Connection: upgrade\r\nUpgrade: ",
                                       30);
                p = (u_char *) mempcpy(p, h[i].value.data, h[i].value.len);
                *p++ = CR;
                *p++ = LF;
                break;
            }
        }
    }
    p = tg_http_trace_add_request_headers(r, p);
    *p++ = CR;
    *p++ = LF;

    if ((size_t) (p - buf) > len) {
        /* the estimate above is the contract: never write past it */
        abort();
    }
    *head = buf;
    *hlen = (size_t) (p - buf);
    return TG_OK;
}


static void
tg_http_upstream_send_request(tg_http_request_t *r)
{
    u_char              *head;
    size_t               hlen;
    tg_upstream_conn_t  *uc = r->upstream.uc;

    tg_upstream_set_timer(uc, r->upstream.conf->read_timeout);
    if (uc->server->ssl) {
        bufferevent_enable(uc->bev, EV_READ | EV_WRITE);
    } else {
        tg_http_read_on(uc->bev);
    }

    llhttp_init(&r->upstream.parser, HTTP_RESPONSE, &tg_http_response_settings);
    r->upstream.parser.data = r;
    r->upstream.headers.nelts = 0;
    if (r->upstream.headers.elts == NULL
        && tg_array_init(&r->upstream.headers, r->pool, 16,
                         sizeof(tg_http_header_t))
               != TG_OK)
    {
        tg_http_send_special(r, 500);
        return;
    }
    r->upstream.reason.len = 0;
    r->upstream.reason.data = NULL;
    r->upstream.headers_done = 0;
    r->upstream.chunked = 0;
    r->upstream.content_length = -1;
    r->header_bytes = 0;
    r->upstream.done = 0;

    if (tg_http_upstream_build_head(r, &head, &hlen) != TG_OK
        || (r->body_done
                /* the whole request: it goes out now, buffered if it must */
                ? tg_http_send(uc->bev, r->upstream.server->ssl, head, hlen)
                : evbuffer_add(bufferevent_get_output(uc->bev), head, hlen))
               != TG_OK)
    {
        tg_http_send_special(r, 500);
        return;
    }
    uc->requests++;
    r->upstream.request_sent = 1;

    if (r->body_done) {
        r->state = TG_HTTP_WAIT_RESPONSE;
        return; /* sent, or the write event sends the rest */
    }
    r->state = TG_HTTP_SEND_BODY;
    if (r->expect_continue && !r->sent_continue) {
        r->sent_continue = 1;
        bufferevent_write(r->c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        tg_http_flush(r->c->bev, r->c->listen->ssl);
    }
    bufferevent_set_timeouts(r->c->bev,
                             tg_http_tv(tg_cycle->main.client_body_timeout),
                             tg_http_tv(tg_cycle->main.send_timeout));
    tg_http_read_on(r->c->bev);
    tg_http_process_input(r->c);
}


static void
tg_http_upstream_read_handler(struct bufferevent *bev, void *ctx)
{
    tg_http_upstream_process(ctx);
}


static void
tg_http_upstream_write_handler(struct bufferevent *bev, void *ctx)
{
    tg_http_request_t  *r = ctx;

    tg_http_write_done(bev, r->upstream.server->ssl);
    if (r->tunnel.active) {
        tg_http_tunnel_drained(r, 0);
        return;
    }
    if (r->client_throttled) {
        /* the upstream took enough of the body: read the client again */
        r->client_throttled = 0;
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        bufferevent_enable(r->c->bev, EV_READ);
        tg_http_process_input(r->c);
    }
}


static void
tg_http_upstream_event_handler(struct bufferevent *bev, short what,
    void *ctx)
{
    int                 err;
    llhttp_errno_t      perr;
    tg_http_request_t  *r = ctx;

    if (r->tunnel.active) {
        tg_http_tunnel_close(r, (what & BEV_EVENT_EOF) ? "upstream closed"
                                                        : "error");
        return;
    }
    if (what & BEV_EVENT_CONNECTED) {
        int  on = 1;

        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &on,
                   sizeof(on));
        if (!r->upstream.server->ssl) {
            bufferevent_disable(bev, EV_WRITE); /* see tg_http_flush */
        }
        /* for the connection's life: reads are timed by uc->timer */
        bufferevent_set_timeouts(bev, NULL,
                                 tg_http_tv(r->upstream.conf->send_timeout));
        tg_http_upstream_send_request(r);
        return;
    }

    /* errno means something only for an error, not for an EOF */
    err = (what & BEV_EVENT_ERROR) ? EVUTIL_SOCKET_ERROR() : 0;
    if (r->state == TG_HTTP_UPSTREAM_CONNECT) {
        if (what & BEV_EVENT_TIMEOUT) {
            tg_log_error(TG_LOG_ERR, &r->c->log, 0,
                         "upstream " TG_STR_FMT " timed out connecting",
                         TG_STR_ARG(&r->upstream.server->text));
            tg_http_upstream_next(r, "timeout", 504);
            return;
        }
        if (r->upstream.server->ssl) {
            SSL            *ssl = bufferevent_openssl_get_ssl(bev);
            long            vr;
            unsigned long   e;
            char            text[256];

            e = tg_ssl_error_text(bev, text, sizeof(text));
            vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
            if (e || vr != X509_V_OK) {
                if (e == 0) {
                    snprintf(text, sizeof(text), "handshake failed");
                }
                tg_log_error(TG_LOG_ERR, &r->c->log, 0,
                             "TLS to upstream " TG_STR_FMT " failed: %s%s%s",
                             TG_STR_ARG(&r->upstream.server->text), text,
                             vr != X509_V_OK ? ", verify: " : "",
                             vr != X509_V_OK
                                 ? X509_verify_cert_error_string(vr)
                                 : "");
                tg_http_upstream_next(r, vr != X509_V_OK
                                             ? "tls_certificate_invalid"
                                             : "tls_handshake_failed",
                                      502);
                return;
            }
        }
        tg_log_error(TG_LOG_ERR, &r->c->log, err,
                     "connect() to " TG_STR_FMT " failed",
                     TG_STR_ARG(&r->upstream.server->text));
        tg_http_upstream_next(r, err == ECONNREFUSED ? "connection_refused"
                                                     : "connect_error",
                              502);
        return;
    }

    if (what & BEV_EVENT_TIMEOUT) {
        tg_log_error(TG_LOG_ERR, &r->c->log, 0,
                     "upstream " TG_STR_FMT " timed out %s",
                     TG_STR_ARG(&r->upstream.server->text),
                     (what & BEV_EVENT_READING) ? "reading the response"
                                                : "taking the request");
        r->error_type = "timeout";
        tg_upstream_fail(r->upstream.server, tg_time_ms());
        if (r->response_started) {
            tg_http_close_connection(r->c);
            return;
        }
        tg_http_upstream_abort(r);
        tg_http_send_special(r, 504);
        return;
    }

    if (what & BEV_EVENT_EOF) {
        /* let buffered bytes be parsed first, then see where EOF leaves us */
        if (tg_http_upstream_process(r) != TG_OK) {
            return; /* r may be gone */
        }
        perr = llhttp_finish(&r->upstream.parser);
        if (perr == HPE_OK || perr == HPE_PAUSED) {
            if (r->upstream.done) {
                tg_http_upstream_finish(r);
                return;
            }
        }
    }

    /* reset, error, or EOF in the middle of a message */
    if (!r->upstream.got_bytes && !r->response_started
        && (r->idempotent || !r->upstream.body_started))
    {
        tg_log_error(TG_LOG_WARN, &r->c->log, err,
                     "upstream " TG_STR_FMT " closed the connection before "
                     "responding%s",
                     TG_STR_ARG(&r->upstream.server->text),
                     r->upstream.reused ? " (cached connection)" : "");
        if (r->upstream.reused) {
            /* a stale cached connection is not the server's fault */
            r->upstream.tried &= ~(1ULL << tg_upstream_server_index(r->upstream.server));
        }
        tg_http_upstream_next(r, "connection_reset", 502);
        return;
    }
    tg_log_error(TG_LOG_ERR, &r->c->log, err,
                 "upstream " TG_STR_FMT " %s the response",
                 TG_STR_ARG(&r->upstream.server->text),
                 r->upstream.got_bytes ? "truncated" : "closed without");
    r->error_type = r->upstream.got_bytes ? "response_truncated"
                                          : "connection_reset";
    if (r->response_started) {
        tg_http_close_connection(r->c);
        return;
    }
    tg_http_upstream_abort(r);
    tg_http_send_special(r, 502);
}


/* One attempt failed before anything reached the client: try the next. */
static void
tg_http_upstream_next(tg_http_request_t *r, const char *etype, int status)
{
    tg_upstream_t  *u = r->upstream.conf;
    size_t          limit;

    r->error_type = etype;
    r->upstream.result = status;
    if (strcmp(etype, "connection_reset") != 0 || !r->upstream.reused) {
        tg_upstream_fail(r->upstream.server, tg_time_ms());
    }
    tg_http_upstream_abort(r);

    limit = u->next_upstream_tries ? (size_t) u->next_upstream_tries
                                   : u->servers.nelts + 1;
    if ((size_t) r->upstream.attempts >= limit || r->upstream.attempts >= TG_HTTP_MAX_ATTEMPTS
        || (r->upstream.body_started && !r->idempotent))
    {
        tg_http_send_special(r, status);
        return;
    }
    tg_http_upstream_start(r);
}


void
tg_http_upstream_abort(tg_http_request_t *r)
{
    if (r->upstream.uc == NULL) {
        return;
    }
    tg_http_trace_client_end(r);
    tg_upstream_conn_close(r->upstream.uc);
    r->upstream.uc = NULL;
    if (r->client_throttled) {
        r->client_throttled = 0;
        bufferevent_enable(r->c->bev, EV_READ);
    }
}


/*
 * Parses the upstream's bytes: header bytes are consumed here, body bytes
 * move raw to the client (or decoded, for HTTP/1.0 clients of a chunked
 * response), and the upstream is no longer read while the client's output
 * holds proxy_buffer_size bytes. Returns TG_OK when it stopped for more
 * input or for the client to drain (r lives, the attempt goes on), else
 * TG_DONE: the response ended, failed or became a tunnel, and r may have
 * been finished and freed on the way, so the caller must not touch it.
 */
static int
tg_http_upstream_process(tg_http_request_t *r)
{
    size_t                  n, consumed, sent;
    const char             *data;
    llhttp_errno_t          err;
    struct evbuffer        *out;
    struct bufferevent     *in;
    tg_http_conn_t         *c = r->c;

    if (r->upstream.uc == NULL) {
        return TG_DONE;
    }
    if (r->tunnel.active) {
        tg_http_tunnel_relay(r, 0);
        return TG_DONE;
    }
    /* read_timeout counts from the last read (or from reading resumed) */
    tg_upstream_set_timer(r->upstream.uc, r->upstream.conf->read_timeout);
    in = r->upstream.uc->bev;
    out = bufferevent_get_output(c->bev);

    while (!r->upstream.done) {
        if (r->response_started
            && tg_http_throttle(r->upstream.uc->bev, c->bev, c->listen->ssl))
        {
            /* not reading: no read timeout until the client drained */
            r->upstream.throttled = 1;
            tg_upstream_set_timer(r->upstream.uc, 0);
            return TG_OK;
        }
        n = tg_event_input_peek(in, &data);
        if (n == 0) {
            /* all read input handled: one write for what it produced */
            tg_http_flush(c->bev, c->listen->ssl);
            return TG_OK;
        }
        err = llhttp_execute(&r->upstream.parser, data, n);
        if (err == HPE_OK) {
            consumed = n;
        } else if (err == HPE_PAUSED) {
            consumed = (size_t) (llhttp_get_error_pos(&r->upstream.parser) - data);
        } else {
            tg_log_error(TG_LOG_ERR, &c->log, 0,
                         "invalid response from upstream " TG_STR_FMT
                         ": %s (%s)", TG_STR_ARG(&r->upstream.server->text),
                         llhttp_get_error_reason(&r->upstream.parser),
                         llhttp_errno_name(err));
            r->error_type = "invalid_response";
            tg_upstream_fail(r->upstream.server, tg_time_ms());
            if (r->response_started) {
                tg_http_close_connection(c);
                return TG_DONE;
            }
            tg_http_upstream_abort(r);
            tg_http_send_special(r, 502);
            return TG_DONE;
        }

        if (!r->response_started) {
            tg_event_input_drain(in, consumed);
            if (r->upstream.headers_done) {
                r->upstream.header_ns = tg_time_now_ns();
                if (tg_http_upstream_send_head(r) != TG_OK) {
                    return TG_DONE;
                }
                if (r->upstream.status == 101) {
                    tg_http_tunnel_start(r);
                    return TG_DONE;
                }
            }
        } else if (r->response_dechunk) {
            tg_event_input_drain(in, consumed);
        } else if (consumed) {
            /* what went out with the head is only drained */
            sent = (size_t) tg_min(consumed, r->upstream.presend);
            if (sent) {
                tg_event_input_drain(in, sent);
                r->upstream.presend -= sent;
            }
            if (consumed > sent
                && tg_event_input_move(in, out, consumed - sent) != TG_OK)
            {
                tg_log_error(TG_LOG_ALERT, &c->log, 0, "out of memory");
                tg_http_close_connection(c);
                return TG_DONE;
            }
            r->body_bytes_sent += consumed;
            r->bytes_sent += consumed;
        }
        if (err == HPE_PAUSED) {
            llhttp_resume(&r->upstream.parser);
        }
    }
    tg_http_upstream_finish(r);
    return TG_DONE;
}


static int
tg_http_upstream_send_head(tg_http_request_t *r)
{
    int                 n;
    u_char             *buf, *p;
    size_t              i, len;
    tg_http_header_t   *h;
    tg_http_conn_t     *c = r->c;

    r->status = r->upstream.status;
    r->upstream.result = r->upstream.status;
    r->response_started = 1;

    if (!r->head && r->status != 204 && r->status != 304) {
        if (r->upstream.chunked && r->http_minor == 0) {
            r->response_dechunk = 1; /* 1.0 knows no chunks: close-delimit */
            r->response_close = 1;
        } else if (!r->upstream.chunked && r->upstream.content_length < 0) {
            r->response_close = 1; /* close-delimited upstream body */
        }
    }
    if (!tg_http_keepalive_allowed(r)) {
        r->response_close = 1;
    }
    tg_http_parse_connection_tokens(r, &r->upstream.headers);

    h = r->upstream.headers.elts;
    len = r->upstream.reason.len + 96 + tg_http_trace_response_headers_max() + 2;
    for (i = 0; i < r->upstream.headers.nelts; i++) {
        len += h[i].name.len + h[i].value.len + 4;
    }
    buf = tg_pnalloc(r->pool, len);
    if (buf == NULL) {
        tg_http_close_connection(c);
        return TG_ERROR;
    }
    p = (u_char *) mempcpy(buf, "HTTP/1.1 ", 9);
    n = r->status;
    *p++ = (u_char) ('0' + n / 100 % 10);
    *p++ = (u_char) ('0' + n / 10 % 10);
    *p++ = (u_char) ('0' + n % 10);
    *p++ = ' ';
    if (r->upstream.reason.len) {
        p = (u_char *) mempcpy(p, r->upstream.reason.data, r->upstream.reason.len);
    } else {
        p = (u_char *) stpcpy((char *) p, tg_http_status_reason(r->status));
    }
    *p++ = CR;
    *p++ = LF;
    for (i = 0; i < r->upstream.headers.nelts; i++) {
        if (h[i].flags & (TG_HTTP_HDR_HOP | TG_HTTP_HDR_DROP)) {
            continue;
        }
        if ((h[i].flags & TG_HTTP_HDR_TE) && r->response_dechunk) {
            continue;
        }
        if (tg_http_trace_skip_response_header(r, &h[i].name)) {
            continue;
        }
        p = (u_char *) mempcpy(p, h[i].name.data, h[i].name.len);
        *p++ = ':';
        *p++ = ' ';
        p = (u_char *) mempcpy(p, h[i].value.data, h[i].value.len);
        *p++ = CR;
        *p++ = LF;
    }
    if (r->status == 101) {
        for (i = 0; i < r->upstream.headers.nelts; i++) {
            if (h[i].flags & TG_HTTP_HDR_UPGRADE) {
                p = (u_char *) mempcpy(p, "Upgrade: ", 9);
                p = (u_char *) mempcpy(p, h[i].value.data, h[i].value.len);
                *p++ = CR;
                *p++ = LF;
                break;
            }
        }
        p = (u_char *) mempcpy(p, "Connection: upgrade\r\n", 21);
    } else if (r->response_close) {
        p = (u_char *) mempcpy(p, "Connection: close\r\n", 19);
    } else if (r->http_minor == 0) {
        p = (u_char *) mempcpy(p, "Connection: keep-alive\r\n", 24);
    }

    p = tg_http_trace_response_headers(r, p);
    *p++ = CR;
    *p++ = LF;
    if ((size_t) (p - buf) > len) {
        abort(); /* the estimate above is the contract */
    }
    r->bytes_sent += (size_t) (p - buf);
    if (tg_http_upstream_head_out(r, buf, (size_t) (p - buf)) != TG_OK) {
        tg_http_close_connection(c);
        return TG_ERROR;
    }
    return TG_OK;
}


/*
 * A response head goes to the client together with its body when all of
 * the body is in the next bytes read (tg_http_sendv(): one writev(2) of
 * both from where they lie, when nothing waits before them).
 * body_presend then says how much of the body tg_http_upstream_process()
 * only drains. Otherwise (chunked, close-delimited, not all read yet,
 * TLS, output pending) the head is buffered and the body follows it.
 */
static int
tg_http_upstream_head_out(tg_http_request_t *r, u_char *head, size_t hlen)
{
    int              rc;
    size_t           body;
    const char      *data;
    struct iovec     iov[2];
    tg_http_conn_t  *c = r->c;

    if (r->head || r->status == 204 || r->status == 304) {
        body = 0;
    } else if (!r->upstream.chunked && r->upstream.content_length >= 0) {
        body = (size_t) r->upstream.content_length;
    } else {
        body = SIZE_MAX;
    }
    data = NULL;
    rc = TG_DECLINED;
    if (body != SIZE_MAX && r->status != 101
        && (body == 0 || tg_event_input_peek(r->upstream.uc->bev, &data) >= body))
    {
        iov[0].iov_base = head;
        iov[0].iov_len = hlen;
        iov[1].iov_base = (void *) data;
        iov[1].iov_len = body;
        rc = tg_http_sendv(c->bev, c->listen->ssl, iov, body ? 2 : 1);
    }
    if (rc == TG_OK) {
        r->upstream.presend = body;
    } else if (rc == TG_DECLINED) {
        rc = evbuffer_add(bufferevent_get_output(c->bev), head, hlen) == 0
                 ? TG_OK
                 : TG_ERROR;
    }
    return rc;
}


static void
tg_http_upstream_finish(tg_http_request_t *r)
{
    tg_upstream_conn_t  *uc = r->upstream.uc;

    if (uc == NULL) {
        return;
    }
    tg_upstream_success(r->upstream.server);
    tg_http_trace_client_end(r);
    r->upstream.uc = NULL;
    if (llhttp_should_keep_alive(&r->upstream.parser) && r->body_done
        && tg_event_input_length(uc->bev) == 0
        && evbuffer_get_length(bufferevent_get_output(uc->bev)) == 0)
    {
        tg_upstream_idle_put(uc);
    } else {
        tg_upstream_conn_close(uc);
    }
    if (r->upstream.throttled) {
        r->upstream.throttled = 0;
    }
    tg_http_request_done(r);
}
