#include <tg_config.h>
#include <tg_core.h>
#include <tg_collector_limits.h>
#include <tg_collector_json.h>


/*
 * Where a value sits in an OTLP/JSON request, as far as the limits care:
 * containers that hold counted objects, and the objects that lead to them.
 * Everything else is TG_JSON_K_OTHER and only counts against the budget.
 */
#define TG_JSON_K_OTHER       0
#define TG_JSON_K_ROOT        1
#define TG_JSON_K_RS_LIST     2
#define TG_JSON_K_RS          3
#define TG_JSON_K_RESOURCE    4
#define TG_JSON_K_SS_LIST     5
#define TG_JSON_K_SS          6
#define TG_JSON_K_SCOPE       7
#define TG_JSON_K_SPAN_LIST   8
#define TG_JSON_K_SPAN        9
#define TG_JSON_K_EVENT_LIST  10
#define TG_JSON_K_EVENT       11
#define TG_JSON_K_LINK_LIST   12
#define TG_JSON_K_LINK        13
#define TG_JSON_K_ATTR_LIST   14
#define TG_JSON_K_KV          15
#define TG_JSON_K_ANY         16
#define TG_JSON_K_ARRAY       17
#define TG_JSON_K_VALUE_LIST  18
#define TG_JSON_K_KVLIST      19

/* a member of an object of kind parent, named key (any case) */
typedef struct {
    uint8_t      parent;
    uint8_t      kind;
    const char  *key;
} tg_json_member_t;

/* the elements of an array of kind list: their kind and count */
typedef struct {
    uint8_t  list;
    uint8_t  kind;
    int      count;
} tg_json_element_t;

/*
 * The names the decoder reads (tg_json_get: lowerCamelCase, snake_case and
 * the older instrumentationLibrary* ones), so that nothing it reads goes
 * uncounted; a name it does not read may be counted here, never the other
 * way round.
 */
static const tg_json_member_t  tg_json_members[] = {
    { TG_JSON_K_ROOT, TG_JSON_K_RS_LIST, "resourceSpans" },
    { TG_JSON_K_ROOT, TG_JSON_K_RS_LIST, "resource_spans" },
    { TG_JSON_K_RS, TG_JSON_K_RESOURCE, "resource" },
    { TG_JSON_K_RS, TG_JSON_K_SS_LIST, "scopeSpans" },
    { TG_JSON_K_RS, TG_JSON_K_SS_LIST, "scope_spans" },
    { TG_JSON_K_RS, TG_JSON_K_SS_LIST, "instrumentationLibrarySpans" },
    { TG_JSON_K_RS, TG_JSON_K_SS_LIST, "instrumentation_library_spans" },
    { TG_JSON_K_RESOURCE, TG_JSON_K_ATTR_LIST, "attributes" },
    { TG_JSON_K_SS, TG_JSON_K_SCOPE, "scope" },
    { TG_JSON_K_SS, TG_JSON_K_SCOPE, "instrumentationLibrary" },
    { TG_JSON_K_SS, TG_JSON_K_SCOPE, "instrumentation_library" },
    { TG_JSON_K_SS, TG_JSON_K_SPAN_LIST, "spans" },
    { TG_JSON_K_SCOPE, TG_JSON_K_ATTR_LIST, "attributes" },
    { TG_JSON_K_SPAN, TG_JSON_K_ATTR_LIST, "attributes" },
    { TG_JSON_K_SPAN, TG_JSON_K_EVENT_LIST, "events" },
    { TG_JSON_K_SPAN, TG_JSON_K_LINK_LIST, "links" },
    { TG_JSON_K_EVENT, TG_JSON_K_ATTR_LIST, "attributes" },
    { TG_JSON_K_LINK, TG_JSON_K_ATTR_LIST, "attributes" },
    { TG_JSON_K_KV, TG_JSON_K_ANY, "value" },
    { TG_JSON_K_ANY, TG_JSON_K_ARRAY, "arrayValue" },
    { TG_JSON_K_ANY, TG_JSON_K_ARRAY, "array_value" },
    { TG_JSON_K_ANY, TG_JSON_K_KVLIST, "kvlistValue" },
    { TG_JSON_K_ANY, TG_JSON_K_KVLIST, "kvlist_value" },
    { TG_JSON_K_ARRAY, TG_JSON_K_VALUE_LIST, "values" },
    { TG_JSON_K_KVLIST, TG_JSON_K_ATTR_LIST, "values" },
};

