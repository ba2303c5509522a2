#include <tg_config.h>
#include <tg_core.h>


int
tg_array_init(tg_array_t *a, tg_pool_t *pool, size_t n, size_t size)
{
    if (n == 0) {
        n = 1;
    }
    a->nelts = 0;
    a->size = size;
    a->nalloc = n;
    a->pool = pool;
    a->elts = tg_palloc(pool, n * size);
    return a->elts ? TG_OK : TG_ERROR;
}


tg_array_t *
tg_array_create(tg_pool_t *pool, size_t n, size_t size)
{
    tg_array_t  *a;

    a = tg_palloc(pool, sizeof(tg_array_t));
    if (a == NULL || tg_array_init(a, pool, n, size) != TG_OK) {
        return NULL;
    }
    return a;
}


void *
tg_array_push(tg_array_t *a)
{
    void  *elts, *elt;

    if (a->nelts == a->nalloc) {
        elts = tg_palloc(a->pool, 2 * a->nalloc * a->size);
        if (elts == NULL) {
            return NULL;
        }
        memcpy(elts, a->elts, a->nelts * a->size);
        a->elts = elts;
        a->nalloc *= 2;
    }
    elt = (u_char *) a->elts + a->nelts * a->size;
    a->nelts++;
    memset(elt, 0, a->size);
    return elt;
}
