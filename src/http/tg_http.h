#ifndef _TG_HTTP_H_INCLUDED_
#define _TG_HTTP_H_INCLUDED_

#include <tg_cycle.h>
#include <tg_span.h>

/*
 * The finished spans of a request, for LOG phase hooks: the SERVER span
 * first, then one CLIENT span per upstream attempt, in order. *spans points
 * at an array owned by the request (valid during the hook only). Unsampled
 * requests still have spans; their flags have bit 0 clear.
 */
size_t tg_http_request_spans(tg_http_request_t *r, tg_span_t **spans);

#endif /* _TG_HTTP_H_INCLUDED_ */
