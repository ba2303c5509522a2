#include <tg_config.h>
#include <tg_core.h>
#include <tg_otlp_ring.h>


/*
 * A record is an 8-byte header (the span byte count, or TG_OTLP_RING_PAD
 * for "the rest of the buffer is unused, go to offset 0") followed by the
 * span bytes, padded to 8. Positions (head, tail) only grow; the offset in
 * the buffer is pos & (size - 1). The producer publishes head with release
 * after writing a record; the consumer publishes tail with release after
 * copying records out, so the producer never overwrites unread bytes.
 */

#define TG_OTLP_RING_HDR  8
#define TG_OTLP_RING_PAD  UINT64_MAX

/* tg_otlp_ring_peek() prefetches AHEAD bytes on, STEP bytes per record */
#define TG_OTLP_RING_AHEAD       2048
#define TG_OTLP_RING_AHEAD_STEP  512
/*
 * A push at least rewind_at bytes into the buffer starts again at offset 0
 * as soon as the consumer has freed rewind_at bytes there, whether the
 * ring is empty or the exporter is working through a backlog: the pages in
 * use stay about rewind_at plus the backlog, instead of the whole buffer
 * (several MiB at the default queue size), which the worker would
 * otherwise touch and keep resident.
 *
 * Until the consumer passes the pad marker, the producer's room is what
 * the consumer freed at the start. That room must hold a whole wake-up
 * batch of the largest spans: otherwise the ring could fill by bytes
 * before the batch that wakes the exporter, and the worker would drop
 * everything until the exporter's timer. Hence rewind_at >= wake_at
 * largest records.
 */
#define TG_OTLP_RING_REWIND (64 * 1024)
#define tg_otlp_ring_rewind_at(wake_at)                                        \
    tg_max(TG_OTLP_RING_REWIND,                                                \
           (wake_at) * tg_otlp_ring_rec_size(sizeof(tg_span_t)))

#define tg_otlp_ring_rec_size(len)                                             \
    (TG_OTLP_RING_HDR + (((size_t) (len) + 7) & ~(size_t) 7))


tg_otlp_ring_t *
tg_otlp_ring_create(size_t max_spans, size_t bytes)
{
    size_t           size, min;
    tg_otlp_ring_t  *ring;

    if (max_spans == 0 || max_spans > (1u << 24)) {
        return NULL;
    }

    /* one spare record: a wrap may waste up to one record's worth */
    min = tg_otlp_ring_rec_size(sizeof(tg_span_t)) * 2;
    if (bytes == 0) {
        bytes = tg_otlp_ring_rec_size(sizeof(tg_span_t)) * (max_spans + 1);
    }
    bytes = tg_max(bytes, min);

    size = 64;
    while (size < bytes) {
        size <<= 1;
    }

    if (posix_memalign((void **) &ring, TG_OTLP_RING_CACHELINE,
                       sizeof(tg_otlp_ring_t))
        != 0)
    {
        return NULL;
    }
    memset(ring, 0, sizeof(tg_otlp_ring_t));

    ring->buf = malloc(size);
    if (ring->buf == NULL) {
        free(ring);
        return NULL;
    }

    ring->rewind_at = tg_otlp_ring_rewind_at(1);
    atomic_init(&ring->head, 0);
    atomic_init(&ring->pushed, 0);
    atomic_init(&ring->dropped, 0);
    atomic_init(&ring->tail, 0);
    atomic_init(&ring->popped, 0);
    ring->size = size;
    ring->max_spans = max_spans;
    return ring;
}


void
tg_otlp_ring_destroy(tg_otlp_ring_t *ring)
{
    if (ring == NULL) {
        return;
    }
    free(ring->buf);
    free(ring);
}


void
tg_otlp_ring_set_wake(tg_otlp_ring_t *ring, size_t wake_at,
    tg_otlp_ring_wake_pt wake, void *data)
{
    ring->wake_at = wake_at ? wake_at : 1;
    ring->rewind_at = tg_otlp_ring_rewind_at(ring->wake_at);
    ring->wake = wake;
    ring->wake_data = data;
}


