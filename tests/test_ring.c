#include <tg_config.h>
#include <tg_core.h>
#include <tg_otlp_ring.h>
#include <pthread.h>
#include <tap.h>

/*
 * The span ring: bounds by count and by bytes, wrap-around with variable
 * record sizes, drop counting, wake-ups, and a producer/consumer run on two
 * threads where every span must arrive once, in order, intact.
 */

#define TEST_THREAD_SPANS  1000000

/* bytes a span takes in the ring: 8-byte header, span padded to 8 */
#define tg_otlp_rec(s)  (8 + ((tg_span_size(s) + 7) & ~(size_t) 7))


/* A span whose every byte follows from seq: name, ids, attrs. */
static void
test_span_make(tg_span_t *s, uint64_t seq, size_t vlen)
{
    u_char  v[600];

    tg_span_init(s);
    memcpy(s->span_id, &seq, 8);
    s->start_ns = seq;
    s->end_ns = seq + 1;
    tg_span_set_name(s, (u_char *) "GET /a", 6);
    vlen = tg_min(vlen, sizeof(v));
    memset(v, 'a' + (int) (seq % 26), vlen);
    tg_span_add_str(s, "k", v, vlen);
    tg_span_add_int(s, "seq", (int64_t) seq);
}


static int
test_span_check(const tg_span_t *s, uint64_t seq)
{
    size_t          i;
    uint64_t        id;
    tg_span_attr_t  a;

    memcpy(&id, s->span_id, 8);
    if (id != seq || s->start_ns != seq || s->end_ns != seq + 1
        || strcmp(s->name, "GET /a") != 0 || s->nattrs != 2)
    {
        return 0;
    }
    if (!tg_span_attr_find(s, "k", &a)) {
        return 0;
    }
    for (i = 0; i < a.str.len; i++) {
        if (a.str.data[i] != 'a' + (int) (seq % 26)) {
            return 0;
        }
    }
    if (!tg_span_attr_find(s, "seq", &a) || a.num != (int64_t) seq) {
        return 0;
    }
    return 1;
}


/* Peeks, copies the spans out as a consumer would use them, releases. */
static size_t
test_pop(tg_otlp_ring_t *ring, tg_span_t *out, size_t max, size_t max_bytes)
{
    size_t            i, n;
    const tg_span_t  *sp[64];

    n = tg_otlp_ring_peek(ring, sp, tg_min(max, 64), max_bytes);
    for (i = 0; i < n; i++) {
        memcpy(&out[i], sp[i], tg_span_size(sp[i]));
    }
    tg_otlp_ring_release(ring);
    return n;
}


static int  test_wakes;

static void
test_wake(void *data)
{
    test_wakes++;
}


typedef struct {
    tg_otlp_ring_t  *ring;
    uint64_t         ok;
    uint64_t         dropped;
    int              retry;        /* spin on full instead of dropping */
    _Atomic int      done;
} test_thread_t;


static void *
test_producer(void *data)
{
    uint64_t        seq;
    tg_span_t      *s;
    test_thread_t  *t = data;

    s = malloc(sizeof(tg_span_t));
    for (seq = 0; seq < TEST_THREAD_SPANS; seq++) {
        test_span_make(s, seq, (size_t) (seq * 7919 % 500));
        if (tg_otlp_ring_push(t->ring, s) == TG_OK) {
            t->ok++;
            continue;
        }
        if (!t->retry) {
            t->dropped++;
            continue;
        }
        while (tg_otlp_ring_push(t->ring, s) != TG_OK) {
            /* spin: the consumer is on another core */
        }
        t->ok++;
    }
    free(s);
    atomic_store(&t->done, 1);
    return NULL;
}


