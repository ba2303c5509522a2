#include <tg_config.h>
#include <tg_core.h>


struct tg_pool_large_s {
    tg_pool_large_t  *next;
};

#define TG_POOL_HDR                                                            \
    ((sizeof(tg_pool_block_t) + TG_POOL_ALIGN - 1) & ~(TG_POOL_ALIGN - 1))
#define TG_POOL_LARGE_HDR                                                      \
    ((sizeof(tg_pool_large_t) + TG_POOL_ALIGN - 1) & ~(TG_POOL_ALIGN - 1))

static tg_pool_block_t *tg_pool_block_new(size_t size);
static void tg_pool_run_cleanups(tg_pool_t *pool);


static tg_pool_block_t *
tg_pool_block_new(size_t size)
{
    tg_pool_block_t  *b;

    b = malloc(size);
    if (b == NULL) {
        return NULL;
    }
    b->last = (u_char *) b + TG_POOL_HDR;
    b->end = (u_char *) b + size;
    b->next = NULL;
    b->failed = 0;
    return b;
}


tg_pool_t *
tg_pool_create(size_t block_size)
{
    tg_pool_t  *pool;

    if (block_size < 256) {
        block_size = 256;
    }
    pool = malloc(sizeof(tg_pool_t));
    if (pool == NULL) {
        return NULL;
    }
    pool->first = tg_pool_block_new(block_size);
    if (pool->first == NULL) {
        free(pool);
        return NULL;
    }
    pool->current = pool->first;
    pool->large = NULL;
    pool->cleanup = NULL;
    pool->block_size = block_size;
    pool->small_max = (block_size - TG_POOL_HDR) / 2;
    return pool;
}


static void
tg_pool_run_cleanups(tg_pool_t *pool)
{
    tg_pool_cleanup_t  *c;

    while (pool->cleanup) {
        c = pool->cleanup;
        pool->cleanup = c->next;
        if (c->handler) {
            c->handler(c->data);
        }
    }
}


static void
tg_pool_free_rest(tg_pool_t *pool)
{
    tg_pool_block_t  *b, *next;
    tg_pool_large_t  *l, *lnext;

    for (l = pool->large; l; l = lnext) {
        lnext = l->next;
        free(l);
    }
    pool->large = NULL;
    for (b = pool->first->next; b; b = next) {
        next = b->next;
        free(b);
    }
    pool->first->next = NULL;
}


void
tg_pool_destroy(tg_pool_t *pool)
{
    if (pool == NULL) {
        return;
    }
    tg_pool_run_cleanups(pool);
    tg_pool_free_rest(pool);
    free(pool->first);
    free(pool);
}


void
tg_pool_reset(tg_pool_t *pool)
{
    tg_pool_run_cleanups(pool);
    tg_pool_free_rest(pool);
    pool->first->last = (u_char *) pool->first + TG_POOL_HDR;
    pool->first->failed = 0;
    pool->current = pool->first;
}


void *
tg_pool_alloc(tg_pool_t *pool, size_t size, size_t align)
{
    u_char           *p;
    tg_pool_block_t  *b, *nb;
    tg_pool_large_t  *l;

    if (size > pool->small_max) {
        l = malloc(TG_POOL_LARGE_HDR + size);
        if (l == NULL) {
            return NULL;
        }
        l->next = pool->large;
        pool->large = l;
        return (u_char *) l + TG_POOL_LARGE_HDR;
    }

    for (b = pool->current; b; b = b->next) {
        p = (u_char *) (((uintptr_t) b->last + align - 1) & ~(align - 1));
        if ((size_t) (b->end - p) >= size) {
            b->last = p + size;
            return p;
        }
        /* a block that keeps failing stops being searched first */
        if (b->failed++ > 4 && b->next) {
            pool->current = b->next;
        }
    }

    nb = tg_pool_block_new(pool->block_size);
    if (nb == NULL) {
        return NULL;
    }
    for (b = pool->current; b->next; b = b->next) {
        /* find the tail */
    }
    b->next = nb;
    p = (u_char *) (((uintptr_t) nb->last + align - 1) & ~(align - 1));
    nb->last = p + size;
    return p;
}


void *
tg_pcalloc(tg_pool_t *pool, size_t size)
{
    void  *p;

    p = tg_pool_alloc(pool, size, TG_POOL_ALIGN);
    if (p) {
        memset(p, 0, size);
    }
    return p;
}


u_char *
tg_pstrdup0(tg_pool_t *pool, const tg_str_t *s)
{
    u_char  *p;

    p = tg_pnalloc(pool, s->len + 1);
    if (p == NULL) {
        return NULL;
    }
    if (s->len) {
        memcpy(p, s->data, s->len);
    }
    p[s->len] = '\0';
    return p;
}


int
tg_pstrcopy(tg_pool_t *pool, tg_str_t *dst, const u_char *src, size_t n)
{
    tg_str_t  s;

    s.len = n;
    s.data = (u_char *) src;
    dst->data = tg_pstrdup0(pool, &s);
    if (dst->data == NULL) {
        return TG_ERROR;
    }
    dst->len = n;
    return TG_OK;
}


tg_pool_cleanup_t *
tg_pool_cleanup_add(tg_pool_t *pool)
{
    tg_pool_cleanup_t  *c;

    c = tg_palloc(pool, sizeof(tg_pool_cleanup_t));
    if (c == NULL) {
        return NULL;
    }
    c->handler = NULL;
    c->data = NULL;
    c->next = pool->cleanup;
    pool->cleanup = c;
    return c;
}
