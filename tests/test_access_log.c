#include <tg_config.h>
#include <tg_core.h>
#include <tg_http.h>
#include <tg_access_log_format.h>
#include "tap.h"
#include "tg_test_http.h"


static tg_pool_t              *pool;
static tg_access_log_clock_t   clk;
static tg_access_log_ctx_t     ctx;


/* Renders r with the format text into a C string (static buffer). */
static const char *
render(const char *text, int escape, tg_http_request_t *r, size_t room)
{
    static u_char        buf[4096];
    u_char              *p;
    unsigned             t;
    tg_str_t             s;
    tg_access_log_fmt_t  fmt;
    char                 err[128];

    memset(&fmt, 0, sizeof(fmt));
    s.data = (u_char *) text;
    s.len = strlen(text);
    if (tg_access_log_compile(pool, &fmt, &s, escape, err, sizeof(err))
        != TG_OK)
    {
        return err[0] ? "(compile error)" : "(?)";
    }
    p = tg_access_log_render(&fmt, r, &ctx, buf, buf + room, &t);
    *p = '\0';
    return (const char *) buf;
}


static const char *
render_builtin(const char *name, tg_http_request_t *r)
{
    static u_char        buf[4096];
    u_char              *p;
    unsigned             t;
    tg_str_t             s;
    tg_access_log_fmt_t  fmt;

    memset(&fmt, 0, sizeof(fmt));
    s.data = (u_char *) name;
    s.len = strlen(name);
    if (tg_access_log_builtin(pool, &s, &fmt) != TG_OK) {
        return "(no such format)";
    }
    p = tg_access_log_render(&fmt, r, &ctx, buf, buf + sizeof(buf) - 1, &t);
    *p = '\0';
    return (const char *) buf;
}


static int
compile_error(const char *text, char *err, size_t errlen)
{
    tg_str_t             s;
    tg_access_log_fmt_t  fmt;

    memset(&fmt, 0, sizeof(fmt));
    s.data = (u_char *) text;
    s.len = strlen(text);
    err[0] = '\0';
    return tg_access_log_compile(pool, &fmt, &s, TG_ACCESS_LOG_ESC_DEFAULT,
                                 err, errlen);
}


