#include <tg_config.h>
#include <tg_core.h>
#include <tg_shm.h>


int
tg_shm_alloc(tg_shm_t *shm)
{
    void  *p;
    int    err;

    if (shm->size == 0) {
        errno = EINVAL;
        return TG_ERROR;
    }
    p = mmap(NULL, shm->size, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        err = errno;
        tg_log_error(TG_LOG_ALERT, &tg_log_global, err,
                     "mmap(MAP_SHARED|MAP_ANONYMOUS, %zu) for \"%s\" failed",
                     shm->size, shm->name ? shm->name : "shm");
        errno = err;
        return TG_ERROR;
    }
    shm->addr = p;
    return TG_OK;
}
