#include <tg_config.h>
#include <tg_core.h>
#include <tg_cycle.h>
#include <tg_http.h>
#include <tg_access_log_format.h>
#include "tap.h"
#include "tg_test_http.h"

/*
 * The exact bytes of every access log variable, in both escaping modes and
 * in the built-in formats: values present, absent and empty, hostile bytes
 * (every byte value, at every position of strings of many lengths, against
 * a reference escaper written here), large numbers, times, and lines cut
 * at every room size. test_access_log.c covers the format language and the
 * configuration side.
 */

#define BUFSZ  65536

/* the fixture's clock: now is 10250 ms on a ms scale the request's times
   are given in (TEST_AT(10000) is 250 ms before now) */
#define TEST_NOW    1795276567123456789ULL
#define TEST_AT(ms) (TEST_NOW - (10250 - (uint64_t) (ms)) * 1000000)

/* U+FFFD REPLACEMENT CHARACTER: json escaping writes it for each byte that
   is not part of well-formed UTF-8 */
#define FFFD        "\xef\xbf\xbd"

static tg_pool_t              *pool;
static tg_access_log_clock_t   clk;
static tg_access_log_ctx_t     ctx;
static u_char                  buf[BUFSZ];
static size_t                  buflen;
static unsigned                buftrunc;

static tg_http_conn_t          conn;
static tg_listen_t             ls;
static tg_http_request_t       req;
static tg_upstream_server_t    srv;
static tg_http_route_t         route;

static const u_char  tid[16] = {
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
    0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36 };
static const u_char  sid[8] = {
    0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7 };
static const u_char  pid8[8] = {
    0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x1f };


static int
compile(tg_access_log_fmt_t *fmt, const char *text, int escape)
{
    tg_str_t  s;
    char      err[128];

    memset(fmt, 0, sizeof(*fmt));
    s.data = (u_char *) text;
    s.len = strlen(text);
    return tg_access_log_compile(pool, fmt, &s, escape, err, sizeof(err));
}


/* Renders fmt into buf with room bytes; buf[buflen] is then a NUL. */
static const char *
render_fmt(const tg_access_log_fmt_t *fmt, size_t room)
{
    u_char  *p;

    p = tg_access_log_render(fmt, &req, &ctx, buf, buf + room, &buftrunc);
    buflen = (size_t) (p - buf);
    buf[buflen] = '\0';
    return (const char *) buf;
}


static const char *
render(const char *text, int escape)
{
    tg_access_log_fmt_t  fmt;

    if (compile(&fmt, text, escape) != TG_OK) {
        return "(compile error)";
    }
    return render_fmt(&fmt, BUFSZ - 1);
}


static const char *
render_builtin(const char *name)
{
    tg_str_t             s;
    tg_access_log_fmt_t  fmt;

    memset(&fmt, 0, sizeof(fmt));
    s.data = (u_char *) name;
    s.len = strlen(name);
    if (tg_access_log_builtin(pool, &s, &fmt) != TG_OK) {
        return "(no such format)";
    }
    return render_fmt(&fmt, BUFSZ - 1);
}


/* nginx's escaping, written out byte by byte */
static size_t
ref_default(u_char *out, const u_char *s, size_t n, int space)
{
    size_t  i, k;
    u_char  c;

    static const char  hex[] = "0123456789ABCDEF";

    k = 0;
    for (i = 0; i < n; i++) {
        c = s[i];
        if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f
            || (space && c == ' '))
        {
            out[k++] = '\\';
            out[k++] = 'x';
            out[k++] = hex[c >> 4];
            out[k++] = hex[c & 0xf];
        } else {
            out[k++] = c;
        }
    }
    return k;
}


/* JSON escaping of ASCII and of bytes that start no valid UTF-8 sequence */
static size_t
ref_json_byte(u_char *out, u_char c)
{
    static const char  hex[] = "0123456789ABCDEF";

    switch (c) {
    case '"':  memcpy(out, "\\\"", 2); return 2;
    case '\\': memcpy(out, "\\\\", 2); return 2;
    case '\n': memcpy(out, "\\n", 2); return 2;
    case '\r': memcpy(out, "\\r", 2); return 2;
    case '\t': memcpy(out, "\\t", 2); return 2;
    case '\b': memcpy(out, "\\b", 2); return 2;
    case '\f': memcpy(out, "\\f", 2); return 2;
    }
    if (c >= 0x80) {
        /* not part of well-formed UTF-8 here: U+FFFD */
        memcpy(out, FFFD, 3);
        return 3;
    }
    if (c < 0x20 || c == 0x7f) {
        memcpy(out, "\\u00", 4);
        out[4] = (u_char) hex[c >> 4];
        out[5] = (u_char) hex[c & 0xf];
        return 6;
    }
    out[0] = c;
    return 1;
}


