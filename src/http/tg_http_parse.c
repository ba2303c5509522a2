#include <tg_config.h>
#include <tg_core.h>
#include <tg_http.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>


#define TG_HTTP_MAX_RESPONSE_HEADER_BYTES (64 * 1024) /* 502 */
#define TG_HTTP_MAX_RESPONSE_HEADERS      200         /* 502 */

static int tg_http_append(tg_pool_t *pool, tg_str_t *s, const char *at,
    size_t len);
static int tg_http_parse_check_te(tg_http_request_t *r);
static int tg_http_parse_token(const tg_str_t *name);
static int tg_http_parse_trailer(tg_http_request_t *r);

enum {
    TG_HTTP_CK_SIZE = 0,   /* chunk size digits */
    TG_HTTP_CK_EXT,        /* after the size: BWS, extensions, until CR */
    TG_HTTP_CK_SIZE_LF,
    TG_HTTP_CK_DATA,
    TG_HTTP_CK_DATA_CR,
    TG_HTTP_CK_DATA_LF,
    TG_HTTP_CK_TRAILER,    /* at the start of a trailer line or the end */
    TG_HTTP_CK_FIELD,      /* inside a trailer line */
    TG_HTTP_CK_FIELD_LF,
    TG_HTTP_CK_END_LF,     /* CR of the empty line seen */
    TG_HTTP_CK_DONE
};


/*
 * A field name must be a token (RFC 9110 5.1, 5.6.2). llhttp 8.1 passes
 * an empty name (": v") and names with spaces inside ("X Forwarded: v"),
 * which we would otherwise forward as written; other servers read such
 * lines in other ways.
 */
static int
tg_http_parse_token(const tg_str_t *name)
{
    size_t  i;

    /* RFC 9110 5.6.2 tchar: ALPHA, DIGIT, "!#$%&'*+-.^_`|~" */
    static const uint8_t  tchar[256] = {
        ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
        ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
        ['`'] = 1, ['|'] = 1, ['~'] = 1,
        ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
        ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
        ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
        ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
        ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
        ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
        ['Y'] = 1, ['Z'] = 1,
        ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
        ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
        ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
        ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
        ['y'] = 1, ['z'] = 1,
    };

    if (name->len == 0) {
        return 0;
    }
    for (i = 0; i < name->len; i++) {
        if (!tchar[name->data[i]]) {
            return 0;
        }
    }
    return 1;
}


int
tg_http_chunked_check(tg_http_chunked_t *ck, const u_char *p, size_t len)
{
    u_char        ch;
    size_t        n;
    const u_char *end = p + len;

    while (p < end) {
        ch = *p;
        switch (ck->state) {
        case TG_HTTP_CK_SIZE:
            if (isxdigit(ch)) {
                if (++ck->digits > 16) {
                    return TG_ERROR;
                }
                ck->left = (ck->left << 4)
                           | (uint64_t) (ch <= '9' ? ch - '0'
                                                   : (ch | 0x20) - 'a' + 10);
                break;
            }
            if (ck->digits == 0) {
                return TG_ERROR;
            }
            ck->state = TG_HTTP_CK_EXT;
            continue;
        case TG_HTTP_CK_EXT:
            if (ch == CR) {
                ck->state = TG_HTTP_CK_SIZE_LF;
            } else if (ch == LF || (ch < 0x20 && ch != '\t') || ch == 0x7f) {
                return TG_ERROR;
            }
            break;
        case TG_HTTP_CK_SIZE_LF:
            if (ch != LF) {
                return TG_ERROR;
            }
            ck->state = ck->left ? TG_HTTP_CK_DATA : TG_HTTP_CK_TRAILER;
            break;
        case TG_HTTP_CK_DATA:
            n = tg_min((uint64_t) (end - p), ck->left);
            ck->left -= n;
            p += n;
            if (ck->left == 0) {
                ck->state = TG_HTTP_CK_DATA_CR;
            }
            continue;
        case TG_HTTP_CK_DATA_CR:
            if (ch != CR) {
                return TG_ERROR;
            }
            ck->state = TG_HTTP_CK_DATA_LF;
            break;
        case TG_HTTP_CK_DATA_LF:
            if (ch != LF) {
                return TG_ERROR;
            }
            ck->state = TG_HTTP_CK_SIZE;
            ck->digits = 0;
            break;
        case TG_HTTP_CK_TRAILER:
            if (ch == CR) {
                ck->state = TG_HTTP_CK_END_LF;
            } else if (ch == LF) {
                return TG_ERROR;
            } else {
                ck->state = TG_HTTP_CK_FIELD;
            }
            break;
        case TG_HTTP_CK_FIELD:
            if (ch == CR) {
                ck->state = TG_HTTP_CK_FIELD_LF;
            } else if (ch == LF || ch == '\0') {
                return TG_ERROR;
            }
            break;
        case TG_HTTP_CK_FIELD_LF:
            if (ch != LF) {
                return TG_ERROR;
            }
            ck->state = TG_HTTP_CK_TRAILER;
            break;
        case TG_HTTP_CK_END_LF:
            if (ch != LF) {
                return TG_ERROR;
            }
            ck->state = TG_HTTP_CK_DONE;
            break;
        default: /* TG_HTTP_CK_DONE: nothing may follow */
            return TG_ERROR;
        }
        p++;
    }
    return ck->state == TG_HTTP_CK_DONE ? TG_DONE : TG_OK;
}


