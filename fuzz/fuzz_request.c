/*
 * libFuzzer target: the request path without sockets. Bytes from a client
 * go through llhttp with tracegate's request settings (header accumulation
 * and limits), then the steps of tg_http_handle_request(): request target
 * and Host (absolute-form included), path normalisation, Connection
 * tokens, trace context extraction (every propagator, tracestate,
 * X-Trace-ID), routing, the CLIENT attempt, the upstream request head as
 * tg_http_upstream_build_head() writes it, and the SERVER and CLIENT spans,
 * which are then OTLP-encoded. Pipelined requests are handled in order, as
 * tg_http_process_input() does.
 *
 * The first input byte picks the read sizes the parser sees (1..16 bytes,
 * or everything at once) and whether the listener is "ssl"; the rest is
 * the client's byte stream.
 *
 * Chunked body bytes go through tg_http_chunked_check as in
 * tg_http_process_input (a mismatch with llhttp ends the connection).
 *
 * Checks beyond ASan/UBSan:
 *   - a normalised path starts with '/' and has no empty, "." or ".."
 *     segment;
 *   - the upstream head parses as exactly one request head with llhttp
 *     (strict), with the same method, and its framing matches what the
 *     proxy parsed: one Transfer-Encoding: chunked for a chunked body,
 *     else one Content-Length equal to the client's, else neither. So no
 *     request can smuggle a second framing past the proxy, and no header
 *     value can inject a line.
 *
 * tg_http_conn.c and tg_http_upstream.c are included (h2o's unit-test
 * style) to reach their static functions; fuzz/run.sh links every other
 * object.
 */

#include "../src/http/tg_http_conn.c"
#include "../src/http/tg_http_upstream.c"

#include <tg_otlp_encode.h>

#define TG_FUZZ_MAX_REQUESTS 8

typedef struct {
    int       messages;
    int       headers_done;
    int       te_lines;
    int       cl_lines;
    int       te_chunked;
    int64_t   cl;
    int       in_te, in_cl;
    u_char    value[64];
    size_t    vlen;
    int       method;
} tg_fuzz_head_t;

static tg_listen_t  tg_fuzz_listen;
static char         tg_fuzz_prefix[64];


static int
tg_fuzz_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    tg_fuzz_head_t  *h = p->data;

    /* field names arrive in one piece here: the head is one buffer */
    for (size_t i = 0; i < len || len == 0; i++) {
        /* llhttp 8.1 lets ": v" and "X Y: v" through; we must not send them */
        if (len == 0 || !(isalnum((u_char) at[i])
                          || (at[i] && strchr("!#$%&'*+-.^_`|~", at[i]))))
        {
            abort();
        }
    }
    h->in_te = len == 17 && strncasecmp(at, "transfer-encoding", 17) == 0;
    h->in_cl = len == 14 && strncasecmp(at, "content-length", 14) == 0;
    h->te_lines += h->in_te;
    h->cl_lines += h->in_cl;
    h->vlen = 0;
    return 0;
}


static int
tg_fuzz_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    tg_fuzz_head_t  *h = p->data;

    if (h->vlen + len <= sizeof(h->value)) {
        memcpy(h->value + h->vlen, at, len);
    }
    h->vlen += len;
    return 0;
}


/*
 * "coding, coding, chunked": non-empty tokens joined by ", ", chunked once
 * and last; what the upstream may read in one way only.
 */
static int
tg_fuzz_te_canonical(const tg_str_t *v)
{
    size_t  i, start;

    start = 0;
    for (i = 0; i <= v->len; i++) {
        if (i < v->len && v->data[i] != ',') {
            if (v->data[i] <= ' ' || v->data[i] >= 0x7f) {
                return 0;
            }
            continue;
        }
        if (i == start) {
            return 0; /* empty member */
        }
        if (i < v->len) {
            if (i - start == 7 && strncasecmp((char *) v->data + start,
                                              "chunked", 7) == 0)
            {
                return 0; /* chunked before the end */
            }
            if (i + 1 >= v->len || v->data[i + 1] != ' ') {
                return 0;
            }
            i++;
        } else if (i - start != 7
                   || strncasecmp((char *) v->data + start, "chunked", 7))
        {
            return 0;
        }
        start = i + 1;
    }
    return 1;
}


