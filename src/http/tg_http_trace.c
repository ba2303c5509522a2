#include <tg_config.h>
#include <tg_core.h>
#include <tg_http.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>


#define TG_HTTP_TRACE_MAX_LINES 8 /* more lines of one header: ignored */

static void tg_http_trace_span_common(tg_http_request_t *r, tg_span_t *s);
static size_t tg_http_trace_redact_query(const tg_str_t *q, u_char *dst,
    size_t cap);
static tg_span_t *tg_http_trace_span_new(tg_http_request_t *r, int client);
static void tg_http_trace_error_status(tg_span_t *s, int status);


/* the semconv list of known methods; anything else is "_OTHER" */
static int
tg_http_trace_known_method(const tg_str_t *m)
{
    static const char  *known[] = { "GET", "HEAD", "POST", "PUT", "DELETE",
                                    "CONNECT", "OPTIONS", "TRACE", "PATCH" };
    size_t              i;

    for (i = 0; i < tg_nelts(known); i++) {
        if (m->len == strlen(known[i])
            && memcmp(m->data, known[i], m->len) == 0)
        {
            return 1;
        }
    }
    return 0;
}


/*
 * Continues or starts the trace of a request: extraction with the
 * configured propagators (W3C first by default), the duplicate repair,
 * tracestate, X-Trace-ID and the sampling decision. Never fails the
 * request: anything invalid starts a new trace.
 */