/*
 * Tokens arrive in pieces across reads and `at` dies with the execute
 * call, so pieces are copied into the request pool and joined.
 */
static int
tg_http_append(tg_pool_t *pool, tg_str_t *s, const char *at, size_t len)
{
    u_char  *p;

    if (len == 0) {
        if (s->data == NULL) {
            s->data = (u_char *) "";
        }
        return TG_OK;
    }
    p = tg_pnalloc(pool, s->len + len + 1);
    if (p == NULL) {
        return TG_ERROR;
    }
    if (s->len) {
        memcpy(p, s->data, s->len);
    }
    memcpy(p + s->len, at, len);
    p[s->len + len] = '\0';
    s->data = p;
    s->len += len;
    return TG_OK;
}


/* Moves the header just read (r->cur_name, r->cur_value) into headers. */
static int
tg_http_parse_push_header(tg_http_request_t *r, tg_array_t *headers)
{
    tg_http_header_t  *h;

    h = tg_array_push(headers);
    if (h == NULL) {
        return TG_ERROR;
    }
    h->name = r->cur_name;
    h->value = r->cur_value;
    if (h->value.data == NULL) {
        h->value.data = (u_char *) "";
    }
    tg_str_trim_ows(&h->value);
    h->flags = (uint32_t) tg_http_header_flags(&h->name);
    r->cur_name.len = 0;
    r->cur_name.data = NULL;
    r->cur_value.len = 0;
    r->cur_value.data = NULL;
    return TG_OK;
}


static int
tg_http_parse_fail(tg_http_request_t *r, int status, const char *reason)
{
    r->err_status = status;
    llhttp_set_error_reason(&r->c->parser, reason);
    return HPE_USER;
}


static int
tg_http_parse_on_url(llhttp_t *p, const char *at, size_t len)
{
    tg_http_request_t  *r = ((tg_http_conn_t *) p->data)->r;

    if (r->uri.len + len > (size_t) tg_cycle->main.client_max_uri_size) {
        return tg_http_parse_fail(r, 414, "URI too long");
    }
    r->header_bytes += len;
    if (tg_http_append(r->pool, &r->uri, at, len) != TG_OK) {
        return tg_http_parse_fail(r, 500, "out of memory");
    }
    return 0;
}


static int
tg_http_parse_header_bytes(tg_http_request_t *r, size_t len)
{
    r->header_bytes += len;
    if (r->header_bytes > (size_t) tg_cycle->main.client_max_header_size) {
        return tg_http_parse_fail(r, 431, "request header too large");
    }
    return 0;
}


static int
tg_http_parse_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    tg_http_request_t  *r = ((tg_http_conn_t *) p->data)->r;

    if (tg_http_parse_header_bytes(r, len) != 0) {
        return HPE_USER;
    }
    if (tg_http_append(r->pool, &r->cur_name, at, len) != TG_OK) {
        return tg_http_parse_fail(r, 500, "out of memory");
    }
    return 0;
}


static int
tg_http_parse_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    tg_http_request_t  *r = ((tg_http_conn_t *) p->data)->r;

    if (tg_http_parse_header_bytes(r, len) != 0) {
        return HPE_USER;
    }
    if (tg_http_append(r->pool, &r->cur_value, at, len) != TG_OK) {
        return tg_http_parse_fail(r, 500, "out of memory");
    }
    return 0;
}


