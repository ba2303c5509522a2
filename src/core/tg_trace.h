#ifndef _TG_TRACE_H_INCLUDED_
#define _TG_TRACE_H_INCLUDED_

/*
 * Trace context as pure functions: parse and format traceparent (W3C Trace
 * Context Level 1), validate and canonicalise tracestate, B3 (single and
 * multi header) and Jaeger uber-trace-id, the OTEL_PROPAGATORS list,
 * X-Trace-ID extraction and generation, and the OTel samplers. Nothing here
 * does I/O or keeps state; only tg_trace_tracestate() allocates (from the
 * caller's pool). Input slices are never modified and need no NUL.
 *
 * Not included by tg_core.h: include <tg_trace.h> after it.
 */

#define TG_TRACE_TRACEPARENT_LEN 55  /* "00-" 32 "-" 16 "-" 2 */
#define TG_TRACE_B3_LEN          51  /* 32 "-" 16 "-" 1 */
#define TG_TRACE_JAEGER_LEN      54  /* 32 ":" 16 ":0:" 2 */
#define TG_TRACE_TRACESTATE_MEMBERS 32  /* more: the whole list is invalid */
#define TG_TRACE_TRACESTATE_LIMIT   512 /* the size W3C asks to propagate */
#define TG_TRACE_XID_MAX         128 /* incoming X-Trace-ID bound, and the
                                        size of a generation buffer */

#define TG_TRACE_FLAG_SAMPLED    0x01


/*
 * An extracted remote parent. Every parse function zeroes it first, so on
 * TG_DECLINED valid is 0 (deny may still be set, see tg_trace_parse_b3).
 *
 * deferred: B3 without a sampling state ("defer"): ids are valid but the
 *           parent made no decision; flags is 0 and parent-based samplers
 *           apply their root sampler instead of following the flag.
 * debug:    B3 "d" / X-B3-Flags: 1 or Jaeger flag 0x02; implies sampled.
 * deny:     a B3 deny-only header ("b3: 0", or X-B3-Sampled: 0 without
 *           ids); set with valid == 0. Parent-based samplers honour it.
 */
typedef struct {
    u_char    trace_id[16];
    u_char    span_id[8];      /* the remote parent's span id */
    uint8_t   flags;           /* trace-flags as received */
    unsigned  valid:1;
    unsigned  deferred:1;
    unsigned  debug:1;
    unsigned  deny:1;
} tg_trace_ctx_t;


/*
 * Parses one traceparent value (W3C Trace Context Level 1, section 3.2).
 * Space and tab around the value are ignored; all fields are lowercase hex.
 * Version ff is invalid; version 00 is exactly 55 bytes; a higher version
 * is at least 55 bytes, its first four fields are parsed the 00 way and the
 * byte after the flags must be the end or '-' (the caller re-emits 00). An
 * all-zero trace id or parent id is invalid.
 * Returns TG_OK and fills *tc (flags as received, all 8 bits), else
 * TG_DECLINED with *tc zeroed. Does not allocate.
 */
int tg_trace_parse_traceparent(const tg_str_t *value, tg_trace_ctx_t *tc);

/*
 * Extracts the context from all traceparent header lines of a request, in
 * order; each line may itself be a comma-joined list, and separate lines
 * count as comma-joined members. Members that do not parse (an empty one
 * included) are ignored. Returns TG_OK with the FIRST valid member when
 * every valid member shares one trace id: the double-instrumentation
 * repair ("ff-T-S1-01,00-T-S2-01" continues T with parent S2), a
 * documented deviation, as W3C would restart on any duplicate. *ndup (may
 * be NULL) is the number of members seen, invalid and empty ones included,
 * so > 1 with TG_OK means a repair. No valid member, valid members with
 * different trace ids (W3C test_traceparent_duplicated) or nlines == 0
 * give TG_DECLINED with *tc zeroed (the caller starts a new trace and
 * drops tracestate).
 */
int tg_trace_extract_traceparent(const tg_str_t *lines, size_t nlines,
    tg_trace_ctx_t *tc, size_t *ndup);

/*
 * Writes "00-<32 hex>-<16 hex>-<2 hex>" (TG_TRACE_TRACEPARENT_LEN bytes, no
 * NUL) into dst. Only the sampled bit of flags is kept: Level 1 requires the
 * other bits to be zero when sending. Also the traceresponse value.
 * Returns dst + TG_TRACE_TRACEPARENT_LEN.
 */
u_char *tg_trace_format_traceparent(u_char *dst, const u_char trace_id[16],
    const u_char span_id[8], uint8_t flags);