void
tg_http_trace_start(tg_http_request_t *r)
{
    int                  rc, source, trusted;
    size_t               i, k, n, ndup, nts, nxid;
    u_char              *p;
    tg_str_t             ts_lines[TG_HTTP_TRACE_MAX_LINES];
    tg_str_t             xid_lines[TG_HTTP_TRACE_MAX_LINES];
    tg_str_t             lines[TG_TRACE_HDR_MAX][TG_HTTP_TRACE_MAX_LINES];
    tg_trace_ctx_t       ctx;
    tg_trace_conf_t     *tc = &tg_cycle->trace;
    tg_http_header_t    *h;
    tg_trace_carrier_t   carrier;

    memset(&carrier, 0, sizeof(carrier));
    nts = 0;
    nxid = 0;
    h = r->headers.elts;
    for (i = 0; i < r->headers.nelts; i++) {
        if (!(h[i].flags & (TG_HTTP_HDR_TRACE | TG_HTTP_HDR_PROP))
            && (h[i].name.len != tc->x_trace_id.len || h[i].name.len == 0))
        {
            continue; /* most headers: neither trace context nor X-Trace-ID */
        }
        if (tc->x_trace_id.len && tg_str_caseeq(&h[i].name, &tc->x_trace_id)) {
            h[i].flags |= TG_HTTP_HDR_DROP; /* ours replaces it */
            if (nxid < TG_HTTP_TRACE_MAX_LINES) {
                xid_lines[nxid++] = h[i].value;
            }
            continue;
        }
        if (h[i].name.len == 10 && tg_str_caseeq_c(&h[i].name, "tracestate")) {
            if (nts < TG_HTTP_TRACE_MAX_LINES) {
                ts_lines[nts++] = h[i].value;
            }
            continue;
        }
        for (k = 0; k < TG_TRACE_HDR_MAX; k++) {
            if (!tg_str_caseeq(&h[i].name, &tg_trace_header_names[k])) {
                continue;
            }
            if (carrier.hdr[k].n < TG_HTTP_TRACE_MAX_LINES) {
                lines[k][carrier.hdr[k].n++] = h[i].value;
                carrier.hdr[k].lines = lines[k];
            }
            break;
        }
    }

    /* formats we do not speak pass through untouched; ours are rewritten */
    if (!tg_trace_propagators_inject(&tc->props, TG_TRACE_PROP_TRACECONTEXT)) {
        for (i = 0; i < r->headers.nelts; i++) {
            h[i].flags &= ~TG_HTTP_HDR_TRACE;
        }
    }
    for (i = 0; i < r->headers.nelts; i++) {
        if (!(h[i].flags & TG_HTTP_HDR_PROP)) {
            continue;
        }
        if ((tg_str_caseeq_c(&h[i].name, "b3")
             && tg_trace_propagators_inject(&tc->props, TG_TRACE_PROP_B3))
            || (h[i].name.len > 5
                && strncasecmp((char *) h[i].name.data, "x-b3-", 5) == 0
                && tg_trace_propagators_inject(&tc->props,
                                               TG_TRACE_PROP_B3MULTI))
            || (tg_str_caseeq_c(&h[i].name, "uber-trace-id")
                && tg_trace_propagators_inject(&tc->props,
                                               TG_TRACE_PROP_JAEGER)))
        {
            h[i].flags |= TG_HTTP_HDR_DROP;
        }
    }

    trusted = r->route == NULL || r->route->trust_incoming_context;
    ndup = 0;
    source = 0;
    if (tg_trace_extract(&tc->props, &carrier, &ctx, &source, &ndup) != TG_OK)
    {
        ctx.valid = 0;
    }
    if (ndup > 1) {
        if (ctx.valid) {
            r->trace_repaired = 1;
            tg_http_worker.trace_repairs++;
        }
        if (r->c->log.level >= TG_LOG_DEBUG) {
            for (i = 0; i < carrier.hdr[TG_TRACE_HDR_TRACEPARENT].n; i++) {
                tg_log_debug(&r->c->log, "traceparent line %zu: \"" TG_STR_FMT
                             "\" (%zu values; %s)", i + 1,
                             TG_STR_ARG(&lines[TG_TRACE_HDR_TRACEPARENT][i]),
                             ndup, ctx.valid ? "repaired: first valid kept"
                                             : "none valid or conflicting:"
                                               " new trace");
            }
        }
    }

    if (ctx.valid && trusted) {
        memcpy(r->trace_id, ctx.trace_id, 16);
        memcpy(r->parent_id, ctx.span_id, 8);
        r->has_parent = 1;
        if (source == TG_TRACE_PROP_TRACECONTEXT && nts) {
            if (tg_trace_tracestate(r->pool, ts_lines, nts,
                                    (size_t) tc->tracestate_limit,
                                    &r->tracestate)
                != TG_OK)
            {
                r->tracestate.len = 0;
            }
        }
    } else {
        tg_random_trace_id(r->trace_id);
        if (ctx.valid) {
            /* an untrusted edge: a new trace that links to the old one */
            r->has_link = 1;
            memcpy(r->link_trace_id, ctx.trace_id, 16);
            memcpy(r->link_span_id, ctx.span_id, 8);
        }
    }
    tg_random_span_id(r->span_id);
    r->sampled = tg_trace_sampler_sample(&tc->sampler_rt,
                                         ((ctx.valid || ctx.deny) && trusted)
                                             ? &ctx
                                             : NULL,
                                         r->trace_id)
                     ? 1
                     : 0;
    r->trace_flags = r->sampled ? TG_TRACE_FLAG_SAMPLED : 0;
    tg_hex_encode(r->trace_hex, r->trace_id, 16);
    r->trace_hex[32] = '\0';
    r->c->log.trace_id = r->trace_hex;

    if (tc->x_trace_id.len) {
        rc = tg_trace_xid_extract(xid_lines, nxid, &r->x_trace_id);
        if (rc == TG_ERROR) {
            /* kept for the span, escaped and bounded, then replaced */
            n = tg_min(r->x_trace_id.len, TG_TRACE_XID_MAX);
            p = tg_pnalloc(r->pool, 4 * n);
            if (p != NULL) {
                r->x_trace_id_rejected.data = p;
                r->x_trace_id_rejected.len = tg_log_escape(
                    p, 4 * n, r->x_trace_id.data, n);
            }
        }
        if (rc == TG_OK) {
            /* the client's own, kept */

        } else if (tc->xid_format == TG_TRACE_XID_HEX) {
            /* the trace id's hex, already made */
            r->x_trace_id.data = r->trace_hex;
            r->x_trace_id.len = 32;

        } else {
            p = tg_pnalloc(r->pool, TG_TRACE_XID_MAX);
            if (p == NULL) {
                r->x_trace_id.len = 0;
            } else {
                r->x_trace_id.data = p;
                r->x_trace_id.len = tg_trace_xid_generate(
                    p, tc->xid_format, r->trace_id, r->start_ns);
            }
        }
    }
}


