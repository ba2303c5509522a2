#ifndef _TG_TIME_H_INCLUDED_
#define _TG_TIME_H_INCLUDED_

/* Clocks: monotonic ms for timers, realtime ns for spans and logs. */

/* Monotonic milliseconds (coarse clock, a vDSO read). */
uint64_t tg_time_ms(void);

/* Unix time in nanoseconds (span timestamps). */
uint64_t tg_time_now_ns(void);

/* Writes "YYYY/MM/DD HH:MM:SS" (19 bytes, cached per second); returns 19. */
size_t tg_time_log_str(char *dst);

/* The worker slot of this process (-1 in the master), used by logs. */
extern int  tg_worker_slot;
/* Copy error-level log lines to stderr (set while starting up). */
extern int  tg_log_to_stderr;

#endif /* _TG_TIME_H_INCLUDED_ */
