#ifndef _TG_SPAN_H_INCLUDED_
#define _TG_SPAN_H_INCLUDED_

/*
 * A finished span as a plain value. Workers fill one per SERVER request and
 * per CLIENT attempt, then hand a copy to the LOG phase; nothing in it
 * points anywhere, so it can cross to the exporter thread by memcpy.
 *
 * attrs[] holds the attributes as the bytes they take in an OTLP Span
 * message, so that the exporter copies them as one block: per attribute a
 * Span.attributes field (key 9, length) holding a KeyValue, its key (field
 * 1, left out when empty) and its AnyValue (field 2) with one of
 * string_value (1), bool_value (2) or int_value (3). Strings are repaired
 * to valid UTF-8 when added (tg_utf8_sanitize). Only attr_len bytes are
 * meaningful, so copies may stop at offsetof(tg_span_t, attrs) + attr_len.
 */

#define TG_SPAN_KIND_INTERNAL 1
#define TG_SPAN_KIND_SERVER   2
#define TG_SPAN_KIND_CLIENT   3

#define TG_SPAN_STATUS_UNSET 0
#define TG_SPAN_STATUS_OK    1
#define TG_SPAN_STATUS_ERROR 2

#define TG_SPAN_ATTR_STRING 1
#define TG_SPAN_ATTR_INT    2
#define TG_SPAN_ATTR_BOOL   3

#define TG_SPAN_NAME_MAX   64   /* longer names are truncated */
#define TG_SPAN_ATTR_BYTES 1536 /* attributes that do not fit are dropped */

typedef struct {
    u_char    trace_id[16];
    u_char    span_id[8];
    u_char    parent_id[8];  /* all zero: root span */
    uint64_t  start_ns;      /* Unix ns */
    uint64_t  end_ns;
    uint8_t   kind;          /* TG_SPAN_KIND_* */
    uint8_t   status;        /* TG_SPAN_STATUS_* */
    uint8_t   flags;         /* W3C trace flags (bit 0 sampled) */
    uint8_t   has_link;      /* link_* hold the incoming context */
    u_char    link_trace_id[16];
    u_char    link_span_id[8];
    uint16_t  nattrs;
    uint16_t  dropped_attrs; /* over the count limit or out of room;
                                stops at UINT16_MAX */
    uint16_t  attr_len;      /* bytes used in attrs */
    uint16_t  attr_count_limit; /* 0: no limit set (defaults to 128) */
    uint16_t  attr_value_limit; /* 0: no limit on string value length */
    char      name[TG_SPAN_NAME_MAX]; /* NUL-terminated */
    u_char    attrs[TG_SPAN_ATTR_BYTES];
} tg_span_t;

typedef struct {
    uint8_t        type;
    tg_str_t       key;
    tg_str_t       str;  /* TG_SPAN_ATTR_STRING */
    int64_t        num;  /* TG_SPAN_ATTR_INT, TG_SPAN_ATTR_BOOL (0/1) */
} tg_span_attr_t;

/* Size of the meaningful prefix of a span (what a copy needs). */
#define tg_span_size(s) (offsetof(tg_span_t, attrs) + (s)->attr_len)

/* Resets a span: zero ids and times, no attributes, limits kept at 0. */
void tg_span_init(tg_span_t *s);

/* Sets the name, truncated to TG_SPAN_NAME_MAX - 1 bytes. */
void tg_span_set_name(tg_span_t *s, const u_char *name, size_t len);

/*
 * Appends an attribute. A string value is cut to attr_value_limit when set,
 * then repaired to valid UTF-8, the key too. Over the count limit, a key
 * over 255 bytes, or out of room: not added, dropped_attrs counted.
 * Returns TG_OK or TG_DECLINED (dropped).
 */
int tg_span_add_str(tg_span_t *s, const char *key, const u_char *v, size_t n);
int tg_span_add_int(tg_span_t *s, const char *key, int64_t v);
int tg_span_add_bool(tg_span_t *s, const char *key, int v);

/*
 * The same with a key of klen bytes that is valid UTF-8 already (a
 * literal, a header name), which is neither measured nor checked; the
 * tg_span_*_lit() forms take a string literal.
 *
 * These are inline for the common case (a key under 32 bytes, a short
 * ASCII value, room left): with a literal key the compiler copies it with
 * a few moves. Anything else goes to tg_span_add_string() and
 * tg_span_add_varint(), which write the same bytes.
 */
int tg_span_add_string(tg_span_t *s, const char *key, size_t klen,
    int check, const u_char *v, size_t n);
int tg_span_add_varint(tg_span_t *s, const char *key, size_t klen,
    int check, u_char type, uint64_t v);

