#include <tg_config.h>
#include <tg_core.h>
#include <tg_cycle.h>
#include <tg_metrics.h>


int
tg_metric_add(tg_cycle_t *cycle, const tg_metric_t *m)
{
    tg_metric_t  *e;

    if (cycle->metrics.elts == NULL
        && tg_array_init(&cycle->metrics, cycle->pool, 8, sizeof(tg_metric_t))
               != TG_OK)
    {
        return TG_ERROR;
    }
    if (cycle->metrics.nelts == TG_METRICS_MAX) {
        snprintf(cycle->conf_error, sizeof(cycle->conf_error),
                 "more than %d metrics registered", TG_METRICS_MAX);
        return TG_ERROR;
    }
    e = tg_array_push(&cycle->metrics);
    if (e == NULL) {
        return TG_ERROR;
    }
    *e = *m;
    return TG_OK;
}


const tg_metric_t *
tg_metrics(tg_cycle_t *cycle, size_t *n)
{
    *n = cycle->metrics.nelts;
    return cycle->metrics.elts;
}
