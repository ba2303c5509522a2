#include <tg_config.h>
#include <tg_core.h>
#include <tg_cycle.h>
#include <tg_http.h>
#include <tg_access_log_format.h>

/*
 * Renders access log lines for one realistic request in a loop, with no
 * system call inside the loop, so that an instruction count of the whole
 * run (valgrind --tool=callgrind) measures the renderer:
 *
 *   access_log_bench [-n lines] [-f combined|trace|json|all|every] [-u]
 *
 * "every" is a custom format with every variable, in default escaping;
 * "all" (the default) renders combined, trace, json and every in turn.
 * -u gives the request a User-Agent and a query that need escaping
 * (quotes, a tab, a backslash, UTF-8), so that the escapers run too.
 * Prints each format's line once, then the count and total bytes, so two
 * builds can be compared for identical output as well as for cost.
 */

#define TG_AL_BENCH_BUFSZ  8192


static const char  tg_al_bench_every[] =
    "$remote_addr $remote_port $remote_user [$time_local] $time_iso8601"
    " $time_rfc3339 $msec \"$request\" $request_method $request_uri $uri"
    " $document_uri $args $query_string $server_protocol $protocol_version"
    " $scheme $status $body_bytes_sent $bytes_sent $request_body_length"
    " $request_time $request_time_ms \"$http_user_agent\" $http_referer"
    " $http_authorization $http_x_missing $upstream_addr $upstream_status"
    " $upstream_response_time $upstream_response_time_ms"
    " $upstream_header_time $upstream_attempts $host $server_addr"
    " $server_port $connection $connection_requests $pid $trace_id"
    " $span_id $parent_id $sampled $trace_flags $x_trace_id $route"
    " $traceparent";


static void
tg_al_bench_header(tg_http_request_t *r, const char *name, const char *value,
    uint32_t flags)
{
    tg_http_header_t  *h;

    h = tg_array_push(&r->headers);
    h->name.data = (u_char *) name;
    h->name.len = strlen(name);
    h->value.data = (u_char *) value;
    h->value.len = strlen(value);
    h->flags = flags;
}