void
tg_http_trace_client_attempt(tg_http_request_t *r)
{
    tg_span_t  *s;

    tg_random_span_id(r->client_span_id);
    if (!r->sampled) {
        return;
    }
    s = tg_http_trace_span_new(r, 1);
    if (s == NULL) {
        return;
    }
    memcpy(s->span_id, r->client_span_id, 8);
    memcpy(s->parent_id, r->span_id, 8);
    s->kind = TG_SPAN_KIND_CLIENT;
    s->start_ns = r->upstream.start_ns;
}


/* error.type as the status code, the semantic conventions' rule */
static void
tg_http_trace_error_status(tg_span_t *s, int status)
{
    u_char  code[20], *p;

    p = tg_utoa(code, (uint64_t) status);
    tg_span_str_lit(s, "error.type", code, (size_t) (p - code));
}


/* Ends the CLIENT span of the current attempt, once. */
void
tg_http_trace_client_end(tg_http_request_t *r)
{
    u_char                 url[2048], *p, *last;
    const char            *etype;
    tg_span_t             *s;
    tg_upstream_server_t  *srv = r->upstream.server;

    r->upstream.end_ns = tg_time_now_ns();
    if (!r->sampled || r->nspans < 2) {
        return;
    }
    s = &r->spans[r->nspans - 1];
    if (s->kind != TG_SPAN_KIND_CLIENT || s->end_ns) {
        return;
    }
    s->end_ns = r->upstream.end_ns;
    if (tg_http_trace_known_method(&r->method)) {
        tg_span_set_name(s, r->method.data, r->method.len);
        tg_span_str_lit(s, "http.request.method", r->method.data,
                        r->method.len);
    } else {
        tg_span_set_name(s, (u_char *) "HTTP", 4);
        tg_span_str_lit(s, "http.request.method", (u_char *) "_OTHER", 6);
        tg_span_str_lit(s, "http.request.method_original", r->method.data,
                        r->method.len);
    }
    if (srv) {
        tg_span_str_lit(s, "server.address", srv->host.data, srv->host.len);
        tg_span_int_lit(s, "server.port", srv->port);
        tg_span_str_lit(s, "network.peer.address", srv->host.data,
                        srv->host.len);
        last = url + sizeof(url);
        p = tg_cpymem_max(url, last, srv->ssl ? "https://" : "http://",
                          srv->ssl ? 8 : 7);
        p = tg_cpymem_max(p, last, srv->text.data, srv->text.len);
        p = tg_cpymem_max(p, last, r->upstream_path.data,
                          r->upstream_path.len);
        if (r->query.data && p < last) {
            *p++ = '?';
            p += tg_http_trace_redact_query(&r->query, p, (size_t) (last - p));
        }
        if (p < last) { /* a URL cut short is not given */
            tg_span_str_lit(s, "url.full", url, (size_t) (p - url));
        }
    }
    if (r->upstream.attempts > 1) {
        tg_span_int_lit(s, "http.request.resend_count", r->upstream.attempts - 1);
    }
    if (r->tunnel.active) {
        tg_span_int_lit(s, "http.response.status_code", 101);
        tg_span_int_lit(s, "http.request.body.size",
                        (int64_t) r->request_body_bytes);
        tg_span_int_lit(s, "http.response.body.size",
                        (int64_t) r->upstream.body_bytes);
    }
    etype = NULL;
    if (!r->tunnel.active && r->upstream.headers_done && r->upstream.status >= 200) {
        tg_span_int_lit(s, "http.response.status_code", r->upstream.status);
        if (r->upstream.status >= 400) {
            tg_http_trace_error_status(s, r->upstream.status);
            s->status = TG_SPAN_STATUS_ERROR;
        }
        if (r->upstream.done) {
            return;
        }
    }
    if (!r->upstream.done) {
        etype = r->error_type ? r->error_type : "_OTHER";
        tg_span_str_lit(s, "error.type", (u_char *) etype, strlen(etype));
        s->status = TG_SPAN_STATUS_ERROR;
    }
}