/*
 * A field of a chunked body's trailer section. The body goes upstream as
 * it came, so a trailer cannot be dropped: a field that the gateway sets
 * or rewrites in the head (Host, framing, hop-by-hop, forwarding, trace
 * context, the correlation header) would reach the upstream beside our
 * value, and a recipient that merges trailers into the head would see the
 * client's; such a request is refused. Other fields pass unchanged.
 */
static int
tg_http_parse_trailer(tg_http_request_t *r)
{
    uint32_t   flags;
    tg_str_t  *name = &r->cur_name;

    if (++r->trailers > (unsigned) tg_cycle->main.client_max_headers) {
        return tg_http_parse_fail(r, 431, "too many trailer fields");
    }
    if (!tg_http_parse_token(name)) {
        return tg_http_parse_fail(r, 400, "invalid trailer field name");
    }
    flags = (uint32_t) tg_http_header_flags(name);
    if ((flags
         & (TG_HTTP_HDR_HOST | TG_HTTP_HDR_HOP | TG_HTTP_HDR_TE
            | TG_HTTP_HDR_CL | TG_HTTP_HDR_EXPECT | TG_HTTP_HDR_XFF
            | TG_HTTP_HDR_XFWD | TG_HTTP_HDR_TRACE | TG_HTTP_HDR_PROP))
        || tg_str_caseeq_c(name, "forwarded")
        || (tg_cycle->trace.x_trace_id.len
            && tg_str_caseeq(name, &tg_cycle->trace.x_trace_id)))
    {
        return tg_http_parse_fail(r, 400, "a trailer field that the "
                                  "gateway sets in the header section");
    }
    r->cur_name.len = 0;
    r->cur_name.data = NULL;
    r->cur_value.len = 0;
    r->cur_value.data = NULL;
    return 0;
}


static int
tg_http_parse_on_header_value_complete(llhttp_t *p)
{
    tg_http_request_t  *r = ((tg_http_conn_t *) p->data)->r;

    if (r->headers_done) {
        return tg_http_parse_trailer(r);
    }
    if (r->headers.nelts >= (size_t) tg_cycle->main.client_max_headers) {
        return tg_http_parse_fail(r, 431, "too many request headers");
    }
    if (!tg_http_parse_token(&r->cur_name)) {
        return tg_http_parse_fail(r, 400, "invalid header name");
    }
    if (tg_http_parse_push_header(r, &r->headers) != TG_OK) {
        return tg_http_parse_fail(r, 500, "out of memory");
    }
    return 0;
}


/*
 * llhttp takes any Transfer-Encoding whose last coding is chunked, across
 * any number of lines and with empty list members (",chunked"). Servers
 * behind us may read those differently, which is how requests get
 * smuggled, so only one line of exactly "chunked" passes (as nginx does):
 * a second line is 400, any other coding 501 (RFC 9112 6.1). Then the
 * request continues (or pauses) as llhttp decided.
 */
static int
tg_http_parse_check_te(tg_http_request_t *r)
{
    size_t             i, n;
    tg_str_t          *te;
    tg_http_header_t  *h;

    te = NULL;
    n = 0;
    h = r->headers.elts;
    for (i = 0; i < r->headers.nelts; i++) {
        if (h[i].flags & TG_HTTP_HDR_TE) {
            te = &h[i].value;
            n++;
        }
    }
    if (n != 1) {
        return tg_http_parse_fail(r, 400, "duplicate Transfer-Encoding");
    }
    if (!tg_str_caseeq_c(te, "chunked")) {
        return tg_http_parse_fail(r, 501, "unsupported Transfer-Encoding");
    }
    if (r->chunked) {
        return HPE_PAUSED; /* handle headers before the body flows */
    }
    return 0;
}


