#include <tg_config.h>
#include <tg_core.h>
#include <tg_span.h>


static int tg_span_get_varint(const u_char **p, const u_char *end,
    uint64_t *v);


void
tg_span_init(tg_span_t *s)
{
    memset(s, 0, offsetof(tg_span_t, attrs));
}


void
tg_span_set_name(tg_span_t *s, const u_char *name, size_t len)
{
    len = tg_min(len, TG_SPAN_NAME_MAX - 1);
    memcpy(s->name, name, len);
    s->name[len] = '\0';
}


/*
 * A length inside the attribute bytes: below 2^14 (3 * TG_SPAN_ATTR_BYTES,
 * the most a value repaired can take), so one or two varint bytes.
 */
#define tg_span_len_size(n)  ((n) < 0x80 ? 1 : 2)

static inline u_char *
tg_span_len(u_char *p, size_t n)
{
    if (n < 0x80) {
        *p++ = (u_char) n;
    } else {
        *p++ = (u_char) (n | 0x80);
        *p++ = (u_char) (n >> 7);
    }
    return p;
}


/*
 * Reserves an attribute whose AnyValue holds any bytes (any is below
 * 2^14) and writes what comes before them: the field's key and length, the
 * KeyValue's key, the AnyValue's key and length. The key is repaired to
 * valid UTF-8 when check is set. Returns where the AnyValue's bytes go,
 * NULL when dropped.
 */
static inline u_char *
tg_span_attr_open(tg_span_t *s, const char *key, size_t klen, int check,
    size_t any)
{
    u_char  *p;
    size_t   kfix, kv, total;

    if (klen > 255
        || s->nattrs >= (s->attr_count_limit ? s->attr_count_limit
                                             : TG_SPAN_DEFAULT_COUNT_LIMIT))
    {
        goto dropped;
    }
    kfix = check ? tg_utf8_fixed_len((const u_char *) key, klen) : klen;
    kv = (kfix ? 1 + tg_span_len_size(kfix) + kfix : 0) + 1
         + tg_span_len_size(any) + any;
    total = 1 + tg_span_len_size(kv) + kv;
    if (total > (size_t) (TG_SPAN_ATTR_BYTES - s->attr_len)) {
        goto dropped;
    }

    p = s->attrs + s->attr_len;
    s->attr_len += (uint16_t) total;
    s->nattrs++;
    *p++ = TG_SPAN_PB_ATTRIBUTE;
    p = tg_span_len(p, kv);
    if (kfix) {
        *p++ = TG_SPAN_PB_KEY;
        p = tg_span_len(p, kfix);
        if (kfix == klen) {
            memcpy(p, key, klen);
        } else {
            tg_utf8_sanitize(p, (const u_char *) key, klen);
        }
        p += kfix;
    }
    *p++ = TG_SPAN_PB_VALUE;
    return tg_span_len(p, any);

dropped:
    if (s->dropped_attrs < UINT16_MAX) {
        s->dropped_attrs++;
    }
    return NULL;
}


int
tg_span_add_string(tg_span_t *s, const char *key, size_t klen, int check,
    const u_char *v, size_t n)
{
    u_char  *p;
    size_t   fix;

    if (s->attr_value_limit && n > s->attr_value_limit) {
        n = s->attr_value_limit;
    }
    if (n > (size_t) (TG_SPAN_ATTR_BYTES - s->attr_len)) {
        /* cannot fit: not measured */
        if (s->dropped_attrs < UINT16_MAX) {
            s->dropped_attrs++;
        }
        return TG_DECLINED;
    }
    fix = tg_utf8_fixed_len(v, n);
    p = tg_span_attr_open(s, key, klen, check,
                          1 + tg_span_len_size(fix) + fix);
    if (p == NULL) {
        return TG_DECLINED;
    }
    *p++ = TG_SPAN_PB_STRING;
    p = tg_span_len(p, fix);
    if (fix == n) {
        if (n) {
            memcpy(p, v, n);  /* v may be NULL when n is 0 */
        }
    } else {
        tg_utf8_sanitize(p, v, n);
    }
    return TG_OK;
}


