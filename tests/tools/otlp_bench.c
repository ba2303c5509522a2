#include <tg_config.h>
#include <tg_core.h>
#include <tg_otlp_exporter.h>

#include <getopt.h>
#include <curl/curl.h>
#include <event2/thread.h>

/*
 * Pushes N synthetic, realistic spans (SERVER + CLIENT pairs, about 15
 * attributes each) through one ring and one exporter thread, the way a
 * worker does, then stops the exporter with a flush deadline and prints
 * the counters as key=value lines. Used by bench/otlp_bench.sh (throughput)
 * and t/63-otlp-export.t (retry and drop behaviour against TGOTLP).
 *
 *   otlp_bench -e URL [-n spans] [-b batch] [-q queue] [-d delay_ms]
 *              [-t timeout_ms] [-x export_timeout_ms] [-i in_flight]
 *              [-r retry_initial_ms] [-f flush_ms] [-H "k: v"] [-z] [-j]
 *              [-l]   (-l: lossless, wait when the ring is full)
 *              [-o file|console] (file: -e is the path)
 */


static void
tg_otlp_bench_span(tg_span_t *s, uint64_t seq, uint64_t run)
{
    char      buf[128];
    int       n;
    uint64_t  now;

    now = tg_time_now_ns();
    tg_span_init(s);
    /* a trace per pair; the span id carries the sequence number */
    memcpy(s->trace_id, &run, 8);
    memcpy(s->trace_id + 8, &(uint64_t) { seq / 2 + 1 }, 8);
    memcpy(s->span_id, &(uint64_t) { seq + 1 }, 8);
    s->flags = 1;
    s->start_ns = now - 1500000;
    s->end_ns = now;

    n = snprintf(buf, sizeof(buf), "/service-%c/api/v1/items/%" PRIu64,
                 'a' + (int) (seq % 3), seq);
    if (seq % 2 == 0) {
        s->kind = TG_SPAN_KIND_SERVER;
        tg_span_set_name(s, (u_char *) "GET /service-a", 14);
        tg_span_add_str(s, "http.request.method", (u_char *) "GET", 3);
        tg_span_add_str(s, "url.path", (u_char *) buf, (size_t) n);
        tg_span_add_str(s, "url.scheme", (u_char *) "http", 4);
        tg_span_add_str(s, "http.route", (u_char *) "/service-a", 10);
        tg_span_add_int(s, "http.response.status_code", 200);
        tg_span_add_str(s, "server.address", (u_char *) "gateway.local", 13);
        tg_span_add_int(s, "server.port", 8080);
        tg_span_add_str(s, "client.address", (u_char *) "10.1.2.3", 8);
        tg_span_add_str(s, "network.peer.address", (u_char *) "10.1.2.3", 8);
        tg_span_add_int(s, "network.peer.port", 51234);
        tg_span_add_str(s, "network.protocol.version", (u_char *) "1.1", 3);
        tg_span_add_str(s, "user_agent.original",
                        (u_char *) "Mozilla/5.0 (X11; Linux x86_64) "
                        "AppleWebKit/537.36 (KHTML, like Gecko)", 70);
        tg_span_add_str(s, "x_trace_id",
                        (u_char *) "0af7651916cd43dd8448eb211c80319c", 32);
        tg_span_add_int(s, "http.request.body.size", 0);
        tg_span_add_int(s, "http.response.body.size", 1234);
    } else {
        s->kind = TG_SPAN_KIND_CLIENT;
        memcpy(s->parent_id, &(uint64_t) { seq }, 8);
        tg_span_set_name(s, (u_char *) "GET", 3);
        tg_span_add_str(s, "http.request.method", (u_char *) "GET", 3);
        tg_span_add_str(s, "server.address", (u_char *) "127.0.0.1", 9);
        tg_span_add_int(s, "server.port", 9001);
        tg_span_add_str(s, "url.full", (u_char *) buf, (size_t) n);
        tg_span_add_int(s, "http.response.status_code", 200);
        tg_span_add_str(s, "network.peer.address", (u_char *) "127.0.0.1", 9);
        tg_span_add_int(s, "network.peer.port", 9001);
        tg_span_add_str(s, "network.protocol.version", (u_char *) "1.1", 3);
        tg_span_add_str(s, "network.transport", (u_char *) "tcp", 3);
        tg_span_add_int(s, "http.request.resend_count", 0);
        tg_span_add_str(s, "upstream.name", (u_char *) "service-a", 9);
        tg_span_add_str(s, "url.scheme", (u_char *) "http", 4);
        tg_span_add_int(s, "http.response.body.size", 1234);
        tg_span_add_str(s, "peer.service", (u_char *) "service-a", 9);
        tg_span_add_bool(s, "tracegate.retry", 0);
    }
}


