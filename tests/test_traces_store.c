#include <tg_config.h>
#include <tg_core.h>
#include <tg_traces_store.h>
#include <tg_traces_json.h>
#include <event2/buffer.h>
#include <sys/wait.h>
#include <pthread.h>
#include "tap.h"


/*
 * The recent-trace store: FIFO eviction of traces, the span pool bound,
 * the per-trace limit, search, attributes, sharing across fork, and the
 * durations of the JSON API when a span ends before it starts.
 */


static void
test_span(tg_traces_span_t *sp, int trace, int span, int parent)
{
    tg_traces_span_init(sp);
    sp->trace_id[0] = 0x11;
    sp->trace_id[15] = (u_char) trace;
    sp->trace_id[8] = (u_char) (trace * 7);
    sp->span_id[0] = 0x22;
    sp->span_id[7] = (u_char) span;
    if (parent) {
        sp->parent_id[0] = 0x22;
        sp->parent_id[7] = (u_char) parent;
    }
    sp->start_ns = 1000 + (uint64_t) span;
    sp->end_ns = 2000 + (uint64_t) span;
    sp->kind = TG_SPAN_KIND_SERVER;
    snprintf(sp->service, sizeof(sp->service), "svc-%d", span % 2);
    snprintf(sp->name, sizeof(sp->name), "span %d", span);
}