/* protobuf keys (field number << 3 | wire type) of the attribute bytes */
#define TG_SPAN_PB_ATTRIBUTE  0x4a  /* Span.attributes, length-delimited */
#define TG_SPAN_PB_KEY        0x0a  /* KeyValue.key */
#define TG_SPAN_PB_VALUE      0x12  /* KeyValue.value */
#define TG_SPAN_PB_STRING     0x0a  /* AnyValue.string_value */
#define TG_SPAN_PB_BOOL       0x10  /* AnyValue.bool_value, varint */
#define TG_SPAN_PB_INT        0x18  /* AnyValue.int_value, varint */

#define TG_SPAN_DEFAULT_COUNT_LIMIT 128

/*
 * Opens an attribute of kv KeyValue bytes (below 128) when the count and
 * the room allow it: writes the field's key and length and the KeyValue's
 * key, returns where the KeyValue.value field goes; NULL to take the
 * general path.
 */
static inline u_char *
tg_span_attr_fast(tg_span_t *s, const char *key, size_t klen, size_t kv)
{
    u_char  *p;

    if (s->nattrs >= (s->attr_count_limit ? s->attr_count_limit
                                          : TG_SPAN_DEFAULT_COUNT_LIMIT)
        || 2 + kv > (size_t) (TG_SPAN_ATTR_BYTES - s->attr_len))
    {
        return NULL;
    }
    p = s->attrs + s->attr_len;
    s->attr_len += (uint16_t) (2 + kv);
    s->nattrs++;
    p[0] = TG_SPAN_PB_ATTRIBUTE;
    p[1] = (u_char) kv;
    p[2] = TG_SPAN_PB_KEY;
    p[3] = (u_char) klen;
    memcpy(p + 4, key, klen);
    return p + 4 + klen;
}

static inline int
tg_span_add_strk(tg_span_t *s, const char *key, size_t klen,
    const u_char *v, size_t n)
{
    u_char  *p;

    /* kv: key field (2 + klen), value field (2), string field (2 + n) */
    if (klen && klen < 32 && n < 64
        && (s->attr_value_limit == 0 || n <= s->attr_value_limit)
        && tg_utf8_ascii(v, n)
        && (p = tg_span_attr_fast(s, key, klen, 6 + klen + n)) != NULL)
    {
        p[0] = TG_SPAN_PB_VALUE;
        p[1] = (u_char) (2 + n);
        p[2] = TG_SPAN_PB_STRING;
        p[3] = (u_char) n;
        if (n) {
            memcpy(p + 4, v, n); /* v may be NULL when n is 0 */
        }
        return TG_OK;
    }
    return tg_span_add_string(s, key, klen, 0, v, n);
}

static inline int
tg_span_add_varintk(tg_span_t *s, const char *key, size_t klen, u_char type,
    uint64_t v)
{
    u_char  *p;
    size_t   vn;

    vn = tg_varint_size(v);
    /* kv: key field (2 + klen), value field (2), type and varint */
    if (klen && klen < 64
        && (p = tg_span_attr_fast(s, key, klen, 5 + klen + vn)) != NULL)
    {
        p[0] = TG_SPAN_PB_VALUE;
        p[1] = (u_char) (1 + vn);
        p[2] = type;
        tg_varint_put(p + 3, v);
        return TG_OK;
    }
    return tg_span_add_varint(s, key, klen, 0, type, v);
}

#define tg_span_add_intk(s, key, klen, v)                                      \
    tg_span_add_varintk(s, key, klen, TG_SPAN_PB_INT, (uint64_t) (int64_t) (v))
#define tg_span_add_boolk(s, key, klen, v)                                     \
    tg_span_add_varintk(s, key, klen, TG_SPAN_PB_BOOL, (v) ? 1 : 0)

#define tg_span_str_lit(s, key, v, n)                                          \
    tg_span_add_strk(s, key, sizeof(key) - 1, v, n)
#define tg_span_int_lit(s, key, v)                                             \
    tg_span_add_intk(s, key, sizeof(key) - 1, v)
#define tg_span_bool_lit(s, key, v)                                            \
    tg_span_add_boolk(s, key, sizeof(key) - 1, v)

/*
 * Iterates attributes: start with *off = 0; returns 1 and fills a while
 * one is left, 0 at the end (or at bytes it cannot read). Pointers in a
 * point into s.
 */
int tg_span_attr_next(const tg_span_t *s, size_t *off, tg_span_attr_t *a);

/* Finds an attribute by key; 1 and fills a when present. */
int tg_span_attr_find(const tg_span_t *s, const char *key, tg_span_attr_t *a);

#endif /* _TG_SPAN_H_INCLUDED_ */