int
main(int argc, char **argv)
{
    int                       c, lossless;
    char                     *kind;
    size_t                    i, nh;
    uint64_t                  n, run, pushed, full, t0, t1, t2;
    tg_span_t                *spans;
    const char               *headers[16];
    tg_otlp_ring_t           *ring;
    tg_otlp_stats_t           stats;
    tg_otlp_exporter_t       *ex;
    struct timespec           nap;
    tg_otlp_exporter_conf_t   conf;
    tg_otlp_kv_t              attrs[4];
    tg_otlp_resource_t        res;
    int64_t                   flush_ms;
    size_t                    queue;

    memset(&conf, 0, sizeof(conf));
    conf.kind = TG_OTLP_EXPORT_OTLP;
    conf.timeout_ms = 10000;
    conf.export_timeout_ms = 30000;
    conf.schedule_delay_ms = 5000;
    conf.max_export_batch_size = 512;
    conf.max_in_flight = 2;
    n = 100000;
    queue = 2048;
    flush_ms = 30000;
    lossless = 0;
    kind = NULL;
    nh = 0;

    while ((c = getopt(argc, argv, "e:n:b:q:d:t:x:i:r:f:H:o:zjl")) != -1) {
        switch (c) {
        case 'e': conf.endpoint = optarg; conf.file = optarg; break;
        case 'n': n = strtoull(optarg, NULL, 10); break;
        case 'b': conf.max_export_batch_size = strtoul(optarg, NULL, 10);
                  break;
        case 'q': queue = strtoul(optarg, NULL, 10); break;
        case 'd': conf.schedule_delay_ms = atoll(optarg); break;
        case 't': conf.timeout_ms = atoll(optarg); break;
        case 'x': conf.export_timeout_ms = atoll(optarg); break;
        case 'i': conf.max_in_flight = strtoul(optarg, NULL, 10); break;
        case 'r': conf.retry_initial_ms = atoll(optarg); break;
        case 'f': flush_ms = atoll(optarg); break;
        case 'H': if (nh < 16) { headers[nh++] = optarg; } break;
        case 'o': kind = optarg; break;
        case 'z': conf.gzip = 1; break;
        case 'j': conf.json = 1; break;
        case 'l': lossless = 1; break;
        default:
            fprintf(stderr, "usage: see the comment in otlp_bench.c\n");
            return 2;
        }
    }
    if (conf.endpoint == NULL) {
        fprintf(stderr, "otlp_bench: -e URL is required\n");
        return 2;
    }
    if (kind && strcmp(kind, "file") == 0) {
        conf.kind = TG_OTLP_EXPORT_FILE;
    } else if (kind && strcmp(kind, "console") == 0) {
        conf.kind = TG_OTLP_EXPORT_CONSOLE;
    }
    conf.headers = headers;
    conf.nheaders = nh;

    attrs[0].key = "service.name";
    attrs[0].value = "otlp-bench";
    attrs[1].key = "service.instance.id";
    attrs[1].value = "bench-1";
    attrs[2].key = "telemetry.sdk.name";
    attrs[2].value = "tracegate";
    attrs[3].key = "telemetry.sdk.language";
    attrs[3].value = "c";
    res.attrs = attrs;
    res.nattrs = 4;
    conf.resource = &res;

    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK
        || tg_random_init() != TG_OK)
    {
        return 1;
    }

    /* spans are made before the clock starts: we time the export path */
    spans = malloc(64 * sizeof(tg_span_t));
    ring = tg_otlp_ring_create(queue, 0);
    memset(&stats, 0, sizeof(stats));
    if (spans == NULL || ring == NULL) {
        return 1;
    }
    run = tg_random_u64();
    for (i = 0; i < 64; i++) {
        tg_otlp_bench_span(&spans[i], i, run);
    }

    ex = tg_otlp_exporter_start(&conf, ring, &stats);
    if (ex == NULL) {
        fprintf(stderr, "otlp_bench: exporter did not start\n");
        return 1;
    }

    nap.tv_sec = 0;
    nap.tv_nsec = 250000;
    full = 0;
    t0 = tg_time_now_ns();
    for (i = 0; i < n; i++) {
        /* unique ids per span; the rest of the 64 templates is reused */
        memcpy(spans[i % 64].span_id, &(uint64_t) { i + 1 }, 8);
        memcpy(spans[i % 64].trace_id + 8, &(uint64_t) { i / 2 + 1 }, 8);
        if (i % 2) {
            memcpy(spans[i % 64].parent_id, &(uint64_t) { i }, 8);
        }
        while (tg_otlp_ring_push(ring, &spans[i % 64]) != TG_OK) {
            if (!lossless) {
                full++;
                break;
            }
            nanosleep(&nap, NULL);
        }
    }
    t1 = tg_time_now_ns();
    pushed = n - full;
    tg_otlp_stat_add(&stats.queued, pushed);
    tg_otlp_stat_add(&stats.dropped_full, full);

    tg_otlp_exporter_stop(ex, flush_ms);
    t2 = tg_time_now_ns();

    printf("spans=%" PRIu64 "\n", n);
    printf("queued=%" PRIu64 "\n", (uint64_t) stats.queued);
    printf("dropped_full=%" PRIu64 "\n", (uint64_t) stats.dropped_full);
    printf("exported=%" PRIu64 "\n", (uint64_t) stats.exported);
    printf("dropped_failed=%" PRIu64 "\n", (uint64_t) stats.dropped_failed);
    printf("rejected=%" PRIu64 "\n", (uint64_t) stats.rejected);
    printf("retried=%" PRIu64 "\n", (uint64_t) stats.retried);
    printf("requests=%" PRIu64 "\n", (uint64_t) stats.requests);
    printf("push_seconds=%.3f\n", (double) (t1 - t0) / 1e9);
    printf("total_seconds=%.3f\n", (double) (t2 - t0) / 1e9);
    printf("spans_per_sec=%.0f\n",
           (double) stats.exported / ((double) (t2 - t0) / 1e9));

    tg_otlp_ring_destroy(ring);
    free(spans);
    curl_global_cleanup();
    return 0;
}
