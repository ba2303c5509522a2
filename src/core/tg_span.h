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
    uint16_t  dropped_attrs; /* over the count limit or out of room */
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
 */
int tg_span_add_strk(tg_span_t *s, const char *key, size_t klen,
    const u_char *v, size_t n);
int tg_span_add_intk(tg_span_t *s, const char *key, size_t klen, int64_t v);
int tg_span_add_boolk(tg_span_t *s, const char *key, size_t klen, int v);

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
