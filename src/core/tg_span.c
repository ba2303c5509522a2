#include <tg_config.h>
#include <tg_core.h>
#include <tg_span.h>


#define TG_SPAN_DEFAULT_COUNT_LIMIT 128

static u_char *tg_span_attr_reserve(tg_span_t *s, uint8_t type,
    const char *key, size_t vlen);


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


static u_char *
tg_span_attr_reserve(tg_span_t *s, uint8_t type, const char *key, size_t vlen)
{
    u_char  *p;
    size_t   klen, limit;

    klen = strlen(key);
    limit = s->attr_count_limit ? s->attr_count_limit
                                : TG_SPAN_DEFAULT_COUNT_LIMIT;
    if (klen > 255 || s->nattrs >= limit
        || (size_t) s->attr_len + 2 + klen + vlen > TG_SPAN_ATTR_BYTES)
    {
        s->dropped_attrs++;
        return NULL;
    }
    p = s->attrs + s->attr_len;
    *p++ = type;
    *p++ = (u_char) klen;
    memcpy(p, key, klen);
    p += klen;
    s->attr_len += (uint16_t) (2 + klen + vlen);
    s->nattrs++;
    return p;
}


int
tg_span_add_str(tg_span_t *s, const char *key, const u_char *v, size_t n)
{
    u_char  *p;

    if (s->attr_value_limit && n > s->attr_value_limit) {
        n = s->attr_value_limit;
    }
    n = tg_min(n, 0xffff);
    p = tg_span_attr_reserve(s, TG_SPAN_ATTR_STRING, key, 2 + n);
    if (p == NULL) {
        return TG_DECLINED;
    }
    p[0] = (u_char) (n & 0xff);
    p[1] = (u_char) (n >> 8);
    if (n) {
        memcpy(p + 2, v, n);
    }
    return TG_OK;
}


int
tg_span_add_int(tg_span_t *s, const char *key, int64_t v)
{
    u_char  *p;

    p = tg_span_attr_reserve(s, TG_SPAN_ATTR_INT, key, 8);
    if (p == NULL) {
        return TG_DECLINED;
    }
    memcpy(p, &v, 8);
    return TG_OK;
}


int
tg_span_add_bool(tg_span_t *s, const char *key, int v)
{
    u_char  *p;

    p = tg_span_attr_reserve(s, TG_SPAN_ATTR_BOOL, key, 1);
    if (p == NULL) {
        return TG_DECLINED;
    }
    *p = v ? 1 : 0;
    return TG_OK;
}


int
tg_span_attr_next(const tg_span_t *s, size_t *off, tg_span_attr_t *a)
{
    const u_char  *p, *end;
    size_t         n;

    if (*off >= s->attr_len) {
        return 0;
    }
    p = s->attrs + *off;
    end = s->attrs + s->attr_len;
    a->type = p[0];
    a->key.len = p[1];
    a->key.data = (u_char *) p + 2;
    p += 2 + a->key.len;
    a->str.len = 0;
    a->str.data = NULL;
    a->num = 0;
    switch (a->type) {
    case TG_SPAN_ATTR_STRING:
        n = (size_t) p[0] | (size_t) p[1] << 8;
        a->str.len = n;
        a->str.data = (u_char *) p + 2;
        p += 2 + n;
        break;
    case TG_SPAN_ATTR_INT:
        memcpy(&a->num, p, 8);
        p += 8;
        break;
    default:
        a->num = p[0];
        p += 1;
        break;
    }
    if (p > end) {
        return 0;
    }
    *off = (size_t) (p - s->attrs);
    return 1;
}


int
tg_span_attr_find(const tg_span_t *s, const char *key, tg_span_attr_t *a)
{
    size_t  off;

    off = 0;
    while (tg_span_attr_next(s, &off, a)) {
        if (a->key.len == strlen(key)
            && memcmp(a->key.data, key, a->key.len) == 0)
        {
            return 1;
        }
    }
    return 0;
}
