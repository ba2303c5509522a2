#ifndef _TG_OTLP_ENCODE_H_INCLUDED_
#define _TG_OTLP_ENCODE_H_INCLUDED_

/*
 * tg_span_t values -> one ExportTraceServiceRequest (one ResourceSpans, one
 * ScopeSpans "tracegate" TG_VERSION), as OTLP protobuf (written straight in
 * the wire format: the bytes protobuf-c would pack) or as OTLP/JSON (the
 * protobuf JSON mapping with OTLP's exceptions: trace and span ids as
 * lowercase hex, enums as integers, 64-bit integers as decimal strings,
 * lowerCamelCase keys). Strings that are not valid UTF-8 get each
 * bad byte replaced by U+FFFD: proto3 receivers (the Collector's Go code)
 * reject a whole request over one bad string, and JSON must be UTF-8.
 *
 * Everything here is reentrant: the exporter thread and tests call it.
 */

#include <tg_span.h>

/* A malloc'ed byte buffer; zero-initialise, free with tg_otlp_buf_free. */
typedef struct {
    u_char  *data;
    size_t   len;
    size_t   cap;
} tg_otlp_buf_t;

/* A resource attribute: NUL-terminated, valid UTF-8 key and string value. */
typedef struct {
    char  *key;
    char  *value;
} tg_otlp_kv_t;

typedef struct {
    tg_otlp_kv_t  *attrs;
    size_t         nattrs;
} tg_otlp_resource_t;

/* Makes room for n more bytes; TG_OK or TG_ERROR (ENOMEM). */
int tg_otlp_buf_reserve(tg_otlp_buf_t *b, size_t n);

/* Releases the buffer and zeroes it. */
void tg_otlp_buf_free(tg_otlp_buf_t *b);

/*
 * Packs *spans[0..n) with the resource into out (its old contents are
 * replaced). Fields go in field-number order, zero and empty ones left out
 * as proto3 says (AnyValue's oneof member is always there), so the bytes
 * are those protobuf-c packs for the same message. Valid UTF-8 strings are
 * copied straight from the spans. n may be 0 only in tests: the exporter
 * never sends empty requests. Allocates only out's growth and one array
 * of n span sizes. TG_OK or TG_ERROR (ENOMEM).
 */
int tg_otlp_encode_protobuf(const tg_otlp_resource_t *res,
    const tg_span_t *const *spans, size_t n, tg_otlp_buf_t *out);

/*
 * Appends the same request as one line of OTLP/JSON and a '\n' to out (the
 * Collector file exporter's format). As in the protobuf form, a field at
 * its default value (empty name, kind 0, zero time, status UNSET, no
 * parent, no attributes) is left out, never written as null, 0 or "", and
 * so is a resource without attributes. TG_OK or TG_ERROR (ENOMEM).
 */
int tg_otlp_encode_json(const tg_otlp_resource_t *res,
    const tg_span_t *const *spans, size_t n, tg_otlp_buf_t *out);

/* gzip (RFC 1952) of in[0..len) into out (replaced). TG_OK or TG_ERROR. */
int tg_otlp_gzip(const u_char *in, size_t len, tg_otlp_buf_t *out);

/*
 * Reads partial_success from an ExportTraceServiceResponse body (protobuf
 * or, when json is set, OTLP/JSON). Sets *rejected (0 when absent) and
 * copies error_message into msg (msglen bytes, NUL-terminated, may be
 * empty). TG_OK, or TG_ERROR for an undecodable body (then *rejected = 0).
 */
int tg_otlp_decode_response(const u_char *body, size_t len, int json,
    int64_t *rejected, char *msg, size_t msglen);

#endif /* _TG_OTLP_ENCODE_H_INCLUDED_ */