/*
 * Slot 0 is the SERVER span, filled when the request ends; CLIENT spans
 * follow. Returns the slot for a new CLIENT span, or slot 0 when client
 * is 0.
 */
static tg_span_t *
tg_http_trace_span_new(tg_http_request_t *r, int client)
{
    size_t      i, need, cap;
    tg_span_t  *spans;

    /* slot 0 and, for a CLIENT span, one more: one attempt fits in 2 */
    need = tg_max(r->nspans, 1) + (size_t) client;
    cap = r->spans_cap;
    if (need > cap) {
        cap = cap ? cap * 2 : 2;
        spans = tg_palloc(r->pool, cap * sizeof(tg_span_t));
        if (spans == NULL) {
            return NULL;
        }
        for (i = 0; i < r->nspans; i++) {
            memcpy(&spans[i], &r->spans[i], tg_span_size(&r->spans[i]));
        }
        r->spans = spans;
        r->spans_cap = cap;
    }
    if (r->nspans == 0) {
        tg_span_init(&r->spans[0]);
        r->nspans = 1;
    }
    if (!client) {
        return &r->spans[0];
    }
    tg_http_trace_span_common(r, &r->spans[r->nspans]);
    return &r->spans[r->nspans++];
}


static void
tg_http_trace_span_common(tg_http_request_t *r, tg_span_t *s)
{
    tg_span_init(s);
    memcpy(s->trace_id, r->trace_id, 16);
    s->flags = r->trace_flags;
    s->attr_count_limit = (uint16_t) tg_cycle->trace.attribute_count_limit;
    s->attr_value_limit =
        (uint16_t) tg_cycle->trace.attribute_value_length_limit;
}


/* url.query with the values of signature-like keys replaced (semconv) */
static size_t
tg_http_trace_redact_query(const tg_str_t *q, u_char *dst, size_t cap)
{
    static const char  *secret[] = { "AWSAccessKeyId", "Signature", "sig",
                                     "X-Goog-Signature" };
    size_t              i, o, klen, n;
    u_char             *eq;
    tg_str_t            rest, param;

    o = 0;
    rest = *q;
    while (rest.len) {
        param.data = rest.data;
        eq = memchr(rest.data, '&', rest.len);
        param.len = eq ? (size_t) (eq - rest.data) : rest.len;
        rest.data += param.len + (eq ? 1 : 0);
        rest.len -= param.len + (eq ? 1 : 0);

        eq = memchr(param.data, '=', param.len);
        klen = eq ? (size_t) (eq - param.data) : param.len;
        n = param.len;
        for (i = 0; eq && i < tg_nelts(secret); i++) {
            if (klen == strlen(secret[i])
                && memcmp(param.data, secret[i], klen) == 0)
            {
                n = 0;
            }
        }
        if (o + param.len + 10 > cap) {
            break;
        }
        if (o) {
            dst[o++] = '&';
        }
        if (n) {
            memcpy(dst + o, param.data, param.len);
            o += param.len;
        } else {
            memcpy(dst + o, param.data, klen + 1);
            o += klen + 1;
            memcpy(dst + o, "REDACTED", 8);
            o += 8;
        }
    }
    return o;
}


static void
tg_http_trace_capture(tg_span_t *s, tg_array_t *names, tg_array_t *headers,
    const char *prefix)
{
    int                n;
    char               key[256];
    size_t             i, j;
    tg_str_t          *name;
    tg_http_header_t  *h;

    if (names == NULL) {
        return;
    }
    name = names->elts;
    h = headers->elts;
    for (i = 0; i < names->nelts; i++) {
        for (j = 0; j < headers->nelts; j++) {
            if (!(h[j].flags & TG_HTTP_HDR_SECRET)
                && tg_str_caseeq(&h[j].name, &name[i]))
            {
                n = snprintf(key, sizeof(key), "%s" TG_STR_FMT, prefix,
                             TG_STR_ARG(&name[i]));
                if (n > 0 && (size_t) n < sizeof(key)) {
                    tg_span_add_str(s, key, h[j].value.data, h[j].value.len);
                }
                break;
            }
        }
    }
}


