#ifndef _TG_RANDOM_H_INCLUDED_
#define _TG_RANDOM_H_INCLUDED_

/*
 * Trace and span ids. A per-process xoshiro256** generator seeded from
 * RAND_bytes (OpenSSL's DRBG); ids are never all-zero (W3C treats those as
 * invalid). Call tg_random_init() in every process after fork().
 */

/* Seeds the generator; TG_ERROR when the CSPRNG fails. */
int tg_random_init(void);

/* Next 64 random bits. */
uint64_t tg_random_u64(void);

/* Fills a 16-byte trace id, never all zero. */
void tg_random_trace_id(u_char id[16]);

/* Fills an 8-byte span id, never all zero. */
void tg_random_span_id(u_char id[8]);

#endif /* _TG_RANDOM_H_INCLUDED_ */
