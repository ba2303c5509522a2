#ifndef _TG_METRICS_H_INCLUDED_
#define _TG_METRICS_H_INCLUDED_

/*
 * The metrics registry: modules that count something (the exporter's
 * spans and requests, ...) declare their counters here in init_conf, and a
 * page that shows metrics (the status module) reads them through the
 * registry, without naming the module that counts. The registry belongs
 * to the cycle; a module registers the same counters in the same order in
 * every cycle, so an entry keeps its index across reloads.
 */

#include <stdatomic.h>

#define TG_METRICS_MAX 32

typedef struct {
    const char        *name;   /* Prometheus family: tracegate_..._total */
    const char        *labels; /* inside {} (name="value"), or NULL */
    const char        *help;   /* one line, for # HELP */
    const char        *json;   /* dotted path of its key in a JSON page:
                                  "exporter.dropped.queue_full" */
    _Atomic uint64_t  *value;  /* this process's counter, monotonic; read
                                  with relaxed loads from any thread */
} tg_metric_t;

/*
 * Adds a copy of *m (its strings must outlive the cycle: literals) to the
 * cycle's registry. Entries of one family (name) are added one after the
 * other, as are entries under one JSON object. TG_OK, else TG_ERROR with
 * cycle->conf_error set (more than TG_METRICS_MAX, out of memory).
 */
int tg_metric_add(tg_cycle_t *cycle, const tg_metric_t *m);

/* The cycle's registry: *n entries, in the order they were added. */
const tg_metric_t *tg_metrics(tg_cycle_t *cycle, size_t *n);

#endif /* _TG_METRICS_H_INCLUDED_ */