static int
tg_fuzz_on_header_value_complete(llhttp_t *p)
{
    tg_str_t         v;
    tg_fuzz_head_t  *h = p->data;

    v.data = h->value;
    v.len = tg_min(h->vlen, sizeof(h->value));
    if (h->in_te) {
        h->te_chunked = tg_fuzz_te_canonical(&v);
    }
    if (h->in_cl && tg_atoi(v.data, v.len, &h->cl) != TG_OK) {
        h->cl = -2;
    }
    return 0;
}


static int
tg_fuzz_on_headers_complete(llhttp_t *p)
{
    tg_fuzz_head_t  *h = p->data;

    h->headers_done++;
    h->method = llhttp_get_method(p);
    return 1; /* a head only: no body follows in this buffer */
}


static int
tg_fuzz_on_message_complete(llhttp_t *p)
{
    ((tg_fuzz_head_t *) p->data)->messages++;
    return 0;
}


/* The head we send upstream must be one clean request with our framing. */
static void
tg_fuzz_check_head(tg_http_request_t *r, struct evbuffer *out)
{
    size_t             len;
    u_char            *head;
    llhttp_t           p;
    llhttp_errno_t     err;
    tg_fuzz_head_t     h;
    llhttp_settings_t  s;

    len = evbuffer_get_length(out);
    head = malloc(len ? len : 1);
    if (head == NULL) {
        return;
    }
    evbuffer_copyout(out, head, len);
    if (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0) {
        abort();
    }
    llhttp_settings_init(&s);
    s.on_header_field = tg_fuzz_on_header_field;
    s.on_header_value = tg_fuzz_on_header_value;
    s.on_header_value_complete = tg_fuzz_on_header_value_complete;
    s.on_headers_complete = tg_fuzz_on_headers_complete;
    s.on_message_complete = tg_fuzz_on_message_complete;
    memset(&h, 0, sizeof(h));
    h.cl = -1;
    llhttp_init(&p, HTTP_REQUEST, &s);
    p.data = &h;
    err = llhttp_execute(&p, (const char *) head, len);
    if (err == HPE_PAUSED_UPGRADE && r->tunnel.requested && h.headers_done == 1) {
        err = HPE_OK; /* a tunnel request: llhttp stops after its head */
        h.messages = 1;
    }
    if (err != HPE_OK || h.headers_done != 1 || h.messages != 1) {
        /* not exactly one well-formed request head */
        fprintf(stderr, "upstream head rejected: %s (%s), %d heads:\n",
                llhttp_errno_name(err), llhttp_get_error_reason(&p),
                h.headers_done);
        fwrite(head, 1, len, stderr);
        abort();
    }
    if ((size_t) h.method != (size_t) llhttp_get_method(&r->c->parser)) {
        abort();
    }
    if (r->chunked) {
        if (h.te_lines != 1 || !h.te_chunked || h.cl_lines != 0) {
            abort();
        }
    } else if (r->content_length >= 0) {
        if (h.te_lines != 0 || h.cl_lines != 1 || h.cl != r->content_length) {
            abort();
        }
    } else if (h.te_lines != 0 || (h.cl_lines != 0 && h.cl != 0)) {
        abort();
    }
    free(head);
}


static void
tg_fuzz_check_path(const tg_str_t *path)
{
    size_t  i, seg;

    if (path->len == 0 || path->data[0] != '/') {
        abort();
    }
    seg = 1;
    for (i = 1; i <= path->len; i++) {
        if (i < path->len && path->data[i] != '/') {
            continue;
        }
        /* segment path->data[seg .. i) */
        if ((i - seg == 0 && i < path->len)
            || (i - seg == 1 && path->data[seg] == '.')
            || (i - seg == 2 && path->data[seg] == '.'
                && path->data[seg + 1] == '.'))
        {
            abort();
        }
        seg = i + 1;
    }
}