int
main(void)
{
    int                   i, st;
    u_char                id[16];
    pid_t                 pid;
    size_t                n, off;
    ssize_t               got;
    tg_str_t              q;
    tg_traces_attr_t      a;
    tg_traces_span_t      sp, *spans;
    tg_traces_stats_t     stats;
    char                 *json;
    tg_traces_store_t    *s;
    tg_traces_summary_t   sum[8];
    struct evbuffer      *b;

    s = tg_traces_store_create(4, 10, 5);
    ok(s != NULL, "store created");
    ok(tg_traces_store_same(s, 4, 10, 5), "same bounds recognised");
    ok(!tg_traces_store_same(s, 5, 10, 5), "other bounds recognised");

    /* trace 1: a root and a child with attributes */
    test_span(&sp, 1, 1, 0);
    tg_traces_span_add(&sp, TG_SPAN_ATTR_STRING, (u_char *) "url.path", 8,
                       (u_char *) "/x", 2, 0);
    tg_traces_span_add(&sp, TG_SPAN_ATTR_STRING,
                       (u_char *) "tracegate.x_trace_id", 20,
                       (u_char *) "Order-42", 8, 0);
    tg_traces_span_add(&sp, TG_SPAN_ATTR_INT, (u_char *) "n", 1, NULL, 0, 7);
    tg_traces_span_add(&sp, TG_SPAN_ATTR_BOOL, (u_char *) "b", 1, NULL, 0, 1);
    is_int(tg_traces_store_add(s, &sp, 1), 1, "root stored");
    test_span(&sp, 1, 2, 1);
    sp.status = TG_SPAN_STATUS_ERROR;
    is_int(tg_traces_store_add(s, &sp, 1), 1, "child stored");

    n = tg_traces_store_list(s, NULL, sum, 8);
    is_int(n, 1, "one trace listed");
    is_int(sum[0].nspans, 2, "two spans");
    is_int(sum[0].nerrors, 1, "one error");
    is_str(sum[0].root_name, "span 1", "root name");
    is_str(sum[0].root_path, "/x", "root path");
    is_str(sum[0].services, "svc-1,svc-0", "services, distinct");
    is_str(sum[0].x_trace_id, "Order-42", "x_trace_id picked up");
    is_int(sum[0].end_ns - sum[0].start_ns, 1001, "trace duration");

    tg_str_set(&q, "order-42");
    is_int(tg_traces_store_list(s, &q, sum, 8), 1, "search by X-Trace-ID");
    tg_str_set(&q, "1100000000");
    is_int(tg_traces_store_list(s, &q, sum, 8), 1, "search by id prefix");
    tg_str_set(&q, "nothing");
    is_int(tg_traces_store_list(s, &q, sum, 8), 0, "no match");

    memset(id, 0, 16);
    id[0] = 0x11;
    id[15] = 1;
    id[8] = 7;
    got = tg_traces_store_get(s, id, &spans, &sum[0]);
    is_int(got, 2, "get: both spans");
    if (got == 2) {
        is_str(spans[0].name, "span 1", "get: arrival order");
        off = 0;
        n = 0;
        while (tg_traces_attr_next(&spans[0], &off, &a)) {
            n++;
            if (a.type == TG_SPAN_ATTR_INT) {
                is_int(a.num, 7, "int attribute");
            }
        }
        is_int(n, 4, "four attributes");
    }
    free(spans);

    /* per-trace limit: 5 */
    for (i = 3; i <= 8; i++) {
        test_span(&sp, 1, i, 1);
        tg_traces_store_add(s, &sp, 1);
    }
    n = tg_traces_store_list(s, NULL, sum, 8);
    is_int(sum[0].nspans, 5, "per-trace limit holds");
    is_int(sum[0].dropped, 3, "over the limit: counted");

    /* trace slots: 4, oldest first out */
    for (i = 2; i <= 5; i++) {
        test_span(&sp, i, 1, 0);
        tg_traces_store_add(s, &sp, 1);
    }
    n = tg_traces_store_list(s, NULL, sum, 8);
    is_int(n, 4, "max_traces holds");
    is_int(sum[0].trace_id[15], 5, "newest first");
    is_int(sum[3].trace_id[15], 2, "trace 1 was evicted");
    got = tg_traces_store_get(s, id, &spans, &sum[4]);
    is_int(got, 0, "evicted trace is gone");

    /* span pool: 10 records; trace 6 with 5 spans pushes out old traces */
    for (i = 1; i <= 5; i++) {
        test_span(&sp, 6, i, i > 1 ? 1 : 0);
        tg_traces_store_add(s, &sp, 1);
    }
    for (i = 1; i <= 5; i++) {
        test_span(&sp, 7, i, i > 1 ? 1 : 0);
        tg_traces_store_add(s, &sp, 1);
    }
    tg_traces_store_stats(s, &stats);
    ok(stats.spans <= 10, "span pool bound holds");
    n = tg_traces_store_list(s, NULL, sum, 8);
    is_int(sum[0].nspans, 5, "newest trace whole");
    is_int(sum[1].nspans, 5, "second newest whole");
    is_int(n, 2, "older traces evicted for room");

    /* shared across fork */
    pid = fork();
    if (pid == 0) {
        test_span(&sp, 9, 1, 0);
        _exit(tg_traces_store_add(s, &sp, 1) == 1 ? 0 : 1);
    }
    waitpid(pid, &st, 0);
    is_int(WEXITSTATUS(st), 0, "child stored a span");
    n = tg_traces_store_list(s, NULL, sum, 8);
    is_int(sum[0].trace_id[15], 9, "parent sees the child's trace");

    /* robust lock: a child dies holding it (the mutex opens the store) */
    pid = fork();
    if (pid == 0) {
        pthread_mutex_lock((pthread_mutex_t *) s);
        _exit(0);
    }
    waitpid(pid, &st, 0);
    n = tg_traces_store_list(s, NULL, sum, 8);
    is_int(n, 0, "owner died: store cleared, not locked");
    test_span(&sp, 10, 1, 0);
    is_int(tg_traces_store_add(s, &sp, 1), 1, "usable again");

    /*
     * a trace of one span that ends before it starts (a sender's clock
     * stepped back): its summary and its span both last 0 us, never the
     * 2^64 ns an unsigned subtraction would make of it
     */
    test_span(&sp, 11, 1, 0);
    sp.start_ns = 5000000;
    sp.end_ns = 3000000;
    tg_traces_store_add(s, &sp, 1);
    n = tg_traces_store_list(s, NULL, sum, 8);
    b = evbuffer_new();
    if (n > 0 && b != NULL) {
        tg_traces_json_summary(b, &sum[0]);
        evbuffer_add(b, "", 1);
        json = (char *) evbuffer_pullup(b, -1);
        if (!ok(strstr(json, "\"duration_us\":0.000,") != NULL,
                "summary of a span ending before its start: duration 0"))
        {
            printf("#   %s\n", json);
        }
        evbuffer_drain(b, evbuffer_get_length(b));
        tg_traces_json_span(b, &sp, sum[0].start_ns);
        evbuffer_add(b, "", 1);
        json = (char *) evbuffer_pullup(b, -1);
        if (!ok(strstr(json, "\"duration_us\":0.000,") != NULL,
                "that span itself: duration 0"))
        {
            printf("#   %s\n", json);
        }
    } else {
        ok(0, "summary of a span ending before its start: listed");
    }
    if (b != NULL) {
        /* JSON strings: tg_json_escape, controls as \u00xx, DEL as it is,
           U+FFFD for a byte of ill-formed UTF-8 */
        evbuffer_drain(b, evbuffer_get_length(b));
        tg_traces_json_str(b, (const u_char *) "a\"\\\n\x7f\xc3\xa9\xff\0z",
                           10);
        evbuffer_add(b, "", 1);
        json = (char *) evbuffer_pullup(b, -1);
        is_str(json, "\"a\\\"\\\\\\u000a\x7f\xc3\xa9\xef\xbf\xbd\\u0000z\"",
               "JSON string: escapes, valid UTF-8 kept, U+FFFD");
        evbuffer_free(b);
    }

    ok(tg_traces_store_size(1000, 10000) < 10 * 1024 * 1024,
       "default size under 10 MB");
    tg_traces_store_destroy(s);
    done_testing();
}
