#include <tg_config.h>
#include <tg_core.h>
#include <tg_http.h>


typedef struct {
    tg_str_t  name;
    uint32_t  flags;
} tg_http_known_header_t;

/* RFC 9110 7.6.1 hop-by-hop fields, plus the ones we rewrite ourselves */
static tg_http_known_header_t  tg_http_known_headers[] = {
    { tg_string("host"), TG_HTTP_HDR_HOST },
    { tg_string("connection"), TG_HTTP_HDR_HOP | TG_HTTP_HDR_CONNECTION },
    { tg_string("keep-alive"), TG_HTTP_HDR_HOP },
    { tg_string("proxy-connection"), TG_HTTP_HDR_HOP },
    { tg_string("te"), TG_HTTP_HDR_HOP },
    { tg_string("trailer"), TG_HTTP_HDR_HOP },
    { tg_string("upgrade"), TG_HTTP_HDR_HOP | TG_HTTP_HDR_UPGRADE },
    { tg_string("transfer-encoding"), TG_HTTP_HDR_TE },
    { tg_string("content-length"), TG_HTTP_HDR_CL },
    { tg_string("expect"), TG_HTTP_HDR_EXPECT | TG_HTTP_HDR_HOP },
    { tg_string("x-forwarded-for"), TG_HTTP_HDR_XFF | TG_HTTP_HDR_LIST },
    { tg_string("x-forwarded-proto"), TG_HTTP_HDR_XFWD },
    { tg_string("x-forwarded-host"), TG_HTTP_HDR_XFWD },
    { tg_string("traceparent"), TG_HTTP_HDR_TRACE },
    { tg_string("tracestate"), TG_HTTP_HDR_TRACE },
    { tg_string("authorization"), TG_HTTP_HDR_SECRET },
    { tg_string("proxy-authorization"), TG_HTTP_HDR_SECRET | TG_HTTP_HDR_HOP },
    { tg_string("proxy-authenticate"), TG_HTTP_HDR_HOP },
    { tg_string("cookie"), TG_HTTP_HDR_SECRET },
    { tg_string("set-cookie"), TG_HTTP_HDR_SECRET },
    { tg_string("user-agent"), TG_HTTP_HDR_UA },
    { tg_string("b3"), TG_HTTP_HDR_PROP },
    { tg_string("x-b3-traceid"), TG_HTTP_HDR_PROP },
    { tg_string("x-b3-spanid"), TG_HTTP_HDR_PROP },
    { tg_string("x-b3-parentspanid"), TG_HTTP_HDR_PROP },
    { tg_string("x-b3-sampled"), TG_HTTP_HDR_PROP },
    { tg_string("x-b3-flags"), TG_HTTP_HDR_PROP },
    { tg_string("uber-trace-id"), TG_HTTP_HDR_PROP },
};


#define TG_HTTP_KNOWN_MAXLEN 20

/* per (length, lowercase first letter): the first candidate, then a chain */
static int8_t  tg_http_known_first[TG_HTTP_KNOWN_MAXLEN][26];
static int8_t  tg_http_known_next[tg_nelts(tg_http_known_headers)];
static int     tg_http_known_ready;


static void
tg_http_known_index(void)
{
    size_t   i, len;
    u_char   c0;
    int8_t  *slot;

    memset(tg_http_known_first, -1, sizeof(tg_http_known_first));
    for (i = tg_nelts(tg_http_known_headers); i-- > 0;) {
        len = tg_http_known_headers[i].name.len;
        c0 = tg_http_known_headers[i].name.data[0];
        slot = &tg_http_known_first[len][c0 - 'a'];
        tg_http_known_next[i] = *slot;
        *slot = (int8_t) i;
    }
    tg_http_known_ready = 1;
}


/*
 * Called for every header of every message: candidates come from an index
 * by length and first letter, so most names cost one lookup.
 */
int
tg_http_header_flags(const tg_str_t *name)
{
    int                            i;
    size_t                         j;
    u_char                         c0;
    const tg_http_known_header_t  *k;

    if (!tg_http_known_ready) {
        tg_http_known_index();
    }
    if (name->len == 0 || name->len >= TG_HTTP_KNOWN_MAXLEN) {
        return 0;
    }
    c0 = tg_tolower(name->data[0]);
    if (c0 < 'a' || c0 > 'z') {
        return 0;
    }
    for (i = tg_http_known_first[name->len][c0 - 'a']; i >= 0;
         i = tg_http_known_next[i])
    {
        k = &tg_http_known_headers[i];
        for (j = 1; j < name->len; j++) {
            if (tg_tolower(name->data[j]) != k->name.data[j]) {
                break;
            }
        }
        if (j == name->len) {
            return (int) k->flags;
        }
    }
    return 0;
}


/*
 * Marks every header named in a Connection field as dropped (RFC 9110
 * 7.6.1), and notes "close" / "keep-alive" tokens. Returns a bitmask:
 * 1 = close seen, 2 = keep-alive seen, 4 = upgrade seen.
 */
int
tg_http_parse_connection_tokens(tg_http_request_t *r, tg_array_t *headers)
{
    int                rc;
    size_t             i, j;
    tg_str_t           rest, tok;
    tg_http_header_t  *h;

    rc = 0;
    h = headers->elts;
    for (i = 0; i < headers->nelts; i++) {
        if (!(h[i].flags & TG_HTTP_HDR_CONNECTION)) {
            continue;
        }
        rest = h[i].value;
        while (tg_str_next_token(&rest, ',', &tok)) {
            if (tok.len == 0) {
                continue;
            }
            if (tg_str_caseeq_c(&tok, "close")) {
                rc |= 1;
                continue;
            }
            if (tg_str_caseeq_c(&tok, "keep-alive")) {
                rc |= 2;
                continue;
            }
            if (tg_str_caseeq_c(&tok, "upgrade")) {
                rc |= 4;
            }
            for (j = 0; j < headers->nelts; j++) {
                if (tg_str_caseeq(&h[j].name, &tok)) {
                    h[j].flags |= TG_HTTP_HDR_DROP;
                }
            }
        }
    }
    return rc;
}


/* Whether tok is a member of the comma lists in the fields with flag. */
static int
tg_http_list_has(tg_array_t *headers, uint32_t flag, const tg_str_t *tok)
{
    size_t             i;
    tg_str_t           rest, m;
    tg_http_header_t  *h;

    h = headers->elts;
    for (i = 0; i < headers->nelts; i++) {
        if (!(h[i].flags & flag)) {
            continue;
        }
        rest = h[i].value;
        while (tg_str_next_token(&rest, ',', &m)) {
            if (m.len && tg_str_caseeq(&m, tok)) {
                return 1;
            }
        }
    }
    return 0;
}


int
tg_http_upgrade_matches(tg_http_request_t *r)
{
    int                n;
    size_t             i;
    tg_str_t           rest, tok;
    tg_http_header_t  *h;

    n = 0;
    h = r->upstream.headers.elts;
    for (i = 0; i < r->upstream.headers.nelts; i++) {
        if (!(h[i].flags & TG_HTTP_HDR_UPGRADE)) {
            continue;
        }
        rest = h[i].value;
        while (tg_str_next_token(&rest, ',', &tok)) {
            if (tok.len == 0) {
                continue;
            }
            if (!tg_http_list_has(&r->headers, TG_HTTP_HDR_UPGRADE, &tok)) {
                return 0;
            }
            n++;
        }
    }
    return n > 0;
}


const char *
tg_http_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default:  return "Unknown";
    }
}
