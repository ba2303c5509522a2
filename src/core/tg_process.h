#ifndef _TG_PROCESS_H_INCLUDED_
#define _TG_PROCESS_H_INCLUDED_

/*
 * Master and workers. The master binds one SO_REUSEPORT socket per worker
 * slot and listen address and keeps them across reloads, so a queue never
 * closes while a worker of the same slot exists; worker k polls only its
 * own socket. HUP loads a new cycle and replaces the workers, QUIT stops
 * gracefully, TERM/INT fast, USR1 reopens logs; dead workers are respawned.
 */

#define TG_MAX_WORKERS 64

/* Runs the master loop on cycle; returns the exit code. */
int tg_master_run(tg_cycle_t *cycle, const char *prefix,
    const char *conf_file);

/* Worker entry (after fork): never returns. */
void tg_worker_run(tg_cycle_t *cycle, int slot);

/* Opens the error log of a cycle into tg_log_global. TG_OK/TG_ERROR. */
int tg_process_open_error_log(tg_cycle_t *cycle);

/* Binds the listening sockets for cycle's worker count. TG_OK/TG_ERROR. */
int tg_process_open_listeners(tg_cycle_t *cycle);

/* Number of workers a cycle asks for ("auto": one per online core). */
int tg_process_worker_count(tg_cycle_t *cycle);

#endif /* _TG_PROCESS_H_INCLUDED_ */
