#ifndef _TG_SHM_H_INCLUDED_
#define _TG_SHM_H_INCLUDED_

/*
 * Shared memory zones: anonymous MAP_SHARED mappings made by the master
 * before it forks the workers, so that every process started afterwards
 * sees the same bytes at the same address. Nothing is named, nothing is
 * left behind when the processes end. Concurrent access is the user's
 * business (C11 atomics, process-shared mutexes).
 */

typedef struct {
    u_char      *addr;
    size_t       size;   /* requested bytes; the mapping is page-rounded */
    const char  *name;   /* for messages */
} tg_shm_t;

/*
 * Maps shm->size zero-filled bytes at shm->addr. Call in the master before
 * fork(); a zone made in a worker is private to it and its children.
 * Returns TG_OK, or TG_ERROR with errno set (logged).
 */
int tg_shm_alloc(tg_shm_t *shm);

#endif /* _TG_SHM_H_INCLUDED_ */
