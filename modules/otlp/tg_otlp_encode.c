#include <tg_config.h>
#include <tg_core.h>
#include <tg_otlp_encode.h>

#include <zlib.h>
#include <opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h>


typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse
    tg_otlp_pb_response_t;

/* the generated names are longer than a line: shorter spellings */
#define tg_otlp_pb_cat(a, b)  a ## b
#define tg_otlp_pb_collector(f)                                               \
    tg_otlp_pb_cat(opentelemetry__proto__collector__trace__v1__, f)
#define tg_otlp_pb_resp(f)                                                    \
    tg_otlp_pb_collector(export_trace_service_response__##f)

#define TG_OTLP_SCOPE_NAME      "tracegate"

/* Span.flags bits beyond the W3C trace flags (trace.proto SpanFlags) */
#define TG_OTLP_FLAGS_HAS_IS_REMOTE  0x100
#define TG_OTLP_FLAGS_IS_REMOTE      0x200

/*
 * Protobuf wire format (protobuf.dev/programming-guides/encoding): a field
 * is a varint key, field number << 3 | wire type, then a varint, 8 or 4
 * little-endian bytes, or a varint length and that many bytes. Field
 * numbers are those of the .proto files under modules/otlp/proto.
 * Every key below fits in one byte except Span.flags (16), which takes two.
 */
#define TG_OTLP_PB_VARINT  0
#define TG_OTLP_PB_I64     1
#define TG_OTLP_PB_LEN     2
#define TG_OTLP_PB_I32     5

#define tg_otlp_pb_key(field, type)  ((field) << 3 | TG_OTLP_PB_##type)

/* collector/trace/v1: ExportTraceServiceRequest */
#define TG_OTLP_PB_REQ_RESOURCE_SPANS   tg_otlp_pb_key(1, LEN)
/* trace/v1: ResourceSpans, ScopeSpans */
#define TG_OTLP_PB_RS_RESOURCE          tg_otlp_pb_key(1, LEN)
#define TG_OTLP_PB_RS_SCOPE_SPANS       tg_otlp_pb_key(2, LEN)
#define TG_OTLP_PB_SS_SCOPE             tg_otlp_pb_key(1, LEN)
#define TG_OTLP_PB_SS_SPANS             tg_otlp_pb_key(2, LEN)
/* resource/v1: Resource */
#define TG_OTLP_PB_RESOURCE_ATTRIBUTES  tg_otlp_pb_key(1, LEN)
/* common/v1: InstrumentationScope, KeyValue, AnyValue (a oneof) */
#define TG_OTLP_PB_SCOPE_NAME           tg_otlp_pb_key(1, LEN)
#define TG_OTLP_PB_SCOPE_VERSION        tg_otlp_pb_key(2, LEN)
#define TG_OTLP_PB_KV_KEY               tg_otlp_pb_key(1, LEN)
#define TG_OTLP_PB_KV_VALUE             tg_otlp_pb_key(2, LEN)
#define TG_OTLP_PB_ANY_STRING           tg_otlp_pb_key(1, LEN)
#define TG_OTLP_PB_ANY_BOOL             tg_otlp_pb_key(2, VARINT)
#define TG_OTLP_PB_ANY_INT              tg_otlp_pb_key(3, VARINT)
/* trace/v1: Span, Span.Link, Status */
#define TG_OTLP_PB_SPAN_TRACE_ID        tg_otlp_pb_key(1, LEN)
#define TG_OTLP_PB_SPAN_SPAN_ID         tg_otlp_pb_key(2, LEN)
#define TG_OTLP_PB_SPAN_PARENT_SPAN_ID  tg_otlp_pb_key(4, LEN)
#define TG_OTLP_PB_SPAN_NAME            tg_otlp_pb_key(5, LEN)
#define TG_OTLP_PB_SPAN_KIND            tg_otlp_pb_key(6, VARINT)
#define TG_OTLP_PB_SPAN_START           tg_otlp_pb_key(7, I64)
#define TG_OTLP_PB_SPAN_END             tg_otlp_pb_key(8, I64)
#define TG_OTLP_PB_SPAN_ATTRIBUTES      tg_otlp_pb_key(9, LEN)
#define TG_OTLP_PB_SPAN_DROPPED_ATTRS   tg_otlp_pb_key(10, VARINT)
#define TG_OTLP_PB_SPAN_LINKS           tg_otlp_pb_key(13, LEN)
#define TG_OTLP_PB_SPAN_STATUS          tg_otlp_pb_key(15, LEN)
#define TG_OTLP_PB_SPAN_FLAGS           tg_otlp_pb_key(16, I32)
#define TG_OTLP_PB_LINK_TRACE_ID        tg_otlp_pb_key(1, LEN)
#define TG_OTLP_PB_LINK_SPAN_ID         tg_otlp_pb_key(2, LEN)
#define TG_OTLP_PB_LINK_FLAGS           tg_otlp_pb_key(6, I32)
#define TG_OTLP_PB_STATUS_CODE          tg_otlp_pb_key(3, VARINT)

static uint32_t tg_otlp_span_flags(const tg_span_t *s);
static int tg_otlp_id_zero(const u_char *id, size_t n);
static u_char *tg_otlp_rv_resource_kv(u_char *p, const tg_otlp_kv_t *kv);
static u_char *tg_otlp_rv_span(u_char *p, const tg_span_t *s);
static int tg_otlp_json_raw(tg_otlp_buf_t *b, const char *s, size_t n);
static int tg_otlp_json_str(tg_otlp_buf_t *b, const u_char *s, size_t n);
static int tg_otlp_json_hex(tg_otlp_buf_t *b, const u_char *id, size_t n);
static int tg_otlp_json_fmt(tg_otlp_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int tg_otlp_json_span(tg_otlp_buf_t *b, const tg_span_t *s);

#define tg_otlp_json_lit(b, s)  tg_otlp_json_raw(b, s, sizeof(s) - 1)


int
tg_otlp_buf_reserve(tg_otlp_buf_t *b, size_t n)
{
    size_t   cap;
    u_char  *p;

    if (b->cap - b->len >= n) {
        return TG_OK;
    }
    cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) {
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL) {
        return TG_ERROR;
    }
    b->data = p;
    b->cap = cap;
    return TG_OK;
}


void
tg_otlp_buf_free(tg_otlp_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}


static int
tg_otlp_id_zero(const u_char *id, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (id[i]) {
            return 0;
        }
    }
    return 1;
}