int
main(void)
{
    u_char                 out[64], *p;
    char                   err[128];
    unsigned               t;
    tg_str_t               name;
    tg_http_conn_t         c;
    tg_http_request_t      r;
    tg_upstream_server_t   srv;
    tg_http_route_t        rt;
    tg_access_log_fmt_t    fmt;
    static const u_char    tid[16] = {
        0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
        0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36 };
    static const u_char    sid[8] = {
        0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7 };

    setenv("TZ", "UTC", 1);
    tzset();
    pool = tg_pool_create(4096);

    /* the clock: 2026-11-21 15:56:07 UTC */
    clk.sec = -1;
    tg_access_log_clock_update(&clk, 1795276567);
    ctx.now_ns = 1795276567123456789ULL;
    ctx.clock = &clk;
    ctx.pid = 4242;

    tg_test_http_init(pool, &c, &r);
    strcpy(c.peer_text, "192.0.2.7");
    c.peer_port = 50123;
    strcpy(c.local_text, "127.0.0.1");
    c.local_port = 8080;
    c.number = 17;
    c.requests = 2;

    tg_str_set(&r.method, "GET");
    tg_str_set(&r.uri, "/service-a/x?q=1");
    tg_str_set(&r.path, "/service-a/x");
    tg_str_set(&r.query, "q=1");
    tg_str_set(&r.host, "shop.example:8443");
    r.http_major = 1;
    r.http_minor = 1;
    r.status = 200;
    r.upstream.body_bytes = 612;
    r.bytes_sent = 850;
    /* times as ms before now: the request 250, the attempt 240 (headers
       after 90 ms, done after 190) */
    r.start_ns = ctx.now_ns - 250 * 1000000ULL;
    memset(&srv, 0, sizeof(srv));
    tg_str_set(&srv.text, "127.0.0.1:9001");
    r.upstream.server = &srv;
    r.upstream.result = 200;
    r.upstream.start_ns = ctx.now_ns - 240 * 1000000ULL;
    r.upstream.header_ns = ctx.now_ns - 150 * 1000000ULL;
    r.upstream.end_ns = ctx.now_ns - 50 * 1000000ULL;
    r.upstream.attempts = 1;
    memset(&rt, 0, sizeof(rt));
    tg_str_set(&rt.prefix, "/service-a");
    r.route = &rt;
    memcpy(r.trace_id, tid, 16);
    memcpy(r.span_id, sid, 8);
    r.trace_flags = 1;
    r.sampled = 1;
    tg_str_set(&r.x_trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    tg_test_http_header(&r, "Host", "shop.example:8443", TG_HTTP_HDR_HOST);
    tg_test_http_header(&r, "User-Agent", "curl/8.0", TG_HTTP_HDR_UA);
    tg_test_http_header(&r, "Authorization", "Bearer s3cr3t",
                        TG_HTTP_HDR_SECRET);
    tg_test_http_header(&r, "X-Api-Key", "k3y", TG_HTTP_HDR_SECRET);
    tg_test_http_header(&r, "X-Request-Id", "abc", 0);

    /* clock */
    is_mem(clk.local, sizeof(clk.local), "21/Nov/2026:15:56:07 +0000",
           "$time_local as nginx");
    is_mem(clk.iso8601, sizeof(clk.iso8601), "2026-11-21T15:56:07+00:00",
           "$time_iso8601 as nginx");

    /* built-in formats */
    is_str(render_builtin("combined", &r),
           "192.0.2.7 - - [21/Nov/2026:15:56:07 +0000] \"GET /service-a/x?q=1"
           " HTTP/1.1\" 200 612 \"-\" \"curl/8.0\"",
           "combined line");
    is_str(render_builtin("trace", &r),
           "192.0.2.7 - - [21/Nov/2026:15:56:07 +0000] \"GET /service-a/x?q=1"
           " HTTP/1.1\" 200 612 \"-\" \"curl/8.0\""
           " trace_id=4bf92f3577b34da6a3ce929d0e0e4736"
           " span_id=00f067aa0ba902b7 parent_id=- sampled=1"
           " x_trace_id=4bf92f3577b34da6a3ce929d0e0e4736"
           " upstream=127.0.0.1:9001 upstream_status=200 rt=0.250 urt=0.190",
           "trace line");
    is_str(render_builtin("json", &r),
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
           "\"http.request.header.referer\":null,"
           "\"http.request.body.size\":0,\"http.response.body.size\":612,"
           "\"bytes_sent\":850,\"duration_ms\":250,"
           "\"upstream\":\"127.0.0.1:9001\",\"upstream_status\":200,"
           "\"upstream_duration_ms\":190,\"upstream_attempts\":1,"
           "\"connection\":17}",
           "json line");
    tg_str_set(&name, "nginx");
    memset(&fmt, 0, sizeof(fmt));
    ok(tg_access_log_builtin(pool, &name, &fmt) == TG_DECLINED,
       "unknown built-in name declined");

    /* variables */
    is_str(render("$remote_addr:$remote_port $server_addr:$server_port "
                  "$connection/$connection_requests $pid", 0, &r, 200),
           "192.0.2.7:50123 127.0.0.1:8080 17/3 4242", "connection variables");
    is_str(render("$request_method $request_uri $uri $args $host "
                  "$server_protocol $scheme", 0, &r, 200),
           "GET /service-a/x?q=1 /service-a/x q=1 shop.example HTTP/1.1 http",
           "request variables");
    is_str(render("$msec $time_rfc3339", 0, &r, 200),
           "1795276567.123 2026-11-21T15:56:07.123Z", "$msec, $time_rfc3339");
    is_str(render("$status $body_bytes_sent $bytes_sent $request_time "
                  "$request_time_ms", 0, &r, 200),
           "200 612 850 0.250 250", "size and time variables");
    is_str(render("$upstream_addr $upstream_status $upstream_response_time "
                  "$upstream_header_time $upstream_attempts", 0, &r, 200),
           "127.0.0.1:9001 200 0.190 0.090 1", "upstream variables");
    is_str(render("$traceparent $trace_flags $route", 0, &r, 200),
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 01 "
           "/service-a", "$traceparent, $trace_flags, $route");
    is_str(render("${http_user_agent}|$http_x_request_id|$http_referer", 0,
                  &r, 200),
           "curl/8.0|abc|-", "$http_NAME, ${braces}, absent header");
    is_str(render("$http_authorization $http_x_api_key $http_cookie", 0, &r,
                  200),
           "[redacted] [redacted] -", "secret headers are redacted");
    is_str(render("$http_authorization", TG_ACCESS_LOG_ESC_JSON, &r, 200),
           "[redacted]", "redacted in json escaping too");

    r.has_parent = 1;
    memcpy(r.parent_id, sid, 8);
    r.parent_id[7] = 0x01;
    r.sampled = 0;
    r.trace_flags = 0;
    is_str(render("$parent_id $sampled $trace_flags", 0, &r, 200),
           "00f067aa0ba90201 0 00", "parent and unsampled flags");

    r.status = 0;
    is_str(render("$status", 0, &r, 200), "000",
           "no status logs 000, as nginx");
    r.status = 200;

    /* absent values */
    r.upstream.server = NULL;
    r.upstream.result = 0;
    r.route = NULL;
    r.query.len = 0;
    r.x_trace_id.len = 0;
    is_str(render("$upstream_addr $upstream_status $upstream_response_time "
                  "$route $args $x_trace_id $remote_user", 0, &r, 200),
           "- - - - - - -", "absent values are \"-\"");
    is_str(render("[$args][$route]", TG_ACCESS_LOG_ESC_JSON, &r, 200),
           "[][]", "absent values are empty with escape=json");

    /* escaping */
    tg_test_http_header(&r, "X-Evil", "a\"b\\c\r\n\x01\x7f\xff\xc3\xa9 d", 0);
    is_str(render("\"$http_x_evil\"", 0, &r, 200),
           "\"a\\x22b\\x5Cc\\x0D\\x0A\\x01\\x7F\\xFF\\xC3\\xA9 d\"",
           "default escaping is nginx's");
    is_str(render("\"$http_x_evil\"", TG_ACCESS_LOG_ESC_JSON, &r, 200),
           "\"a\\\"b\\\\c\\r\\n\\u0001\\u007F\xef\xbf\xbd\xc3\xa9 d\"",
           "json escaping keeps valid UTF-8, escapes the rest, U+FFFD for "
           "a byte of ill-formed UTF-8");
    r.x_trace_id.data = (u_char *) "id with\tspace";
    r.x_trace_id.len = 13;
    is_str(render("x=$x_trace_id", 0, &r, 200), "x=id\\x20with\\x09space",
           "$x_trace_id is one field: spaces escaped");

    t = 0;
    p = tg_access_log_escape(out, out + 5, (u_char *) "ab\"cd", 5,
                             TG_ACCESS_LOG_ESC_DEFAULT, &t);
    is_int(t, 1, "escape stops before a sequence that does not fit");
    is_int(p - out, 2, "escape stops before a sequence that does not fit");
    t = 0;
    p = tg_access_log_escape(out, out + sizeof(out),
                             (u_char *) "\xe0\x80\x80\xed\xa0\x80\xf4\x90", 8,
                             TG_ACCESS_LOG_ESC_JSON, &t);
    *p = '\0';
    is_int(t, 0, "overlong, surrogate and out-of-range UTF-8: nothing cut");
    is_mem(out, (size_t) (p - out),
           "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
           "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
           "overlong, surrogate and out-of-range UTF-8: U+FFFD for each byte");

    /* truncation */
    t = 0;
    {
        static u_char        small[16];
        tg_str_t             s = tg_string("$request_uri $request_uri");
        tg_access_log_fmt_t  f;

        memset(&f, 0, sizeof(f));
        tg_access_log_compile(pool, &f, &s, 0, err, sizeof(err));
        p = tg_access_log_render(&f, &r, &ctx, small, small + sizeof(small),
                                 &t);
        is_int(t, 1, "a line longer than the room is cut and reported");
        ok(p == small + sizeof(small),
           "a line longer than the room is cut and reported");
    }

    /* compile errors */
    ok(compile_error("$remote_addr $nope", err, sizeof(err)) == TG_ERROR,
       "unknown variable rejected");
    is_str(err, "unknown variable \"$nope\"", "error names the variable");
    ok(compile_error("${remote_addr", err, sizeof(err)) == TG_ERROR,
       "missing brace rejected");
    ok(compile_error("a $ b", err, sizeof(err)) == TG_ERROR,
       "lone $ rejected");
    ok(compile_error("$http_", err, sizeof(err)) == TG_ERROR,
       "$http_ without a name rejected");
    ok(compile_error("plain text only", err, sizeof(err)) == TG_OK,
       "literal-only format accepted");

    /* zone offsets, POSIX TZ strings need no tzdata */
    setenv("TZ", "TGT-01:30", 1);
    tzset();
    tg_access_log_clock_update(&clk, 1795276568);
    is_mem(clk.local, sizeof(clk.local), "21/Nov/2026:17:26:08 +0130",
           "$time_local east of UTC");
    is_mem(clk.iso8601, sizeof(clk.iso8601), "2026-11-21T17:26:08+01:30",
           "$time_iso8601 east of UTC");
    is_mem(clk.utc, sizeof(clk.utc), "2026-11-21T15:56:08",
           "RFC 3339 time stays UTC");
    setenv("TZ", "TGT+05", 1);
    tzset();
    tg_access_log_clock_update(&clk, 1795276569);
    is_mem(clk.local, sizeof(clk.local), "21/Nov/2026:10:56:09 -0500",
           "$time_local west of UTC");

    tg_pool_destroy(pool);
    return done_testing();
}