/* The same from a trace id already in hex: 32 lowercase digits. */
u_char *tg_trace_format_traceparent_hex(u_char *dst,
    const u_char trace_hex[32], const u_char span_id[8], uint8_t flags);

/*
 * Combines the tracestate header lines in order (as if joined with ','),
 * and validates every list member against the current W3C Trace Context
 * grammar (3.3.1.3), which has no separate tenant and system parts:
 *   key   = (lcalpha / DIGIT) 0*255(keychar),
 *   keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
 *           ('@' anywhere after the first character: "foo@=1" is valid)
 *   value = 1 to 256 bytes of 0x20-0x7E except ',' and '=', the last not a
 *           space (trailing spaces are OWS around the member, so dropped).
 * Space and tab around members are ignored and empty members skipped.
 * One invalid member (uppercase, '.', a leading '@', a key over 256, a bad
 * value, no '=') or more than 32 members, duplicates counted, make the
 * whole list invalid. A duplicated key does not: the first (leftmost)
 * member with that key is kept and later ones are dropped (W3C: the list
 * is inherited, duplicates kept as they are or all but one dropped), so a
 * strict next hop, which may discard a list with duplicates, gets none.
 * Returns TG_OK with *out the canonical list ("k1=v1,k2=v2", no spaces)
 * allocated from pool. When that is longer than limit bytes (0: no limit),
 * whole members are removed: members longer than 128 bytes first, rightmost
 * first, then members from the right, until it fits (W3C section 3.3.1.5).
 * TG_DECLINED when the list is invalid, empty (nothing to send), or nothing
 * is left after truncation; TG_ERROR when the pool is out of memory.
 * Call it only for a context from a valid traceparent (W3C 3.3: tracestate
 * is not parsed otherwise, and is dropped on a restart).
 */
int tg_trace_tracestate(tg_pool_t *pool, const tg_str_t *lines,
    size_t nlines, size_t limit, tg_str_t *out);


/*
 * B3 single header "{traceid}-{spanid}[-{sampling}[-{parentspanid}]]",
 * OWS around the value ignored. traceid is 16 or 32 lowercase hex (16 are
 * left-padded with zeros to 128 bits), spanid and parentspanid 16 lowercase
 * hex; zero trace or span ids are invalid. sampling: "1" sets the sampled
 * flag, "0" clears it, "d" sets it and debug, absent sets deferred.
 * Returns TG_OK and fills *tc, else TG_DECLINED. A sampling state alone
 * ("0", "1", "d") carries no ids, so it is TG_DECLINED too; for "0" (deny)
 * tc->deny is set so that parent-based samplers do not sample the new root.
 * Accept or debug without ids is ignored: a client cannot force sampling.
 */
int tg_trace_parse_b3(const tg_str_t *value, tg_trace_ctx_t *tc);

/*
 * B3 multi headers; each argument is the first value of its header or NULL
 * when absent. X-B3-TraceId and X-B3-SpanId as in the single form;
 * X-B3-Sampled "1"/"0" (or, leniently, "true"/"false" in any case), absent
 * means deferred, any other value invalid; X-B3-Flags "1" means debug
 * (sampled), other values are ignored. X-B3-ParentSpanId is not needed.
 * Returns TG_OK and fills *tc, else TG_DECLINED; X-B3-Sampled: 0 without
 * both ids sets tc->deny as for "b3: 0".
 */
int tg_trace_parse_b3_multi(const tg_str_t *trace_id, const tg_str_t *span_id,
    const tg_str_t *sampled, const tg_str_t *flags, tg_trace_ctx_t *tc);

/*
 * Jaeger "uber-trace-id: {trace-id}:{span-id}:{parent-span-id}:{flags}",
 * OWS around the value ignored; each separator may also be the URL-encoded
 * "%3A" (either case). trace-id is 1 to 32 lowercase hex, span-id and
 * parent-span-id 1 to 16, all left-padded with zeros; zero trace or span
 * ids are invalid; parent-span-id is checked but unused. flags is 1 or 2
 * hex digits: 0x01 sampled, 0x02 debug (implies sampled); tc->flags keeps
 * only the sampled bit.
 * Returns TG_OK and fills *tc, else TG_DECLINED.
 */
int tg_trace_parse_jaeger(const tg_str_t *value, tg_trace_ctx_t *tc);

/*
 * Writes the b3 single value "<32 hex>-<16 hex>-1" (or "-0" when the
 * sampled bit of flags is clear); TG_TRACE_B3_LEN bytes, no NUL, no parent.
 * Returns dst + TG_TRACE_B3_LEN.
 */
