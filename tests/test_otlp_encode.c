#include <tg_config.h>
#include <tg_core.h>
#include <tg_otlp_encode.h>
#include <zlib.h>
#include <opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h>
#include <tap.h>

/*
 * Encoder: its bytes are compared with what protobuf-c packs for the same
 * message (an oracle built from the generated structs, below), for chosen
 * and for random spans; they are unpacked with the generated code and
 * every field we set is checked; the JSON form checked by content; gzip
 * round trip; partial_success parsing; UTF-8 repair.
 */

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest
    test_req_t;
typedef Opentelemetry__Proto__Trace__V1__Span      test_pspan_t;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse
    test_resp_t;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess
    test_partial_t;

#define test_cat(a, b)  a ## b
#define test_req(f)                                                            \
    test_cat(opentelemetry__proto__collector__trace__v1__,                     \
             export_trace_service_request__##f)
#define test_resp(f)                                                           \
    test_cat(opentelemetry__proto__collector__trace__v1__,                     \
             export_trace_service_response__##f)
#define test_partial(f)                                                        \
    test_cat(opentelemetry__proto__collector__trace__v1__,                     \
             export_trace_partial_success__##f)
typedef Opentelemetry__Proto__Common__V1__KeyValue test_kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue test_any_t;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope test_scope_t;
typedef Opentelemetry__Proto__Resource__V1__Resource test_resource_t;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans test_rspans_t;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans test_sspans_t;
typedef Opentelemetry__Proto__Trace__V1__Span__Link test_link_t;
typedef Opentelemetry__Proto__Trace__V1__Status test_status_t;

#define TEST_ANY_STRING                                                        \
    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
#define TEST_ANY_INT                                                           \
    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE
#define TEST_ANY_BOOL                                                          \
    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE

#define TEST_BATCH  1000

static const u_char  test_tid[16] = {
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
    0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36 };
static const u_char  test_sid[8] = {
    0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7 };
static const u_char  test_cid[8] = {
    0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8 };


static void
test_spans(tg_span_t *s)
{
    tg_span_init(&s[0]);
    memcpy(s[0].trace_id, test_tid, 16);
    memcpy(s[0].span_id, test_sid, 8);
    s[0].kind = TG_SPAN_KIND_SERVER;
    s[0].flags = 1;
    s[0].start_ns = 1700000000123456789ULL;
    s[0].end_ns = 1700000000223456789ULL;
    tg_span_set_name(&s[0], (u_char *) "GET /service-a", 14);
    tg_span_add_str(&s[0], "http.request.method", (u_char *) "GET", 3);
    tg_span_add_int(&s[0], "http.response.status_code", 200);
    tg_span_add_int(&s[0], "negative", -42);
    tg_span_add_bool(&s[0], "flag.true", 1);
    tg_span_add_bool(&s[0], "flag.false", 0);
    tg_span_add_str(&s[0], "quote", (u_char *) "a\"b\\c\nd\x01", 8);
    tg_span_add_str(&s[0], "bad.utf8", (u_char *) "x\xff" "y\xc3", 4);
    tg_span_add_str(&s[0], "utf8",
                    (u_char *) "caf\xc3\xa9 \xf0\x9f\x98\x80", 10);
    tg_span_add_str(&s[0], "empty", (u_char *) "", 0);
    s[0].has_link = 1;
    memset(s[0].link_trace_id, 0x11, 16);
    memset(s[0].link_span_id, 0x22, 8);

    tg_span_init(&s[1]);
    memcpy(s[1].trace_id, test_tid, 16);
    memcpy(s[1].span_id, test_cid, 8);
    memcpy(s[1].parent_id, test_sid, 8);
    s[1].kind = TG_SPAN_KIND_CLIENT;
    s[1].status = TG_SPAN_STATUS_ERROR;
    s[1].flags = 1;
    s[1].start_ns = 1700000000133456789ULL;
    s[1].end_ns = 1700000000213456789ULL;
    s[1].dropped_attrs = 3;
    tg_span_set_name(&s[1], (u_char *) "GET", 3);
    tg_span_add_int(&s[1], "http.request.resend_count", 1);
}


static test_kv_t *
test_attr(test_pspan_t *ps, const char *key)
{
    size_t  i;

    for (i = 0; i < ps->n_attributes; i++) {
        if (strcmp(ps->attributes[i]->key, key) == 0) {
            return ps->attributes[i];
        }
    }
    return NULL;
}


static int
test_has(const tg_otlp_buf_t *b, const char *needle)
{
    return memmem(b->data, b->len, needle, strlen(needle)) != NULL;
}


/*
 * Oracle: the ExportTraceServiceRequest built with the protobuf-c
 * generated structs, every field the encoder promises under the same
 * conditions (proto3: zero and empty fields absent, AnyValue a oneof),
 * strings as NUL-terminated copies repaired to valid UTF-8, then packed
 * by protobuf-c.
 */
static char *
test_oracle_str(tg_pool_t *pool, const u_char *s, size_t n)
{
    u_char  *p;
    size_t   len;

    p = tg_pnalloc(pool, 3 * n + 1);
    if (p == NULL) {
        return NULL;
    }
    if (tg_utf8_valid(s, n)) {
        memcpy(p, s, n);
        len = n;
    } else {
        len = tg_utf8_sanitize(p, s, n);
    }
    p[len] = '\0';
    return (char *) p;
}


static int
test_oracle_span(tg_pool_t *pool, const tg_span_t *s, test_pspan_t *ps)
{
    size_t          off, i;
    test_kv_t      *kv, **kvp;
    test_any_t     *av;
    test_link_t    *link, **linkp;
    test_status_t  *st;
    tg_span_attr_t  a;

    static const u_char  zero[8];

    ps->trace_id.len = 16;
    ps->trace_id.data = (uint8_t *) s->trace_id;
    ps->span_id.len = 8;
    ps->span_id.data = (uint8_t *) s->span_id;
    if (memcmp(s->parent_id, zero, 8) != 0) {
        ps->parent_span_id.len = 8;
        ps->parent_span_id.data = (uint8_t *) s->parent_id;
    }
    ps->flags = s->flags | 0x100;
    if (s->kind == TG_SPAN_KIND_SERVER && memcmp(s->parent_id, zero, 8)) {
        ps->flags |= 0x200;
    }
    ps->name = test_oracle_str(pool, (const u_char *) s->name,
                               strnlen(s->name, TG_SPAN_NAME_MAX));
    ps->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind) s->kind;
    ps->start_time_unix_nano = s->start_ns;
    ps->end_time_unix_nano = s->end_ns;
    ps->dropped_attributes_count = s->dropped_attrs;

    kv = tg_palloc(pool, (s->nattrs + 1) * sizeof(test_kv_t));
    av = tg_palloc(pool, (s->nattrs + 1) * sizeof(test_any_t));
    kvp = tg_palloc(pool, (s->nattrs + 1) * sizeof(test_kv_t *));
    if (ps->name == NULL || kv == NULL || av == NULL || kvp == NULL) {
        return TG_ERROR;
    }
    off = 0;
    for (i = 0; i < s->nattrs && tg_span_attr_next(s, &off, &a); i++) {
        opentelemetry__proto__common__v1__key_value__init(&kv[i]);
        opentelemetry__proto__common__v1__any_value__init(&av[i]);
        kv[i].key = test_oracle_str(pool, a.key.data, a.key.len);
        if (kv[i].key == NULL) {
            return TG_ERROR;
        }
        switch (a.type) {
        case TG_SPAN_ATTR_STRING:
            av[i].value_case = TEST_ANY_STRING;
            av[i].string_value = test_oracle_str(pool, a.str.data, a.str.len);
            if (av[i].string_value == NULL) {
                return TG_ERROR;
            }
            break;
        case TG_SPAN_ATTR_INT:
            av[i].value_case = TEST_ANY_INT;
            av[i].int_value = a.num;
            break;
        default:
            av[i].value_case = TEST_ANY_BOOL;
            av[i].bool_value = a.num ? 1 : 0;
            break;
        }
        kv[i].value = &av[i];
        kvp[i] = &kv[i];
    }
    ps->n_attributes = i;
    ps->attributes = kvp;

    if (s->has_link) {
        link = tg_palloc(pool, sizeof(test_link_t));
        linkp = tg_palloc(pool, sizeof(test_link_t *));
        if (link == NULL || linkp == NULL) {
            return TG_ERROR;
        }
        opentelemetry__proto__trace__v1__span__link__init(link);
        link->trace_id.len = 16;
        link->trace_id.data = (uint8_t *) s->link_trace_id;
        link->span_id.len = 8;
        link->span_id.data = (uint8_t *) s->link_span_id;
        link->flags = 0x300;
        *linkp = link;
        ps->n_links = 1;
        ps->links = linkp;
    }
    if (s->status != TG_SPAN_STATUS_UNSET) {
        st = tg_palloc(pool, sizeof(test_status_t));
        if (st == NULL) {
            return TG_ERROR;
        }
        opentelemetry__proto__trace__v1__status__init(st);
        st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)
                   s->status;
        ps->status = st;
    }
    return TG_OK;
}


/* The packed oracle: malloc'ed bytes and their length, or NULL. */
static u_char *
test_oracle_pack(const tg_otlp_resource_t *res, const tg_span_t *spans,
    size_t n, size_t *len)
{
    size_t            i;
    u_char           *out;
    tg_pool_t        *pool;
    test_kv_t        *kv, **kvp;
    test_any_t       *av;
    test_req_t        req;
    test_pspan_t     *ps, **psp;
    test_scope_t      scope;
    test_rspans_t     rs, *rsp[1];
    test_sspans_t     ss, *ssp[1];
    test_resource_t   resource;

    out = NULL;
    pool = tg_pool_create(64 * 1024);
    if (pool == NULL) {
        return NULL;
    }
    kv = tg_palloc(pool, (res->nattrs + 1) * sizeof(test_kv_t));
    av = tg_palloc(pool, (res->nattrs + 1) * sizeof(test_any_t));
    kvp = tg_palloc(pool, (res->nattrs + 1) * sizeof(test_kv_t *));
    ps = tg_palloc(pool, (n + 1) * sizeof(test_pspan_t));
    psp = tg_palloc(pool, (n + 1) * sizeof(test_pspan_t *));
    if (kv == NULL || av == NULL || kvp == NULL || ps == NULL || psp == NULL) {
        goto done;
    }

    opentelemetry__proto__resource__v1__resource__init(&resource);
    for (i = 0; i < res->nattrs; i++) {
        opentelemetry__proto__common__v1__key_value__init(&kv[i]);
        opentelemetry__proto__common__v1__any_value__init(&av[i]);
        av[i].value_case = TEST_ANY_STRING;
        av[i].string_value = res->attrs[i].value;
        kv[i].key = res->attrs[i].key;
        kv[i].value = &av[i];
        kvp[i] = &kv[i];
    }
    resource.n_attributes = res->nattrs;
    resource.attributes = kvp;

    opentelemetry__proto__common__v1__instrumentation_scope__init(&scope);
    scope.name = "tracegate";
    scope.version = TG_VERSION;

    for (i = 0; i < n; i++) {
        opentelemetry__proto__trace__v1__span__init(&ps[i]);
        if (test_oracle_span(pool, &spans[i], &ps[i]) != TG_OK) {
            goto done;
        }
        psp[i] = &ps[i];
    }

    opentelemetry__proto__trace__v1__scope_spans__init(&ss);
    ss.scope = &scope;
    ss.n_spans = n;
    ss.spans = psp;
    ssp[0] = &ss;
    opentelemetry__proto__trace__v1__resource_spans__init(&rs);
    rs.resource = &resource;
    rs.n_scope_spans = 1;
    rs.scope_spans = ssp;
    rsp[0] = &rs;
    test_req(init)(&req);
    req.n_resource_spans = 1;
    req.resource_spans = rsp;

    *len = test_req(get_packed_size)(&req);
    out = malloc(*len + 1);
    if (out && test_req(pack)(&req, out) != *len) {
        free(out);
        out = NULL;
    }

done:
    tg_pool_destroy(pool);
    return out;
}


/* Encodes into *buf and checks the bytes against the oracle's. */
static void
test_same(const tg_otlp_resource_t *res, const tg_span_t *spans, size_t n,
    tg_otlp_buf_t *buf, const char *what)
{
    int               rc;
    size_t            len, i;
    u_char           *want;
    const tg_span_t **sp;

    sp = malloc((n + 1) * sizeof(tg_span_t *));
    for (i = 0; sp && i < n; i++) {
        sp[i] = &spans[i];
    }
    rc = sp ? tg_otlp_encode_protobuf(res, sp, n, buf) : TG_ERROR;
    free(sp);
    want = test_oracle_pack(res, spans, n, &len);
    if (!ok(rc == TG_OK && want && buf->len == len
            && memcmp(buf->data, want, len) == 0,
            "bytes as protobuf-c packs them: %s (%zu bytes)", what, len))
    {
        for (i = 0; want && i < len && i < buf->len; i++) {
            if (buf->data[i] != want[i]) {
                break;
            }
        }
        printf("#   rc %d, got %zu bytes, want %zu, first difference at %zu\n",
               rc, buf->len, want ? len : 0, i);
    }
    free(want);
}


/* xorshift64*: a fixed sequence, so a failure can be replayed. */
static uint64_t
test_rand(void)
{
    static uint64_t  x = 0x9e3779b97f4a7c15ULL;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return x * 0x2545f4914f6cdd1dULL;
}


/* Fills n bytes: mostly ASCII text, sometimes any byte (bad UTF-8, NUL). */
static void
test_rand_bytes(u_char *p, size_t n)
{
    int     raw;
    size_t  i;

    static const char  text[] = "abcdefghijklmnopqrstuvwxyz0123456789/-_. ";

    raw = test_rand() % 8 == 0;
    for (i = 0; i < n; i++) {
        p[i] = raw ? (u_char) test_rand()
                   : (u_char) text[test_rand() % (sizeof(text) - 1)];
    }
}


static void
test_random_span(tg_span_t *s)
{
    char     key[40];
    u_char   buf[400];
    size_t   i, n, len;
    int64_t  v;

    tg_span_init(s);
    for (i = 0; i < 16; i++) {
        s->trace_id[i] = (u_char) test_rand();
        s->link_trace_id[i] = (u_char) test_rand();
    }
    for (i = 0; i < 8; i++) {
        s->span_id[i] = (u_char) test_rand();
        s->parent_id[i] = (u_char) test_rand();
        s->link_span_id[i] = (u_char) test_rand();
    }
    if (test_rand() % 3 == 0) {
        memset(s->parent_id, 0, 8);
    }
    s->kind = (uint8_t) (test_rand() % 16 == 0 ? test_rand() : test_rand() % 6);
    s->status = (uint8_t) (test_rand() % 16 == 0 ? test_rand()
                                                 : test_rand() % 3);
    s->flags = (uint8_t) test_rand();
    s->has_link = test_rand() % 2;
    s->start_ns = test_rand() % 8 ? test_rand() : 0;
    s->end_ns = test_rand() % 8 ? test_rand() : 0;
    if (test_rand() % 4 == 0) {
        s->attr_value_limit = (uint16_t) (test_rand() % 300);
    }

    len = test_rand() % (TG_SPAN_NAME_MAX + 8);
    test_rand_bytes(buf, len);
    tg_span_set_name(s, buf, len);

    n = test_rand() % 24;
    for (i = 0; i < n; i++) {
        len = test_rand() % 24;
        test_rand_bytes((u_char *) key, len);
        key[len] = '\0';
        switch (test_rand() % 3) {
        case 0:
            len = test_rand() % 4 == 0 ? test_rand() % sizeof(buf)
                                       : test_rand() % 40;
            test_rand_bytes(buf, len);
            tg_span_add_str(s, key, buf, len);
            break;
        case 1:
            v = (int64_t) test_rand();
            switch (test_rand() % 4) {
            case 0:
                v = 0;
                break;
            case 1:
                v %= 300;
                break;
            default:
                break;
            }
            tg_span_add_int(s, key, v);
            break;
        default:
            tg_span_add_bool(s, key, (int) (test_rand() % 2));
            break;
        }
    }
    if (test_rand() % 8 == 0) {
        s->dropped_attrs = (uint16_t) test_rand();
    }
}


/*
 * OTLP/JSON leaves out every field at its default value, as the protobuf
 * form does and as the Collector's file exporter writes: a span received
 * with nothing but its ids has no name, kind, times or attributes, and a
 * resource without attributes has no "resource".
 */
static void
test_json_defaults(void)
{
    tg_span_t           *s;
    tg_otlp_buf_t        b;
    tg_otlp_resource_t   none;
    const tg_span_t     *sp[1];

    s = calloc(1, sizeof(tg_span_t));
    if (s == NULL) {
        ok(0, "calloc");
        return;
    }
    tg_span_init(s);
    memset(s->trace_id, 0x11, 16);
    memset(s->span_id, 0x22, 8);
    sp[0] = s;
    none.attrs = NULL;
    none.nattrs = 0;
    memset(&b, 0, sizeof(b));

    is_int(tg_otlp_encode_json(&none, sp, 1, &b), TG_OK, "bare span: json");
    ok(b.len, "bare span: not empty");
    is_int(b.len ? b.data[b.len - 1] : 0, '\n', "bare span: one line");
    if (b.len) {
        b.len--;
    }
    is_mem(b.data, b.len,
           "{\"resourceSpans\":[{\"scopeSpans\":[{\"scope\":{\"name\":"
           "\"tracegate\",\"version\":\"" TG_VERSION "\"},\"spans\":[{"
           "\"traceId\":\"11111111111111111111111111111111\","
           "\"spanId\":\"2222222222222222\",\"flags\":256}]}]}]}",
           "bare span: ids and flags only, no empty resource");
    ok(!test_has(&b, "null"), "bare span: no null");
    ok(!test_has(&b, "\"\""), "bare span: no \"\"");
    ok(!test_has(&b, ":0"), "bare span: no 0");
    ok(!test_has(&b, "[]"), "bare span: no []");
    ok(!test_has(&b, "{}"), "bare span: no {}");

    s->kind = TG_SPAN_KIND_CLIENT;
    s->status = TG_SPAN_STATUS_OK;
    s->start_ns = 1;
    b.len = 0;
    tg_otlp_encode_json(&none, sp, 1, &b);
    ok(test_has(&b, "\"flags\":256,\"kind\":3,\"startTimeUnixNano\":\"1\","
                    "\"status\":{\"code\":1}}"),
       "kind, start and status OK written; name, end, attributes not");

    tg_otlp_buf_free(&b);
    free(s);
}


/* Byte equality with protobuf-c, case by case, then random batches. */
static void
test_bytes(void)
{
    char               *big;
    size_t              i, k, n, off;
    u_char              val[1500];
    tg_span_attr_t      a;
    char                key[256];
    tg_span_t          *s;
    test_req_t         *req;
    tg_otlp_kv_t        rattrs[3], battrs[2];
    tg_otlp_buf_t       buf;
    tg_otlp_resource_t  res, none, bres;

    s = calloc(2 * TEST_BATCH, sizeof(tg_span_t));
    big = malloc(20001);
    if (s == NULL || big == NULL) {
        ok(0, "memory for the byte comparisons");
        return;
    }
    memset(&buf, 0, sizeof(buf));
    none.attrs = NULL;
    none.nattrs = 0;
    rattrs[0].key = "service.name";
    rattrs[0].value = "tracegate-test";
    rattrs[1].key = "";
    rattrs[1].value = "";
    rattrs[2].key = "host.name";
    rattrs[2].value = "h\xc3\xa9";
    res.attrs = rattrs;
    res.nattrs = 3;

    test_same(&none, s, 0, &buf, "no spans, no resource attributes");
    test_same(&res, s, 0, &buf, "no spans; empty resource key and value");

    tg_span_init(&s[0]);
    memcpy(s[0].trace_id, test_tid, 16);
    memcpy(s[0].span_id, test_sid, 8);
    s[0].kind = TG_SPAN_KIND_SERVER;
    s[0].flags = 1;
    s[0].start_ns = 1700000000123456789ULL;
    s[0].end_ns = 1700000000223456789ULL;
    tg_span_set_name(&s[0], (u_char *) "GET", 3);
    test_same(&res, s, 1, &buf, "one span, no attributes");

    tg_span_init(&s[0]);
    memcpy(s[0].trace_id, test_tid, 16);
    memcpy(s[0].span_id, test_sid, 8);
    test_same(&res, s, 1, &buf, "zero kind, times, flags, empty name");

    test_spans(s);
    test_same(&res, s, 2, &buf,
              "string, int, bool attributes, link, error status, dropped");

    tg_span_init(&s[0]);
    memcpy(s[0].trace_id, test_tid, 16);
    memcpy(s[0].span_id, test_sid, 8);
    memcpy(s[0].parent_id, test_cid, 8);
    s[0].kind = TG_SPAN_KIND_CLIENT;
    tg_span_set_name(&s[0], (u_char *) "GET", 3);
    tg_span_add_int(&s[0], "min", INT64_MIN);
    tg_span_add_int(&s[0], "minus.one", -1);
    tg_span_add_int(&s[0], "negative", -42);
    tg_span_add_int(&s[0], "max", INT64_MAX);
    tg_span_add_int(&s[0], "zero", 0);
    tg_span_add_int(&s[0], "two.bytes", 300);
    tg_span_add_bool(&s[0], "false", 0);
    tg_span_add_bool(&s[0], "true", 1);
    tg_span_add_str(&s[0], "", (u_char *) "empty key", 9);
    tg_span_add_str(&s[0], "empty.value", (u_char *) "", 0);
    test_same(&res, s, 1, &buf,
              "negative, extreme and zero ints, false, empty key and value");

    /* a root SERVER span with the incoming context as a link, */
    tg_span_init(&s[0]);
    memcpy(s[0].trace_id, test_tid, 16);
    memcpy(s[0].span_id, test_sid, 8);
    s[0].kind = TG_SPAN_KIND_SERVER;
    s[0].has_link = 1;
    memset(s[0].link_trace_id, 0x11, 16);
    memset(s[0].link_span_id, 0x22, 8);
    /* a SERVER span with a remote parent (IS_REMOTE), */
    tg_span_init(&s[1]);
    memcpy(s[1].trace_id, test_tid, 16);
    memcpy(s[1].span_id, test_sid, 8);
    memcpy(s[1].parent_id, test_cid, 8);
    s[1].kind = TG_SPAN_KIND_SERVER;
    s[1].flags = 0xff;
    s[1].status = TG_SPAN_STATUS_OK;
    /* and codes that take two varint bytes */
    tg_span_init(&s[2]);
    memcpy(s[2].trace_id, test_tid, 16);
    memcpy(s[2].span_id, test_cid, 8);
    s[2].kind = 200;
    s[2].status = 200;
    test_same(&res, s, 3, &buf,
              "link; root and remote-parent SERVER; OK; kind and code 200");

    tg_span_init(&s[0]);
    memcpy(s[0].trace_id, test_tid, 16);
    memcpy(s[0].span_id, test_sid, 8);
    tg_span_set_name(&s[0], (u_char *) "n\xff" "a\xc3(m\xe2\x82", 8);
    tg_span_add_str(&s[0], "k\xfe" "ey", (u_char *) "v\0a\xc3(l\xed\xa0\x80",
                    9);
    tg_span_add_str(&s[0], "nul", (u_char *) "\0", 1);
    tg_span_add_str(&s[0], "utf8", (u_char *) "caf\xc3\xa9 \xf0\x9f\x98\x80",
                    10);
    tg_span_init(&s[1]);
    memcpy(s[1].trace_id, test_tid, 16);
    memcpy(s[1].span_id, test_cid, 8);
    memset(s[1].name, 'n', TG_SPAN_NAME_MAX);
    test_same(&res, s, 2, &buf,
              "bad UTF-8 and NUL replaced; a name without its NUL");

    /* lengths of 2 and 3 varint bytes (a span holds at most 1536) */
    tg_span_init(&s[0]);
    memcpy(s[0].trace_id, test_tid, 16);
    memcpy(s[0].span_id, test_sid, 8);
    memset(val, 'v', sizeof(val));
    tg_span_add_str(&s[0], "long", val, 1400);
    tg_span_init(&s[1]);
    memcpy(s[1].trace_id, test_tid, 16);
    memcpy(s[1].span_id, test_cid, 8);
    memset(val, 0xff, sizeof(val));
    tg_span_add_str(&s[1], "long.bad", val, 1000);   /* 3000 once repaired */
    memset(big, 'x', 20000);
    big[20000] = '\0';
    battrs[0].key = "service.name";
    battrs[0].value = "tracegate-test";
    battrs[1].key = "long";
    battrs[1].value = big;
    bres.attrs = battrs;
    bres.nattrs = 2;
    test_same(&bres, s, 2, &buf,
              "1400 and 3000-byte values, a 20000-byte resource value");

    tg_span_init(&s[0]);
    memcpy(s[0].trace_id, test_tid, 16);
    memcpy(s[0].span_id, test_sid, 8);
    s[0].attr_count_limit = 2;
    for (i = 0; i < 5; i++) {
        tg_span_add_int(&s[0], "n", (int64_t) i);
    }
    tg_span_init(&s[1]);
    memcpy(s[1].trace_id, test_tid, 16);
    memcpy(s[1].span_id, test_cid, 8);
    s[1].dropped_attrs = 65535;
    ok(s[0].dropped_attrs == 3, "count limit drops 3 attributes");
    test_same(&res, s, 2, &buf, "dropped_attributes_count 3 and 65535");

    for (i = 0; i < TEST_BATCH; i++) {
        test_random_span(&s[i]);
    }
    test_same(&res, s, TEST_BATCH, &buf, "a batch of 1000 random spans");
    req = test_req(unpack)(NULL, buf.len, buf.data);
    ok(req, "the batch unpacks");
    is_int(req ? req->resource_spans[0]->scope_spans[0]->n_spans : 0,
           TEST_BATCH, "the batch unpacks to 1000 spans");
    if (req) {
        test_req(free_unpacked)(req, NULL);
    }
    /*
     * The largest span: a name of bad bytes (each becomes 3 bytes of
     * U+FFFD when written), attributes repaired when added that fill all
     * TG_SPAN_ATTR_BYTES: a 255-byte bad key (765 repaired) with a 253-byte
     * bad value (759) take 1 + 2 + (1 + 2 + 765) + (1 + 2) + (1 + 2 + 759)
     * = 1536 bytes; one more value byte does not fit.
     */
    tg_span_init(&s[0]);
    memcpy(s[0].trace_id, test_tid, 16);
    memcpy(s[0].span_id, test_sid, 8);
    memset(s[0].name, 0xff, TG_SPAN_NAME_MAX - 1);
    memset(val, 0xff, sizeof(val));
    memcpy(key, val, 255);
    key[255] = '\0';
    is_int(tg_span_add_str(&s[0], key, val, 254), TG_DECLINED,
           "a 254-byte bad value with a 255-byte bad key does not fit "
           "repaired");
    is_int(s[0].attr_len, 0, "... nothing written");
    is_int(s[0].dropped_attrs, 1, "... and counted as dropped");
    s[0].dropped_attrs = 0;
    is_int(tg_span_add_str(&s[0], key, val, 253), TG_OK,
           "a 253-byte one fills the span's attribute bytes");
    is_int(s[0].attr_len, TG_SPAN_ATTR_BYTES,
           "a 253-byte one fills the span's attribute bytes");
    off = 0;
    if (ok(tg_span_attr_next(&s[0], &off, &a),
           "both read back repaired: U+FFFD for each bad byte"))
    {
        is_int(a.key.len, 765, "repaired key: 765 bytes");
        is_int(a.str.len, 759, "repaired value: 759 bytes");
        ok(tg_utf8_valid(a.key.data, a.key.len), "repaired key: valid UTF-8");
        ok(tg_utf8_valid(a.str.data, a.str.len), "repaired value: valid UTF-8");
        ok(memcmp(a.str.data, "\xef\xbf\xbd", 3) == 0,
           "repaired value: starts with U+FFFD");
    }
    ok(tg_span_add_str(&s[0], "k", (u_char *) "", 0) == TG_DECLINED,
       "nothing more fits");
    tg_span_init(&s[1]);
    memcpy(s[1].trace_id, test_tid, 16);
    memcpy(s[1].span_id, test_cid, 8);
    s[1].attr_count_limit = 65535;
    for (i = 0; tg_span_add_bool(&s[1], "", (int) (i & 1)) == TG_OK; i++) {
        /* fill it */
    }
    /* 0x4a 4 (0x12 2 (0x10 v)): 6 bytes each, no key */
    ok(s[1].nattrs == TG_SPAN_ATTR_BYTES / 6,
       "a span holds %u booleans with empty keys", (unsigned) s[1].nattrs);
    test_same(&res, s, 2, &buf, "the largest repair and the most attributes");

    /* a ScopeSpans over 2 MiB: a 4-byte length where 3 were left */
    for (i = 0; i < 2 * TEST_BATCH; i++) {
        tg_span_init(&s[i]);
        memcpy(s[i].trace_id, test_tid, 16);
        memcpy(s[i].span_id, test_sid, 8);
        tg_span_add_str(&s[i], "bad", val, 400);
    }
    test_same(&res, s, 2 * TEST_BATCH, &buf, "a batch of over 2 MiB");
    ok(buf.len > 2 * 1024 * 1024, "which is %zu bytes", buf.len);

    for (k = 0; k < 5; k++) {
        n = 1 + test_rand() % 64;
        for (i = 0; i < n; i++) {
            test_random_span(&s[i]);
        }
        test_same(&bres, s, n, &buf, "random spans, buffer reused");
    }

    tg_otlp_buf_free(&buf);
    free(big);
    free(s);
}


int
main(void)
{
    int                 zrc;
    char                msg[64];
    u_char              dst[64], plain[1 << 16];
    size_t              n;
    int64_t             rejected;
    z_stream            zs;
    tg_span_t          *spans;
    const tg_span_t    *sp[2];
    test_kv_t          *kv;
    test_req_t         *req;
    test_pspan_t       *ps;
    tg_otlp_buf_t       buf, gz;
    tg_otlp_kv_t        rattrs[2];
    tg_otlp_resource_t  res;

    test_resp_t         resp;
    test_partial_t      partial;

    test_resp(init)(&resp);
    test_partial(init)(&partial);
    spans = calloc(2, sizeof(tg_span_t));
    test_spans(spans);
    sp[0] = &spans[0];
    sp[1] = &spans[1];
    rattrs[0].key = "service.name";
    rattrs[0].value = "tracegate-test";
    rattrs[1].key = "host.name";
    rattrs[1].value = "h1";
    res.attrs = rattrs;
    res.nattrs = 2;
    memset(&buf, 0, sizeof(buf));
    memset(&gz, 0, sizeof(gz));

    /* protobuf round trip */
    is_int(tg_otlp_encode_protobuf(&res, sp, 2, &buf), TG_OK,
           "protobuf encode");
    req = test_req(unpack)(NULL, buf.len, buf.data);
    ok(req != NULL, "protobuf-c unpacks our bytes (%zu)", buf.len);
    if (req == NULL) {
        return done_testing();
    }
    is_int(req->n_resource_spans, 1, "one ResourceSpans");
    is_int(req->resource_spans[0]->resource->n_attributes, 2,
           "resource attributes");
    is_str(req->resource_spans[0]->resource->attributes[0]->value
           ->string_value, "tracegate-test", "service.name value");
    is_int(req->resource_spans[0]->n_scope_spans, 1, "one ScopeSpans");
    is_str(req->resource_spans[0]->scope_spans[0]->scope->name, "tracegate",
           "scope name");
    is_str(req->resource_spans[0]->scope_spans[0]->scope->version,
           TG_VERSION, "scope version");
    is_int(req->resource_spans[0]->scope_spans[0]->n_spans, 2, "two spans");

    ps = req->resource_spans[0]->scope_spans[0]->spans[0];
    if (is_int(ps->trace_id.len, 16, "trace id: 16 raw bytes")) {
        ok(memcmp(ps->trace_id.data, test_tid, 16) == 0, "trace id: the bytes");
    }
    if (is_int(ps->span_id.len, 8, "span id: 8 raw bytes")) {
        ok(memcmp(ps->span_id.data, test_sid, 8) == 0, "span id: the bytes");
    }
    is_int(ps->parent_span_id.len, 0, "root span: empty parent");
    is_str(ps->name, "GET /service-a", "name");
    is_int(ps->kind, 2, "kind SERVER = 2");
    is_int(ps->start_time_unix_nano, 1700000000123456789ULL, "times");
    is_int(ps->end_time_unix_nano, 1700000000223456789ULL, "times");
    is_int(ps->flags, 0x101, "flags: sampled + has-is-remote, local parent");
    is_int(ps->n_attributes, 9, "nine attributes");
    kv = test_attr(ps, "http.request.method");
    if (ok(kv, "string attribute")) {
        is_int(kv->value->value_case,
               OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE,
               "string attribute: a string");
        is_str(kv->value->string_value, "GET", "string attribute: the value");
    }
    kv = test_attr(ps, "http.response.status_code");
    if (ok(kv, "int attribute")) {
        is_int(kv->value->value_case,
               OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE,
               "int attribute: an int");
        is_int(kv->value->int_value, 200, "int attribute: the value");
    }
    kv = test_attr(ps, "negative");
    if (ok(kv, "negative int attribute")) {
        is_int(kv->value->int_value, -42, "negative int attribute: the value");
    }
    kv = test_attr(ps, "flag.true");
    if (ok(kv, "bool true")) {
        is_int(kv->value->value_case,
               OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE,
               "bool true: a bool");
        ok(kv->value->bool_value, "bool true: true");
    }
    kv = test_attr(ps, "flag.false");
    if (ok(kv, "bool false keeps its type")) {
        is_int(kv->value->value_case,
               OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE,
               "bool false keeps its type: a bool");
        ok(!kv->value->bool_value, "bool false keeps its type: false");
    }
    kv = test_attr(ps, "quote");
    if (ok(kv, "control characters kept in protobuf")) {
        is_str(kv->value->string_value, "a\"b\\c\nd\x01",
               "control characters kept in protobuf: the value");
    }
    kv = test_attr(ps, "bad.utf8");
    if (ok(kv, "invalid UTF-8 bytes become U+FFFD")) {
        is_str(kv->value->string_value, "x\xef\xbf\xbdy\xef\xbf\xbd",
               "invalid UTF-8 bytes become U+FFFD: the value");
    }
    kv = test_attr(ps, "utf8");
    if (ok(kv, "valid UTF-8 untouched")) {
        is_str(kv->value->string_value, "caf\xc3\xa9 \xf0\x9f\x98\x80",
               "valid UTF-8 untouched: the value");
    }
    kv = test_attr(ps, "empty");
    if (ok(kv, "empty string attribute")) {
        is_int(kv->value->value_case,
               OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE,
               "empty string attribute: a string");
        is_int(kv->value->string_value[0], '\0',
               "empty string attribute: empty");
    }
    if (is_int(ps->n_links, 1, "one link")) {
        is_int(ps->links[0]->trace_id.len, 16, "link ids: trace id length");
        is_int(ps->links[0]->trace_id.data[0], 0x11, "link ids: trace id");
        is_int(ps->links[0]->span_id.len, 8, "link ids: span id length");
        is_int(ps->links[0]->span_id.data[7], 0x22, "link ids: span id");
    }
    ok(ps->status == NULL, "UNSET status not sent");
    is_int(ps->dropped_attributes_count, 0, "no dropped attributes");

    ps = req->resource_spans[0]->scope_spans[0]->spans[1];
    if (is_int(ps->parent_span_id.len, 8, "child: parent id, 8 bytes")) {
        ok(memcmp(ps->parent_span_id.data, test_sid, 8) == 0,
           "child: parent id");
    }
    is_int(ps->kind, 3, "kind CLIENT = 3");
    ok(ps->status, "status sent");
    is_int(ps->status ? ps->status->code : 0, 2, "status ERROR = 2");
    is_int(ps->dropped_attributes_count, 3, "dropped_attributes_count");
    is_int(ps->n_links, 0, "no link");
    is_int(ps->flags, 0x101, "CLIENT: parent is local");

    test_req(free_unpacked)(req, NULL);

    /* SERVER with a parent: the parent came from traceparent */
    memcpy(spans[0].parent_id, test_cid, 8);
    tg_otlp_encode_protobuf(&res, sp, 1, &buf);
    req = test_req(unpack)(NULL, buf.len, buf.data);
    ok(req, "SERVER with parent: unpacks");
    is_int(req ? req->resource_spans[0]->scope_spans[0]->spans[0]->flags : 0,
           0x301, "SERVER with parent: remote parent flags");
    if (req) {
        test_req(free_unpacked)(req, NULL);
    }
    memset(spans[0].parent_id, 0, 8);

    /* gzip round trip */
    tg_otlp_encode_protobuf(&res, sp, 2, &buf);
    is_int(tg_otlp_gzip(buf.data, buf.len, &gz), TG_OK, "gzip");
    if (ok(gz.len > 10, "gzip: more than a header")) {
        is_int(gz.data[0], 0x1f, "gzip magic: first byte");
        is_int(gz.data[1], 0x8b, "gzip magic: second byte");
    }
    memset(&zs, 0, sizeof(zs));
    inflateInit2(&zs, 15 + 16);
    zs.next_in = gz.data;
    zs.avail_in = (uInt) gz.len;
    zs.next_out = plain;
    zs.avail_out = sizeof(plain);
    zrc = inflate(&zs, Z_FINISH);
    is_int(zrc, Z_STREAM_END, "gunzip: the whole stream");
    is_int(zs.total_out, buf.len, "gunzip: the body's length");
    ok(memcmp(plain, buf.data, buf.len) == 0, "gunzip gives the body back");
    inflateEnd(&zs);

    /* JSON */
    buf.len = 0;
    is_int(tg_otlp_encode_json(&res, sp, 2, &buf), TG_OK, "json encode");
    if (ok(buf.len > 0, "json: not empty")) {
        is_int(buf.data[buf.len - 1], '\n', "json: ends with a newline");
        ok(memchr(buf.data, '\n', buf.len) == buf.data + buf.len - 1,
           "exactly one line");
    }
    ok(test_has(&buf, "{\"resourceSpans\":[{\"resource\":{\"attributes\":"
                      "[{\"key\":\"service.name\",\"value\":{\"stringValue\":"
                      "\"tracegate-test\"}}"), "json resource");
    ok(test_has(&buf, "\"scope\":{\"name\":\"tracegate\",\"version\":\""
                      TG_VERSION "\"}"), "json scope");
    ok(test_has(&buf, "\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
                      "\"spanId\":\"00f067aa0ba902b7\",\"flags\":257"),
       "json hex ids, root has no parentSpanId");
    ok(test_has(&buf, "\"parentSpanId\":\"00f067aa0ba902b7\""),
       "json child parentSpanId");
    ok(test_has(&buf, "\"kind\":2,\"startTimeUnixNano\":"
                      "\"1700000000123456789\",\"endTimeUnixNano\":"
                      "\"1700000000223456789\""),
       "json kind int, times strings");
    ok(test_has(&buf, "{\"key\":\"http.response.status_code\",\"value\":"
                      "{\"intValue\":\"200\"}}"), "json int64 as string");
    ok(test_has(&buf, "{\"intValue\":\"-42\"}"), "json negative int");
    ok(test_has(&buf, "{\"key\":\"flag.true\",\"value\":{\"boolValue\":true}}"),
       "json bools");
    ok(test_has(&buf, "{\"boolValue\":false}"), "json bools");
    ok(test_has(&buf, "{\"stringValue\":\"a\\\"b\\\\c\\nd\\u0001\"}"),
       "json escapes");
    ok(test_has(&buf, "{\"stringValue\":\"x\xef\xbf\xbdy\xef\xbf\xbd\"}"),
       "json invalid UTF-8 replaced");
    ok(test_has(&buf, "\"links\":[{\"traceId\":\"1111111111111111111111111111"
                      "1111\",\"spanId\":\"2222222222222222\",\"flags\":768}]"),
       "json link");
    ok(test_has(&buf, "\"droppedAttributesCount\":3,\"status\":{\"code\":2}"),
       "json dropped count and status");

    /* partial success */
    partial.rejected_spans = 7;
    partial.error_message = "too old";
    resp.partial_success = &partial;
    n = test_resp(pack)(&resp, plain);
    is_int(tg_otlp_decode_response(plain, n, 0, &rejected, msg, sizeof(msg)),
           TG_OK, "protobuf response decoded");
    is_int(rejected, 7, "rejected_spans");
    is_str(msg, "too old", "error_message");
    is_int(tg_otlp_decode_response(NULL, 0, 0, &rejected, msg, sizeof(msg)),
           TG_OK, "empty response is full success");
    is_int(rejected, 0, "nothing rejected");
    is_int(tg_otlp_decode_response((u_char *) "\xff\xff\xff", 3, 0,
                                   &rejected, msg, sizeof(msg)),
           TG_ERROR, "garbage response is an error");
    n = (size_t) snprintf((char *) plain, sizeof(plain), "%s",
        "{\"partialSuccess\":{\"rejectedSpans\":\"5\","
        "\"errorMessage\":\"x y\"}}");
    tg_otlp_decode_response(plain, n, 1, &rejected, msg, sizeof(msg));
    is_int(rejected, 5, "json partial success");
    is_str(msg, "x y", "json partial success");
    n = (size_t) snprintf((char *) plain, sizeof(plain), "%s",
                          "{\"partialSuccess\":{\"rejectedSpans\": 12}}");
    tg_otlp_decode_response(plain, n, 1, &rejected, msg, sizeof(msg));
    is_int(rejected, 12, "json rejectedSpans as a number");

    /* UTF-8 validation vectors */
    ok(tg_utf8_valid((u_char *) "\xf0\x9f\x98\x80", 4), "4-byte valid");
    ok(!tg_utf8_valid((u_char *) "\xc0\x80", 2), "overlong rejected");
    ok(!tg_utf8_valid((u_char *) "\xed\xa0\x80", 3),
       "surrogate rejected");
    ok(!tg_utf8_valid((u_char *) "\xf4\x90\x80\x80", 4),
       "above U+10FFFF rejected");
    ok(!tg_utf8_valid((u_char *) "a\0b", 3), "NUL rejected");
    n = tg_utf8_sanitize(dst, (u_char *) "\xe2\x82", 2);
    is_mem(dst, n, "\xef\xbf\xbd\xef\xbf\xbd", "truncated sequence replaced");

    test_bytes();
    test_json_defaults();

    tg_otlp_buf_free(&buf);
    tg_otlp_buf_free(&gz);
    free(spans);
    return done_testing();
}