/* semconv tls.* of the client connection */
static void
tg_http_trace_tls_attrs(tg_span_t *s, struct bufferevent *bev)
{
    SSL         *ssl;
    const char  *v, *cipher;

    ssl = bufferevent_openssl_get_ssl(bev);
    if (ssl == NULL) {
        return;
    }
    tg_span_str_lit(s, "tls.protocol.name", (u_char *) "tls", 3);
    v = SSL_get_version(ssl); /* "TLSv1.3" */
    if (v && strncmp(v, "TLSv", 4) == 0) {
        tg_span_str_lit(s, "tls.protocol.version", (u_char *) v + 4,
                        strlen(v + 4));
    }
    cipher = SSL_get_cipher_name(ssl);
    if (cipher) {
        tg_span_str_lit(s, "tls.cipher", (u_char *) cipher, strlen(cipher));
    }
    tg_span_bool_lit(s, "tls.resumed", SSL_session_reused(ssl));
}


/* Fills the SERVER span when the last response byte was written. */
void
tg_http_trace_server_end(tg_http_request_t *r)
{
    u_char             name[TG_SPAN_NAME_MAX], *p, *last;
    u_char             buf[2048], *colon;
    size_t             i, hlen;
    tg_str_t           client, host, xff, tok;
    tg_span_t         *s;
    tg_http_conn_t    *c = r->c;
    tg_http_header_t  *h;

    if (!r->sampled || r->nspans_done) {
        return;
    }
    r->nspans_done = 1;
    s = tg_http_trace_span_new(r, 0);
    if (s == NULL) {
        return;
    }
    tg_http_trace_span_common(r, s);
    memcpy(s->span_id, r->span_id, 8);
    if (r->has_parent) {
        memcpy(s->parent_id, r->parent_id, 8);
    }
    if (r->has_link) {
        s->has_link = 1;
        memcpy(s->link_trace_id, r->link_trace_id, 16);
        memcpy(s->link_span_id, r->link_span_id, 8);
    }
    s->kind = TG_SPAN_KIND_SERVER;
    s->start_ns = r->start_ns;
    s->end_ns = tg_http_request_end_ns(r);

    /* "{method} {route}", "HTTP" for methods outside the known set */
    last = name + sizeof(name);
    if (tg_http_trace_known_method(&r->method)) {
        p = tg_cpymem_max(name, last, r->method.data, r->method.len);
        tg_span_str_lit(s, "http.request.method", r->method.data,
                        r->method.len);
    } else {
        p = tg_cpymem_max(name, last, "HTTP", 4);
        tg_span_str_lit(s, "http.request.method", (u_char *) "_OTHER", 6);
        tg_span_str_lit(s, "http.request.method_original", r->method.data,
                        r->method.len);
    }
    if (r->route) {
        p = tg_cpymem_max(p, last, " ", 1);
        p = tg_cpymem_max(p, last, r->route->prefix.data, r->route->prefix.len);
    }
    tg_span_set_name(s, name, (size_t) (p - name));

    if (r->raw_path.len) {
        tg_span_str_lit(s, "url.path", r->raw_path.data, r->raw_path.len);
    } else if (r->path.len) {
        tg_span_str_lit(s, "url.path", r->path.data, r->path.len);
    }
    if (r->query.data) {
        tg_span_str_lit(s, "url.query", buf,
                        tg_http_trace_redact_query(&r->query, buf,
                                                   sizeof(buf)));
    }
    tg_span_str_lit(s, "url.scheme",
                    (u_char *) (c->listen->ssl ? "https" : "http"),
                    c->listen->ssl ? 5 : 4);
    if (c->listen->ssl) {
        tg_http_trace_tls_attrs(s, c->bev);
    }
    if (r->route) {
        tg_span_str_lit(s, "http.route", r->route->prefix.data,
                        r->route->prefix.len);
    }
    if (r->status) {
        tg_span_int_lit(s, "http.response.status_code", r->status);
    }

    host = r->host;
    colon = host.len ? memrchr(host.data, ':', host.len) : NULL;
    hlen = host.len;
    if (colon && host.data[0] != '[') {
        hlen = (size_t) (colon - host.data);
    } else if (colon && colon > host.data && colon[-1] == ']') {
        hlen = (size_t) (colon - host.data);
    }
    if (hlen) {
        tg_span_str_lit(s, "server.address", host.data, hlen);
        if (hlen < host.len) {
            int64_t  port;

            if (tg_atoi(host.data + hlen + 1, host.len - hlen - 1, &port)
                == TG_OK)
            {
                tg_span_int_lit(s, "server.port", port);
            }
        } else {
            tg_span_int_lit(s, "server.port", c->local_port);
        }
    }

    client.data = (u_char *) c->peer_text;
    client.len = strlen(c->peer_text);
    if (tg_cidr_match(tg_cycle->main.trusted_cidrs,
                      &c->peer.sa))
    {
        h = r->headers.elts;
        for (i = 0; i < r->headers.nelts; i++) {
            if (h[i].flags & TG_HTTP_HDR_XFF) {
                xff = h[i].value;
                if (tg_str_next_token(&xff, ',', &tok) && tok.len) {
                    client = tok;
                }
                break;
            }
        }
    }
    tg_span_str_lit(s, "client.address", client.data, client.len);
    tg_span_str_lit(s, "network.peer.address", (u_char *) c->peer_text,
                    strlen(c->peer_text));
    tg_span_int_lit(s, "network.peer.port", c->peer_port);
    tg_span_str_lit(s, "network.protocol.version",
                    (u_char *) (r->http_minor ? "1.1" : "1.0"), 3);
    h = r->headers.elts;
    for (i = 0; i < r->headers.nelts; i++) {
        if (h[i].flags & TG_HTTP_HDR_UA) {
            tg_span_str_lit(s, "user_agent.original", h[i].value.data,
                            h[i].value.len);
            break;
        }
    }
    if (r->request_body_bytes) {
        tg_span_int_lit(s, "http.request.body.size",
                        (int64_t) r->request_body_bytes);
    }
    if (r->upstream.body_bytes) {
        tg_span_int_lit(s, "http.response.body.size",
                        (int64_t) r->upstream.body_bytes);
    }
    if (r->x_trace_id.len
        && !(r->x_trace_id.len == 32
             && memcmp(r->x_trace_id.data, r->trace_hex, 32) == 0))
    {
        tg_span_str_lit(s, "tracegate.x_trace_id", r->x_trace_id.data,
                        r->x_trace_id.len);
    }
    if (r->x_trace_id_rejected.len) {
        tg_span_str_lit(s, "tracegate.x_trace_id.rejected",
                        r->x_trace_id_rejected.data,
                        r->x_trace_id_rejected.len);
    }
    if (r->trace_repaired) {
        tg_span_bool_lit(s, "tracegate.traceparent_repaired", 1);
    }
    tg_http_trace_capture(s, tg_cycle->trace.capture_request_headers,
                          &r->headers, "http.request.header.");
    if (r->upstream.headers.elts) {
        tg_http_trace_capture(s, tg_cycle->trace.capture_response_headers,
                              &r->upstream.headers, "http.response.header.");
    }
    if (r->status >= 500 || r->status == 499 || r->status == 0
        || (r->aborted && r->error_type))
    {
        s->status = TG_SPAN_STATUS_ERROR;
        if (r->error_type) {
            tg_span_str_lit(s, "error.type", (u_char *) r->error_type,
                            strlen(r->error_type));
        } else {
            tg_http_trace_error_status(s, r->status);
        }
    } else if (r->error_type && r->status >= 400) {
        tg_span_str_lit(s, "error.type", (u_char *) r->error_type,
                        strlen(r->error_type));
    }
}