/*
 * W3C flags in the low byte; bits 8-9 say whether the parent is remote.
 * Only a SERVER span with a parent continues an incoming (remote) context;
 * CLIENT spans are children of our own SERVER span.
 */
static uint32_t
tg_otlp_span_flags(const tg_span_t *s)
{
    uint32_t  flags;

    flags = s->flags | TG_OTLP_FLAGS_HAS_IS_REMOTE;
    if (s->kind == TG_SPAN_KIND_SERVER
        && !tg_otlp_id_zero(s->parent_id, sizeof(s->parent_id)))
    {
        flags |= TG_OTLP_FLAGS_IS_REMOTE;
    }
    return flags;
}


/*
 * The writer works back to front: each helper below writes its field so
 * that it ends at p and returns where it starts. A message's fields go in
 * reverse field-number order, so the bytes read front to back are in
 * field-number order, as protobuf-c packs them, and every length prefix is
 * written after its contents, when it is known: one pass, nothing measured
 * beforehand.
 */
static inline u_char *
tg_otlp_rv_varint(u_char *p, uint64_t v)
{
    if (v < 0x80) {
        *--p = (u_char) v;
        return p;
    }
    p -= tg_varint_size(v);
    tg_varint_put(p, v);
    return p;
}


static inline u_char *
tg_otlp_rv_fixed64(u_char *p, uint64_t v)
{
    p -= 8;
    p[0] = (u_char) v;
    p[1] = (u_char) (v >> 8);
    p[2] = (u_char) (v >> 16);
    p[3] = (u_char) (v >> 24);
    p[4] = (u_char) (v >> 32);
    p[5] = (u_char) (v >> 40);
    p[6] = (u_char) (v >> 48);
    p[7] = (u_char) (v >> 56);
    return p;
}


