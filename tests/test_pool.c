#include <tg_config.h>
#include <tg_core.h>
#include "tap.h"

static int  cleaned[3], order[3], norder;

static void
cleanup(void *data)
{
    int  i = *(int *) data;

    cleaned[i] = 1;
    order[norder++] = i;
}

int
main(void)
{
    tg_pool_t          *pool;
    tg_pool_cleanup_t  *c;
    tg_array_t         *a;
    u_char             *p, *big;
    static int          ids[3] = { 0, 1, 2 };
    int                 i, aligned;

    pool = tg_pool_create(1024);
    ok(pool != NULL, "pool created");

    aligned = 1;
    for (i = 0; i < 1000; i++) {
        p = tg_palloc(pool, 24);
        if (p == NULL || ((uintptr_t) p & (TG_POOL_ALIGN - 1))) {
            aligned = 0;
        }
        memset(p, 0xab, 24);
    }
    ok(aligned, "1000 small allocations, aligned, across blocks");

    big = tg_palloc(pool, 100000);
    ok(big != NULL, "large allocation");
    memset(big, 1, 100000);

    for (i = 0; i < 3; i++) {
        c = tg_pool_cleanup_add(pool);
        c->handler = cleanup;
        c->data = &ids[i];
    }
    tg_pool_reset(pool);
    ok(cleaned[0], "reset runs cleanups (0)");
    ok(cleaned[1], "reset runs cleanups (1)");
    ok(cleaned[2], "reset runs cleanups (2)");
    is_int(order[0], 2, "cleanups run in reverse order: 2 first");
    is_int(order[1], 1, "cleanups run in reverse order: then 1");
    is_int(order[2], 0, "cleanups run in reverse order: 0 last");

    a = tg_array_create(pool, 1, sizeof(int));
    for (i = 0; i < 100; i++) {
        *(int *) tg_array_push(a) = i;
    }
    is_int(a->nelts, 100, "array grew to 100");
    is_int(((int *) a->elts)[99], 99, "array keeps values");

    /*
     * Mixed odd byte strings and aligned allocations across many blocks:
     * every aligned one aligned, none overlapping another (each is filled
     * with its index and checked after all were made), none larger than
     * half a block taken from a block.
     */
    {
        size_t   n, k, sz[600];
        u_char  *q[600];
        int      good;

        good = 1;
        for (k = 0; k < 600; k++) {
            sz[k] = 1 + (k * 37) % 501;  /* 1..501: some over half a block */
            q[k] = (k % 3) ? tg_pnalloc(pool, sz[k]) : tg_palloc(pool, sz[k]);
            if (q[k] == NULL
                || (k % 3 == 0 && ((uintptr_t) q[k] & (TG_POOL_ALIGN - 1))))
            {
                good = 0;
                break;
            }
            memset(q[k], (int) (k & 0xff), sz[k]);
        }
        for (k = 0; good && k < 600; k++) {
            for (n = 0; n < sz[k]; n++) {
                if (q[k][n] != (u_char) (k & 0xff)) {
                    good = 0;
                    break;
                }
            }
        }
        ok(good, "600 mixed allocations of 1-501 bytes: aligned where asked, "
                 "no overlap");
        ok(pool->current->last <= pool->current->end,
           "blocks never overrun; over %zu bytes is malloc'ed",
           pool->small_max);
        ok(pool->small_max > 400,
           "blocks never overrun; over %zu bytes is malloc'ed",
           pool->small_max);
        ok(pool->small_max < 512,
           "blocks never overrun; over %zu bytes is malloc'ed",
           pool->small_max);
    }

    tg_str_t  s = tg_string("abc");
    p = tg_pstrdup0(pool, &s);
    is_str((char *) p, "abc", "pstrdup0 NUL-terminates");

    tg_pool_destroy(pool);
    tg_pool_destroy(NULL);
    ok(1, "destroy (and destroy NULL) completes");
    return done_testing();
}