u_char *tg_trace_format_b3(u_char *dst, const u_char trace_id[16],
    const u_char span_id[8], uint8_t flags);

/*
 * The three B3 multi header values to send: X-B3-TraceId (32 bytes),
 * X-B3-SpanId (16 bytes), X-B3-Sampled (1 byte, '1' or '0'). Not
 * NUL-terminated; the caller copies them into its header list.
 */
typedef struct {
    u_char  trace_id[32];
    u_char  span_id[16];
    u_char  sampled;
} tg_trace_b3_multi_t;

/* Fills *out from the ids and the sampled bit of flags. */
void tg_trace_format_b3_multi(tg_trace_b3_multi_t *out,
    const u_char trace_id[16], const u_char span_id[8], uint8_t flags);

/*
 * Writes the uber-trace-id value "<32 hex>:<16 hex>:0:<2 hex>" (the parent
 * span id is deprecated and sent as 0; flags keeps only the sampled bit);
 * TG_TRACE_JAEGER_LEN bytes, no NUL. Returns dst + TG_TRACE_JAEGER_LEN.
 */
u_char *tg_trace_format_jaeger(u_char *dst, const u_char trace_id[16],
    const u_char span_id[8], uint8_t flags);


/* Propagators, as named in OTEL_PROPAGATORS. */
#define TG_TRACE_PROP_TRACECONTEXT 1 /* traceparent + tracestate */
#define TG_TRACE_PROP_B3           2 /* b3 single header */
#define TG_TRACE_PROP_B3MULTI      3 /* X-B3-* headers */
#define TG_TRACE_PROP_JAEGER       4 /* uber-trace-id */
#define TG_TRACE_PROP_MAX          4

/*
 * The parsed list: order[0..n) is the extraction order (the first
 * propagator that yields a valid context wins) and every listed propagator
 * is injected. n == 0 means propagate nothing.
 */
typedef struct {
    uint8_t  order[TG_TRACE_PROP_MAX];
    size_t   n;
} tg_trace_propagators_t;

/*
 * Parses a comma-separated list like OTEL_PROPAGATORS: "tracecontext",
 * "b3", "b3multi", "jaeger", "none" (names case-insensitive, OWS and empty
 * members ignored). Order is kept and duplicates are ignored. "baggage" is
 * accepted and ignored (the proxy forwards the baggage header untouched).
 * "none" anywhere in the list wins: nothing is propagated (as the OTel Java
 * SDK does). An unknown name or a list without any name is TG_ERROR (for
 * the config reader); otherwise TG_OK and *p filled.
 */
int tg_trace_propagators_parse(const tg_str_t *list,
    tg_trace_propagators_t *p);

/* 1 when propagator kind (TG_TRACE_PROP_*) is to be injected, else 0. */
int tg_trace_propagators_inject(const tg_trace_propagators_t *p, int kind);

/* The request headers extraction may read, indexes into the carrier. */
#define TG_TRACE_HDR_TRACEPARENT   0
#define TG_TRACE_HDR_B3            1
#define TG_TRACE_HDR_B3_TRACE_ID   2
#define TG_TRACE_HDR_B3_SPAN_ID    3
#define TG_TRACE_HDR_B3_SAMPLED    4
#define TG_TRACE_HDR_B3_FLAGS      5
#define TG_TRACE_HDR_UBER_TRACE_ID 6
#define TG_TRACE_HDR_MAX           7

/* Lowercase header names by TG_TRACE_HDR_* index ("traceparent", ...). */
extern const tg_str_t  tg_trace_header_names[TG_TRACE_HDR_MAX];

/*
 * The lines of each header present in a request (n == 0 when absent),
 * borrowed from the caller for the duration of tg_trace_extract().
 */
typedef struct {
    const tg_str_t  *lines;
    size_t           n;
} tg_trace_lines_t;

typedef struct {
    tg_trace_lines_t  hdr[TG_TRACE_HDR_MAX];
} tg_trace_carrier_t;

/*
 * Extracts the remote parent with the propagators in their order; the first
 * valid context wins. tracecontext uses tg_trace_extract_traceparent(); b3
 * and b3multi both read the b3 header first and then the X-B3-* headers
 * (the B3 rule: single takes precedence; the two names differ only on
 * injection); jaeger reads uber-trace-id. For the single-valued B3 and
 * Jaeger headers the first member of the first line is used ("first value
 * wins").
 * Returns TG_OK with *tc filled, *source (may be NULL) set to the
 * TG_TRACE_PROP_* that produced it (tracestate applies only to
 * TG_TRACE_PROP_TRACECONTEXT) and *ndup (may be NULL) the traceparent value
 * count (0 for other sources). Else TG_DECLINED, *source 0, *ndup the
 * traceparent value count seen (so conflicting duplicates can be logged)
 * and tc->deny set when a B3 deny was seen.
 */