static inline u_char *
tg_otlp_rv_fixed32(u_char *p, uint32_t v)
{
    p -= 4;
    p[0] = (u_char) v;
    p[1] = (u_char) (v >> 8);
    p[2] = (u_char) (v >> 16);
    p[3] = (u_char) (v >> 24);
    return p;
}


/* Key and length of a message already written at [p, end). */
static inline u_char *
tg_otlp_rv_len(u_char *p, const u_char *end, uint32_t key)
{
    p = tg_otlp_rv_varint(p, (uint64_t) (end - p));
    return tg_otlp_rv_varint(p, key);
}


static inline u_char *
tg_otlp_rv_bytes(u_char *p, uint32_t key, const u_char *src, size_t n)
{
    p -= n;
    memcpy(p, src, n);
    return tg_otlp_rv_len(p, p + n, key);
}


/* A string field: src as it is when valid UTF-8, else repaired. */
static inline u_char *
tg_otlp_rv_string(u_char *p, uint32_t key, const u_char *src, size_t n)
{
    size_t  len;

    len = tg_utf8_fixed_len(src, n);
    if (len == n) {
        return tg_otlp_rv_bytes(p, key, src, n);
    }
    p -= len;
    tg_utf8_sanitize(p, src, n);
    return tg_otlp_rv_len(p, p + len, key);
}


/*
 * A resource attribute as a KeyValue field: both strings were made valid
 * UTF-8 when the resource was built. An empty key is left out (proto3);
 * the value is written even when "" (AnyValue is a oneof).
 */
static u_char *
tg_otlp_rv_resource_kv(u_char *p, const tg_otlp_kv_t *kv)
{
    u_char  *end;

    end = p;
    p = tg_otlp_rv_bytes(p, TG_OTLP_PB_ANY_STRING, (const u_char *) kv->value,
                         strlen(kv->value));
    p = tg_otlp_rv_len(p, end, TG_OTLP_PB_KV_VALUE);
    if (kv->key[0] != '\0') {
        p = tg_otlp_rv_bytes(p, TG_OTLP_PB_KV_KEY, (const u_char *) kv->key,
                             strlen(kv->key));
    }
    /* the KeyValue ends where its value ended */
    return tg_otlp_rv_len(p, end, TG_OTLP_PB_RESOURCE_ATTRIBUTES);
}


/*
 * Room a span needs at most: its fields besides attributes take at most
 * TG_OTLP_RV_SPAN bytes (a 64-byte name repaired to 192 included); the
 * attributes are already encoded, attr_len bytes.
 */
#define TG_OTLP_RV_SPAN   512

#define tg_otlp_rv_span_room(s)  (TG_OTLP_RV_SPAN + (size_t) (s)->attr_len)