/* Returns the number of spans seen; *bad counts order or content errors. */
static uint64_t
test_consume(test_thread_t *t, uint64_t *bad, int dense)
{
    size_t      i, n;
    uint64_t    seen, last, seq;
    tg_span_t  *out;

    out = malloc(64 * sizeof(tg_span_t));
    seen = 0;
    last = 0;
    *bad = 0;
    for ( ;; ) {
        n = test_pop(t->ring, out, 64, 32 * 1024);
        if (n == 0) {
            if (atomic_load(&t->done) && tg_otlp_ring_count(t->ring) == 0) {
                break;
            }
            continue;
        }
        for (i = 0; i < n; i++) {
            memcpy(&seq, out[i].span_id, 8);
            if ((seen && seq <= last) || (dense && seq != seen)
                || !test_span_check(&out[i], seq))
            {
                (*bad)++;
            }
            last = seq;
            seen++;
        }
    }
    free(out);
    return seen;
}


static void
test_threads(int retry)
{
    uint64_t        seen, bad;
    pthread_t       tid;
    test_thread_t   t;

    memset(&t, 0, sizeof(t));
    t.ring = tg_otlp_ring_create(2048, 0);
    t.retry = retry;
    atomic_init(&t.done, 0);
    pthread_create(&tid, NULL, test_producer, &t);
    seen = test_consume(&t, &bad, retry);
    pthread_join(tid, NULL);

    if (retry) {
        is_int(seen, TEST_THREAD_SPANS, "two threads, lossless: all arrived");
        is_int(t.ok, TEST_THREAD_SPANS, "two threads, lossless: all pushed");
    } else {
        is_int(seen + t.ring->dropped, TEST_THREAD_SPANS,
               "two threads, dropping: seen + dropped = pushed");
        is_int(t.ring->dropped, t.dropped,
               "two threads: ring counter matches producer's view");
    }
    is_int(bad, 0, "two threads (%s): order and content intact",
           retry ? "lossless" : "dropping");
    tg_otlp_ring_destroy(t.ring);
}


