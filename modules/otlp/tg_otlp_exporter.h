#ifndef _TG_OTLP_EXPORTER_H_INCLUDED_
#define _TG_OTLP_EXPORTER_H_INCLUDED_

/*
 * The exporter thread of one worker. It owns an event_base, a CURLM driven
 * by that base (socket + timer callbacks), and the consumer side of one
 * tg_otlp_ring_t. It batches by size (max_export_batch_size, woken by the
 * ring) or by delay (schedule_delay timer), encodes, and ships a batch to
 * an OTLP/HTTP endpoint, a file of OTLP/JSON lines, or stderr.
 *
 * Nothing it does can block the worker: the worker only pushes into the
 * ring; a full ring drops and counts. Memory is bounded by the ring plus
 * max_in_flight encoded batches.
 */

#include <tg_otlp_ring.h>
#include <tg_otlp_encode.h>

#define TG_OTLP_EXPORT_NONE     0
#define TG_OTLP_EXPORT_OTLP     1
#define TG_OTLP_EXPORT_FILE     2
#define TG_OTLP_EXPORT_CONSOLE  3

/* Raw span bytes per batch at most (keeps a request far below 20 MiB). */
#define TG_OTLP_BATCH_BYTES_MAX  (4 * 1024 * 1024)

/*
 * Counters of one worker. Each field has exactly one writer (queued and
 * dropped_full: the worker; the rest: the exporter thread), so they are
 * bumped with relaxed load + store, and anyone may read them. Spans unless
 * noted.
 */
typedef struct {
    _Atomic uint64_t  queued;         /* pushed into the ring */
    _Atomic uint64_t  dropped_full;   /* ring full at push */
    _Atomic uint64_t  exported;       /* accepted by the receiver */
    _Atomic uint64_t  dropped_failed; /* not retryable, or out of retries */
    _Atomic uint64_t  rejected;       /* partial_success.rejected_spans */
    _Atomic uint64_t  retried;        /* export requests retried */
    _Atomic uint64_t  requests;       /* export requests sent (attempts) */
} tg_otlp_stats_t;

static inline void
tg_otlp_stat_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

typedef struct {
    int                  kind;            /* TG_OTLP_EXPORT_* */
    unsigned             json:1;          /* http/json instead of protobuf */
    unsigned             gzip:1;
    const char          *endpoint;        /* OTLP: full URL */
    const char          *file;            /* FILE: path */
    const char          *certificate;     /* CA file for https, or NULL */
    const char         **headers;         /* "Name: value", nheaders */
    size_t               nheaders;
    int64_t              timeout_ms;      /* one request */
    int64_t              export_timeout_ms; /* a batch, retries included */
    int64_t              schedule_delay_ms;
    size_t               max_export_batch_size;
    size_t               max_in_flight;   /* batches sent or awaiting retry */
    int64_t              retry_initial_ms; /* first backoff, default 1000 */
    int64_t              retry_max_ms;    /* backoff cap, default 30000 */
    const tg_otlp_resource_t  *resource;
} tg_otlp_exporter_conf_t;

typedef struct tg_otlp_exporter_s  tg_otlp_exporter_t;

/*
 * Starts the exporter thread for ring. conf and everything it points to
 * must outlive the exporter (cycle memory). Calls evthread_use_pthreads()
 * (idempotent) so the worker may wake the thread's base; curl_global_init
 * must have run in main(). stats receives the counters. Sets the ring's
 * wake-up. Returns NULL on failure (logged).
 */
tg_otlp_exporter_t *tg_otlp_exporter_start(const tg_otlp_exporter_conf_t *conf,
    tg_otlp_ring_t *ring, tg_otlp_stats_t *stats);

/*
 * Stops and joins the thread: what is in the ring and in flight is sent
 * for up to flush_ms (0: nothing more is sent); whatever is left then is
 * counted in dropped_failed. Frees the exporter. Call from the producer's
 * thread once it stopped pushing.
 */
void tg_otlp_exporter_stop(tg_otlp_exporter_t *ex, int64_t flush_ms);

/*
 * This process's counters (tg_otlp_module.c). Points at a static struct
 * until someone with a shared memory slot for this worker repoints it,
 * which must happen before the module's init_process (status page).
 */
extern tg_otlp_stats_t  *tg_otlp_stats;


#endif /* _TG_OTLP_EXPORTER_H_INCLUDED_ */