/* The Span message's fields, ending at p, in reverse field-number order. */
static u_char *
tg_otlp_rv_span(u_char *p, const tg_span_t *s)
{
    size_t   n;
    u_char  *end;

    /* never zero: HAS_IS_REMOTE is always set */
    p = tg_otlp_rv_fixed32(p, tg_otlp_span_flags(s));
    p = tg_otlp_rv_varint(p, TG_OTLP_PB_SPAN_FLAGS);

    /* UNSET is the meaning of an absent status: save the bytes */
    if (s->status != TG_SPAN_STATUS_UNSET) {
        end = p;
        p = tg_otlp_rv_varint(p, s->status);
        p = tg_otlp_rv_varint(p, TG_OTLP_PB_STATUS_CODE);
        p = tg_otlp_rv_len(p, end, TG_OTLP_PB_SPAN_STATUS);
    }

    /* the incoming context, when a new trace was started instead: remote */
    if (s->has_link) {
        end = p;
        p = tg_otlp_rv_fixed32(p, TG_OTLP_FLAGS_HAS_IS_REMOTE
                                  | TG_OTLP_FLAGS_IS_REMOTE);
        p = tg_otlp_rv_varint(p, TG_OTLP_PB_LINK_FLAGS);
        p = tg_otlp_rv_bytes(p, TG_OTLP_PB_LINK_SPAN_ID, s->link_span_id,
                             sizeof(s->link_span_id));
        p = tg_otlp_rv_bytes(p, TG_OTLP_PB_LINK_TRACE_ID, s->link_trace_id,
                             sizeof(s->link_trace_id));
        p = tg_otlp_rv_len(p, end, TG_OTLP_PB_SPAN_LINKS);
    }

    if (s->dropped_attrs) {
        p = tg_otlp_rv_varint(p, s->dropped_attrs);
        p = tg_otlp_rv_varint(p, TG_OTLP_PB_SPAN_DROPPED_ATTRS);
    }

    /* the attributes are kept as their Span.attributes fields */
    p -= s->attr_len;
    memcpy(p, s->attrs, s->attr_len);

    if (s->end_ns) {
        p = tg_otlp_rv_fixed64(p, s->end_ns);
        p = tg_otlp_rv_varint(p, TG_OTLP_PB_SPAN_END);
    }
    if (s->start_ns) {
        p = tg_otlp_rv_fixed64(p, s->start_ns);
        p = tg_otlp_rv_varint(p, TG_OTLP_PB_SPAN_START);
    }
    if (s->kind) {
        p = tg_otlp_rv_varint(p, s->kind);
        p = tg_otlp_rv_varint(p, TG_OTLP_PB_SPAN_KIND);
    }

    n = strnlen(s->name, TG_SPAN_NAME_MAX);
    if (n) {
        p = tg_otlp_rv_string(p, TG_OTLP_PB_SPAN_NAME, (const u_char *) s->name,
                              n);
    }

    /* a root span has no parent_span_id field (an empty bytes value) */
    if (!tg_otlp_id_zero(s->parent_id, sizeof(s->parent_id))) {
        p = tg_otlp_rv_bytes(p, TG_OTLP_PB_SPAN_PARENT_SPAN_ID, s->parent_id,
                             sizeof(s->parent_id));
    }
    p = tg_otlp_rv_bytes(p, TG_OTLP_PB_SPAN_SPAN_ID, s->span_id,
                         sizeof(s->span_id));
    return tg_otlp_rv_bytes(p, TG_OTLP_PB_SPAN_TRACE_ID, s->trace_id,
                            sizeof(s->trace_id));
}


/*
 * Room for one field of at most room bytes after out->len: the field is
 * written back to front from the returned end, then moved down to
 * out->len by tg_otlp_rv_commit(). NULL on ENOMEM.
 */
static u_char *
tg_otlp_rv_room(tg_otlp_buf_t *out, size_t room)
{
    if (tg_otlp_buf_reserve(out, room) != TG_OK) {
        return NULL;
    }
    return out->data + out->len + room;
}


static void
tg_otlp_rv_commit(tg_otlp_buf_t *out, const u_char *p, const u_char *end)
{
    size_t  n;

    n = (size_t) (end - p);
    memmove(out->data + out->len, p, n);
    out->len += n;
}


/*
 * The outer messages' keys and lengths are known last: each gets a gap of
 * TG_OTLP_RV_GAP bytes, a key and a 3-byte length (16 KiB - 2 MiB, the
 * size of a full batch), filled by tg_otlp_rv_frame() once what follows
 * is written. A length of another size moves what follows.
 */
#define TG_OTLP_RV_GAP  4

static int
tg_otlp_rv_gap(tg_otlp_buf_t *out, size_t *at)
{
    if (tg_otlp_buf_reserve(out, TG_OTLP_RV_GAP) != TG_OK) {
        return TG_ERROR;
    }
    out->len += TG_OTLP_RV_GAP;
    *at = out->len;
    return TG_OK;
}


