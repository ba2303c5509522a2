#include <tg_config.h>
#include <tg_core.h>
#include <tg_span_sink.h>


static struct {
    tg_span_sink_pt  handler;
    void            *data;
} tg_span_sinks[TG_SPAN_SINKS_MAX];

static size_t  tg_span_nsinks;


int
tg_span_sink_add(tg_span_sink_pt handler, void *data)
{
    if (tg_span_nsinks == TG_SPAN_SINKS_MAX) {
        tg_log_error(TG_LOG_EMERG, &tg_log_global, 0,
                     "more than %d span subscribers", TG_SPAN_SINKS_MAX);
        return TG_ERROR;
    }
    tg_span_sinks[tg_span_nsinks].handler = handler;
    tg_span_sinks[tg_span_nsinks].data = data;
    tg_span_nsinks++;
    return TG_OK;
}


void
tg_span_publish(const tg_span_batch_t *b)
{
    size_t  i;

    for (i = 0; i < tg_span_nsinks; i++) {
        tg_span_sinks[i].handler(b, tg_span_sinks[i].data);
    }
}


void
tg_span_sink_reset(void)
{
    tg_span_nsinks = 0;
}
