#ifndef _TG_COLLECTOR_LIMITS_H_INCLUDED_
#define _TG_COLLECTOR_LIMITS_H_INCLUDED_

/*
 * Limits on what one OTLP request may hold, counted while the request is
 * read and before it is decoded into anything of its own size: protobuf
 * bodies are walked by tg_collector_pb_scan (tags and lengths only) before
 * protobuf-c unpacks them, because the unpacker allocates the whole message
 * tree at once; the JSON reader counts as it builds its tree. A count that
 * goes over its limit stops the reading there, so the memory and time a
 * refused request costs are those of its first objects, whatever it holds
 * after them.
 *
 * Counted, per request: resource spans (ResourceSpans), scope spans
 * (ScopeSpans), spans, span events, span links, and attributes: every
 * KeyValue anywhere (resource, scope, span, event and link attributes and
 * the members of kvlist values) and every element of an array value.
 *
 * Everything else a request holds (scalar fields, single submessages,
 * unknown fields, JSON members and values) is bounded by a budget that each
 * counted object brings: TG_COLLECTOR_FIELDS_PER_OBJECT fields for each
 * resource spans, scope spans, span, event and link, PER_ATTRIBUTE for each
 * attribute, BASE for the request. A request encoded the usual way (each
 * field once) stays well within it: a span with every field of OTLP 1.x
 * and its status takes at most 19 (JSON: the object, 16 members, the
 * status's 2), a string attribute 4 (the field, key, value and the
 * value's one field). Over the budget is over a limit like the others
 * (TG_COLLECTOR_FIELDS), so the work per counted object is bounded too.
 */

#define TG_COLLECTOR_RESOURCE_SPANS  0
#define TG_COLLECTOR_SCOPE_SPANS     1
#define TG_COLLECTOR_SPANS           2
#define TG_COLLECTOR_EVENTS          3
#define TG_COLLECTOR_LINKS           4
#define TG_COLLECTOR_ATTRIBUTES      5
#define TG_COLLECTOR_FIELDS          6
#define TG_COLLECTOR_NCOUNTS         7

#define TG_COLLECTOR_FIELDS_BASE           64
#define TG_COLLECTOR_FIELDS_PER_OBJECT     24
#define TG_COLLECTOR_FIELDS_PER_ATTRIBUTE  6

/* nested messages (protobuf) below the request; deeper is malformed, 400 */
#define TG_COLLECTOR_PB_DEPTH_MAX  64

typedef struct {
    size_t  max[TG_COLLECTOR_NCOUNTS];  /* set by the caller; FIELDS unused */
    size_t  n[TG_COLLECTOR_NCOUNTS];    /* counted so far */
    size_t  budget;                     /* fields allowed so far */
    int     over;                       /* the count over its limit, or -1 */
} tg_collector_limits_t;

/* Clears the counts (the limits stay) before a request is read. */
void tg_collector_limits_reset(tg_collector_limits_t *lim);

/*
 * Counts one object of kind what (not FIELDS) and adds its field budget.
 * TG_OK, or TG_DECLINED with lim->over set when the count is over its max.
 */
int tg_collector_count(tg_collector_limits_t *lim, int what);

/* Counts one field or value against the budget; TG_OK or TG_DECLINED. */
int tg_collector_count_field(tg_collector_limits_t *lim);

/* "resource spans", "spans", ...: the name of a count, for messages. */
const char *tg_collector_count_name(int what);

/*
 * Walks p[0..len), an ExportTraceServiceRequest, and counts what it holds
 * (lim is reset first). Values are skipped, never decoded: a wire type or a
 * length that does not fit is malformed, and so is nesting deeper than
 * TG_COLLECTOR_PB_DEPTH_MAX; what protobuf-c would reject otherwise (a
 * wrong wire type for a known field, bad UTF-8) is left to it.
 *
 * partial: p holds only the first len bytes of the body (a gzip body being
 * inflated), so a field cut by the end is counted as far as it goes and is
 * not malformed; the counts only grow as more of the body comes.
 *
 * Returns TG_OK; TG_DECLINED when a count went over its limit (lim->over);
 * TG_ERROR when the bytes are malformed, with the reason in err. Does not
 * allocate; recursion is bounded by the depth limit.
 */
int tg_collector_pb_scan(tg_collector_limits_t *lim, const u_char *p,
    size_t len, int partial, char *err, size_t errlen);

#endif /* _TG_COLLECTOR_LIMITS_H_INCLUDED_ */