int
main(int argc, char **argv)
{
    int                     opt;
    size_t                  i, k, nfmt, total;
    u_char                 *p;
    uint64_t                now;
    unsigned                t;
    tg_str_t                s;
    tg_pool_t              *pool;
    int                     hostile;
    const char             *which;
    tg_listen_t             ls;
    tg_http_conn_t          conn;
    tg_http_route_t         route;
    tg_http_request_t       req;
    tg_access_log_ctx_t     ctx;
    tg_access_log_fmt_t     fmt[4];
    tg_access_log_clock_t   clk;
    tg_upstream_server_t    srv;
    char                    err[128];
    static u_char           buf[TG_AL_BENCH_BUFSZ];
    static const char      *names[] = { "combined", "trace", "json" };

    k = 100000;
    which = "all";
    hostile = 0;
    while ((opt = getopt(argc, argv, "n:f:u")) != -1) {
        switch (opt) {
        case 'n':
            k = (size_t) strtoull(optarg, NULL, 10);
            break;
        case 'f':
            which = optarg;
            break;
        case 'u':
            hostile = 1;
            break;
        default:
            fprintf(stderr, "usage: access_log_bench [-n lines] "
                    "[-f combined|trace|json|every|all] [-u]\n");
            return 2;
        }
    }

    setenv("TZ", "UTC", 1);
    tzset();
    pool = tg_pool_create(4096);
    if (pool == NULL) {
        return 1;
    }

    nfmt = 0;
    memset(fmt, 0, sizeof(fmt));
    for (i = 0; i < 3; i++) {
        if (strcmp(which, "all") != 0 && strcmp(which, names[i]) != 0) {
            continue;
        }
        s.data = (u_char *) names[i];
        s.len = strlen(names[i]);
        if (tg_access_log_builtin(pool, &s, &fmt[nfmt++]) != TG_OK) {
            return 1;
        }
    }
    if (strcmp(which, "all") == 0 || strcmp(which, "every") == 0) {
        s.data = (u_char *) tg_al_bench_every;
        s.len = sizeof(tg_al_bench_every) - 1;
        if (tg_access_log_compile(pool, &fmt[nfmt++], &s,
                                  TG_ACCESS_LOG_ESC_DEFAULT, err, sizeof(err))
            != TG_OK)
        {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    if (nfmt == 0) {
        fprintf(stderr, "unknown format \"%s\"\n", which);
        return 2;
    }

    /* a proxied request with a traceparent, as t/70 sends them */
    memset(&ls, 0, sizeof(ls));
    memset(&conn, 0, sizeof(conn));
    strcpy(conn.peer_text, "192.0.2.7");
    conn.peer_port = 50123;
    strcpy(conn.local_text, "127.0.0.1");
    conn.local_port = 8080;
    conn.number = 17;
    conn.requests = 2;
    conn.listen = &ls;

    now = 1795276567123456789ULL;
    memset(&req, 0, sizeof(req));
    req.c = &conn;
    tg_array_init(&req.headers, pool, 8, sizeof(tg_http_header_t));
    tg_str_set(&req.method, "GET");
    tg_str_set(&req.uri, "/service-a/api/v1/items/42?q=1&page=2");
    tg_str_set(&req.path, "/service-a/api/v1/items/42");
    tg_str_set(&req.query, "q=1&page=2");
    tg_str_set(&req.host, "shop.example:8443");
    req.http_major = 1;
    req.http_minor = 1;
    req.status = 200;
    req.upstream.body_bytes = 612;
    req.bytes_sent = 850;
    req.request_body_bytes = 31;
    req.start_ns = now - 250000000;
    memset(&srv, 0, sizeof(srv));
    tg_str_set(&srv.text, "127.0.0.1:9001");
    req.upstream.server = &srv;
    req.upstream.result = 200;
    req.upstream.start_ns = now - 240000000;
    req.upstream.header_ns = now - 150000000;
    req.upstream.end_ns = now - 50000000;
    req.upstream.attempts = 1;
    memset(&route, 0, sizeof(route));
    tg_str_set(&route.prefix, "/service-a");
    req.route = &route;
    memcpy(req.trace_id, "\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6"
                         "\xa3\xce\x92\x9d\x0e\x0e\x47\x36", 16);
    memcpy(req.span_id, "\x00\xf0\x67\xaa\x0b\xa9\x02\xb7", 8);
    memcpy(req.parent_id, "\xb7\xad\x6b\x71\x69\x20\x33\x1f", 8);
    req.has_parent = 1;
    req.trace_flags = 1;
    req.sampled = 1;
    tg_str_set(&req.x_trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    tg_al_bench_header(&req, "Host", "shop.example:8443", TG_HTTP_HDR_HOST);
    if (hostile) {
        tg_str_set(&req.uri, "/service-a/search?q=\"caf\xc3\xa9\"&c=\\x");
        tg_str_set(&req.query, "q=\"caf\xc3\xa9\"&c=\\x");
        tg_al_bench_header(&req, "User-Agent",
                           "Mozilla/5.0 (X11; \"Linux\"\tx86_64) "
                           "Gecko/20100101 Firefox/128.0 \xe2\x82\xac "
                           "caf\xc3\xa9", TG_HTTP_HDR_UA);
    } else {
        tg_al_bench_header(&req, "User-Agent",
                           "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) "
                           "Gecko/20100101 Firefox/128.0", TG_HTTP_HDR_UA);
    }
    tg_al_bench_header(&req, "Accept", "*/*", 0);
    tg_al_bench_header(&req, "Referer", "https://shop.example/cart", 0);
    tg_al_bench_header(&req, "Authorization", "Bearer s3cr3t",
                       TG_HTTP_HDR_SECRET);
    tg_al_bench_header(&req, "traceparent",
                       "00-4bf92f3577b34da6a3ce929d0e0e4736-"
                       "b7ad6b7169203331-01", 0);

    clk.sec = -1;
    tg_access_log_clock_update(&clk, (time_t) (now / 1000000000));
    ctx.now_ns = now;
    ctx.clock = &clk;
    ctx.pid = 4242;

    for (i = 0; i < nfmt; i++) {
        p = tg_access_log_render(&fmt[i], &req, &ctx, buf,
                                 buf + sizeof(buf), &t);
        printf("%.*s\n", (int) (p - buf), (char *) buf);
    }

    total = 0;
    for (; k > 0; k--) {
        for (i = 0; i < nfmt; i++) {
            p = tg_access_log_render(&fmt[i], &req, &ctx, buf,
                                     buf + sizeof(buf), &t);
            total += (size_t) (p - buf) + t;
        }
    }
    printf("formats=%zu bytes=%zu\n", nfmt, total);

    tg_pool_destroy(pool);
    return 0;
}
