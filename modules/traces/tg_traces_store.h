#ifndef _TG_TRACES_STORE_H_INCLUDED_
#define _TG_TRACES_STORE_H_INCLUDED_

/*
 * The recent-trace store: one MAP_SHARED|MAP_ANONYMOUS mapping made in the
 * master before fork, so every worker (and the collector in any worker)
 * reads and writes the same traces. Bounded: max_traces trace slots used as
 * a FIFO ring (the oldest trace is evicted first) and max_spans fixed-size
 * span records on a free list; when no record is free the oldest trace is
 * evicted. One process-shared robust mutex guards everything; a worker
 * that dies holding it leaves the store cleared, never locked.
 *
 * Layout: header | buckets[nbuckets] (int32 trace slot, chained hash on the
 * trace id) | traces[max_traces] | spans[max_spans].
 */

#include <tg_span.h>

#define TG_TRACES_SERVICE_MAX 48   /* NUL-terminated, truncated */
#define TG_TRACES_NAME_MAX    96   /* NUL-terminated, truncated */
#define TG_TRACES_ATTR_BYTES  640  /* packed like tg_span_t.attrs */
#define TG_TRACES_XID_MAX     64

/* a double attribute is kept as its decimal text with this type */
#define TG_TRACES_ATTR_DOUBLE 4

/*
 * A stored span. Attributes are packed as in tg_span_t (type byte, key
 * length byte, key, then a 2-byte little-endian length and the bytes for
 * strings and doubles, 8 bytes for ints, 1 byte for bools); attributes
 * that do not fit are counted in dropped_attrs (stops at UINT16_MAX).
 */
typedef struct {
    u_char    trace_id[16];
    u_char    span_id[8];
    u_char    parent_id[8];   /* all zero: root */
    uint64_t  start_ns;       /* Unix ns */
    uint64_t  end_ns;
    int32_t   next;           /* store-internal: next span of the trace */
    uint8_t   kind;           /* TG_SPAN_KIND_* (0: unspecified) */
    uint8_t   status;         /* TG_SPAN_STATUS_* */
    uint8_t   received;       /* 1: came in through the collector */
    uint8_t   pad;
    uint16_t  nattrs;
    uint16_t  dropped_attrs;
    uint16_t  attr_len;
    uint16_t  pad2;
    char      service[TG_TRACES_SERVICE_MAX];
    char      name[TG_TRACES_NAME_MAX];
    u_char    attrs[TG_TRACES_ATTR_BYTES];
} tg_traces_span_t;

/* One attribute of a stored span (pointers into the record). */
typedef struct {
    uint8_t   type;   /* TG_SPAN_ATTR_* or TG_TRACES_ATTR_DOUBLE */
    tg_str_t  key;
    tg_str_t  str;    /* strings and doubles */
    int64_t   num;    /* ints, bools */
} tg_traces_attr_t;

/* A trace of the list view (copied out under the lock). */
typedef struct {
    u_char    trace_id[16];
    uint64_t  start_ns;
    uint64_t  end_ns;
    uint32_t  nspans;
    uint32_t  nerrors;
    uint32_t  dropped;        /* spans over the per-trace limit */
    char      root_name[TG_TRACES_NAME_MAX];
    char      root_service[TG_TRACES_SERVICE_MAX];
    char      root_path[128];  /* url.path of the root, when it has one */
    char      services[256];  /* distinct names, ',' separated */
    char      x_trace_id[TG_TRACES_XID_MAX];
} tg_traces_summary_t;

typedef struct {
    uint64_t  spans_added;
    uint64_t  spans_dropped;  /* per-trace limit, or no room */
    uint64_t  traces_evicted;
    uint32_t  traces;         /* held now */
    uint32_t  spans;
} tg_traces_stats_t;

typedef struct tg_traces_store_s  tg_traces_store_t;

/* Bytes the store takes for these bounds (header, hash, slots, spans). */
size_t tg_traces_store_size(uint32_t max_traces, uint32_t max_spans);

/*
 * Maps and initialises a store; call in the master before fork. A trace
 * holds at most per_trace spans. Returns NULL on failure (errno set).
 */
tg_traces_store_t *tg_traces_store_create(uint32_t max_traces,
    uint32_t max_spans, uint32_t per_trace);

/* Whether s was created with exactly these bounds (reload reuse). */
int tg_traces_store_same(tg_traces_store_t *s, uint32_t max_traces,
    uint32_t max_spans, uint32_t per_trace);

/* Unmaps a store; no process may use it afterwards through this mapping. */
void tg_traces_store_destroy(tg_traces_store_t *s);

/*
 * Copies spans[0..n) in (next is ignored), creating traces as needed.
 * Never blocks beyond the mutex; returns how many were stored.
 */
size_t tg_traces_store_add(tg_traces_store_t *s, const tg_traces_span_t *spans,
    size_t n);

/*
 * Fills out[0..max) with the newest traces first that match q (NULL or
 * empty: all; else a trace id prefix in hex, or an X-Trace-ID, case
 * insensitive). Returns the number filled.
 */
size_t tg_traces_store_list(tg_traces_store_t *s, const tg_str_t *q,
    tg_traces_summary_t *out, size_t max);

/*
 * Copies the spans of one trace, in arrival order, into a malloc'ed array
 * (*spans, free() it) and its summary into *sum. Returns the span count,
 * 0 when the trace is unknown (*spans NULL), or -1 on ENOMEM.
 */
ssize_t tg_traces_store_get(tg_traces_store_t *s, const u_char *trace_id,
    tg_traces_span_t **spans, tg_traces_summary_t *sum);

/* Counters and fill level. */
void tg_traces_store_stats(tg_traces_store_t *s, tg_traces_stats_t *st);

/* Attribute packing into a record; TG_OK or TG_DECLINED (no room). */
void tg_traces_span_init(tg_traces_span_t *sp);
void tg_traces_span_set(char *dst, size_t size, const u_char *src, size_t n);
int tg_traces_span_add(tg_traces_span_t *sp, uint8_t type, const u_char *key,
    size_t klen, const u_char *val, size_t vlen, int64_t num);

/*
 * Converts a span (the gateway's or a received one) into a record of
 * service. Its dropped_attrs are the span's and those that do not fit in
 * the record (stopping at UINT16_MAX).
 */
void tg_traces_span_from(tg_traces_span_t *sp, const tg_span_t *s,
    const tg_str_t *service);

/* Iterates attributes: *off = 0 first; 1 while one is left, 0 at the end. */
int tg_traces_attr_next(const tg_traces_span_t *sp, size_t *off,
    tg_traces_attr_t *a);

/* The store of this cycle (set by the traces module), or NULL when off. */
extern tg_traces_store_t  *tg_traces_store;

#endif /* _TG_TRACES_STORE_H_INCLUDED_ */