static int
tg_otlp_rv_frame(tg_otlp_buf_t *out, size_t at, uint32_t key)
{
    u_char  *p;
    size_t   size, hdr;

    size = out->len - at;
    hdr = 1 + tg_varint_size(size);
    if (hdr != TG_OTLP_RV_GAP) {
        if (hdr > TG_OTLP_RV_GAP
            && tg_otlp_buf_reserve(out, hdr - TG_OTLP_RV_GAP) != TG_OK)
        {
            return TG_ERROR;
        }
        memmove(out->data + at - TG_OTLP_RV_GAP + hdr, out->data + at, size);
        at = at - TG_OTLP_RV_GAP + hdr;
        out->len = at + size;
    }
    p = tg_varint_put(out->data + at - hdr, key);
    tg_varint_put(p, size);
    return TG_OK;
}


/*
 * One ResourceSpans with the resource and one ScopeSpans. Each field is
 * written back to front in room reserved for it (tg_otlp_rv_room) and
 * moved into place, so out ends up the exact size, holding no more than
 * one span's room beyond it.
 */
int
tg_otlp_encode_protobuf(const tg_otlp_resource_t *res,
    const tg_span_t *const *spans, size_t n, tg_otlp_buf_t *out)
{
    size_t   i, room, rs_at, ss_at;
    u_char  *p, *end;

    out->len = 0;
    if (tg_otlp_rv_gap(out, &rs_at) != TG_OK) {
        return TG_ERROR;
    }

    /* ResourceSpans.resource */
    room = 8;
    for (i = 0; i < res->nattrs; i++) {
        room += strlen(res->attrs[i].key) + strlen(res->attrs[i].value)
                + 24;  /* keys and lengths */
    }
    end = tg_otlp_rv_room(out, room);
    if (end == NULL) {
        return TG_ERROR;
    }
    p = end;
    for (i = res->nattrs; i-- > 0; /* void */) {
        p = tg_otlp_rv_resource_kv(p, &res->attrs[i]);
    }
    p = tg_otlp_rv_len(p, end, TG_OTLP_PB_RS_RESOURCE);
    tg_otlp_rv_commit(out, p, end);

    /* ResourceSpans.scope_spans: the scope, then the spans */
    if (tg_otlp_rv_gap(out, &ss_at) != TG_OK) {
        return TG_ERROR;
    }
    end = tg_otlp_rv_room(out, 16 + sizeof(TG_OTLP_SCOPE_NAME)
                                   + sizeof(TG_VERSION));
    if (end == NULL) {
        return TG_ERROR;
    }
    p = end;
    if (sizeof(TG_VERSION) > 1) {
        p = tg_otlp_rv_bytes(p, TG_OTLP_PB_SCOPE_VERSION,
                             (const u_char *) TG_VERSION,
                             sizeof(TG_VERSION) - 1);
    }
    p = tg_otlp_rv_bytes(p, TG_OTLP_PB_SCOPE_NAME,
                         (const u_char *) TG_OTLP_SCOPE_NAME,
                         sizeof(TG_OTLP_SCOPE_NAME) - 1);
    p = tg_otlp_rv_len(p, end, TG_OTLP_PB_SS_SCOPE);
    tg_otlp_rv_commit(out, p, end);

    for (i = 0; i < n; i++) {
        /* + the field's key and a length of up to 3 bytes */
        end = tg_otlp_rv_room(out, tg_otlp_rv_span_room(spans[i]) + 4);
        if (end == NULL) {
            return TG_ERROR;
        }
        p = tg_otlp_rv_span(end, spans[i]);
        p = tg_otlp_rv_len(p, end, TG_OTLP_PB_SS_SPANS);
        tg_otlp_rv_commit(out, p, end);
    }

    /* innermost first: moving the ScopeSpans keeps rs_at in place */
    if (tg_otlp_rv_frame(out, ss_at, TG_OTLP_PB_RS_SCOPE_SPANS) != TG_OK
        || tg_otlp_rv_frame(out, rs_at, TG_OTLP_PB_REQ_RESOURCE_SPANS)
               != TG_OK)
    {
        return TG_ERROR;
    }
    return TG_OK;
}


