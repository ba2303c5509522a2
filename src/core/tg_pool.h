#ifndef _TG_POOL_H_INCLUDED_
#define _TG_POOL_H_INCLUDED_

/*
 * Arena allocator. Small allocations are bumped out of blocks of the pool's
 * block size; larger ones are malloc'ed and tracked. Everything is released
 * at tg_pool_destroy(), after the cleanup handlers ran in reverse order of
 * registration. tg_pool_reset() keeps the first block for reuse (one
 * connection serving many requests).
 */

#define TG_POOL_ALIGN 16

typedef void (*tg_pool_cleanup_pt)(void *data);

struct tg_pool_cleanup_s {
    tg_pool_cleanup_pt   handler;
    void                *data;
    tg_pool_cleanup_t   *next;
};

typedef struct tg_pool_block_s  tg_pool_block_t;
typedef struct tg_pool_large_s  tg_pool_large_t;

struct tg_pool_block_s {
    u_char           *last;
    u_char           *end;
    tg_pool_block_t  *next;
    size_t            failed;
};

struct tg_pool_s {
    tg_pool_block_t    *current;
    tg_pool_block_t    *first;
    tg_pool_large_t    *large;
    tg_pool_cleanup_t  *cleanup;
    size_t              block_size;
    size_t              small_max;  /* larger allocations are malloc'ed */
};

/* Creates a pool whose blocks are block_size bytes. NULL on ENOMEM. */
tg_pool_t *tg_pool_create(size_t block_size);

/* Runs cleanups, frees all memory. Accepts NULL. */
void tg_pool_destroy(tg_pool_t *pool);

/* Runs cleanups and frees all but the first block, which is rewound. */
void tg_pool_reset(tg_pool_t *pool);

/*
 * Allocation with the given alignment (a power of two); NULL on ENOMEM.
 * Memory lives until destroy/reset. tg_palloc() and tg_pnalloc() bump the
 * current block inline when it has room and call this otherwise.
 */
void *tg_pool_alloc(tg_pool_t *pool, size_t size, size_t align);

/* As tg_palloc, zero-filled. */
void *tg_pcalloc(tg_pool_t *pool, size_t size);

/* Aligned allocation (TG_POOL_ALIGN). */
static inline void *
tg_palloc(tg_pool_t *pool, size_t size)
{
    u_char           *p;
    tg_pool_block_t  *b;

    b = pool->current;
    p = (u_char *) (((uintptr_t) b->last + TG_POOL_ALIGN - 1)
                    & ~(uintptr_t) (TG_POOL_ALIGN - 1));
    if (size <= pool->small_max && p <= b->end
        && (size_t) (b->end - p) >= size)
    {
        b->last = p + size;
        return p;
    }
    return tg_pool_alloc(pool, size, TG_POOL_ALIGN);
}

/* Unaligned allocation for byte strings. */
static inline void *
tg_pnalloc(tg_pool_t *pool, size_t size)
{
    u_char           *p;
    tg_pool_block_t  *b;

    b = pool->current;
    p = b->last;
    if (size <= pool->small_max && (size_t) (b->end - p) >= size) {
        b->last = p + size;
        return p;
    }
    return tg_pool_alloc(pool, size, 1);
}

/* Copy of s in the pool, with a trailing NUL not counted in len. */
u_char *tg_pstrdup0(tg_pool_t *pool, const tg_str_t *s);

/* Fills dst with a pool copy of src; TG_OK or TG_ERROR. */
int tg_pstrcopy(tg_pool_t *pool, tg_str_t *dst, const u_char *src, size_t n);

/* Registers a cleanup handler (handler and data set by the caller). */
tg_pool_cleanup_t *tg_pool_cleanup_add(tg_pool_t *pool);

#endif /* _TG_POOL_H_INCLUDED_ */
