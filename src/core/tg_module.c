#include <tg_config.h>
#include <tg_core.h>
#include <tg_cycle.h>


size_t
tg_module_init_indexes(void)
{
    size_t  i;

    for (i = 0; tg_modules[i]; i++) {
        tg_modules[i]->index = i;
    }
    return i;
}


int
tg_module_run_phase(tg_http_request_t *r, tg_http_phase_e phase)
{
    int     rc;
    size_t  i;

    for (i = 0; tg_modules[i]; i++) {
        if (tg_modules[i]->hooks[phase] == NULL) {
            continue;
        }
        rc = tg_modules[i]->hooks[phase](r);
        if (rc == TG_DONE || rc == TG_ERROR) {
            return rc;
        }
    }
    return TG_OK;
}