static int
tg_otlp_json_raw(tg_otlp_buf_t *b, const char *s, size_t n)
{
    if (tg_otlp_buf_reserve(b, n) != TG_OK) {
        return TG_ERROR;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return TG_OK;
}


static int
tg_otlp_json_fmt(tg_otlp_buf_t *b, const char *fmt, ...)
{
    int      n;
    va_list  ap;

    if (tg_otlp_buf_reserve(b, 64) != TG_OK) {
        return TG_ERROR;
    }
    va_start(ap, fmt);
    n = vsnprintf((char *) b->data + b->len, 64, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= 64) {
        return TG_ERROR;
    }
    b->len += (size_t) n;
    return TG_OK;
}


/*
 * A JSON string of valid UTF-8, quotes included: ill-formed bytes, and
 * NUL, become U+FFFD as in the protobuf form (tg_utf8_sanitize).
 */
static int
tg_otlp_json_str(tg_otlp_buf_t *b, const u_char *s, size_t n)
{
    u_char    *p;
    unsigned   t;

    if (tg_otlp_buf_reserve(b, TG_JSON_ESCAPE_MAX * n + 2) != TG_OK) {
        return TG_ERROR;
    }
    p = b->data + b->len;
    *p++ = '"';
    t = 0;
    p = tg_json_escape(p, p + TG_JSON_ESCAPE_MAX * n, s, n,
                       TG_JSON_SHORT_NRT | TG_JSON_NUL_BAD, &t);
    *p++ = '"';
    b->len = (size_t) (p - b->data);
    return TG_OK;
}


static int
tg_otlp_json_hex(tg_otlp_buf_t *b, const u_char *id, size_t n)
{
    u_char  *p;

    if (tg_otlp_buf_reserve(b, 2 * n + 2) != TG_OK) {
        return TG_ERROR;
    }
    p = b->data + b->len;
    *p++ = '"';
    p = tg_hex_encode(p, id, n);
    *p++ = '"';
    b->len = (size_t) (p - b->data);
    return TG_OK;
}


int
tg_otlp_encode_json(const tg_otlp_resource_t *res,
    const tg_span_t *const *spans, size_t n, tg_otlp_buf_t *out)
{
    size_t  i, start;

    start = out->len;

    /* a Resource without attributes is left out, an empty message */
    if (tg_otlp_json_lit(out, "{\"resourceSpans\":[{") != TG_OK
        || (res->nattrs
            && tg_otlp_json_lit(out, "\"resource\":{\"attributes\":[")
                   != TG_OK))
    {
        goto failed;
    }
    for (i = 0; i < res->nattrs; i++) {
        if ((i && tg_otlp_json_lit(out, ",") != TG_OK)
            || tg_otlp_json_lit(out, "{\"key\":") != TG_OK
            || tg_otlp_json_str(out, (u_char *) res->attrs[i].key,
                                strlen(res->attrs[i].key)) != TG_OK
            || tg_otlp_json_lit(out, ",\"value\":{\"stringValue\":") != TG_OK
            || tg_otlp_json_str(out, (u_char *) res->attrs[i].value,
                                strlen(res->attrs[i].value)) != TG_OK
            || tg_otlp_json_lit(out, "}}") != TG_OK)
        {
            goto failed;
        }
    }
    if ((res->nattrs && tg_otlp_json_lit(out, "]},") != TG_OK)
        || tg_otlp_json_lit(out, "\"scopeSpans\":[{\"scope\":{\"name\":\""
                              TG_OTLP_SCOPE_NAME "\",\"version\":\""
                              TG_VERSION "\"},\"spans\":[") != TG_OK)
    {
        goto failed;
    }
    for (i = 0; i < n; i++) {
        if ((i && tg_otlp_json_lit(out, ",") != TG_OK)
            || tg_otlp_json_span(out, spans[i]) != TG_OK)
        {
            goto failed;
        }
    }
    if (tg_otlp_json_lit(out, "]}]}]}\n") != TG_OK) {
        goto failed;
    }
    return TG_OK;

failed:
    out->len = start;
    return TG_ERROR;
}


static int
tg_otlp_json_span(tg_otlp_buf_t *b, const tg_span_t *s)
{
    int             first;
    size_t          n, off;
    tg_span_attr_t  a;

    if (tg_otlp_json_lit(b, "{\"traceId\":") != TG_OK
        || tg_otlp_json_hex(b, s->trace_id, sizeof(s->trace_id)) != TG_OK
        || tg_otlp_json_lit(b, ",\"spanId\":") != TG_OK
        || tg_otlp_json_hex(b, s->span_id, sizeof(s->span_id)) != TG_OK)
    {
        return TG_ERROR;
    }
    if (!tg_otlp_id_zero(s->parent_id, sizeof(s->parent_id))
        && (tg_otlp_json_lit(b, ",\"parentSpanId\":") != TG_OK
            || tg_otlp_json_hex(b, s->parent_id, sizeof(s->parent_id))
               != TG_OK))
    {
        return TG_ERROR;
    }
    /* never zero: HAS_IS_REMOTE is always set */
    if (tg_otlp_json_fmt(b, ",\"flags\":%u",
                         (unsigned) tg_otlp_span_flags(s)) != TG_OK)
    {
        return TG_ERROR;
    }

    /*
     * As in the protobuf form, a field at its default value (empty name,
     * kind UNSPECIFIED, zero time, no attributes) is left out: the OTLP/JSON
     * mapping omits them, and spans received by the collector may have them
     */
    n = strnlen(s->name, TG_SPAN_NAME_MAX);
    if ((n && (tg_otlp_json_lit(b, ",\"name\":") != TG_OK
               || tg_otlp_json_str(b, (const u_char *) s->name, n) != TG_OK))
        || (s->kind
            && tg_otlp_json_fmt(b, ",\"kind\":%u", (unsigned) s->kind)
                   != TG_OK)
        || (s->start_ns
            && tg_otlp_json_fmt(b, ",\"startTimeUnixNano\":\"%" PRIu64 "\"",
                                s->start_ns) != TG_OK)
        || (s->end_ns
            && tg_otlp_json_fmt(b, ",\"endTimeUnixNano\":\"%" PRIu64 "\"",
                                s->end_ns) != TG_OK)
        || (s->attr_len && tg_otlp_json_lit(b, ",\"attributes\":[") != TG_OK))
    {
        return TG_ERROR;
    }

    first = 1;
    off = 0;
    while (tg_span_attr_next(s, &off, &a)) {
        if ((!first && tg_otlp_json_lit(b, ",") != TG_OK)
            || tg_otlp_json_lit(b, "{\"key\":") != TG_OK
            || tg_otlp_json_str(b, a.key.data, a.key.len) != TG_OK)
        {
            return TG_ERROR;
        }
        first = 0;
        switch (a.type) {
        case TG_SPAN_ATTR_STRING:
            if (tg_otlp_json_lit(b, ",\"value\":{\"stringValue\":") != TG_OK
                || tg_otlp_json_str(b, a.str.data, a.str.len) != TG_OK
                || tg_otlp_json_lit(b, "}}") != TG_OK)
            {
                return TG_ERROR;
            }
            break;
        case TG_SPAN_ATTR_INT:
            if (tg_otlp_json_fmt(b, ",\"value\":{\"intValue\":\"%" PRId64
                                 "\"}}", a.num) != TG_OK)
            {
                return TG_ERROR;
            }
            break;
        default:
            if (tg_otlp_json_fmt(b, ",\"value\":{\"boolValue\":%s}}",
                                 a.num ? "true" : "false") != TG_OK)
            {
                return TG_ERROR;
            }
            break;
        }
    }
    if (s->attr_len && tg_otlp_json_lit(b, "]") != TG_OK) {
        return TG_ERROR;
    }

    if (s->dropped_attrs
        && tg_otlp_json_fmt(b, ",\"droppedAttributesCount\":%u",
                            (unsigned) s->dropped_attrs) != TG_OK)
    {
        return TG_ERROR;
    }
    if (s->has_link
        && (tg_otlp_json_lit(b, ",\"links\":[{\"traceId\":") != TG_OK
            || tg_otlp_json_hex(b, s->link_trace_id, sizeof(s->link_trace_id))
               != TG_OK
            || tg_otlp_json_lit(b, ",\"spanId\":") != TG_OK
            || tg_otlp_json_hex(b, s->link_span_id, sizeof(s->link_span_id))
               != TG_OK
            || tg_otlp_json_fmt(b, ",\"flags\":%u}]",
                                TG_OTLP_FLAGS_HAS_IS_REMOTE
                                | TG_OTLP_FLAGS_IS_REMOTE) != TG_OK))
    {
        return TG_ERROR;
    }
    if (s->status != TG_SPAN_STATUS_UNSET
        && tg_otlp_json_fmt(b, ",\"status\":{\"code\":%u}",
                            (unsigned) s->status) != TG_OK)
    {
        return TG_ERROR;
    }
    return tg_otlp_json_lit(b, "}");
}


int
tg_otlp_gzip(const u_char *in, size_t len, tg_otlp_buf_t *out)
{
    int       rc;
    z_stream  zs;

    memset(&zs, 0, sizeof(z_stream));
    /*
     * Level 1: span batches are repetitive, so the fastest level already
     * shrinks them several times, at a fraction of the default's CPU.
     * windowBits 15 + 16 asks zlib for a gzip wrapper.
     */
    if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
    {
        return TG_ERROR;
    }
    out->len = 0;
    if (tg_otlp_buf_reserve(out, deflateBound(&zs, (uLong) len)) != TG_OK) {
        deflateEnd(&zs);
        return TG_ERROR;
    }
    zs.next_in = (Bytef *) in;
    zs.avail_in = (uInt) len;
    zs.next_out = out->data;
    zs.avail_out = (uInt) out->cap;
    rc = deflate(&zs, Z_FINISH);
    out->len = zs.total_out;
    deflateEnd(&zs);
    return rc == Z_STREAM_END ? TG_OK : TG_ERROR;
}


int
tg_otlp_decode_response(const u_char *body, size_t len, int json,
    int64_t *rejected, char *msg, size_t msglen)
{
    size_t                  n;
    const u_char           *p, *end;
    tg_otlp_pb_response_t  *resp;

    *rejected = 0;
    if (msglen) {
        msg[0] = '\0';
    }
    if (len == 0) {
        return TG_OK;
    }

    if (!json) {
        resp = tg_otlp_pb_resp(unpack)(NULL, len, body);
        if (resp == NULL) {
            return TG_ERROR;
        }
        if (resp->partial_success) {
            *rejected = resp->partial_success->rejected_spans;
            if (msglen && resp->partial_success->error_message) {
                snprintf(msg, msglen, "%s",
                         resp->partial_success->error_message);
            }
        }
        tg_otlp_pb_resp(free_unpacked)(resp, NULL);
        return TG_OK;
    }

    /*
     * JSON: only two fields matter, so a scan is enough; int64 may come
     * as a string ("5") or a number (5) per the protobuf JSON mapping.
     */
    end = body + len;
    p = memmem(body, len, "\"rejectedSpans\"", 15);
    if (p) {
        for (p += 15; p < end && (*p == ' ' || *p == ':' || *p == '"'); p++) {
            /* skip */
        }
        while (p < end && *p >= '0' && *p <= '9' && *rejected < INT64_MAX / 10)
        {
            *rejected = *rejected * 10 + (*p++ - '0');
        }
    }
    p = memmem(body, len, "\"errorMessage\"", 14);
    if (p && msglen) {
        p = memchr(p + 14, '"', (size_t) (end - p - 14));
        if (p) {
            p++;
            for (n = 0; p < end && *p != '"' && n + 1 < msglen; p++) {
                msg[n++] = (char) *p;
            }
            msg[n] = '\0';
        }
    }
    return TG_OK;
}