int
tg_span_add_varint(tg_span_t *s, const char *key, size_t klen, int check,
    u_char type, uint64_t v)
{
    u_char  *p;

    p = tg_span_attr_open(s, key, klen, check, 1 + tg_varint_size(v));
    if (p == NULL) {
        return TG_DECLINED;
    }
    *p++ = type;
    tg_varint_put(p, v);
    return TG_OK;
}


int
tg_span_add_str(tg_span_t *s, const char *key, const u_char *v, size_t n)
{
    return tg_span_add_string(s, key, strlen(key), 1, v, n);
}


int
tg_span_add_int(tg_span_t *s, const char *key, int64_t v)
{
    return tg_span_add_varint(s, key, strlen(key), 1, TG_SPAN_PB_INT,
                              (uint64_t) v);
}


int
tg_span_add_bool(tg_span_t *s, const char *key, int v)
{
    return tg_span_add_varint(s, key, strlen(key), 1, TG_SPAN_PB_BOOL,
                              v ? 1 : 0);
}


static int
tg_span_get_varint(const u_char **p, const u_char *end, uint64_t *v)
{
    const u_char  *q;
    unsigned       shift;

    *v = 0;
    for (q = *p, shift = 0; q < end && shift < 64; q++, shift += 7) {
        *v |= (uint64_t) (*q & 0x7f) << shift;
        if (*q < 0x80) {
            *p = q + 1;
            return 1;
        }
    }
    return 0;
}


int
tg_span_attr_next(const tg_span_t *s, size_t *off, tg_span_attr_t *a)
{
    u_char         type;
    uint64_t       n;
    const u_char  *p, *end, *kv_end;

    p = s->attrs + *off;
    end = s->attrs + s->attr_len;
    if (p >= end || *p++ != TG_SPAN_PB_ATTRIBUTE
        || !tg_span_get_varint(&p, end, &n) || n > (size_t) (end - p))
    {
        return 0;
    }
    kv_end = p + n;

    a->key.len = 0;
    a->key.data = (u_char *) "";
    if (p < kv_end && *p == TG_SPAN_PB_KEY) {
        p++;
        if (!tg_span_get_varint(&p, kv_end, &n) || n > (size_t) (kv_end - p)) {
            return 0;
        }
        a->key.len = (size_t) n;
        a->key.data = (u_char *) p;
        p += n;
    }
    if (p >= kv_end || *p++ != TG_SPAN_PB_VALUE
        || !tg_span_get_varint(&p, kv_end, &n) || n != (size_t) (kv_end - p)
        || p >= kv_end)
    {
        return 0;
    }

    a->str.len = 0;
    a->str.data = NULL;
    a->num = 0;
    type = *p++;
    switch (type) {
    case TG_SPAN_PB_STRING:
        if (!tg_span_get_varint(&p, kv_end, &n) || n != (size_t) (kv_end - p)) {
            return 0;
        }
        a->type = TG_SPAN_ATTR_STRING;
        a->str.len = (size_t) n;
        a->str.data = (u_char *) p;
        break;
    case TG_SPAN_PB_INT:
    case TG_SPAN_PB_BOOL:
        if (!tg_span_get_varint(&p, kv_end, &n) || p != kv_end) {
            return 0;
        }
        a->type = type == TG_SPAN_PB_INT ? TG_SPAN_ATTR_INT
                                         : TG_SPAN_ATTR_BOOL;
        a->num = (int64_t) n;
        break;
    default:
        return 0;
    }
    *off = (size_t) (kv_end - s->attrs);
    return 1;
}


int
tg_span_attr_find(const tg_span_t *s, const char *key, tg_span_attr_t *a)
{
    size_t  off, klen;

    off = 0;
    klen = strlen(key);
    while (tg_span_attr_next(s, &off, a)) {
        if (a->key.len == klen && memcmp(a->key.data, key, klen) == 0) {
            return 1;
        }
    }
    return 0;
}
