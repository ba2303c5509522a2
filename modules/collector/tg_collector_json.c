#include <tg_config.h>
#include <tg_core.h>
#include <tg_collector_json.h>


typedef struct {
    tg_pool_t     *pool;
    const u_char  *p;
    const u_char  *end;
    char          *err;
    size_t         errlen;
} tg_json_ctx_t;

static tg_json_t *tg_json_value(tg_json_ctx_t *j, int depth);
static int tg_json_string(tg_json_ctx_t *j, tg_str_t *out);
static int tg_json_number(tg_json_ctx_t *j, tg_json_t *v);
static void tg_json_ws(tg_json_ctx_t *j);
static int tg_json_fail(tg_json_ctx_t *j, const char *what);


static int
tg_json_fail(tg_json_ctx_t *j, const char *what)
{
    if (j->err[0] == '\0') {
        snprintf(j->err, j->errlen, "invalid JSON: %s", what);
    }
    return TG_ERROR;
}


static void
tg_json_ws(tg_json_ctx_t *j)
{
    while (j->p < j->end
           && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    {
        j->p++;
    }
}


tg_json_t *
tg_json_parse(tg_pool_t *pool, const u_char *p, size_t len, char *err,
    size_t errlen)
{
    tg_json_t      *root;
    tg_json_ctx_t   j;

    j.pool = pool;
    j.p = p;
    j.end = p + len;
    j.err = err;
    j.errlen = errlen;
    err[0] = '\0';

    root = tg_json_value(&j, 0);
    if (root == NULL) {
        return NULL;
    }
    tg_json_ws(&j);
    if (j.p != j.end) {
        tg_json_fail(&j, "data after the value");
        return NULL;
    }
    return root;
}


static int
tg_json_lit(tg_json_ctx_t *j, const char *lit)
{
    size_t  n;

    n = strlen(lit);
    if ((size_t) (j->end - j->p) < n || memcmp(j->p, lit, n) != 0) {
        return tg_json_fail(j, "unknown literal");
    }
    j->p += n;
    return TG_OK;
}


static tg_json_t *
tg_json_value(tg_json_ctx_t *j, int depth)
{
    u_char      c, close;
    tg_json_t  *v, *item, **tail;

    if (depth > TG_JSON_DEPTH_MAX) {
        tg_json_fail(j, "nested too deeply");
        return NULL;
    }
    tg_json_ws(j);
    if (j->p == j->end) {
        tg_json_fail(j, "unexpected end");
        return NULL;
    }
    v = tg_pcalloc(j->pool, sizeof(tg_json_t));
    if (v == NULL) {
        tg_json_fail(j, "out of memory");
        return NULL;
    }
    c = *j->p;

    if (c == '{' || c == '[') {
        v->type = (c == '{') ? TG_JSON_OBJECT : TG_JSON_ARRAY;
        close = (c == '{') ? '}' : ']';
        j->p++;
        tail = &v->child;
        tg_json_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return v;
        }
        for ( ;; ) {
            tg_str_t  key = tg_null_string;

            if (v->type == TG_JSON_OBJECT) {
                tg_json_ws(j);
                if (tg_json_string(j, &key) != TG_OK) {
                    return NULL;
                }
                tg_json_ws(j);
                if (j->p == j->end || *j->p != ':') {
                    tg_json_fail(j, "':' expected");
                    return NULL;
                }
                j->p++;
            }
            item = tg_json_value(j, depth + 1);
            if (item == NULL) {
                return NULL;
            }
            item->key = key;
            *tail = item;
            tail = &item->next;
            tg_json_ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == close) {
                j->p++;
                return v;
            }
            tg_json_fail(j, "',' or a closing bracket expected");
            return NULL;
        }
    }

    if (c == '"') {
        v->type = TG_JSON_STRING;
        return tg_json_string(j, &v->str) == TG_OK ? v : NULL;
    }
    if (c == 't' || c == 'f') {
        v->type = TG_JSON_BOOL;
        v->boolean = (c == 't');
        return tg_json_lit(j, c == 't' ? "true" : "false") == TG_OK ? v : NULL;
    }
    if (c == 'n') {
        v->type = TG_JSON_NULL;
        return tg_json_lit(j, "null") == TG_OK ? v : NULL;
    }
    v->type = TG_JSON_NUMBER;
    return tg_json_number(j, v) == TG_OK ? v : NULL;
}


static int
tg_json_hex4(const u_char *p, unsigned *out)
{
    int       i;
    unsigned  v, c;

    v = 0;
    for (i = 0; i < 4; i++) {
        c = p[i];
        if (c >= '0' && c <= '9') {
            c -= '0';
        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            c = (c | 0x20) - 'a' + 10;
        } else {
            return TG_ERROR;
        }
        v = v << 4 | c;
    }
    *out = v;
    return TG_OK;
}