static int
tg_http_parse_on_headers_complete(llhttp_t *p)
{
    tg_http_request_t  *r = ((tg_http_conn_t *) p->data)->r;

    r->headers_done = 1;
    r->http_major = p->http_major;
    r->http_minor = p->http_minor;
    r->keepalive = llhttp_should_keep_alive(p) ? 1 : 0;
    if (p->flags & F_CHUNKED) {
        r->chunked = 1;
    } else if (p->flags & F_CONTENT_LENGTH) {
        r->content_length = (int64_t) p->content_length;
        if (tg_cycle->main.client_max_body_size
            && r->content_length > tg_cycle->main.client_max_body_size)
        {
            return tg_http_parse_fail(r, 413, "request body too large");
        }
    }
    if (r->http_major == 1 && r->http_minor == 0 && (p->flags & F_TRANSFER_ENCODING))
    {
        /* RFC 9112 6.1: framing of a 1.0 message with Transfer-Encoding
           is faulty */
        return tg_http_parse_fail(r, 400, "HTTP/1.0 with Transfer-Encoding");
    }
    if (p->flags & F_TRANSFER_ENCODING) {
        return tg_http_parse_check_te(r);
    }
    if (r->chunked || r->content_length > 0) {
        return HPE_PAUSED; /* handle headers before the body flows */
    }
    return 0; /* no body: message_complete follows and pauses */
}


static int
tg_http_parse_on_body(llhttp_t *p, const char *at, size_t len)
{
    tg_http_request_t  *r = ((tg_http_conn_t *) p->data)->r;

    r->request_body_bytes += len;
    if (tg_cycle->main.client_max_body_size
        && r->request_body_bytes
               > (uint64_t) tg_cycle->main.client_max_body_size)
    {
        return tg_http_parse_fail(r, 413, "request body too large");
    }
    return 0;
}


/*
 * The chunk size is known before its data: refuse one that cannot fit the
 * body limit now, rather than after relaying a megabyte, and one beyond
 * 2^63 - 1 at once. llhttp takes sizes up to 2^64 - 1, which servers that
 * keep sizes in a signed 64-bit integer read as negative.
 */
static int
tg_http_parse_on_chunk_header(llhttp_t *p)
{
    tg_http_request_t  *r = ((tg_http_conn_t *) p->data)->r;

    if (p->content_length > (uint64_t) INT64_MAX) {
        return tg_http_parse_fail(r, 400, "chunk size too large");
    }
    if (tg_cycle->main.client_max_body_size
        && r->request_body_bytes + p->content_length
               > (uint64_t) tg_cycle->main.client_max_body_size)
    {
        return tg_http_parse_fail(r, 413, "request body too large");
    }
    return 0;
}


static int
tg_http_parse_on_message_complete(llhttp_t *p)
{
    tg_http_request_t  *r = ((tg_http_conn_t *) p->data)->r;

    r->body_done = 1;
    return HPE_PAUSED; /* one request in flight; the rest stays queued */
}


const llhttp_settings_t  tg_http_request_settings = {
    .on_url = tg_http_parse_on_url,
    .on_header_field = tg_http_parse_on_header_field,
    .on_header_value = tg_http_parse_on_header_value,
    .on_header_value_complete = tg_http_parse_on_header_value_complete,
    .on_headers_complete = tg_http_parse_on_headers_complete,
    .on_body = tg_http_parse_on_body,
    .on_chunk_header = tg_http_parse_on_chunk_header,
    .on_message_complete = tg_http_parse_on_message_complete,
};


/* response parser: p->data is the request */

static int
tg_http_parse_resp_fail(tg_http_request_t *r, const char *reason)
{
    llhttp_set_error_reason(&r->upstream.parser, reason);
    return HPE_USER;
}


static int
tg_http_parse_resp_on_status(llhttp_t *p, const char *at, size_t len)
{
    tg_http_request_t  *r = p->data;

    r->upstream.got_bytes = 1;
    if (r->upstream.reason.len + len > 256) {
        return tg_http_parse_resp_fail(r, "status line too long");
    }
    if (tg_http_append(r->pool, &r->upstream.reason, at, len) != TG_OK) {
        return tg_http_parse_resp_fail(r, "out of memory");
    }
    return 0;
}


static int
tg_http_parse_resp_bytes(tg_http_request_t *r, size_t len)
{
    r->upstream.got_bytes = 1;
    r->header_bytes += len;
    if (r->header_bytes > TG_HTTP_MAX_RESPONSE_HEADER_BYTES) {
        return tg_http_parse_resp_fail(r, "response header too large");
    }
    return 0;
}


static int
tg_http_parse_resp_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    tg_http_request_t  *r = p->data;

    if (tg_http_parse_resp_bytes(r, len) != 0) {
        return HPE_USER;
    }
    if (tg_http_append(r->pool, &r->cur_name, at, len) != TG_OK) {
        return tg_http_parse_resp_fail(r, "out of memory");
    }
    return 0;
}