/* tg_http_handle_request() up to the upstream connect, then the spans. */
static void
tg_fuzz_handle(tg_http_request_t *r)
{
    int               conn, method;
    size_t            n, i, hlen;
    u_char           *head;
    tg_span_t        *spans;
    const tg_span_t **sp;
    tg_http_conn_t   *c = r->c;
    struct evbuffer  *out;
    tg_otlp_buf_t     pb;
    tg_otlp_resource_t  res = { NULL, 0 };

    method = llhttp_get_method(&c->parser);
    r->method.data = (u_char *) llhttp_method_name((llhttp_method_t) method);
    r->method.len = strlen((char *) r->method.data);
    r->head = method == HTTP_HEAD;
    r->http_major = c->parser.http_major;
    r->http_minor = c->parser.http_minor;
    if (!r->headers_done) {
        r->keepalive = llhttp_should_keep_alive(&c->parser) ? 1 : 0;
    }
    if (method == HTTP_CONNECT || tg_http_parse_target(r) != TG_OK
        || tg_http_find_host(r) != TG_OK)
    {
        tg_http_trace_start(r);
        r->keepalive = 0;
        r->status = 400;
        tg_http_trace_server_end(r);
        return;
    }
    tg_fuzz_check_path(&r->path);
    conn = tg_http_parse_connection_tokens(r, &r->headers);
    if (conn & 1) {
        r->keepalive = 0;
    }
    if (llhttp_get_upgrade(&c->parser)) {
        r->keepalive = 0;
        r->tunnel.requested = method == HTTP_GET && r->http_minor >= 1 && (conn & 4);
    }
    r->route = tg_http_route_find(tg_http_routes(tg_cycle), &r->path);
    tg_http_trace_start(r);
    if (r->route) {
        r->upstream.conf = r->route->upstream;
        r->upstream.server = r->upstream.conf->servers.elts;
        r->upstream.attempts = 1;
        tg_http_trace_client_attempt(r);
        out = evbuffer_new();
        if (out == NULL) {
            return;
        }
        if (tg_http_upstream_build_head(r, &head, &hlen) == TG_OK
            && evbuffer_add(out, head, hlen) == 0)
        {
            tg_fuzz_check_head(r, out);
        }
        evbuffer_free(out);
        r->upstream.headers_done = 1;
        r->upstream.status = 200;
        r->upstream.done = 1;
        tg_http_trace_client_end(r);
        r->status = 200;
    } else {
        r->status = 404;
    }
    tg_http_trace_server_end(r);

    n = tg_http_request_spans(r, &spans);
    if (n) {
        sp = malloc(n * sizeof(tg_span_t *));
        if (sp == NULL) {
            return;
        }
        for (i = 0; i < n; i++) {
            sp[i] = &spans[i];
        }
        memset(&pb, 0, sizeof(pb));
        if (tg_otlp_encode_protobuf(&res, sp, n, &pb) != TG_OK) {
            abort();
        }
        tg_otlp_buf_free(&pb);
        free(sp);
    }
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int          fd;
    char         path[128], err[TG_CONF_ERRLEN + 64];
    tg_cycle_t  *cycle;

    static const char  conf[] =
        "[main]\n"
        "listen = 127.0.0.1:1\n"
        "trusted_proxy = 192.0.2.0/24\n"
        "client_max_header_size = 4k\n"
        "client_max_headers = 40\n"
        "client_max_uri_size = 1k\n"
        "client_max_body_size = 64k\n"
        "[upstream a]\n"
        "server = 127.0.0.1:9\n"
        "[upstream b]\n"
        "server = 127.0.0.1:10\n"
        "host = backend.internal\n"
        "[route /service-a]\n"
        "upstream = a\n"
        "strip_prefix = on\n"
        "[route /]\n"
        "upstream = b\n"
        "[trace]\n"
        "propagators = tracecontext,b3,b3multi,jaeger\n"
        "x_trace_id = X-Trace-ID\n"
        "capture_request_header = user-agent\n"
        "capture_request_header = x-b3-sampled\n";

    snprintf(tg_fuzz_prefix, sizeof(tg_fuzz_prefix), "/tmp/tg-fuzz-req.%d",
             (int) getpid());
    mkdir(tg_fuzz_prefix, 0700);
    snprintf(path, sizeof(path), "%s/logs", tg_fuzz_prefix);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/fuzz.conf", tg_fuzz_prefix);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, conf, sizeof(conf) - 1) != sizeof(conf) - 1) {
        abort();
    }
    close(fd);
    cycle = tg_cycle_load(tg_fuzz_prefix, "fuzz.conf", err, sizeof(err));
    if (cycle == NULL) {
        fprintf(stderr, "fuzz_request: %s\n", err);
        abort();
    }
    tg_cycle = cycle;
    tg_log_global.level = -1;
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  nreq;
    size_t               step, off, n, consumed;
    tg_http_conn_t      *c;
    llhttp_errno_t       err;
    tg_http_request_t   *r;
    struct sockaddr_in  *sin;

    if (size < 1) {
        return 0;
    }
    step = data[0] & 0x0f;
    tg_fuzz_listen.ssl = 0;
    data++;
    size--;

    c = calloc(1, sizeof(tg_http_conn_t));
    if (c == NULL) {
        return 0;
    }
    c->rpool = tg_pool_create(4096);
    if (c->rpool == NULL) {
        goto done;
    }
    c->listen = &tg_fuzz_listen;
    c->log = tg_log_global;
    c->number = 1;
    snprintf(c->peer_text, sizeof(c->peer_text), "192.0.2.7");
    c->peer_port = 40000;
    sin = (struct sockaddr_in *) &c->peer;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(0xc0000207);
    c->peerlen = sizeof(*sin);
    llhttp_init(&c->parser, HTTP_REQUEST, &tg_http_request_settings);
    c->parser.data = c;

    off = 0;
    r = NULL;
    for (nreq = 0; nreq < TG_FUZZ_MAX_REQUESTS && off < size;) {
        if (r == NULL) {
            r = tg_pcalloc(c->rpool, sizeof(tg_http_request_t));
            if (r == NULL
                || tg_array_init(&r->headers, c->rpool, 16,
                                 sizeof(tg_http_header_t))
                       != TG_OK)
            {
                break;
            }
            r->c = c;
            r->pool = c->rpool;
            r->content_length = -1;
            r->upstream.content_length = -1;
            r->start_ns = tg_time_now_ns();
            c->r = r;
        }
        n = step ? tg_min(step, size - off) : size - off;
        err = llhttp_execute(&c->parser, (const char *) data + off, n);
        if ((err == HPE_OK || err == HPE_PAUSED) && r->headers_done
            && r->chunked && r->method.len)
        {
            /* body bytes: the framing check of tg_http_process_input */
            consumed = err == HPE_OK
                           ? n
                           : (size_t) (llhttp_get_error_pos(&c->parser)
                                       - (const char *) data - off);
            if (tg_http_chunked_check(&r->chunk_check, data + off, consumed)
                != (r->body_done ? TG_DONE : TG_OK))
            {
                err = HPE_INVALID_CHUNK_SIZE;
            }
        }
        if (err == HPE_OK) {
            off += n;
            continue;
        }
        if (err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE) {
            /* a 400/413/414/431: the connection closes, nothing goes on */
            tg_http_trace_start(r);
            r->status = r->err_status ? r->err_status : 400;
            tg_http_trace_server_end(r);
            break;
        }
        consumed = (size_t) (llhttp_get_error_pos(&c->parser)
                             - (const char *) data - off);
        off += consumed;
        if (!r->body_done) {
            /* paused at the end of the headers: the body comes next */
            llhttp_resume(&c->parser);
            tg_fuzz_handle(r);
            if (!r->keepalive && r->status == 400) {
                break;
            }
            continue;
        }
        if (r->state == TG_HTTP_READ_HEADERS && r->method.len == 0) {
            tg_fuzz_handle(r);
        }
        /* the request is complete: the next one starts on a clean pool */
        nreq++;
        if (!r->keepalive || err == HPE_PAUSED_UPGRADE) {
            break;
        }
        llhttp_resume(&c->parser);
        c->r = NULL;
        r = NULL;
        tg_pool_reset(c->rpool);
    }

done:
    tg_pool_destroy(c->rpool);
    free(c);
    return 0;
}
