#ifndef _TG_TRACES_JSON_H_INCLUDED_
#define _TG_TRACES_JSON_H_INCLUDED_

/*
 * JSON output of the trace API into a libevent evbuffer, and the small
 * response writer that CONTENT hooks of this module answer with.
 */

#include <tg_traces_store.h>

struct evbuffer;

/*
 * Appends s[0..n) as a JSON string with quotes (tg_json_escape). Control
 * characters are escaped as \u00xx, DEL is not; bytes that are not
 * well-formed UTF-8 become U+FFFD, so the output is always valid JSON in
 * UTF-8.
 */
void tg_traces_json_str(struct evbuffer *b, const u_char *s, size_t n);

/* Appends one list entry (an object) for sum. */
void tg_traces_json_summary(struct evbuffer *b,
    const tg_traces_summary_t *sum);

/* Appends one span object; times are also given relative to base_ns. */
void tg_traces_json_span(struct evbuffer *b, const tg_traces_span_t *sp,
    uint64_t base_ns);

#endif /* _TG_TRACES_JSON_H_INCLUDED_ */
