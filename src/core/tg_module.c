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
