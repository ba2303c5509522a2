#include <tg_config.h>
#include <tg_core.h>
#include <tg_otlp_encode.h>

#include <zlib.h>
#include <opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h>


typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest
    tg_otlp_pb_request_t;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse
    tg_otlp_pb_response_t;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans   tg_otlp_pb_rspans_t;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans      tg_otlp_pb_sspans_t;
typedef Opentelemetry__Proto__Trace__V1__Span            tg_otlp_pb_span_t;
typedef Opentelemetry__Proto__Trace__V1__Span__Link      tg_otlp_pb_link_t;
typedef Opentelemetry__Proto__Trace__V1__Status          tg_otlp_pb_status_t;
typedef Opentelemetry__Proto__Resource__V1__Resource     tg_otlp_pb_resource_t;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope
    tg_otlp_pb_scope_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue       tg_otlp_pb_kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue       tg_otlp_pb_any_t;

/* the generated names are longer than a line: shorter spellings */
#define tg_otlp_pb_cat(a, b)  a ## b
#define tg_otlp_pb_collector(f)                                               \
    tg_otlp_pb_cat(opentelemetry__proto__collector__trace__v1__, f)
#define tg_otlp_pb_req(f)                                                     \
    tg_otlp_pb_collector(export_trace_service_request__##f)
#define tg_otlp_pb_resp(f)                                                    \
    tg_otlp_pb_collector(export_trace_service_response__##f)
#define tg_otlp_pb_trace(f)                                                   \
    tg_otlp_pb_cat(opentelemetry__proto__trace__v1__, f)
#define tg_otlp_pb_common(f)                                                  \
    tg_otlp_pb_cat(opentelemetry__proto__common__v1__, f)
#define tg_otlp_pb_resource(f)                                                \
    tg_otlp_pb_cat(opentelemetry__proto__resource__v1__, f)

#define TG_OTLP_SCOPE_NAME      "tracegate"

/* Span.flags bits beyond the W3C trace flags (trace.proto SpanFlags) */
#define TG_OTLP_FLAGS_HAS_IS_REMOTE  0x100
#define TG_OTLP_FLAGS_IS_REMOTE      0x200

static size_t tg_otlp_utf8_seq(const u_char *p, size_t left);
static char *tg_otlp_pstr(tg_pool_t *pool, const u_char *s, size_t n);
static int tg_otlp_pb_span(tg_pool_t *pool, const tg_span_t *s,
    tg_otlp_pb_span_t *ps);
static int tg_otlp_pb_attrs(tg_pool_t *pool, const tg_span_t *s,
    tg_otlp_pb_span_t *ps);
static uint32_t tg_otlp_span_flags(const tg_span_t *s);
static int tg_otlp_id_zero(const u_char *id, size_t n);
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


/* Length of the well-formed UTF-8 sequence at p (RFC 3629 table), or 0. */
static size_t
tg_otlp_utf8_seq(const u_char *p, size_t left)
{
    u_char  c, lo, hi;
    size_t  n, i;

    c = p[0];
    if (c >= 0x01 && c < 0x80) {
        return 1;
    }
    lo = 0x80;
    hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = (c == 0xe0) ? 0xa0 : 0x80;
        hi = (c == 0xed) ? 0x9f : 0xbf;   /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = (c == 0xf0) ? 0x90 : 0x80;
        hi = (c == 0xf4) ? 0x8f : 0xbf;   /* <= U+10FFFF */
    } else {
        return 0;
    }
    if (left < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (i = 2; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    return n;
}


int
tg_otlp_utf8_valid(const u_char *src, size_t n)
{
    size_t  i, k;

    for (i = 0; i < n; i += k) {
        if (src[i] >= 0x01 && src[i] < 0x80) {
            k = 1;
            continue;
        }
        k = tg_otlp_utf8_seq(src + i, n - i);
        if (k == 0) {
            return 0;
        }
    }
    return 1;
}


size_t
tg_otlp_utf8_sanitize(u_char *dst, const u_char *src, size_t n)
{
    size_t   i, k;
    u_char  *p;

    p = dst;
    for (i = 0; i < n; i += k) {
        k = tg_otlp_utf8_seq(src + i, n - i);
        if (k == 0) {
            *p++ = 0xef;
            *p++ = 0xbf;
            *p++ = 0xbd;
            k = 1;
            continue;
        }
        memcpy(p, src + i, k);
        p += k;
    }
    return (size_t) (p - dst);
}


/* A NUL-terminated, valid UTF-8 pool copy, as protobuf-c strings need. */
static char *
tg_otlp_pstr(tg_pool_t *pool, const u_char *s, size_t n)
{
    u_char  *p;
    size_t   len;

    if (tg_otlp_utf8_valid(s, n)) {
        p = tg_pnalloc(pool, n + 1);
        if (p == NULL) {
            return NULL;
        }
        memcpy(p, s, n);
        p[n] = '\0';
        return (char *) p;
    }
    p = tg_pnalloc(pool, 3 * n + 1);
    if (p == NULL) {
        return NULL;
    }
    len = tg_otlp_utf8_sanitize(p, s, n);
    p[len] = '\0';
    return (char *) p;
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


int
tg_otlp_encode_protobuf(const tg_otlp_resource_t *res,
    const tg_span_t *spans, size_t n, tg_otlp_buf_t *out)
{
    size_t                 i, size;
    tg_pool_t             *pool;
    tg_otlp_pb_kv_t       *kv, **kvp;
    tg_otlp_pb_any_t      *av;
    tg_otlp_pb_span_t     *ps, **psp;
    tg_otlp_pb_scope_t     scope;
    tg_otlp_pb_rspans_t    rs;
    tg_otlp_pb_sspans_t    ss;
    tg_otlp_pb_request_t   req;
    tg_otlp_pb_resource_t  resource;
    tg_otlp_pb_rspans_t   *rsp[1];
    tg_otlp_pb_sspans_t   *ssp[1];

    static const tg_otlp_pb_kv_t    kv_init =
        OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    static const tg_otlp_pb_any_t   any_init =
        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    static const tg_otlp_pb_span_t  span_init =
        OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;

    tg_otlp_pb_common(instrumentation_scope__init)(&scope);
    tg_otlp_pb_trace(resource_spans__init)(&rs);
    tg_otlp_pb_trace(scope_spans__init)(&ss);
    tg_otlp_pb_req(init)(&req);
    tg_otlp_pb_resource(resource__init)(&resource);

    pool = tg_pool_create(64 * 1024);
    if (pool == NULL) {
        return TG_ERROR;
    }

    kv = tg_palloc(pool, (res->nattrs + 1) * sizeof(tg_otlp_pb_kv_t));
    av = tg_palloc(pool, (res->nattrs + 1) * sizeof(tg_otlp_pb_any_t));
    kvp = tg_palloc(pool, (res->nattrs + 1) * sizeof(tg_otlp_pb_kv_t *));
    ps = tg_palloc(pool, (n + 1) * sizeof(tg_otlp_pb_span_t));
    psp = tg_palloc(pool, (n + 1) * sizeof(tg_otlp_pb_span_t *));
    if (kv == NULL || av == NULL || kvp == NULL || ps == NULL || psp == NULL) {
        goto failed;
    }

    /* resource strings were made valid UTF-8 when the resource was built */
    for (i = 0; i < res->nattrs; i++) {
        kv[i] = kv_init;
        av[i] = any_init;
        av[i].value_case =
            OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        av[i].string_value = res->attrs[i].value;
        kv[i].key = res->attrs[i].key;
        kv[i].value = &av[i];
        kvp[i] = &kv[i];
    }
    resource.n_attributes = res->nattrs;
    resource.attributes = kvp;

    scope.name = TG_OTLP_SCOPE_NAME;
    scope.version = TG_VERSION;

    for (i = 0; i < n; i++) {
        ps[i] = span_init;
        if (tg_otlp_pb_span(pool, &spans[i], &ps[i]) != TG_OK) {
            goto failed;
        }
        psp[i] = &ps[i];
    }

    ss.scope = &scope;
    ss.n_spans = n;
    ss.spans = psp;
    ssp[0] = &ss;
    rs.resource = &resource;
    rs.n_scope_spans = 1;
    rs.scope_spans = ssp;
    rsp[0] = &rs;
    req.n_resource_spans = 1;
    req.resource_spans = rsp;

    size = tg_otlp_pb_req(get_packed_size)(&req);
    out->len = 0;
    if (tg_otlp_buf_reserve(out, size) != TG_OK) {
        goto failed;
    }
    out->len = tg_otlp_pb_req(pack)(&req, out->data);

    tg_pool_destroy(pool);
    return TG_OK;

failed:
    tg_pool_destroy(pool);
    return TG_ERROR;
}


static int
tg_otlp_pb_span(tg_pool_t *pool, const tg_span_t *s, tg_otlp_pb_span_t *ps)
{
    size_t                name_len;
    tg_otlp_pb_link_t    *link, **linkp;
    tg_otlp_pb_status_t  *st;

    static const tg_otlp_pb_link_t    link_init =
        OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
    static const tg_otlp_pb_status_t  status_init =
        OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;

    /* ids point into the caller's span array, alive until pack returns */
    ps->trace_id.len = sizeof(s->trace_id);
    ps->trace_id.data = (uint8_t *) s->trace_id;
    ps->span_id.len = sizeof(s->span_id);
    ps->span_id.data = (uint8_t *) s->span_id;
    if (!tg_otlp_id_zero(s->parent_id, sizeof(s->parent_id))) {
        ps->parent_span_id.len = sizeof(s->parent_id);
        ps->parent_span_id.data = (uint8_t *) s->parent_id;
    }
    ps->flags = tg_otlp_span_flags(s);

    name_len = strnlen(s->name, TG_SPAN_NAME_MAX);
    ps->name = tg_otlp_pstr(pool, (const u_char *) s->name, name_len);
    if (ps->name == NULL) {
        return TG_ERROR;
    }
    ps->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind) s->kind;
    ps->start_time_unix_nano = s->start_ns;
    ps->end_time_unix_nano = s->end_ns;
    ps->dropped_attributes_count = s->dropped_attrs;

    if (tg_otlp_pb_attrs(pool, s, ps) != TG_OK) {
        return TG_ERROR;
    }

    if (s->has_link) {
        link = tg_palloc(pool, sizeof(tg_otlp_pb_link_t));
        linkp = tg_palloc(pool, sizeof(tg_otlp_pb_link_t *));
        if (link == NULL || linkp == NULL) {
            return TG_ERROR;
        }
        *link = link_init;
        link->trace_id.len = sizeof(s->link_trace_id);
        link->trace_id.data = (uint8_t *) s->link_trace_id;
        link->span_id.len = sizeof(s->link_span_id);
        link->span_id.data = (uint8_t *) s->link_span_id;
        link->flags = TG_OTLP_FLAGS_HAS_IS_REMOTE | TG_OTLP_FLAGS_IS_REMOTE;
        *linkp = link;
        ps->n_links = 1;
        ps->links = linkp;
    }

    /* UNSET is the meaning of an absent status: save the bytes */
    if (s->status != TG_SPAN_STATUS_UNSET) {
        st = tg_palloc(pool, sizeof(tg_otlp_pb_status_t));
        if (st == NULL) {
            return TG_ERROR;
        }
        *st = status_init;
        st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)
                   s->status;
        ps->status = st;
    }
    return TG_OK;
}


static int
tg_otlp_pb_attrs(tg_pool_t *pool, const tg_span_t *s, tg_otlp_pb_span_t *ps)
{
    size_t             off, i, max;
    tg_span_attr_t     a;
    tg_otlp_pb_kv_t   *kv, **kvp;
    tg_otlp_pb_any_t  *av;

    static const tg_otlp_pb_kv_t   kv_init =
        OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    static const tg_otlp_pb_any_t  any_init =
        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;

    max = s->nattrs;
    if (max == 0) {
        return TG_OK;
    }
    kv = tg_palloc(pool, max * sizeof(tg_otlp_pb_kv_t));
    av = tg_palloc(pool, max * sizeof(tg_otlp_pb_any_t));
    kvp = tg_palloc(pool, max * sizeof(tg_otlp_pb_kv_t *));
    if (kv == NULL || av == NULL || kvp == NULL) {
        return TG_ERROR;
    }

    off = 0;
    for (i = 0; i < max && tg_span_attr_next(s, &off, &a); i++) {
        kv[i] = kv_init;
        av[i] = any_init;
        kv[i].key = tg_otlp_pstr(pool, a.key.data, a.key.len);
        if (kv[i].key == NULL) {
            return TG_ERROR;
        }
        switch (a.type) {
        case TG_SPAN_ATTR_STRING:
            av[i].value_case =
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            av[i].string_value = tg_otlp_pstr(pool, a.str.data, a.str.len);
            if (av[i].string_value == NULL) {
                return TG_ERROR;
            }
            break;
        case TG_SPAN_ATTR_INT:
            av[i].value_case =
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
            av[i].int_value = a.num;
            break;
        default:
            av[i].value_case =
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
            av[i].bool_value = a.num ? 1 : 0;
            break;
        }
        kv[i].value = &av[i];
        kvp[i] = &kv[i];
    }
    ps->n_attributes = i;
    ps->attributes = kvp;
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


/* A JSON string (RFC 8259 section 7) of valid UTF-8, quotes included. */
static int
tg_otlp_json_str(tg_otlp_buf_t *b, const u_char *s, size_t n)
{
    size_t   i, k;
    u_char   c, *p;

    static const char  hex[] = "0123456789abcdef";

    /* worst case: every byte a \u00XX escape (6) or U+FFFD (3) */
    if (tg_otlp_buf_reserve(b, 6 * n + 2) != TG_OK) {
        return TG_ERROR;
    }
    p = b->data + b->len;
    *p++ = '"';
    for (i = 0; i < n; i += k) {
        c = s[i];
        k = 1;
        if (c >= 0x80 || c == 0) {
            k = tg_otlp_utf8_seq(s + i, n - i);
            if (k == 0) {
                *p++ = 0xef;
                *p++ = 0xbf;
                *p++ = 0xbd;
                k = 1;
            } else {
                memcpy(p, s + i, k);
                p += k;
            }
            continue;
        }
        switch (c) {
        case '"':
        case '\\':
            *p++ = '\\';
            *p++ = c;
            break;
        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;
        case '\r':
            *p++ = '\\';
            *p++ = 'r';
            break;
        case '\t':
            *p++ = '\\';
            *p++ = 't';
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                *p++ = '\\';
                *p++ = 'u';
                *p++ = '0';
                *p++ = '0';
                *p++ = hex[c >> 4];
                *p++ = hex[c & 0xf];
            } else {
                *p++ = c;
            }
            break;
        }
    }
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
tg_otlp_encode_json(const tg_otlp_resource_t *res, const tg_span_t *spans,
    size_t n, tg_otlp_buf_t *out)
{
    size_t  i, start;

    start = out->len;

    if (tg_otlp_json_lit(out, "{\"resourceSpans\":[{\"resource\":"
                              "{\"attributes\":[") != TG_OK)
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
    if (tg_otlp_json_lit(out, "]},\"scopeSpans\":[{\"scope\":{\"name\":\""
                              TG_OTLP_SCOPE_NAME "\",\"version\":\""
                              TG_VERSION "\"},\"spans\":[") != TG_OK)
    {
        goto failed;
    }
    for (i = 0; i < n; i++) {
        if ((i && tg_otlp_json_lit(out, ",") != TG_OK)
            || tg_otlp_json_span(out, &spans[i]) != TG_OK)
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
    size_t          off;
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
    if (tg_otlp_json_fmt(b, ",\"flags\":%u,\"name\":",
                         (unsigned) tg_otlp_span_flags(s)) != TG_OK
        || tg_otlp_json_str(b, (const u_char *) s->name,
                            strnlen(s->name, TG_SPAN_NAME_MAX)) != TG_OK
        || tg_otlp_json_fmt(b, ",\"kind\":%u", (unsigned) s->kind) != TG_OK
        || tg_otlp_json_fmt(b, ",\"startTimeUnixNano\":\"%" PRIu64 "\"",
                            s->start_ns) != TG_OK
        || tg_otlp_json_fmt(b, ",\"endTimeUnixNano\":\"%" PRIu64 "\"",
                            s->end_ns) != TG_OK
        || tg_otlp_json_lit(b, ",\"attributes\":[") != TG_OK)
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
    if (tg_otlp_json_lit(b, "]") != TG_OK) {
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
