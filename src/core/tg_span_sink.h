#ifndef _TG_SPAN_SINK_H_INCLUDED_
#define _TG_SPAN_SINK_H_INCLUDED_

/*
 * The span sink: finished spans are published here (the HTTP layer's
 * request spans, the spans the collector receives), and whatever wants
 * them (the exporter, the recent-trace store) subscribes, so no module
 * names another. Per process; subscribers are called in the order they
 * subscribed, synchronously, on the publisher's thread (the worker's).
 */

#include <tg_span.h>

typedef struct {
    const tg_span_t  *spans;
    size_t            n;
    const tg_str_t   *service;  /* service.name of their maker */
    const void       *origin;   /* the module that answered the request
                                   itself (tg_module_t *), or NULL */
    unsigned          received:1; /* from a service, through [collector] */
    unsigned          local:1;    /* for local stores only, not exported */
} tg_span_batch_t;

/* A subscriber: copies what it keeps; b and its spans die on return. */
typedef void (*tg_span_sink_pt)(const tg_span_batch_t *b, void *data);

#define TG_SPAN_SINKS_MAX 8

/*
 * Subscribes handler (in init_process). TG_OK, else TG_ERROR (more than
 * TG_SPAN_SINKS_MAX, logged).
 */
int tg_span_sink_add(tg_span_sink_pt handler, void *data);

/* Hands b to every subscriber. */
void tg_span_publish(const tg_span_batch_t *b);

/* Forgets every subscriber (exit_process, tests). */
void tg_span_sink_reset(void);

#endif /* _TG_SPAN_SINK_H_INCLUDED_ */
