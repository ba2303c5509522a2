#ifndef _TG_OTLP_RING_H_INCLUDED_
#define _TG_OTLP_RING_H_INCLUDED_

/*
 * Bounded single-producer single-consumer ring of span values, between a
 * worker's event loop (the only producer) and its exporter thread (the only
 * consumer). Lock-free with C11 atomics; the producer never blocks and
 * never makes a system call except the optional wake-up below.
 *
 * Records are variable-sized: a 4-byte length and the meaningful prefix of
 * the span (tg_span_size()), rounded up to 8 bytes, stored contiguously; a
 * record that does not fit before the end of the buffer leaves a padding
 * marker and starts again at offset 0. Two bounds apply, both fixed at
 * creation: a count of spans (OTEL_BSP_MAX_QUEUE_SIZE) and the bytes of
 * the buffer. Either full means the span is dropped and counted.
 *
 * The consumer reads spans in place: tg_otlp_ring_peek() points at a batch
 * without copying it, tg_otlp_ring_release() hands its bytes back.
 *
 * Wake-up: when a push makes the ring hold exactly wake_at spans (the
 * export batch size), wake(data) is called from the producer, so a busy
 * worker costs the exporter one wake-up per batch, not one per span. The
 * exporter's own timer covers smaller remainders.
 */

#include <tg_span.h>
#include <stdatomic.h>

#define TG_OTLP_RING_CACHELINE 64

typedef void (*tg_otlp_ring_wake_pt)(void *data);

typedef struct {
    /* producer-owned */
    _Alignas(TG_OTLP_RING_CACHELINE) _Atomic uint64_t  head;     /* bytes */
    _Atomic uint64_t                                  pushed;   /* spans */
    uint64_t                                          tail_cache;
    _Atomic uint64_t                                  dropped;  /* full */

    /* consumer-owned */
    _Alignas(TG_OTLP_RING_CACHELINE) _Atomic uint64_t  tail;     /* bytes */
    _Atomic uint64_t                                  popped;   /* spans */
    uint64_t                                          peek_tail;
    size_t                                            peek_n;

    /* read-only after creation */
    _Alignas(TG_OTLP_RING_CACHELINE) u_char           *buf;
    size_t                                            size;  /* power of 2 */
    size_t                                            max_spans;
    size_t                                            wake_at;
    size_t                                            rewind_at; /* bytes */
    tg_otlp_ring_wake_pt                              wake;
    void                                             *wake_data;
} tg_otlp_ring_t;

/*
 * Creates a ring for max_spans spans (>= 1). bytes is the buffer size;
 * 0 sizes it so that max_spans spans of the largest possible size fit,
 * which makes the span count the only bound. The size is rounded up to a
 * power of two. Returns NULL on ENOMEM or bad arguments; free with
 * tg_otlp_ring_destroy().
 */
tg_otlp_ring_t *tg_otlp_ring_create(size_t max_spans, size_t bytes);

/* Frees the ring; neither side may use it any more. Accepts NULL. */
void tg_otlp_ring_destroy(tg_otlp_ring_t *ring);

/*
 * Sets the wake-up callback, called by the producer when the ring reaches
 * wake_at spans. Call before the producer starts. wake may be NULL.
 */
void tg_otlp_ring_set_wake(tg_otlp_ring_t *ring, size_t wake_at,
    tg_otlp_ring_wake_pt wake, void *data);

/*
 * Producer: copies tg_span_size(span) bytes of span into the ring. Returns
 * TG_OK, or TG_DECLINED when the ring is full (the span is counted in
 * ring->dropped). Never blocks.
 */
int tg_otlp_ring_push(tg_otlp_ring_t *ring, const tg_span_t *span);

/*
 * Consumer: points out[0..n) at up to max spans in the ring, in order, at
 * most max_bytes span bytes in total (at least one span when one is there,
 * so a batch always makes progress). Only the meaningful prefix of each
 * span (tg_span_size()) may be read. The spans stay in the ring, unchanged,
 * until tg_otlp_ring_release(); a second peek before it returns the same
 * spans. Returns n.
 */
size_t tg_otlp_ring_peek(tg_otlp_ring_t *ring, const tg_span_t **out,
    size_t max, size_t max_bytes);

/* Consumer: removes the spans of the last peek; the producer reuses them. */
void tg_otlp_ring_release(tg_otlp_ring_t *ring);

/* Spans in the ring now (either side; a snapshot). */
size_t tg_otlp_ring_count(tg_otlp_ring_t *ring);

#endif /* _TG_OTLP_RING_H_INCLUDED_ */