int
tg_otlp_ring_push(tg_otlp_ring_t *ring, const tg_span_t *span)
{
    size_t     len, need, off, contig, n, skip;
    uint64_t   head, tail, hdr, pushed, popped;

    len = tg_span_size(span);
    need = tg_otlp_ring_rec_size(len);

    head = atomic_load_explicit(&ring->head, memory_order_relaxed);
    pushed = atomic_load_explicit(&ring->pushed, memory_order_relaxed);
    popped = atomic_load_explicit(&ring->popped, memory_order_acquire);

    if (pushed - popped >= ring->max_spans) {
        goto failed;
    }

    off = (size_t) (head & (ring->size - 1));
    contig = ring->size - off;

    /*
     * Bytes skipped to restart at offset 0: when the record does not fit
     * before the end, or to rewind (see TG_OTLP_RING_REWIND). After a
     * skip, head + contig - tail bytes would be in use; when that is more
     * than size, the tail is still in the previous lap.
     */
    skip = 0;
    if (need > contig) {
        skip = contig;

    } else if (off >= ring->rewind_at) {
        tail = ring->tail_cache;
        if (head + contig - tail + ring->rewind_at > ring->size) {
            tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
            ring->tail_cache = tail;
        }
        if (head + contig - tail + ring->rewind_at <= ring->size) {
            skip = contig;
        }
    }

    /* the cached tail saves a shared cache line read on most pushes */
    tail = ring->tail_cache;
    if (ring->size - (head - tail) < need + skip) {
        tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
        ring->tail_cache = tail;
        if (ring->size - (head - tail) < need + skip) {
            goto failed;
        }
    }

    if (skip) {
        hdr = TG_OTLP_RING_PAD;
        memcpy(ring->buf + off, &hdr, TG_OTLP_RING_HDR);
        head += contig;
        off = 0;
    }

    hdr = len;
    memcpy(ring->buf + off, &hdr, TG_OTLP_RING_HDR);
    memcpy(ring->buf + off + TG_OTLP_RING_HDR, span, len);

    atomic_store_explicit(&ring->head, head + need, memory_order_release);
    atomic_store_explicit(&ring->pushed, pushed + 1, memory_order_release);

    /*
     * One wake-up per wake_at spans queued beyond the threshold; a stale
     * popped can only make this early or late by one batch, and the
     * exporter's timer picks up whatever a missed wake-up left.
     */
    n = (size_t) (pushed + 1 - popped);
    if (ring->wake && n >= ring->wake_at && n % ring->wake_at == 0) {
        ring->wake(ring->wake_data);
    }
    return TG_OK;

failed:
    atomic_fetch_add_explicit(&ring->dropped, 1, memory_order_relaxed);
    return TG_DECLINED;
}


size_t
tg_otlp_ring_peek(tg_otlp_ring_t *ring, const tg_span_t **out, size_t max,
    size_t max_bytes)
{
    size_t    n, off, bytes;
    uint64_t  head, tail, hdr, pf;

    tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
    head = atomic_load_explicit(&ring->head, memory_order_acquire);

    n = 0;
    bytes = 0;
    while (n < max && tail != head) {
        off = (size_t) (tail & (ring->size - 1));
        /*
         * Each header says where the next one is: a chain of loads that
         * miss the cache one after the other (the worker wrote these
         * bytes a while ago). Fetching the bytes a few records ahead
         * overlaps the misses, and brings in what the encoder reads next.
         */
        for (pf = tail + TG_OTLP_RING_AHEAD;
             pf < tail + TG_OTLP_RING_AHEAD + TG_OTLP_RING_AHEAD_STEP;
             pf += TG_OTLP_RING_CACHELINE)
        {
            __builtin_prefetch(ring->buf + (pf & (ring->size - 1)));
        }
        memcpy(&hdr, ring->buf + off, TG_OTLP_RING_HDR);
        if (hdr == TG_OTLP_RING_PAD) {
            tail += ring->size - off;
            continue;
        }
        if (n > 0 && bytes + hdr > max_bytes) {
            break;
        }
        out[n++] = (const tg_span_t *) (ring->buf + off + TG_OTLP_RING_HDR);
        tail += tg_otlp_ring_rec_size(hdr);
        bytes += (size_t) hdr;
    }

    ring->peek_tail = tail;
    ring->peek_n = n;
    return n;
}


void
tg_otlp_ring_release(tg_otlp_ring_t *ring)
{
    atomic_store_explicit(&ring->tail, ring->peek_tail, memory_order_release);
    if (ring->peek_n) {
        atomic_fetch_add_explicit(&ring->popped, ring->peek_n,
                                  memory_order_release);
    }
    ring->peek_n = 0;
}


size_t
tg_otlp_ring_count(tg_otlp_ring_t *ring)
{
    uint64_t  pushed, popped;

    popped = atomic_load_explicit(&ring->popped, memory_order_acquire);
    pushed = atomic_load_explicit(&ring->pushed, memory_order_acquire);
    return (size_t) (pushed - popped);
}