static const tg_json_element_t  tg_json_elements[] = {
    { TG_JSON_K_RS_LIST, TG_JSON_K_RS, TG_COLLECTOR_RESOURCE_SPANS },
    { TG_JSON_K_SS_LIST, TG_JSON_K_SS, TG_COLLECTOR_SCOPE_SPANS },
    { TG_JSON_K_SPAN_LIST, TG_JSON_K_SPAN, TG_COLLECTOR_SPANS },
    { TG_JSON_K_EVENT_LIST, TG_JSON_K_EVENT, TG_COLLECTOR_EVENTS },
    { TG_JSON_K_LINK_LIST, TG_JSON_K_LINK, TG_COLLECTOR_LINKS },
    { TG_JSON_K_ATTR_LIST, TG_JSON_K_KV, TG_COLLECTOR_ATTRIBUTES },
    { TG_JSON_K_VALUE_LIST, TG_JSON_K_ANY, TG_COLLECTOR_ATTRIBUTES },
};

typedef struct {
    tg_pool_t              *pool;
    const u_char           *p;
    const u_char           *end;
    tg_collector_limits_t  *lim;
    char                   *err;
    size_t                  errlen;
} tg_json_ctx_t;

static tg_json_t *tg_json_value(tg_json_ctx_t *j, int depth, int kind);
static int tg_json_member_kind(int parent, const tg_str_t *key);
static int tg_json_element(tg_json_ctx_t *j, int list, int *kind);
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
tg_json_parse(tg_pool_t *pool, const u_char *p, size_t len,
    tg_collector_limits_t *lim, char *err, size_t errlen)
{
    tg_json_t      *root;
    tg_json_ctx_t   j;

    j.pool = pool;
    j.p = p;
    j.end = p + len;
    j.lim = lim;
    j.err = err;
    j.errlen = errlen;
    err[0] = '\0';
    if (lim != NULL) {
        tg_collector_limits_reset(lim);
    }

    root = tg_json_value(&j, 0, TG_JSON_K_ROOT);
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


static int
tg_json_member_kind(int parent, const tg_str_t *key)
{
    size_t  i;

    if (parent == TG_JSON_K_OTHER) {
        return TG_JSON_K_OTHER;
    }
    for (i = 0; i < tg_nelts(tg_json_members); i++) {
        if (tg_json_members[i].parent == parent
            && tg_str_caseeq_c(key, tg_json_members[i].key))
        {
            return tg_json_members[i].kind;
        }
    }
    return TG_JSON_K_OTHER;
}


/* Counts an element of an array of kind list; TG_OK with its kind. */
static int
tg_json_element(tg_json_ctx_t *j, int list, int *kind)
{
    size_t  i;

    *kind = TG_JSON_K_OTHER;
    for (i = 0; i < tg_nelts(tg_json_elements); i++) {
        if (tg_json_elements[i].list == list) {
            *kind = tg_json_elements[i].kind;
            return tg_collector_count(j->lim, tg_json_elements[i].count);
        }
    }
    return TG_OK;
}


/*
 * A value of the given kind. With limits, every value counts against the
 * field budget, and the elements of the arrays that hold counted objects
 * count before they are read: the parse stops at the first one over.
 */
static tg_json_t *
tg_json_value(tg_json_ctx_t *j, int depth, int kind)
{
    int         ekind;
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
    if (j->lim != NULL && tg_collector_count_field(j->lim) != TG_OK) {
        tg_json_fail(j, "over a limit");
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

            ekind = TG_JSON_K_OTHER;
            if (j->lim != NULL && v->type == TG_JSON_ARRAY
                && tg_json_element(j, kind, &ekind) != TG_OK)
            {
                tg_json_fail(j, "over a limit");
                return NULL;
            }
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
                ekind = tg_json_member_kind(kind, &key);
            }
            item = tg_json_value(j, depth + 1, ekind);
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