static uint64_t
fnv(uint64_t h, const void *data, size_t n)
{
    size_t         i;
    const u_char  *p = data;

    for (i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}


static void
reset_request(void)
{
    tg_test_http_init(pool, &conn, &req);
    memset(&ls, 0, sizeof(ls));
    strcpy(conn.peer_text, "192.0.2.7");
    conn.peer_port = 50123;
    strcpy(conn.local_text, "127.0.0.1");
    conn.local_port = 8080;
    conn.number = 17;
    conn.requests = 2;
    conn.listen = &ls;

    tg_str_set(&req.method, "GET");
    tg_str_set(&req.uri, "/service-a/x?q=1");
    tg_str_set(&req.path, "/service-a/x");
    tg_str_set(&req.query, "q=1");
    tg_str_set(&req.host, "shop.example:8443");
    req.http_major = 1;
    req.http_minor = 1;
    req.status = 200;
    req.upstream.body_bytes = 612;
    req.bytes_sent = 850;
    req.request_body_bytes = 31;
    req.start_ns = TEST_AT(10000);
    memset(&srv, 0, sizeof(srv));
    tg_str_set(&srv.text, "127.0.0.1:9001");
    req.upstream.server = &srv;
    req.upstream.result = 201;
    req.upstream.start_ns = TEST_AT(10010);
    req.upstream.header_ns = TEST_AT(10100);
    req.upstream.end_ns = TEST_AT(10200);
    req.upstream.attempts = 2;
    memset(&route, 0, sizeof(route));
    tg_str_set(&route.prefix, "/service-a");
    req.route = &route;
    memcpy(req.trace_id, tid, 16);
    memcpy(req.span_id, sid, 8);
    memcpy(req.parent_id, pid8, 8);
    req.has_parent = 1;
    req.trace_flags = 1;
    req.sampled = 1;
    tg_str_set(&req.x_trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    tg_test_http_header(&req, "Host", "shop.example:8443", TG_HTTP_HDR_HOST);
    tg_test_http_header(&req, "User-Agent", "curl/8.0", TG_HTTP_HDR_UA);
    tg_test_http_header(&req, "Referer", "http://a.example/", 0);
    tg_test_http_header(&req, "Authorization", "Bearer s3cr3t",
                        TG_HTTP_HDR_SECRET);
    tg_test_http_header(&req, "X-Api-Key", "k3y", TG_HTTP_HDR_SECRET);
    tg_test_http_header(&req, "X-Request-Id", "abc", 0);
    tg_test_http_header(&req, "X-Empty", "", 0);
    tg_test_http_header(&req, "X-Dup", "first", 0);
    tg_test_http_header(&req, "x-dup", "second", 0);

    ctx.now_ns = TEST_NOW;
    ctx.clock = &clk;
    ctx.pid = 4242;
}


/* One format in both escaping modes. */
static void
both(const char *text, const char *want_default, const char *want_json,
    const char *what)
{
    is_str(render(text, TG_ACCESS_LOG_ESC_DEFAULT), want_default,
           "%s (escape=default)", what);
    is_str(render(text, TG_ACCESS_LOG_ESC_JSON), want_json,
           "%s (escape=json)", what);
}


static void
test_variables(void)
{
    reset_request();

    both("[$remote_addr][$remote_port][$remote_user]",
         "[192.0.2.7][50123][-]", "[192.0.2.7][50123][]", "remote_*");
    both("[$server_addr][$server_port][$connection][$connection_requests]"
         "[$pid]",
         "[127.0.0.1][8080][17][3][4242]", "[127.0.0.1][8080][17][3][4242]",
         "server and connection");
    both("[$time_local][$time_iso8601][$time_rfc3339][$msec]",
         "[21/Nov/2026:15:56:07 +0000][2026-11-21T15:56:07+00:00]"
         "[2026-11-21T15:56:07.123Z][1795276567.123]",
         "[21/Nov/2026:15:56:07 +0000][2026-11-21T15:56:07+00:00]"
         "[2026-11-21T15:56:07.123Z][1795276567.123]", "times");
    both("[$request][$request_method][$request_uri][$uri][$document_uri]"
         "[$args][$query_string]",
         "[GET /service-a/x?q=1 HTTP/1.1][GET][/service-a/x?q=1]"
         "[/service-a/x][/service-a/x][q=1][q=1]",
         "[GET /service-a/x?q=1 HTTP/1.1][GET][/service-a/x?q=1]"
         "[/service-a/x][/service-a/x][q=1][q=1]", "request line");
    both("[$server_protocol][$protocol_version][$scheme][$host]",
         "[HTTP/1.1][1.1][http][shop.example]",
         "[HTTP/1.1][1.1][http][shop.example]", "protocol, scheme, host");
    both("[$status][$body_bytes_sent][$bytes_sent][$request_body_length]",
         "[200][612][850][31]", "[200][612][850][31]", "status and sizes");
    both("[$request_time][$request_time_ms]", "[0.250][250]", "[0.250][250]",
         "request time");
    both("[$upstream_addr][$upstream_status][$upstream_response_time]"
         "[$upstream_response_time_ms][$upstream_header_time]"
         "[$upstream_attempts]",
         "[127.0.0.1:9001][201][0.190][190][0.090][2]",
         "[127.0.0.1:9001][201][0.190][190][0.090][2]", "upstream");
    both("[$trace_id][$span_id][$parent_id][$sampled][$trace_flags]",
         "[4bf92f3577b34da6a3ce929d0e0e4736][00f067aa0ba902b7]"
         "[b7ad6b716920331f][1][01]",
         "[4bf92f3577b34da6a3ce929d0e0e4736][00f067aa0ba902b7]"
         "[b7ad6b716920331f][1][01]", "trace ids");
    both("[$traceparent][$x_trace_id][$route]",
         "[00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01]"
         "[4bf92f3577b34da6a3ce929d0e0e4736][/service-a]",
         "[00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01]"
         "[4bf92f3577b34da6a3ce929d0e0e4736][/service-a]",
         "traceparent, x_trace_id, route");
    both("[$http_user_agent][$http_referer][$http_x_request_id][$http_host]",
         "[curl/8.0][http://a.example/][abc][shop.example:8443]",
         "[curl/8.0][http://a.example/][abc][shop.example:8443]",
         "request headers");
    both("[$http_authorization][$http_x_api_key][$http_cookie]"
         "[$http_proxy_authorization][$http_set_cookie]",
         "[[redacted]][[redacted]][-][-][-]", "[[redacted]][[redacted]][][][]",
         "secret headers");
    both("[$http_x_empty][$http_x_dup][$http_X_DUP][${http_x_dup}]",
         "[][first][first][first]", "[][first][first][first]",
         "empty header value, first of repeated, name case");
    both("[$http_x_absent][$http_x_empt][$http_x_empty_]", "[-][-][-]",
         "[][][]", "absent headers, names that only share a prefix");

    /* adjacency and literal-only */
    both("$status$status${status}x$status", "200200200x200",
         "200200200x200", "adjacent variables");
    both("plain text, no variables", "plain text, no variables",
         "plain text, no variables", "literal-only format");
    both("$status", "200", "200", "variable-only format");
    both("-$remote_user-$remote_user-", "-----", "---",
         "$remote_user between literals");

    /* the trace hex cached for the error log is used when it is there */
    memcpy(req.trace_hex, "4bf92f3577b34da6a3ce929d0e0e4736", 33);
    both("[$trace_id][$traceparent]",
         "[4bf92f3577b34da6a3ce929d0e0e4736]"
         "[00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01]",
         "[4bf92f3577b34da6a3ce929d0e0e4736]"
         "[00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01]",
         "trace id with the cached hex");

    /* flags, unsampled, scheme over TLS, HTTP/1.0 */
    req.trace_flags = 0;
    req.sampled = 0;
    req.http_minor = 0;
    ls.ssl = 1;
    both("[$sampled][$trace_flags][$scheme][$server_protocol]"
         "[$protocol_version][$request]",
         "[0][00][https][HTTP/1.0][1.0][GET /service-a/x?q=1 HTTP/1.0]",
         "[0][00][https][HTTP/1.0][1.0][GET /service-a/x?q=1 HTTP/1.0]",
         "unsampled, https, HTTP/1.0");
    req.trace_flags = 0xff;
    both("[$trace_flags][$traceparent]",
         "[ff][00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff]",
         "[ff][00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff]",
         "trace flags ff");

    /* body_bytes_sent prefers the writers' count */
    req.body_bytes_sent = 700;
    both("$body_bytes_sent", "700", "700", "body_bytes_sent when counted");

    /* $host: the port is cut, brackets of IPv6 kept */
    tg_str_set(&req.host, "[2001:db8::1]:8080");
    both("$host", "[2001:db8::1]", "[2001:db8::1]", "$host v6 with port");
    tg_str_set(&req.host, "[2001:db8::1]");
    both("$host", "[2001:db8::1]", "[2001:db8::1]", "$host v6");
    tg_str_set(&req.host, "example:");
    both("$host", "example", "example", "$host with an empty port");
    tg_str_set(&req.host, "a:b");
    both("$host", "a:b", "a:b", "$host, non-digits after ':'");
    tg_str_set(&req.host, ":80");
    both("$host", "", "", "$host of only a port");
    tg_str_set(&req.host, "8080");
    both("$host", "8080", "8080", "$host of digits");
    tg_str_set(&req.host, "h\"o st:1");
    both("$host", "h\\x22o st", "h\\\"o st", "$host escaped");
}


static void
test_absent(void)
{
    reset_request();
    req.c = NULL;
    req.method.len = 0;
    req.uri.len = 0;
    req.path.len = 0;
    req.query.len = 0;
    req.host.len = 0;
    req.status = 0;
    req.upstream.server = NULL;
    req.upstream.result = 0;
    req.upstream.start_ns = 0;
    req.upstream.header_ns = 0;
    req.upstream.end_ns = 0;
    req.route = NULL;
    memset(req.trace_id, 0, 16);
    memset(req.span_id, 0, 8);
    memset(req.parent_id, 0, 8);
    req.has_parent = 0;
    req.x_trace_id.len = 0;
    req.headers.nelts = 0;
    req.upstream.body_bytes = 0;
    req.bytes_sent = 0;
    req.request_body_bytes = 0;
    req.upstream.attempts = 0;

    both("[$remote_addr][$remote_port][$server_addr][$server_port]"
         "[$connection][$connection_requests][$scheme]",
         "[-][-][-][-][-][-][http]", "[][][][][][][http]", "no connection");
    both("[$request][$request_method][$request_uri][$uri][$args][$host]"
         "[$server_protocol][$protocol_version]",
         "[-][-][-][-][-][-][-][-]", "[][][][][][][][]", "no request line");
    both("[$status][$body_bytes_sent][$bytes_sent][$request_body_length]"
         "[$upstream_attempts]",
         "[000][0][0][0][0]", "[000][0][0][0][0]", "no status, zero sizes");
    both("[$upstream_addr][$upstream_status][$upstream_response_time]"
         "[$upstream_response_time_ms][$upstream_header_time]",
         "[-][-][-][-][-]", "[][][][][]", "no upstream");
    both("[$trace_id][$span_id][$parent_id][$sampled][$trace_flags]"
         "[$traceparent][$x_trace_id][$route]",
         "[-][-][-][-][-][-][-][-]", "[][][][][][][][]", "no trace");
    both("[$http_user_agent][$http_authorization]", "[-][-]", "[][]",
         "no headers");

    /* a span id of zero is absent on its own; a parent needs has_parent */
    memcpy(req.trace_id, tid, 16);
    memcpy(req.parent_id, pid8, 8);
    both("[$span_id][$parent_id][$sampled][$trace_flags]", "[-][-][1][01]",
         "[][][1][01]", "zero span id, parent without has_parent");
    req.has_parent = 1;
    memset(req.parent_id, 0, 8);
    both("[$parent_id]", "[-]", "[]", "zero parent id");
    req.trace_id[15] = 1;
    memset(req.trace_id, 0, 15);
    both("[$trace_id]", "[00000000000000000000000000000001]",
         "[00000000000000000000000000000001]", "trace id with one bit set");

    /* upstream started but its server is unknown, header time before
       start */
    reset_request();
    req.upstream.end_ns = 0;
    both("[$upstream_response_time][$upstream_response_time_ms]",
         "[0.240][240]", "[0.240][240]", "unfinished attempt uses now");
    req.upstream.header_ns = TEST_AT(10005);
    both("[$upstream_header_time]", "[-]", "[]", "header time before start");
    req.upstream.header_ns = TEST_AT(10010);
    both("[$upstream_header_time]", "[0.000]", "[0.000]",
         "header time at start");
    req.upstream.start_ns = 0;
    both("[$upstream_response_time][$upstream_response_time_ms]", "[-][-]",
         "[][]", "no attempt started");
    req.upstream.start_ns = TEST_AT(20000);
    req.upstream.end_ns = TEST_AT(10000);
    both("[$upstream_response_time_ms]", "[0]", "[0]",
         "end before start is 0");
    req.start_ns = TEST_AT(20000);
    both("[$request_time][$request_time_ms]", "[0.000][0]", "[0.000][0]",
         "request started after now is 0");
}


static void
test_numbers(void)
{
    size_t       i;
    char         want[64];
    const char  *got;

    static const uint64_t  ms[] = {
        0, 1, 9, 10, 99, 100, 999, 1000, 1001, 1010, 1100, 9999, 10000,
        59999, 86400000, 1795276567123ULL, UINT64_MAX / 1000000 };
    static const char     *sec[] = {
        "0.000", "0.001", "0.009", "0.010", "0.099", "0.100", "0.999",
        "1.000", "1.001", "1.010", "1.100", "9.999", "10.000", "59.999",
        "86400.000", "1795276567.123", "18446744073.709" };

    reset_request();
    req.bytes_sent = UINT64_MAX;
    req.upstream.body_bytes = UINT64_MAX - 1;
    req.request_body_bytes = 10000000000000000000ULL;
    req.status = INT_MAX;
    req.upstream.result = 999;
    req.upstream.attempts = INT_MAX;
    conn.number = UINT64_MAX;
    conn.requests = UINT64_MAX - 1;
    conn.peer_port = 65535;
    conn.local_port = 0;
    ctx.pid = INT_MAX;
    both("[$bytes_sent][$body_bytes_sent][$request_body_length][$status]"
         "[$upstream_status][$upstream_attempts][$connection]"
         "[$connection_requests][$remote_port][$server_port][$pid]",
         "[18446744073709551615][18446744073709551614][10000000000000000000]"
         "[2147483647][999][2147483647][18446744073709551615]"
         "[18446744073709551615][65535][0][2147483647]",
         "[18446744073709551615][18446744073709551614][10000000000000000000]"
         "[2147483647][999][2147483647][18446744073709551615]"
         "[18446744073709551615][65535][0][2147483647]", "large numbers");

    /* every decimal width */
    for (i = 0; i < 20; i++) {
        uint64_t  v, p10;
        size_t    k;

        for (p10 = 1, k = 0; k < i; k++) {
            p10 *= 10;
        }
        for (v = p10 - 1; v <= p10 + 1; v++) {
            req.bytes_sent = v;
            snprintf(want, sizeof(want), "%" PRIu64, v);
            got = render("$bytes_sent", TG_ACCESS_LOG_ESC_DEFAULT);
            if (strcmp(got, want) != 0) {
                break;
            }
        }
        if (v <= p10 + 1) {
            ok(0, "decimal around 10^%zu: got '%s', expected '%s'", i, got,
               want);
            break;
        }
    }
    ok(i == 20, "decimals around every power of ten");

    /* seconds with milliseconds, as nginx writes them (whole ms of the ns
       clock: 999,999 ns more is still the same ms) */
    for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        req.start_ns = 0;
        ctx.now_ns = ms[i] * 1000000 + (ms[i] < UINT64_MAX / 1000000 ? 999999
                                                                      : 0);
        is_str(render("$request_time", TG_ACCESS_LOG_ESC_DEFAULT), sec[i],
               "$request_time of %" PRIu64 " ms", ms[i]);
    }
    ctx.now_ns = UINT64_MAX;
    snprintf(want, sizeof(want), "%" PRIu64, UINT64_MAX / 1000000);
    is_str(render("$request_time_ms", TG_ACCESS_LOG_ESC_JSON), want,
           "$request_time_ms max");

    /* $msec and $time_rfc3339 milliseconds from the ns clock */
    ctx.now_ns = 1795276567000999999ULL;
    is_str(render("$msec $time_rfc3339", TG_ACCESS_LOG_ESC_DEFAULT),
           "1795276567.000 2026-11-21T15:56:07.000Z", ".000");
    ctx.now_ns = 1795276567999000000ULL;
    is_str(render("$msec $time_rfc3339", TG_ACCESS_LOG_ESC_DEFAULT),
           "1795276567.999 2026-11-21T15:56:07.999Z", ".999");
    ctx.now_ns = 1795276567050000000ULL;
    is_str(render("$msec $time_rfc3339", TG_ACCESS_LOG_ESC_DEFAULT),
           "1795276567.050 2026-11-21T15:56:07.050Z", ".050");
    ctx.now_ns = 1795276567123456789ULL;
}


static void
test_clock(void)
{
    size_t                  i;
    tg_access_log_clock_t   c;
    char                    want[64];

    static const char  *mon[] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    /* 2026-MM-01 12:34:56 UTC for every month */
    static const time_t  first[] = {
        1767270896, 1769949296, 1772368496, 1775046896, 1777638896,
        1780317296, 1782909296, 1785587696, 1788266096, 1790858096,
        1793536496, 1796128496 };

    c.sec = -1;
    for (i = 0; i < 12; i++) {
        tg_access_log_clock_update(&c, first[i]);
        snprintf(want, sizeof(want), "01/%s/2026:12:34:56 +0000", mon[i]);
        is_mem(c.local, sizeof(c.local), want, "$time_local in %s", mon[i]);
        snprintf(want, sizeof(want), "2026-%02zu-01T12:34:56+00:00", i + 1);
        is_mem(c.iso8601, sizeof(c.iso8601), want, "$time_iso8601 in %s",
               mon[i]);
        snprintf(want, sizeof(want), "2026-%02zu-01T12:34:56", i + 1);
        is_mem(c.utc, sizeof(c.utc), want, "UTC in %s", mon[i]);
    }

    tg_access_log_clock_update(&c, 0);
    is_mem(c.local, sizeof(c.local), "01/Jan/1970:00:00:00 +0000", "epoch");
    is_mem(c.iso8601, sizeof(c.iso8601), "1970-01-01T00:00:00+00:00",
           "epoch iso8601");
    is_mem(c.utc, sizeof(c.utc), "1970-01-01T00:00:00", "epoch UTC");
    tg_access_log_clock_update(&c, 1709251199);
    is_mem(c.local, sizeof(c.local), "29/Feb/2024:23:59:59 +0000",
           "leap day");
    tg_access_log_clock_update(&c, 253402300799LL);
    is_mem(c.local, sizeof(c.local), "31/Dec/9999:23:59:59 +0000",
           "last second of 9999");
    is_mem(c.iso8601, sizeof(c.iso8601), "9999-12-31T23:59:59+00:00",
           "last second of 9999, iso8601");
    is_mem(c.utc, sizeof(c.utc), "9999-12-31T23:59:59",
           "last second of 9999, UTC");

    /* same second: kept, even when asked again */
    memcpy(c.local, "x", 1);
    tg_access_log_clock_update(&c, 253402300799LL);
    ok(c.local[0] == 'x', "one second is formatted once");

    /* a half-hour zone west of UTC */
    setenv("TZ", "TGT+09:30", 1);
    tzset();
    tg_access_log_clock_update(&c, 1795276567);
    is_mem(c.local, sizeof(c.local), "21/Nov/2026:06:26:07 -0930",
           "$time_local -0930");
    is_mem(c.iso8601, sizeof(c.iso8601), "2026-11-21T06:26:07-09:30",
           "$time_iso8601 -09:30");
    is_mem(c.utc, sizeof(c.utc), "2026-11-21T15:56:07", "UTC -09:30");
    setenv("TZ", "UTC", 1);
    tzset();
}


/*
 * Every byte value, and one special byte at every position of strings of
 * 1..40 plain bytes, through each client-derived variable, against the
 * reference escapers.
 */
static void
test_escaping(void)
{
    int                   fails;
    size_t                i, j, n, k, pos, v;
    u_char                all[256], s[64], want[4096];
    const char           *got;
    tg_access_log_fmt_t   f_hdr_d, f_hdr_j, f_tok_d, f_tok_j, f_uri_d;
    tg_access_log_fmt_t   f_req_d, f_addr_d, f_route_d;

    static const u_char  special[] = {
        0x00, 0x01, 0x09, 0x0a, 0x1f, ' ', '!', '"', '#', '[', '\\', ']',
        '~', 0x7f, 0x80, 0xa0, 0xbf, 0xc0, 0xc3, 0xe2, 0xf0, 0xff };
    static const u_char  fill[] = { 'a', '!', '~', '#', ']' };

    reset_request();
    for (i = 0; i < 256; i++) {
        all[i] = (u_char) i;
    }
    tg_test_http_header_n(&req, "X-All", all, 256, 0);

    /* all bytes in one value */
    n = ref_default(want, all, 256, 0);
    want[n] = '\0';
    is_str(render("$http_x_all", TG_ACCESS_LOG_ESC_DEFAULT), (char *) want,
           "every byte, default escaping");
    for (i = 0, n = 0; i < 256; i++) {
        n += ref_json_byte(want + n, all[i]);
    }
    want[n] = '\0';
    is_str(render("$http_x_all", TG_ACCESS_LOG_ESC_JSON), (char *) want,
           "every byte, json escaping (no valid UTF-8 sequence in it)");

    req.headers.nelts--;
    tg_test_http_header_n(&req, "X-All", s, 0, 0);

    compile(&f_hdr_d, "<$http_x_all>", TG_ACCESS_LOG_ESC_DEFAULT);
    compile(&f_hdr_j, "<$http_x_all>", TG_ACCESS_LOG_ESC_JSON);
    compile(&f_tok_d, "<$x_trace_id>", TG_ACCESS_LOG_ESC_DEFAULT);
    compile(&f_tok_j, "<$x_trace_id>", TG_ACCESS_LOG_ESC_JSON);
    compile(&f_uri_d, "<$request_uri>", TG_ACCESS_LOG_ESC_DEFAULT);
    compile(&f_req_d, "<$request>", TG_ACCESS_LOG_ESC_DEFAULT);
    compile(&f_addr_d, "<$upstream_addr>", TG_ACCESS_LOG_ESC_DEFAULT);
    compile(&f_route_d, "<$route>", TG_ACCESS_LOG_ESC_DEFAULT);

    /* each byte alone */
    fails = 0;
    for (v = 0; v < 256 && !fails; v++) {
        tg_http_header_t  *h = req.headers.elts;

        s[0] = (u_char) v;
        h[req.headers.nelts - 1].value.data = s;
        h[req.headers.nelts - 1].value.len = 1;
        req.x_trace_id.data = s;
        req.x_trace_id.len = 1;

        want[0] = '<';
        n = 1 + ref_default(want + 1, s, 1, 0);
        want[n++] = '>';
        got = render_fmt(&f_hdr_d, BUFSZ - 1);
        fails += buflen != n || memcmp(got, want, n) != 0;

        n = 1 + ref_default(want + 1, s, 1, 1);
        want[n++] = '>';
        got = render_fmt(&f_tok_d, BUFSZ - 1);
        fails += buflen != n || memcmp(got, want, n) != 0;

        n = 1 + ref_json_byte(want + 1, s[0]);
        want[n++] = '>';
        got = render_fmt(&f_hdr_j, BUFSZ - 1);
        fails += buflen != n || memcmp(got, want, n) != 0;
        got = render_fmt(&f_tok_j, BUFSZ - 1);
        fails += buflen != n || memcmp(got, want, n) != 0;
    }
    ok(fails == 0, "each byte alone, header and token, both modes");
    if (fails) {
        printf("#   byte 0x%02zx: got '%s'\n", v - 1, got);
    }

    /* one special byte at every position of 1..40 plain bytes */
    fails = 0;
    for (n = 1; n <= 40 && !fails; n++) {
        for (pos = 0; pos < n && !fails; pos++) {
            for (k = 0; k < sizeof(special) && !fails; k++) {
                for (j = 0; j < sizeof(fill) && !fails; j++) {
                    tg_http_header_t  *h = req.headers.elts;
                    size_t             w;

                    memset(s, fill[j], n);
                    s[pos] = special[k];
                    h[req.headers.nelts - 1].value.data = s;
                    h[req.headers.nelts - 1].value.len = n;
                    req.x_trace_id.data = s;
                    req.x_trace_id.len = n;
                    req.uri.data = s;
                    req.uri.len = n;
                    srv.text.data = s;
                    srv.text.len = n;
                    route.prefix.data = s;
                    route.prefix.len = n;

                    want[0] = '<';
                    w = 1 + ref_default(want + 1, s, n, 0);
                    want[w++] = '>';
                    got = render_fmt(&f_hdr_d, BUFSZ - 1);
                    fails += buflen != w || memcmp(got, want, w) != 0;
                    got = render_fmt(&f_uri_d, BUFSZ - 1);
                    fails += buflen != w || memcmp(got, want, w) != 0;
                    got = render_fmt(&f_addr_d, BUFSZ - 1);
                    fails += buflen != w || memcmp(got, want, w) != 0;

                    w = 1 + ref_default(want + 1, s, n, 1);
                    want[w++] = '>';
                    got = render_fmt(&f_tok_d, BUFSZ - 1);
                    fails += buflen != w || memcmp(got, want, w) != 0;
                    got = render_fmt(&f_route_d, BUFSZ - 1);
                    fails += buflen != w || memcmp(got, want, w) != 0;

                    memcpy(want, "<GET ", 5);
                    w = 5 + ref_default(want + 5, s, n, 0);
                    memcpy(want + w, " HTTP/1.1>", 10);
                    w += 10;
                    got = render_fmt(&f_req_d, BUFSZ - 1);
                    fails += buflen != w || memcmp(got, want, w) != 0;

                    /* json: the special byte alone may start a sequence
                       only when followed by continuation bytes, which
                       the fill bytes are not */
                    want[0] = '<';
                    for (i = 0, w = 1; i < n; i++) {
                        w += ref_json_byte(want + w, s[i]);
                    }
                    want[w++] = '>';
                    got = render_fmt(&f_hdr_j, BUFSZ - 1);
                    fails += buflen != w || memcmp(got, want, w) != 0;
                    got = render_fmt(&f_tok_j, BUFSZ - 1);
                    fails += buflen != w || memcmp(got, want, w) != 0;
                }
            }
        }
    }
    ok(fails == 0, "a special byte at every position of 1..40 bytes");
    if (fails) {
        printf("#   length %zu, position %zu, byte 0x%02x, fill '%c': "
               "got '%s'\n", n - 1, pos - 1, special[k - 1], fill[j - 1],
               got);
    }

    /* clean strings of every length 0..300 */
    fails = 0;
    for (n = 0; n <= 300 && !fails; n++) {
        u_char             *big = buf + BUFSZ / 2;
        tg_http_header_t   *h = req.headers.elts;

        for (i = 0; i < n; i++) {
            big[i] = (u_char) (0x20 + (i * 7) % 0x5f);
        }
        h[req.headers.nelts - 1].value.data = big;
        h[req.headers.nelts - 1].value.len = n;
        want[0] = '<';
        for (i = 0, j = 1; i < n && j < sizeof(want) - 8; i++) {
            j += ref_default(want + j, big + i, 1, 0);
        }
        want[j++] = '>';
        if (j >= sizeof(want) - 8) {
            break;
        }
        got = render_fmt(&f_hdr_d, BUFSZ / 2);
        fails += buflen != j || memcmp(got, want, j) != 0;
    }
    ok(fails == 0, "printable strings of every length up to %zu", n - 1);

    /* random strings: mostly printable, some special bytes (ASCII for
       json, where the reference knows no UTF-8) */
    fails = 0;
    {
        uint32_t  seed = 12345;

        for (k = 0; k < 20000 && !fails; k++) {
            tg_http_header_t  *h = req.headers.elts;

            seed = seed * 1103515245 + 12345;
            n = 1 + (seed >> 16) % (sizeof(s) - 1);
            for (i = 0; i < n; i++) {
                seed = seed * 1103515245 + 12345;
                v = (seed >> 16) & 0xff;
                s[i] = (u_char) ((seed >> 24) % 8 ? 0x20 + v % 0x5f : v);
            }
            h[req.headers.nelts - 1].value.data = s;
            h[req.headers.nelts - 1].value.len = n;
            req.x_trace_id.data = s;
            req.x_trace_id.len = n;

            want[0] = '<';
            j = 1 + ref_default(want + 1, s, n, 0);
            want[j++] = '>';
            got = render_fmt(&f_hdr_d, BUFSZ - 1);
            fails += buflen != j || memcmp(got, want, j) != 0;
            j = 1 + ref_default(want + 1, s, n, 1);
            want[j++] = '>';
            got = render_fmt(&f_tok_d, BUFSZ - 1);
            fails += buflen != j || memcmp(got, want, j) != 0;

            for (i = 0; i < n; i++) {
                s[i] &= 0x7f;
            }
            want[0] = '<';
            for (i = 0, j = 1; i < n; i++) {
                j += ref_json_byte(want + j, s[i]);
            }
            want[j++] = '>';
            got = render_fmt(&f_hdr_j, BUFSZ - 1);
            fails += buflen != j || memcmp(got, want, j) != 0;
            got = render_fmt(&f_tok_j, BUFSZ - 1);
            fails += buflen != j || memcmp(got, want, j) != 0;
        }
    }
    ok(fails == 0, "20000 random strings in both modes");
    if (fails) {
        printf("#   string %zu: got '%s'\n", k - 1, got);
    }

    req.uri.data = (u_char *) "/service-a/x?q=1";
    req.uri.len = 16;
    tg_str_set(&srv.text, "127.0.0.1:9001");
    tg_str_set(&route.prefix, "/service-a");
}


static void
test_utf8(void)
{
    size_t  i;

    static const struct {
        const char  *in;
        const char  *out;
    } v[] = {
        { "\xc3\xa9", "\xc3\xa9" },
        { "\xe2\x82\xac", "\xe2\x82\xac" },
        { "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80" },
        { "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf" },
        { "\xed\x9f\xbf", "\xed\x9f\xbf" },
        { "\xee\x80\x80", "\xee\x80\x80" },
        { "\xe0\xa0\x80", "\xe0\xa0\x80" },
        { "\xf0\x90\x80\x80", "\xf0\x90\x80\x80" },
        { "\xc2\x80", "\xc2\x80" },
        { "\xdf\xbf", "\xdf\xbf" },
        { "\xc0\x80", FFFD FFFD },
        { "\xc1\xbf", FFFD FFFD },
        { "\xe0\x80\x80", FFFD FFFD FFFD },
        { "\xe0\x9f\xbf", FFFD FFFD FFFD },
        { "\xed\xa0\x80", FFFD FFFD FFFD },
        { "\xf0\x80\x80\x80", FFFD FFFD FFFD FFFD },
        { "\xf0\x8f\xbf\xbf", FFFD FFFD FFFD FFFD },
        { "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD },
        { "\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD },
        { "\xe2\x82", FFFD FFFD },
        { "\xf0\x9f\x98", FFFD FFFD FFFD },
        { "\xc3", FFFD },
        { "\xe2\x28\xa1", FFFD "(" FFFD },
        { "\xe2\x82\x28", FFFD FFFD "(" },
        { "\xf0\x9f\x98\x28", FFFD FFFD FFFD "(" },
        { "a\xc3\xa9\"\xc3", "a\xc3\xa9\\\"" FFFD },
        { "\xc3\xa9\xc3\xa9", "\xc3\xa9\xc3\xa9" },
        { "\xc3\xc3\xa9", FFFD "\xc3\xa9" },
        { "\x80\xc3\xa9\xbf", FFFD "\xc3\xa9" FFFD },
    };

    reset_request();
    tg_test_http_header(&req, "X-U", "", 0);
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        tg_http_header_t  *h = req.headers.elts;

        h[req.headers.nelts - 1].value.data = (u_char *) v[i].in;
        h[req.headers.nelts - 1].value.len = strlen(v[i].in);
        is_str(render("$http_x_u", TG_ACCESS_LOG_ESC_JSON), v[i].out,
               "json UTF-8 vector %zu", i);
    }
    {
        tg_http_header_t  *h = req.headers.elts;

        h[req.headers.nelts - 1].value.data = (u_char *) "\xc3\xa9";
        h[req.headers.nelts - 1].value.len = 2;
        is_str(render("$http_x_u", TG_ACCESS_LOG_ESC_DEFAULT), "\\xC3\\xA9",
               "default escaping ignores UTF-8");
    }
}


static void
test_builtins(void)
{
    reset_request();
    req.has_parent = 0;
    is_str(render_builtin("combined"),
           "192.0.2.7 - - [21/Nov/2026:15:56:07 +0000] \"GET /service-a/x?q=1"
           " HTTP/1.1\" 200 612 \"http://a.example/\" \"curl/8.0\"",
           "combined");
    is_str(render_builtin("trace"),
           "192.0.2.7 - - [21/Nov/2026:15:56:07 +0000] \"GET /service-a/x?q=1"
           " HTTP/1.1\" 200 612 \"http://a.example/\" \"curl/8.0\""
           " trace_id=4bf92f3577b34da6a3ce929d0e0e4736"
           " span_id=00f067aa0ba902b7 parent_id=- sampled=1"
           " x_trace_id=4bf92f3577b34da6a3ce929d0e0e4736"
           " upstream=127.0.0.1:9001 upstream_status=201 rt=0.250 urt=0.190",
           "trace");
    is_str(render_builtin("json"),
           "{\"timestamp\":\"2026-11-21T15:56:07.123Z\","
           "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
           "\"span_id\":\"00f067aa0ba902b7\",\"parent_id\":null,"
           "\"trace_flags\":\"01\",\"sampled\":1,"
           "\"x_trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
           "\"http.request.method\":\"GET\",\"url.path\":\"/service-a/x\","
           "\"url.query\":\"q=1\",\"http.route\":\"/service-a\","
           "\"http.response.status_code\":200,"
           "\"client.address\":\"192.0.2.7\",\"client.port\":50123,"
           "\"server.address\":\"shop.example\",\"server.port\":8080,"
           "\"network.protocol.version\":\"1.1\","
           "\"user_agent.original\":\"curl/8.0\","
           "\"http.request.header.referer\":\"http://a.example/\","
           "\"http.request.body.size\":31,\"http.response.body.size\":612,"
           "\"bytes_sent\":850,\"duration_ms\":250,"
           "\"upstream\":\"127.0.0.1:9001\",\"upstream_status\":201,"
           "\"upstream_duration_ms\":190,\"upstream_attempts\":2,"
           "\"connection\":17}",
           "json");

    /* hostile request: every client part escaped, the line stays one */
    req.method.data = (u_char *) "G\"T";
    req.method.len = 3;
    req.uri.data = (u_char *) "/a b\\\x01\x7f\xc3\xa9\n?x=\"1\"";
    req.uri.len = strlen((char *) req.uri.data);
    req.path.data = req.uri.data;
    req.path.len = 10;
    req.query.data = req.uri.data + 11;
    req.query.len = 5;
    req.x_trace_id.data = (u_char *) "x y\"z";
    req.x_trace_id.len = 5;
    req.headers.nelts = 0;
    tg_test_http_header(&req, "User-Agent", "Mozilla \"5.0\"\r\n\tX", 0);
    tg_test_http_header(&req, "Referer", "\xff\xfe", 0);
    is_str(render_builtin("trace"),
           "192.0.2.7 - - [21/Nov/2026:15:56:07 +0000] \"G\\x22T "
           "/a b\\x5C\\x01\\x7F\\xC3\\xA9\\x0A?x=\\x221\\x22 HTTP/1.1\" 200 "
           "612 \"\\xFF\\xFE\" \"Mozilla \\x225.0\\x22\\x0D\\x0A\\x09X\""
           " trace_id=4bf92f3577b34da6a3ce929d0e0e4736"
           " span_id=00f067aa0ba902b7 parent_id=- sampled=1"
           " x_trace_id=x\\x20y\\x22z"
           " upstream=127.0.0.1:9001 upstream_status=201 rt=0.250 urt=0.190",
           "trace, hostile request");
    is_str(render_builtin("json"),
           "{\"timestamp\":\"2026-11-21T15:56:07.123Z\","
           "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
           "\"span_id\":\"00f067aa0ba902b7\",\"parent_id\":null,"
           "\"trace_flags\":\"01\",\"sampled\":1,"
           "\"x_trace_id\":\"x y\\\"z\","
           "\"http.request.method\":\"G\\\"T\","
           "\"url.path\":\"/a b\\\\\\u0001\\u007F\xc3\xa9\\n\","
           "\"url.query\":\"x=\\\"1\\\"\",\"http.route\":\"/service-a\","
           "\"http.response.status_code\":200,"
           "\"client.address\":\"192.0.2.7\",\"client.port\":50123,"
           "\"server.address\":\"shop.example\",\"server.port\":8080,"
           "\"network.protocol.version\":\"1.1\","
           "\"user_agent.original\":\"Mozilla \\\"5.0\\\"\\r\\n\\tX\","
           "\"http.request.header.referer\":\"" FFFD FFFD "\","
           "\"http.request.body.size\":31,\"http.response.body.size\":612,"
           "\"bytes_sent\":850,\"duration_ms\":250,"
           "\"upstream\":\"127.0.0.1:9001\",\"upstream_status\":201,"
           "\"upstream_duration_ms\":190,\"upstream_attempts\":2,"
           "\"connection\":17}",
           "json, hostile request");

    /* nothing known: a request cut before its request line */
    reset_request();
    req.c = NULL;
    req.method.len = 0;
    req.uri.len = 0;
    req.path.len = 0;
    req.query.len = 0;
    req.host.len = 0;
    req.status = 400;
    req.upstream.server = NULL;
    req.upstream.result = 0;
    req.route = NULL;
    memset(req.trace_id, 0, 16);
    memset(req.span_id, 0, 8);
    req.has_parent = 0;
    req.x_trace_id.len = 0;
    req.headers.nelts = 0;
    req.upstream.body_bytes = 0;
    req.bytes_sent = 0;
    req.request_body_bytes = 0;
    req.upstream.attempts = 0;
    is_str(render_builtin("trace"),
           "- - - [21/Nov/2026:15:56:07 +0000] \"-\" 400 0 \"-\" \"-\""
           " trace_id=- span_id=- parent_id=- sampled=- x_trace_id=-"
           " upstream=- upstream_status=- rt=0.250 urt=-",
           "trace, nothing known");
    is_str(render_builtin("json"),
           "{\"timestamp\":\"2026-11-21T15:56:07.123Z\",\"trace_id\":null,"
           "\"span_id\":null,\"parent_id\":null,\"trace_flags\":null,"
           "\"sampled\":null,\"x_trace_id\":null,"
           "\"http.request.method\":null,\"url.path\":null,"
           "\"url.query\":null,\"http.route\":null,"
           "\"http.response.status_code\":400,\"client.address\":null,"
           "\"client.port\":null,\"server.address\":null,"
           "\"server.port\":null,\"network.protocol.version\":null,"
           "\"user_agent.original\":null,"
           "\"http.request.header.referer\":null,"
           "\"http.request.body.size\":0,\"http.response.body.size\":0,"
           "\"bytes_sent\":0,\"duration_ms\":250,\"upstream\":null,"
           "\"upstream_status\":null,\"upstream_duration_ms\":null,"
           "\"upstream_attempts\":0,\"connection\":null}",
           "json, nothing known");
    req.status = 0;
    is_str(render_builtin("json"),
           "{\"timestamp\":\"2026-11-21T15:56:07.123Z\",\"trace_id\":null,"
           "\"span_id\":null,\"parent_id\":null,\"trace_flags\":null,"
           "\"sampled\":null,\"x_trace_id\":null,"
           "\"http.request.method\":null,\"url.path\":null,"
           "\"url.query\":null,\"http.route\":null,"
           "\"http.response.status_code\":null,\"client.address\":null,"
           "\"client.port\":null,\"server.address\":null,"
           "\"server.port\":null,\"network.protocol.version\":null,"
           "\"user_agent.original\":null,"
           "\"http.request.header.referer\":null,"
           "\"http.request.body.size\":0,\"http.response.body.size\":0,"
           "\"bytes_sent\":0,\"duration_ms\":250,\"upstream\":null,"
           "\"upstream_status\":null,\"upstream_duration_ms\":null,"
           "\"upstream_attempts\":0,\"connection\":null}",
           "json, no status is null");
    is_str(render_builtin("combined"),
           "- - - [21/Nov/2026:15:56:07 +0000] \"-\" 000 0 \"-\" \"-\"",
           "combined, no status is 000");

    /* a secret in the json format */
    reset_request();
    tg_str_set(&req.x_trace_id, "[redacted]");
    tg_test_http_header(&req, "X-Trace", "", 0);
    ok(strstr(render_builtin("json"), "s3cr3t") == NULL,
       "json never shows a secret");
}


/*
 * Lines cut at every room size: the cut follows the rule of the renderer
 * (a value is copied as far as it fits, an escape sequence only whole, a
 * cut value still gets its closing quote when there is room), nothing is
 * written past the room, and the truncation flag is exact. The digest
 * pins the bytes of every cut line of these formats.
 */
static uint64_t
sweep(const tg_access_log_fmt_t *fmt, uint64_t h, int *bad)
{
    size_t    room, full, k;
    u_char    fullbuf[4096];
    unsigned  t;

    render_fmt(fmt, BUFSZ - 1);
    full = buflen;
    memcpy(fullbuf, buf, full < sizeof(fullbuf) ? full : sizeof(fullbuf));
    for (room = 0; room <= full + 8; room++) {
        memset(buf, 0xa5, room + 256);
        render_fmt(fmt, room);
        t = buftrunc;
        /* render_fmt's NUL at buf[buflen] is not the renderer's */
        buf[buflen] = 0xa5;
        for (k = room; k < room + 256; k++) {
            if (buf[k] != 0xa5) {
                *bad |= 1;
            }
        }
        if (buflen > room || (t != 0) != (room < full)) {
            *bad |= 2;
        }
        if (room >= full && (buflen != full
                             || memcmp(buf, fullbuf, full) != 0))
        {
            *bad |= 4;
        }
        h = fnv(h, &room, sizeof(room));
        h = fnv(h, &buflen, sizeof(buflen));
        h = fnv(h, &t, sizeof(t));
        h = fnv(h, buf, buflen);
    }
    return h;
}


static void
test_truncation(void)
{
    int                  bad;
    size_t               i;
    uint64_t             h;
    tg_str_t             s;
    tg_access_log_fmt_t  fmt;
    static const char   *names[] = { "combined", "trace", "json" };

    reset_request();
    tg_test_http_header(&req, "X-H",
                        "a\"b\\c\x01\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z", 0);
    req.uri.data = (u_char *) "/p\"q\x7fr s?x=\\";
    req.uri.len = strlen((char *) req.uri.data);
    req.x_trace_id.data = (u_char *) "a b\"c";
    req.x_trace_id.len = 5;

    /* targeted cuts */
    compile(&fmt, "$http_x_h", TG_ACCESS_LOG_ESC_DEFAULT);
    render_fmt(&fmt, 4);
    ok(buftrunc, "an escape sequence is never split (default)");
    is_int(buflen, 1, "an escape sequence is never split (default)");
    is_int(buf[0], 'a', "an escape sequence is never split (default)");
    render_fmt(&fmt, 5);
    is_str((char *) buf, "a\\x22", "... and is written when it fits");
    compile(&fmt, "$http_x_h", TG_ACCESS_LOG_ESC_JSON);
    render_fmt(&fmt, 2);
    ok(buftrunc, "an escape sequence is never split (json)");
    is_int(buflen, 1, "an escape sequence is never split (json)");
    is_int(buf[0], 'a', "an escape sequence is never split (json)");
    render_fmt(&fmt, 14);
    is_str((char *) buf, "a\\\"b\\\\c\\u0001",
           "a UTF-8 sequence is never split");
    ok(buftrunc, "... and the cut is reported");
    compile(&fmt, "[$remote_addr]", TG_ACCESS_LOG_ESC_DEFAULT);
    render_fmt(&fmt, 5);
    is_str((char *) buf, "[192.", "a safe value is cut where the room ends");
    compile(&fmt, "$request|", TG_ACCESS_LOG_ESC_DEFAULT);
    render_fmt(&fmt, 6);
    is_str((char *) buf, "GET /p", "request line cut in the URI");
    render_fmt(&fmt, 9);
    is_str((char *) buf, "GET /p HT", "request line: the URI stops before an "
           "escape that does not fit, the protocol goes on");
    render_fmt(&fmt, 2);
    is_str((char *) buf, "  ", "request line: a clean run that does not fit "
           "is left out whole, the separators go on");
    s.data = (u_char *) "json";
    s.len = 4;
    memset(&fmt, 0, sizeof(fmt));
    tg_access_log_builtin(pool, &s, &fmt);
    render_fmt(&fmt, 40);
    is_str((char *) buf, "{\"timestamp\":\"2026-11-21T15:56:07.123Z\",",
           "json cut after a literal");
    render_fmt(&fmt, 30);
    is_str((char *) buf, "{\"timestamp\":\"2026-11-21T15:56",
           "json cut inside a value");
    render_fmt(&fmt, 0);
    is_int(buflen, 0, "no room at all");
    ok(buftrunc, "no room at all");

    /* every room size */
    h = 0xcbf29ce484222325ULL;
    bad = 0;
    for (i = 0; i < 3; i++) {
        s.data = (u_char *) names[i];
        s.len = strlen(names[i]);
        memset(&fmt, 0, sizeof(fmt));
        tg_access_log_builtin(pool, &s, &fmt);
        h = sweep(&fmt, h, &bad);
    }
    compile(&fmt, "$http_x_h|$http_x_h|$request|$x_trace_id|$remote_user|"
            "$traceparent|$time_local$msec|$http_x_none|$upstream_addr",
            TG_ACCESS_LOG_ESC_DEFAULT);
    h = sweep(&fmt, h, &bad);
    compile(&fmt, "$http_x_h|$http_x_h|$request|$x_trace_id|$remote_user|"
            "$traceparent|$time_local$msec|$http_x_none|$upstream_addr",
            TG_ACCESS_LOG_ESC_JSON);
    h = sweep(&fmt, h, &bad);

    /* and with most values absent */
    req.c = NULL;
    req.upstream.server = NULL;
    req.route = NULL;
    req.headers.nelts = 0;
    req.has_parent = 0;
    memset(req.trace_id, 0, 16);
    for (i = 0; i < 3; i++) {
        s.data = (u_char *) names[i];
        s.len = strlen(names[i]);
        memset(&fmt, 0, sizeof(fmt));
        tg_access_log_builtin(pool, &s, &fmt);
        h = sweep(&fmt, h, &bad);
    }
    ok(!(bad & 1), "nothing is written past the room");
    ok(!(bad & 2), "cut lines fit and are reported exactly");
    ok(!(bad & 4), "lines that fit are whole");
    ok(h == 0xbe245ca487d8e947ULL, "cut lines at every room size are as "
       "pinned (digest %016" PRIx64 ")", h);
}


int
main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    pool = tg_pool_create(4096);
    clk.sec = -1;
    tg_access_log_clock_update(&clk, 1795276567);

    test_variables();
    test_absent();
    test_numbers();
    test_clock();
    test_escaping();
    test_utf8();
    test_builtins();
    test_truncation();

    tg_pool_destroy(pool);
    return done_testing();
}