/* the headers our propagators write, after the forwarded ones */
u_char *
tg_http_trace_add_request_headers(tg_http_request_t *r, u_char *p)
{
    tg_trace_conf_t      *tc = &tg_cycle->trace;
    tg_trace_b3_multi_t   m;

    if (tg_trace_propagators_inject(&tc->props, TG_TRACE_PROP_TRACECONTEXT)) {
        p = (u_char *) mempcpy(p, "traceparent: ", 13);
        p = tg_trace_format_traceparent_hex(p, r->trace_hex,
                                            r->client_span_id, r->trace_flags);
        *p++ = CR;
        *p++ = LF;
        if (r->tracestate.len) {
            p = (u_char *) mempcpy(p, "tracestate: ", 12);
            p = (u_char *) mempcpy(p, r->tracestate.data, r->tracestate.len);
            *p++ = CR;
            *p++ = LF;
        }
    }
    if (tg_trace_propagators_inject(&tc->props, TG_TRACE_PROP_B3)) {
        p = (u_char *) mempcpy(p, "b3: ", 4);
        p = tg_trace_format_b3(p, r->trace_id, r->client_span_id,
                               r->trace_flags);
        *p++ = CR;
        *p++ = LF;
    }
    if (tg_trace_propagators_inject(&tc->props, TG_TRACE_PROP_B3MULTI)) {
        tg_trace_format_b3_multi(&m, r->trace_id, r->client_span_id,
                                 r->trace_flags);
        p = (u_char *) mempcpy(p, "X-B3-TraceId: ", 14);
        p = (u_char *) mempcpy(p, m.trace_id, 32);
        p = (u_char *) mempcpy(p, "\r\nX-B3-SpanId: ", 15);
        p = (u_char *) mempcpy(p, m.span_id, 16);
        p = (u_char *) mempcpy(p, "\r\nX-B3-Sampled: ", 16);
        *p++ = m.sampled;
        *p++ = CR;
        *p++ = LF;
    }
    if (tg_trace_propagators_inject(&tc->props, TG_TRACE_PROP_JAEGER)) {
        p = (u_char *) mempcpy(p, "uber-trace-id: ", 15);
        p = tg_trace_format_jaeger(p, r->trace_id, r->client_span_id,
                                   r->trace_flags);
        *p++ = CR;
        *p++ = LF;
    }
    if (tc->x_trace_id.len && r->x_trace_id.len) {
        p = (u_char *) mempcpy(p, tc->x_trace_id.data, tc->x_trace_id.len);
        *p++ = ':';
        *p++ = ' ';
        p = (u_char *) mempcpy(p, r->x_trace_id.data, r->x_trace_id.len);
        *p++ = CR;
        *p++ = LF;
    }
    return p;
}