static int
tg_http_parse_resp_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    tg_http_request_t  *r = p->data;

    if (tg_http_parse_resp_bytes(r, len) != 0) {
        return HPE_USER;
    }
    if (tg_http_append(r->pool, &r->cur_value, at, len) != TG_OK) {
        return tg_http_parse_resp_fail(r, "out of memory");
    }
    return 0;
}


static int
tg_http_parse_resp_on_header_value_complete(llhttp_t *p)
{
    tg_http_request_t  *r = p->data;

    if (r->upstream.headers.nelts >= TG_HTTP_MAX_RESPONSE_HEADERS) {
        return tg_http_parse_resp_fail(r, "too many response headers");
    }
    if (!tg_http_parse_token(&r->cur_name)) {
        return tg_http_parse_resp_fail(r, "invalid header name");
    }
    if (tg_http_parse_push_header(r, &r->upstream.headers) != TG_OK) {
        return tg_http_parse_resp_fail(r, "out of memory");
    }
    return 0;
}


static int
tg_http_parse_resp_on_headers_complete(llhttp_t *p)
{
    int                 status;
    tg_http_request_t  *r = p->data;

    status = llhttp_get_status_code(p);
    r->upstream.status = status;
    if (status < 100 || status > 999) {
        /* llhttp 8.1 takes "HTTP/1.1 \r\n" as status 0 and "20" as 20:
           never relay what is not a three-digit code (RFC 9110 15) */
        return tg_http_parse_resp_fail(r, "invalid status code");
    }
    if (status == 101) {
        if (!r->tunnel.requested) {
            return tg_http_parse_resp_fail(r, "unexpected 101 response");
        }
        if (!tg_http_upgrade_matches(r)) {
            return tg_http_parse_resp_fail(r, "101 response switching to a "
                                           "protocol the client did not "
                                           "ask for");
        }
        r->upstream.headers_done = 1;
        return HPE_PAUSED; /* what follows belongs to the tunnel */
    }
    if (status >= 100 && status < 200) {
        /* interim (RFC 9110 15.2: never a body, whatever Content-Length
           says): complete right away, then dropped */
        return 1;
    }
    r->upstream.headers_done = 1;
    if (p->flags & F_CHUNKED) {
        r->upstream.chunked = 1;
    } else if (p->flags & F_CONTENT_LENGTH) {
        r->upstream.content_length = (int64_t) p->content_length;
    }
    if (r->head) {
        return 1; /* the response to HEAD has no body, whatever it says */
    }
    if (status == 204 || status == 304
        || ((p->flags & F_CONTENT_LENGTH) && p->content_length == 0
            && !(p->flags & F_CHUNKED)))
    {
        return 0; /* message_complete follows and pauses */
    }
    return HPE_PAUSED;
}


static int
tg_http_parse_resp_on_body(llhttp_t *p, const char *at, size_t len)
{
    tg_http_request_t  *r = p->data;

    r->upstream.body_bytes += len;
    if (r->response_dechunk) {
        if (bufferevent_write(r->c->bev, at, len) < 0) {
            return tg_http_parse_resp_fail(r, "out of memory");
        }
        r->body_bytes_sent += len;
        r->bytes_sent += len;
    }
    return 0;
}


static int
tg_http_parse_resp_on_message_complete(llhttp_t *p)
{
    tg_http_request_t  *r = p->data;

    if (!r->upstream.headers_done) {
        /* an interim 1xx response: forget it and parse the next one */
        r->upstream.headers.nelts = 0;
        r->upstream.reason.len = 0;
        r->upstream.reason.data = NULL;
        r->header_bytes = 0;
        return 0;
    }
    r->upstream.done = 1;
    return HPE_PAUSED;
}


const llhttp_settings_t  tg_http_response_settings = {
    .on_status = tg_http_parse_resp_on_status,
    .on_header_field = tg_http_parse_resp_on_header_field,
    .on_header_value = tg_http_parse_resp_on_header_value,
    .on_header_value_complete = tg_http_parse_resp_on_header_value_complete,
    .on_headers_complete = tg_http_parse_resp_on_headers_complete,
    .on_body = tg_http_parse_resp_on_body,
    .on_message_complete = tg_http_parse_resp_on_message_complete,
};