int tg_trace_extract(const tg_trace_propagators_t *p,
    const tg_trace_carrier_t *c, tg_trace_ctx_t *tc, int *source,
    size_t *ndup);


/*
 * X-Trace-ID from all lines of the header: the first non-empty member of
 * the lines taken in order, each split on ',' with OWS trimmed. That member
 * is valid when it is 1 to TG_TRACE_XID_MAX bytes of [A-Za-z0-9._:-] (the
 * value goes into logs, headers and the viewer as it is). Returns TG_OK
 * with *out pointing into the input; TG_ERROR when the member is invalid,
 * *out then pointing at it (the caller generates an id and may keep the
 * rejected value, escaped; later members are not tried); TG_DECLINED when
 * absent (*out empty).
 */
int tg_trace_xid_extract(const tg_str_t *lines, size_t nlines,
    tg_str_t *out);

#define TG_TRACE_XID_HEX  0 /* 32 lowercase hex: the trace id */
#define TG_TRACE_XID_UUID 1 /* RFC 9562 version 4 layout of the trace id */
#define TG_TRACE_XID_TIME 2 /* "trace-20260521T153000Z-1c80319c" */

/*
 * Generates an X-Trace-ID into dst (at least TG_TRACE_XID_MAX bytes), no
 * NUL; returns its length. Every format derives from the trace id, so the
 * id found in a log also finds the trace:
 *   TG_TRACE_XID_HEX:  the 32-hex trace id;
 *   TG_TRACE_XID_UUID: 36 chars 8-4-4-4-12, the trace id bytes with the
 *                      version nibble set to 4 and the variant bits to 10
 *                      (so it is not the trace id exactly);
 *   TG_TRACE_XID_TIME: "trace-YYYYMMDDTHHMMSSZ-" then the last 8 hex of the
 *                      trace id (31 chars), the time being now_ns in UTC.
 * An unknown format gives the hex form.
 */
size_t tg_trace_xid_generate(u_char *dst, int format,
    const u_char trace_id[16], uint64_t now_ns);

/* "hex", "uuid" or "time" (case-insensitive) to the format, else TG_ERROR. */
int tg_trace_xid_format_parse(const tg_str_t *name);


/* Sampler kinds, named as the OTel SDK (OTEL_TRACES_SAMPLER). */
#define TG_TRACE_SAMPLER_ALWAYS_ON                1
#define TG_TRACE_SAMPLER_ALWAYS_OFF               2
#define TG_TRACE_SAMPLER_TRACEIDRATIO             3
#define TG_TRACE_SAMPLER_PARENTBASED_ALWAYS_ON    4
#define TG_TRACE_SAMPLER_PARENTBASED_ALWAYS_OFF   5
#define TG_TRACE_SAMPLER_PARENTBASED_TRACEIDRATIO 6

typedef struct {
    int       kind;      /* TG_TRACE_SAMPLER_* */
    double    ratio;
    uint64_t  threshold; /* ratio * 2^56 */
} tg_trace_sampler_t;

/*
 * Sets up *s from an OTEL_TRACES_SAMPLER name ("always_on", "always_off",
 * "traceidratio", "parentbased_always_on", "parentbased_always_off",
 * "parentbased_traceidratio", case-insensitive) and a ratio in [0, 1]
 * (checked for every kind, used by the ratio ones). TG_OK, or TG_ERROR on
 * an unknown name or a ratio outside [0, 1] (NaN included).
 */
int tg_trace_sampler_init(tg_trace_sampler_t *s, const tg_str_t *name,
    double ratio);

/*
 * The sampling decision for a span of trace trace_id: 1 sample, 0 not.
 * A pure function of its inputs. The ratio samplers take the rightmost 7
 * bytes of trace_id as a big-endian integer and sample when it is below
 * ratio * 2^56. Parent-based samplers follow the sampled flag of a valid
 * parent that made a decision; with no parent (NULL or !valid) or a
 * deferred one they apply their root sampler, except that a B3 deny
 * (parent->deny) means 0.
 */
int tg_trace_sampler_sample(const tg_trace_sampler_t *s,
    const tg_trace_ctx_t *parent, const u_char trace_id[16]);

#endif /* _TG_TRACE_H_INCLUDED_ */