int
tg_http_trace_skip_response_header(tg_http_request_t *r, const tg_str_t *name)
{
    tg_trace_conf_t  *tc = &tg_cycle->trace;

    if (tc->x_trace_id.len && r->x_trace_id.len
        && tg_str_caseeq(name, &tc->x_trace_id))
    {
        return 1;
    }
    return tc->traceresponse && name->len == 13
           && tg_str_caseeq_c(name, "traceresponse");
}


size_t
tg_http_trace_response_headers_max(void)
{
    /* "name: id\r\n" and "traceresponse: 00-<32>-<16>-<2>\r\n" */
    return tg_cycle->trace.x_trace_id.len + 4 + TG_TRACE_XID_MAX + 15 + 55 + 2;
}


u_char *
tg_http_trace_response_headers(tg_http_request_t *r, u_char *p)
{
    tg_trace_conf_t  *tc = &tg_cycle->trace;

    if (r->trace_hex[0] == '\0') {
        return p; /* the request died before its trace started */
    }
    if (tc->x_trace_id.len && r->x_trace_id.len) {
        p = (u_char *) mempcpy(p, tc->x_trace_id.data, tc->x_trace_id.len);
        *p++ = ':';
        *p++ = ' ';
        p = (u_char *) mempcpy(p, r->x_trace_id.data, r->x_trace_id.len);
        *p++ = CR;
        *p++ = LF;
    }
    if (tc->traceresponse) {
        /* W3C Level 2: the callee's span, our SERVER span */
        p = (u_char *) mempcpy(p, "traceresponse: ", 15);
        p = tg_trace_format_traceparent_hex(p, r->trace_hex, r->span_id,
                                            r->trace_flags);
        *p++ = CR;
        *p++ = LF;
    }
    return p;
}


size_t
tg_http_request_spans(tg_http_request_t *r, tg_span_t **spans)
{
    if (!r->sampled || !r->nspans_done) {
        *spans = NULL;
        return 0;
    }
    *spans = r->spans;
    return r->nspans;
}