int
main(void)
{
    size_t            i, n, in, outn, k;
    uint64_t          seq_in, seq_out, bad;
    tg_span_t        *s, *out;
    tg_otlp_ring_t   *ring;
    const tg_span_t  *held[64], *sp2[64];

    s = malloc(sizeof(tg_span_t));
    out = malloc(64 * sizeof(tg_span_t));

    ok(tg_otlp_ring_create(0, 0) == NULL, "zero capacity refused");

    /* count bound */
    ring = tg_otlp_ring_create(4, 0);
    ok(ring != NULL, "ring of 4 created");
    is_int(test_pop(ring, out, 64, 1 << 20), 0, "empty ring pops 0");
    for (i = 0; i < 4; i++) {
        test_span_make(s, i, 10);
        is_int(tg_otlp_ring_push(ring, s), TG_OK, "push %zu accepted", i);
    }
    test_span_make(s, 4, 10);
    is_int(tg_otlp_ring_push(ring, s), TG_DECLINED, "push into full ring");
    is_int(ring->dropped, 1, "drop counted");
    is_int(tg_otlp_ring_count(ring), 4, "count is 4");

    n = test_pop(ring, out, 2, 1 << 20);
    is_int(n, 2, "pop respects max");
    ok(test_span_check(&out[0], 0), "first two in order and intact");
    ok(test_span_check(&out[1], 1), "first two in order and intact");
    test_span_make(s, 5, 10);
    is_int(tg_otlp_ring_push(ring, s), TG_OK, "room again after pop");
    n = test_pop(ring, out, 64, 1 << 20);
    is_int(n, 3, "rest popped");
    ok(test_span_check(&out[0], 2), "FIFO order across the drop");
    ok(test_span_check(&out[1], 3), "FIFO order across the drop");
    ok(test_span_check(&out[2], 5), "FIFO order across the drop");

    /* max_bytes: at least one, then stop before exceeding */
    for (i = 0; i < 3; i++) {
        test_span_make(s, 10 + i, 400);
        tg_otlp_ring_push(ring, s);
    }
    n = test_pop(ring, out, 64, 1);
    is_int(n, 1, "a tiny byte budget still takes one span");
    n = test_pop(ring, out, 64, 2 * tg_span_size(s) - 1);
    is_int(n, 1, "byte budget stops before the second span");
    n = test_pop(ring, out, 64, 1 << 20);
    is_int(n, 1, "last one");
    ok(test_span_check(&out[0], 12), "content after byte-limited pops");
    tg_otlp_ring_destroy(ring);

    /* byte bound and wrap-around with variable sizes */
    ring = tg_otlp_ring_create(100000, 8192);
    if (ok(ring != NULL, "byte-bounded ring created")) {
        ok(ring->size >= 8192, "byte-bounded ring: at least 8192 bytes");
    }
    n = 0;
    for (i = 0; i < 1000; i++) {
        test_span_make(s, i, 100);
        if (tg_otlp_ring_push(ring, s) != TG_OK) {
            break;
        }
        n++;
    }
    ok(n > 0, "byte bound hit before the count bound (%zu spans)", n);
    ok(n < 1000, "byte bound hit before the count bound (%zu spans)", n);
    is_int(ring->dropped, 1,
           "byte bound hit before the count bound (%zu spans)", n);
    tg_otlp_ring_destroy(ring);

    ring = tg_otlp_ring_create(16, 16 * 1024);
    seq_in = 0;
    seq_out = 0;
    bad = 0;
    for (k = 0; k < 20000; k++) {
        in = (k * 31) % 9;
        for (i = 0; i < in; i++) {
            test_span_make(s, seq_in, (size_t) ((seq_in * 131) % 600));
            if (tg_otlp_ring_push(ring, s) != TG_OK) {
                break;
            }
            seq_in++;
        }
        outn = test_pop(ring, out, (k * 17) % 4 + 1, 1 << 20);
        for (i = 0; i < outn; i++) {
            if (!test_span_check(&out[i], seq_out)) {
                bad++;
            }
            seq_out++;
        }
    }
    while ((outn = test_pop(ring, out, 64, 1 << 20))) {
        for (i = 0; i < outn; i++) {
            if (!test_span_check(&out[i], seq_out)) {
                bad++;
            }
            seq_out++;
        }
    }
    is_int(bad, 0, "20000 rounds of wrap with variable sizes: intact");
    is_int(seq_out, seq_in, "everything accepted came out (%" PRIu64 ")",
           seq_in);
    ok(ring->dropped > 0, "the small ring also dropped some (%" PRIu64 ")",
       (uint64_t) ring->dropped);
    tg_otlp_ring_destroy(ring);

    /*
     * An empty ring rewinds to offset 0 once past TG_OTLP_RING_REWIND
     * (64 KiB), so a consumer that keeps up uses only the first pages;
     * a backlog still runs through the whole buffer.
     */
    ring = tg_otlp_ring_create(2048, 0);
    bad = 0;
    k = 0; /* highest offset written */
    for (i = 0; i < 5000; i++) {
        test_span_make(s, i, 500);
        if (tg_otlp_ring_push(ring, s) != TG_OK
            || test_pop(ring, out, 64, 1 << 20) != 1
            || !test_span_check(&out[0], i))
        {
            bad++;
        }
        k = tg_max(k, (size_t) (ring->head & (ring->size - 1)));
    }
    is_int(bad, 0, "5000 spans pushed and popped one by one: intact");
    ok(k < 64 * 1024 + 2 * tg_span_size(s),
       "a keeping-up consumer: offsets stay under 64 KiB + a record (%zu of "
       "a %zu-byte buffer)", k, ring->size);
    k = 0;
    for (n = 0; n < 3; n++) {
        for (i = 0; i < 2000; i++) {
            test_span_make(s, n * 2000 + i, 500);
            if (tg_otlp_ring_push(ring, s) != TG_OK) {
                bad++;
            }
            k = tg_max(k, (size_t) (ring->head & (ring->size - 1)));
        }
        for (i = 0; i < 2000; i += outn) {
            outn = test_pop(ring, out, 64, 1 << 20);
            if (outn == 0) {
                bad++;
                break;
            }
            for (in = 0; in < outn; in++) {
                if (!test_span_check(&out[in], n * 2000 + i + in)) {
                    bad++;
                }
            }
        }
    }
    is_int(bad, 0, "three backlogs of 2000 spans around a rewind: intact");
    ok(k > 64 * 1024 * 8, "a backlog uses the buffer beyond the rewind point");
    is_int(ring->dropped, 0, "nothing dropped");
    tg_otlp_ring_destroy(ring);

    /*
     * With a wake-up batch, a rewind happens only far enough into the
     * buffer that a whole batch of large spans still fits in front of the
     * consumer: otherwise the ring filled by bytes before the batch that
     * wakes the exporter, and everything was dropped until its timer.
     */
    ring = tg_otlp_ring_create(2048, 0);
    tg_otlp_ring_set_wake(ring, 512, NULL, NULL);
    bad = 0;
    seq_in = 0;
    k = 0;
    for (n = 0; n < 40; n++) {
        for (i = 0; i < (n * 97) % 1500 + 1; i++) {
            test_span_make(s, seq_in++, 500);
            if (tg_otlp_ring_push(ring, s) != TG_OK
                || test_pop(ring, out, 64, 1 << 20) != 1)
            {
                bad++;
            }
            k = tg_max(k, (size_t) (ring->head & (ring->size - 1)));
        }
        /* every other round: the burst's first push is the one to rewind */
        while (n % 2 && (ring->head & (ring->size - 1)) < ring->rewind_at) {
            test_span_make(s, seq_in++, 500);
            if (tg_otlp_ring_push(ring, s) != TG_OK
                || test_pop(ring, out, 64, 1 << 20) != 1)
            {
                bad++;
            }
        }
        for (i = 0; i < 512; i++) {
            test_span_make(s, seq_in++, 600);
            if (tg_otlp_ring_push(ring, s) != TG_OK) {
                bad++;
            }
        }
        while (test_pop(ring, out, 64, 1 << 20)) {
            /* empty it */
        }
    }
    is_int(bad, 0, "after any run of rewinds a burst of 512 large spans fits");
    ok(k > 0, "and a keeping-up consumer still rewinds (offsets < %zu of %zu)",
       ring->rewind_at + 2 * sizeof(tg_span_t), ring->size);
    ok(k < ring->rewind_at + 2 * sizeof(tg_span_t),
       "and a keeping-up consumer still rewinds (offsets < %zu of %zu)",
       ring->rewind_at + 2 * sizeof(tg_span_t), ring->size);
    ok(ring->rewind_at < ring->size,
       "and a keeping-up consumer still rewinds (offsets < %zu of %zu)",
       ring->rewind_at + 2 * sizeof(tg_span_t), ring->size);
    tg_otlp_ring_destroy(ring);

    /*
     * An exporter working through a steady backlog never finds the ring
     * empty: the producer still rewinds once the consumer has freed
     * rewind_at bytes at the start, so the pages in use stay about
     * rewind_at plus the backlog instead of the whole buffer.
     */
    ring = tg_otlp_ring_create(2048, 0);
    tg_otlp_ring_set_wake(ring, 512, NULL, NULL);
    bad = 0;
    k = 0;
    seq_out = 0;
    for (i = 0; i < 20000; i++) {
        test_span_make(s, i, 500);
        if (tg_otlp_ring_push(ring, s) != TG_OK) {
            bad++;
        }
        k = tg_max(k, (size_t) (ring->head & (ring->size - 1)));
        /* let 600 queue up, then take 500 in batches of 64 */
        if (tg_otlp_ring_count(ring) < 600) {
            continue;
        }
        while (tg_otlp_ring_count(ring) > 100) {
            outn = test_pop(ring, out, 64, 1 << 20);
            for (in = 0; in < outn; in++) {
                if (!test_span_check(&out[in], seq_out++)) {
                    bad++;
                }
            }
        }
    }
    is_int(bad, 0, "20000 spans through a backlog of 100-600: intact, in "
           "order, none dropped");
    ok(k < ring->rewind_at + 601 * tg_otlp_rec(s),
       "and offsets stay under rewind_at + the backlog (%zu < %zu + %zu, "
       "buffer %zu)",
       k, ring->rewind_at, 601 * tg_otlp_rec(s), ring->size);
    ok(ring->size > 2 * k,
       "and offsets stay under rewind_at + the backlog (%zu < %zu + %zu, "
       "buffer %zu)",
       k, ring->rewind_at, 601 * tg_otlp_rec(s), ring->size);
    tg_otlp_ring_destroy(ring);

    /* peek: spans read in place stay until released, even when full */
    ring = tg_otlp_ring_create(100000, 8192);
    for (i = 0;; i++) {
        test_span_make(s, i, 100);
        if (tg_otlp_ring_push(ring, s) != TG_OK) {
            break; /* full by bytes */
        }
    }
    n = tg_otlp_ring_peek(ring, held, 64, 1 << 20);
    ok(n == i, "peek sees all %zu spans of a full ring", n);
    ok(n > 2, "peek sees all %zu spans of a full ring", n);
    if (is_int(tg_otlp_ring_peek(ring, sp2, 64, 1 << 20), n,
               "a second peek before release sees as many spans")
        && n > 0)
    {
        ok(sp2[0] == held[0],
           "a second peek before release sees the same spans in place");
        ok(sp2[n - 1] == held[n - 1],
           "a second peek before release sees the same spans in place");
    }
    is_int(tg_otlp_ring_count(ring), n, "peeked spans still count as queued");
    test_span_make(s, 999, 100);
    is_int(tg_otlp_ring_push(ring, s), TG_DECLINED,
           "a push while they are held is refused");
    for (in = 0, bad = 0; in < n; in++) {
        bad += !test_span_check(held[in], in);
    }
    is_int(bad, 0, "and the held spans are intact");
    tg_otlp_ring_release(ring);
    is_int(tg_otlp_ring_count(ring), 0, "release empties the ring");
    is_int(tg_otlp_ring_push(ring, s), TG_OK, "and makes room");
    tg_otlp_ring_release(ring);
    is_int(tg_otlp_ring_count(ring), 1, "a release without a peek frees "
           "nothing");
    tg_otlp_ring_destroy(ring);

    /* wake-ups: one per wake_at spans queued, none per span */
    ring = tg_otlp_ring_create(64, 0);
    tg_otlp_ring_set_wake(ring, 3, test_wake, NULL);
    test_wakes = 0;
    for (i = 0; i < 2; i++) {
        test_span_make(s, i, 1);
        tg_otlp_ring_push(ring, s);
    }
    is_int(test_wakes, 0, "no wake-up below the batch size");
    test_span_make(s, 2, 1);
    tg_otlp_ring_push(ring, s);
    is_int(test_wakes, 1, "wake-up when the batch size is reached");
    for (i = 3; i < 6; i++) {
        test_span_make(s, i, 1);
        tg_otlp_ring_push(ring, s);
    }
    is_int(test_wakes, 2, "one more per further batch");
    test_pop(ring, out, 64, 1 << 20);
    for (i = 0; i < 2; i++) {
        test_span_make(s, i, 1);
        tg_otlp_ring_push(ring, s);
    }
    is_int(test_wakes, 2, "after a pop, counting restarts");
    tg_otlp_ring_destroy(ring);

    test_threads(1);
    test_threads(0);

    free(s);
    free(out);
    return done_testing();
}