/* The string at j->p (opening quote included), unescaped into the pool. */
static int
tg_json_string(tg_json_ctx_t *j, tg_str_t *out)
{
    u_char        *d;
    unsigned       cp, lo;
    const u_char  *s;

    if (j->p == j->end || *j->p != '"') {
        return tg_json_fail(j, "string expected");
    }
    s = ++j->p;
    while (j->p < j->end && *j->p != '"') {
        if (*j->p == '\\') {
            j->p++;
        }
        j->p++;
    }
    if (j->p >= j->end) {
        return tg_json_fail(j, "unterminated string");
    }
    /* unescaping never makes a string longer */
    out->data = tg_pnalloc(j->pool, (size_t) (j->p - s) + 1);
    if (out->data == NULL) {
        return tg_json_fail(j, "out of memory");
    }
    d = out->data;
    while (s < j->p) {
        if (*s < 0x20) {
            return tg_json_fail(j, "control character in a string");
        }
        if (*s != '\\') {
            *d++ = *s++;
            continue;
        }
        s++;
        switch (*s) {
        case '"': case '\\': case '/':
            *d++ = *s++;
            continue;
        case 'b': *d++ = '\b'; s++; continue;
        case 'f': *d++ = '\f'; s++; continue;
        case 'n': *d++ = '\n'; s++; continue;
        case 'r': *d++ = '\r'; s++; continue;
        case 't': *d++ = '\t'; s++; continue;
        case 'u':
            break;
        default:
            return tg_json_fail(j, "bad escape");
        }
        if (j->p - s < 5 || tg_json_hex4(s + 1, &cp) != TG_OK) {
            return tg_json_fail(j, "bad \\u escape");
        }
        s += 5;
        if (cp >= 0xd800 && cp <= 0xdbff && j->p - s >= 6 && s[0] == '\\'
            && s[1] == 'u' && tg_json_hex4(s + 2, &lo) == TG_OK
            && lo >= 0xdc00 && lo <= 0xdfff)
        {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            s += 6;
        } else if (cp >= 0xd800 && cp <= 0xdfff) {
            cp = 0xfffd; /* a lone surrogate */
        }
        if (cp < 0x80) {
            *d++ = (u_char) cp;
        } else if (cp < 0x800) {
            *d++ = (u_char) (0xc0 | cp >> 6);
            *d++ = (u_char) (0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            *d++ = (u_char) (0xe0 | cp >> 12);
            *d++ = (u_char) (0x80 | ((cp >> 6) & 0x3f));
            *d++ = (u_char) (0x80 | (cp & 0x3f));
        } else {
            *d++ = (u_char) (0xf0 | cp >> 18);
            *d++ = (u_char) (0x80 | ((cp >> 12) & 0x3f));
            *d++ = (u_char) (0x80 | ((cp >> 6) & 0x3f));
            *d++ = (u_char) (0x80 | (cp & 0x3f));
        }
    }
    out->len = (size_t) (d - out->data);
    *d = '\0'; /* keys are used as C strings too */
    j->p++;
    return TG_OK;
}


/* RFC 8259 section 6 number grammar; the text is kept. */
static int
tg_json_number(tg_json_ctx_t *j, tg_json_t *v)
{
    const u_char  *s;

    s = j->p;
    if (j->p < j->end && *j->p == '-') {
        j->p++;
    }
    if (j->p < j->end && *j->p == '0') {
        j->p++;
    } else if (j->p < j->end && *j->p >= '1' && *j->p <= '9') {
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            j->p++;
        }
    } else {
        return tg_json_fail(j, "value expected");
    }
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (j->p == j->end || *j->p < '0' || *j->p > '9') {
            return tg_json_fail(j, "digit expected");
        }
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            j->p++;
        }
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) {
            j->p++;
        }
        if (j->p == j->end || *j->p < '0' || *j->p > '9') {
            return tg_json_fail(j, "digit expected");
        }
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            j->p++;
        }
    }
    return tg_pstrcopy(j->pool, &v->str, s, (size_t) (j->p - s)) == TG_OK
           ? TG_OK : tg_json_fail(j, "out of memory");
}


tg_json_t *
tg_json_get(const tg_json_t *obj, const char *key, const char *alt)
{
    tg_json_t  *m;

    if (obj == NULL || obj->type != TG_JSON_OBJECT) {
        return NULL;
    }
    for (m = obj->child; m; m = m->next) {
        if (tg_str_caseeq_c(&m->key, key)
            || (alt && tg_str_caseeq_c(&m->key, alt)))
        {
            return m;
        }
    }
    return NULL;
}


int
tg_json_uint(const tg_json_t *v, uint64_t *out)
{
    size_t    i;
    uint64_t  n;

    if (v == NULL || (v->type != TG_JSON_NUMBER && v->type != TG_JSON_STRING)
        || v->str.len == 0 || v->str.len > 20)
    {
        return TG_ERROR;
    }
    n = 0;
    for (i = 0; i < v->str.len; i++) {
        if (v->str.data[i] < '0' || v->str.data[i] > '9') {
            return TG_ERROR;
        }
        if (n > (UINT64_MAX - 9) / 10) {
            return TG_ERROR;
        }
        n = n * 10 + (uint64_t) (v->str.data[i] - '0');
    }
    *out = n;
    return TG_OK;
}


int
tg_json_int(const tg_json_t *v, int64_t *out)
{
    int        neg;
    uint64_t   u;
    tg_json_t  t;

    if (v == NULL || v->str.len == 0) {
        return TG_ERROR;
    }
    t = *v;
    neg = t.str.data[0] == '-';
    if (neg) {
        t.str.data++;
        t.str.len--;
    }
    if (tg_json_uint(&t, &u) != TG_OK || u > (uint64_t) INT64_MAX) {
        return TG_ERROR;
    }
    *out = neg ? -(int64_t) u : (int64_t) u;
    return TG_OK;
}
