#ifndef _TG_ARRAY_H_INCLUDED_
#define _TG_ARRAY_H_INCLUDED_

/* Pool-backed growable array of fixed-size elements. */

struct tg_array_s {
    void       *elts;
    size_t      nelts;
    size_t      size;
    size_t      nalloc;
    tg_pool_t  *pool;
};

/* Creates an array for n elements of size bytes. NULL on ENOMEM. */
tg_array_t *tg_array_create(tg_pool_t *pool, size_t n, size_t size);

/* Initialises an array in place; TG_OK or TG_ERROR. */
int tg_array_init(tg_array_t *a, tg_pool_t *pool, size_t n, size_t size);

/* Appends one zeroed element and returns it; NULL on ENOMEM. */
void *tg_array_push(tg_array_t *a);

#endif /* _TG_ARRAY_H_INCLUDED_ */
