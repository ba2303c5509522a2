#include <tg_config.h>
#include <tg_core.h>
#include <tg_otlp_encode.h>

#include <zlib.h>
#include <opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h>

/*
 * libFuzzer target: the OTLP encoder. The bytes drive the span API
 * (tg_span_set_name, tg_span_add_str/int/bool with limits) and the raw
 * span fields, then tg_otlp_encode_protobuf() packs them; the result is
 * unpacked with the protobuf-c generated code and compared field by field
 * with what was put in (strings as the encoder promises: unchanged when
 * valid UTF-8, else each bad byte replaced by U+FFFD). The JSON encoder
 * and gzip run over the same spans (gzip is inflated back and compared),
 * and the raw bytes are also fed to tg_otlp_decode_response(), which
 * parses what a collector answers.
 */

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest
    tg_fuzz_req_t;
typedef Opentelemetry__Proto__Trace__V1__Span      tg_fuzz_pspan_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue tg_fuzz_kv_t;

#define TG_FUZZ_MAX_SPANS 4
#define TG_FUZZ_MAX_ATTRS 160

typedef struct {
    const uint8_t  *p;
    size_t          left;
} tg_fuzz_in_t;

typedef struct {
    uint8_t   type;
    char      key[64];
    u_char    str[320];
    size_t    len;
    int64_t   num;
} tg_fuzz_attr_t;

typedef struct {
    tg_fuzz_attr_t  attrs[TG_FUZZ_MAX_ATTRS];
    size_t          n;
} tg_fuzz_expect_t;


static void
tg_fuzz_take(tg_fuzz_in_t *in, void *dst, size_t n)
{
    size_t  k = tg_min(n, in->left);

    memset(dst, 0, n);
    memcpy(dst, in->p, k);
    in->p += k;
    in->left -= k;
}


static uint8_t
tg_fuzz_byte(tg_fuzz_in_t *in)
{
    uint8_t  b;

    tg_fuzz_take(in, &b, 1);
    return b;
}


/* The encoder's string promise, computed here for comparison. */
static int
tg_fuzz_str_eq(const char *got, const u_char *src, size_t n)
{
    int      eq;
    u_char  *want;
    size_t   len;

    if (got == NULL) {
        return 0;
    }
    want = malloc(3 * n + 1);
    if (want == NULL) {
        return 1;
    }
    if (tg_utf8_valid(src, n)) {
        memcpy(want, src, n);
        len = n;
    } else {
        len = tg_utf8_sanitize(want, src, n);
    }
    eq = strlen(got) == len && memcmp(got, want, len) == 0
         && tg_utf8_valid((const u_char *) got, len);
    free(want);
    return eq;
}


static void
tg_fuzz_span(tg_fuzz_in_t *in, tg_span_t *s, tg_fuzz_expect_t *x)
{
    size_t           i, n, klen, nattr;
    uint8_t          b;
    uint16_t         lim;
    u_char           name[TG_SPAN_NAME_MAX + 8];
    tg_fuzz_attr_t  *a;

    tg_span_init(s);
    x->n = 0;
    tg_fuzz_take(in, s->trace_id, 16);
    tg_fuzz_take(in, s->span_id, 8);
    b = tg_fuzz_byte(in);
    if (b & 1) {
        tg_fuzz_take(in, s->parent_id, 8);
    }
    tg_fuzz_take(in, &s->start_ns, 8);
    tg_fuzz_take(in, &s->end_ns, 8);
    s->kind = tg_fuzz_byte(in);
    s->status = tg_fuzz_byte(in);
    s->flags = tg_fuzz_byte(in);
    s->has_link = b & 2 ? 1 : 0;
    if (s->has_link) {
        tg_fuzz_take(in, s->link_trace_id, 16);
        tg_fuzz_take(in, s->link_span_id, 8);
    }
    if (b & 4) {
        tg_fuzz_take(in, &lim, 2);
        s->attr_count_limit = lim % 200;
        tg_fuzz_take(in, &lim, 2);
        s->attr_value_limit = lim % 400;
    }

    n = tg_fuzz_byte(in) % (TG_SPAN_NAME_MAX + 8);
    tg_fuzz_take(in, name, n);
    if (b & 8) {
        /* a name without its NUL: the encoder must stop at 64 bytes */
        memset(s->name, 'n', TG_SPAN_NAME_MAX);
        memcpy(s->name, name, tg_min(n, TG_SPAN_NAME_MAX));
    } else {
        tg_span_set_name(s, name, n);
    }

    nattr = tg_fuzz_byte(in) % TG_FUZZ_MAX_ATTRS;
    for (i = 0; i < nattr && in->left; i++) {
        a = &x->attrs[x->n];
        memset(a, 0, sizeof(*a));
        b = tg_fuzz_byte(in);
        klen = (size_t) (b >> 2) % sizeof(a->key);
        tg_fuzz_take(in, a->key, klen);
        a->key[sizeof(a->key) - 1] = '\0';
        switch (b & 3) {
        case 0:
        case 1:
            a->type = TG_SPAN_ATTR_STRING;
            tg_fuzz_take(in, &lim, 2);
            n = lim % sizeof(a->str);
            tg_fuzz_take(in, a->str, n);
            if (tg_span_add_str(s, a->key, a->str, n) != TG_OK) {
                continue;
            }
            a->len = s->attr_value_limit ? tg_min(n, s->attr_value_limit)
                                         : n;
            break;
        case 2:
            a->type = TG_SPAN_ATTR_INT;
            tg_fuzz_take(in, &a->num, 8);
            if (tg_span_add_int(s, a->key, a->num) != TG_OK) {
                continue;
            }
            break;
        default:
            a->type = TG_SPAN_ATTR_BOOL;
            a->num = tg_fuzz_byte(in) & 1;
            if (tg_span_add_bool(s, a->key, (int) a->num) != TG_OK) {
                continue;
            }
            break;
        }
        x->n++;
    }
}


static void
tg_fuzz_check_span(const tg_span_t *s, const tg_fuzz_expect_t *x,
    const tg_fuzz_pspan_t *ps)
{
    size_t         i;
    uint32_t       flags;
    tg_fuzz_kv_t  *kv;
    static const u_char  zero[8];

    if (ps->trace_id.len != 16 || memcmp(ps->trace_id.data, s->trace_id, 16)
        || ps->span_id.len != 8 || memcmp(ps->span_id.data, s->span_id, 8))
    {
        abort();
    }
    if (memcmp(s->parent_id, zero, 8) == 0) {
        if (ps->parent_span_id.len != 0) {
            abort();
        }
    } else if (ps->parent_span_id.len != 8
               || memcmp(ps->parent_span_id.data, s->parent_id, 8))
    {
        abort();
    }
    flags = s->flags | 0x100;
    if (s->kind == TG_SPAN_KIND_SERVER && memcmp(s->parent_id, zero, 8)) {
        flags |= 0x200;
    }
    if (ps->flags != flags || (uint8_t) ps->kind != s->kind
        || ps->start_time_unix_nano != s->start_ns
        || ps->end_time_unix_nano != s->end_ns
        || ps->dropped_attributes_count != s->dropped_attrs)
    {
        abort();
    }
    if (!tg_fuzz_str_eq(ps->name, (const u_char *) s->name,
                        strnlen(s->name, TG_SPAN_NAME_MAX)))
    {
        abort();
    }
    if (ps->n_attributes != x->n || s->nattrs != x->n) {
        abort();
    }
    for (i = 0; i < x->n; i++) {
        kv = ps->attributes[i];
        if (!tg_fuzz_str_eq(kv->key, (const u_char *) x->attrs[i].key,
                            strlen(x->attrs[i].key))
            || kv->value == NULL)
        {
            abort();
        }
        switch (x->attrs[i].type) {
        case TG_SPAN_ATTR_STRING:
            if (kv->value->value_case
                    != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
                || !tg_fuzz_str_eq(kv->value->string_value, x->attrs[i].str,
                                   x->attrs[i].len))
            {
                abort();
            }
            break;
        case TG_SPAN_ATTR_INT:
            /* proto3: a zero int is not on the wire, the case is unset */
            if (x->attrs[i].num != 0
                && (kv->value->value_case
                        != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE
                    || kv->value->int_value != x->attrs[i].num))
            {
                abort();
            }
            break;
        default:
            if (x->attrs[i].num != 0
                && (kv->value->value_case
                        != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE
                    || !kv->value->bool_value))
            {
                abort();
            }
            break;
        }
    }
    if (s->has_link) {
        if (ps->n_links != 1 || ps->links[0]->trace_id.len != 16
            || memcmp(ps->links[0]->trace_id.data, s->link_trace_id, 16)
            || ps->links[0]->span_id.len != 8
            || memcmp(ps->links[0]->span_id.data, s->link_span_id, 8))
        {
            abort();
        }
    } else if (ps->n_links != 0) {
        abort();
    }
    if (s->status == TG_SPAN_STATUS_UNSET) {
        if (ps->status != NULL && ps->status->code != 0) {
            abort();
        }
    } else if (ps->status == NULL || (uint8_t) ps->status->code != s->status)
    {
        abort();
    }
}


static void
tg_fuzz_gunzip_check(const tg_otlp_buf_t *z, const tg_otlp_buf_t *plain)
{
    int       rc;
    u_char   *out;
    z_stream  zs;

    out = malloc(plain->len + 1);
    if (out == NULL) {
        return;
    }
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        free(out);
        return;
    }
    zs.next_in = z->data;
    zs.avail_in = (uInt) z->len;
    zs.next_out = out;
    zs.avail_out = (uInt) plain->len + 1;
    rc = inflate(&zs, Z_FINISH);
    if (rc != Z_STREAM_END || zs.total_out != plain->len
        || memcmp(out, plain->data, plain->len) != 0)
    {
        abort();
    }
    inflateEnd(&zs);
    free(out);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                 msg[64], keys[4][24], vals[4][24];
    u_char               raw[24];
    size_t               i, j, n, k;
    int64_t              rejected;
    tg_span_t           *spans;
    const tg_span_t     *sp[TG_FUZZ_MAX_SPANS];
    tg_fuzz_in_t         in;
    tg_fuzz_req_t       *req;
    tg_otlp_kv_t         kv[4];
    tg_otlp_buf_t        pb, js, gz;
    tg_fuzz_expect_t    *x;
    tg_otlp_resource_t   res;
    Opentelemetry__Proto__Trace__V1__ScopeSpans  *ss;

    /* whatever a collector may answer */
    for (i = 0; i < 2; i++) {
        memset(msg, 0x5a, sizeof(msg));
        if (tg_otlp_decode_response(data, size, (int) i, &rejected, msg,
                                    sizeof(msg))
            == TG_OK && memchr(msg, '\0', sizeof(msg)) == NULL)
        {
            abort();
        }
    }

    in.p = data;
    in.left = size;
    spans = calloc(TG_FUZZ_MAX_SPANS, sizeof(tg_span_t));
    x = calloc(TG_FUZZ_MAX_SPANS, sizeof(tg_fuzz_expect_t));
    if (spans == NULL || x == NULL) {
        goto done;
    }

    /* resource strings: the contract asks for valid UTF-8 with a NUL */
    res.nattrs = tg_fuzz_byte(&in) % 5;
    res.attrs = kv;
    for (i = 0; i < res.nattrs; i++) {
        n = tg_fuzz_byte(&in) % 8;
        tg_fuzz_take(&in, raw, n);
        k = tg_utf8_sanitize((u_char *) keys[i], raw, n);
        keys[i][k] = '\0';
        n = tg_fuzz_byte(&in) % 8;
        tg_fuzz_take(&in, raw, n);
        k = tg_utf8_sanitize((u_char *) vals[i], raw, n);
        vals[i][k] = '\0';
        kv[i].key = keys[i];
        kv[i].value = vals[i];
    }

    n = 1 + tg_fuzz_byte(&in) % TG_FUZZ_MAX_SPANS;
    for (i = 0; i < n; i++) {
        tg_fuzz_span(&in, &spans[i], &x[i]);
        sp[i] = &spans[i];
    }

    memset(&pb, 0, sizeof(pb));
    memset(&js, 0, sizeof(js));
    memset(&gz, 0, sizeof(gz));
    if (tg_otlp_encode_protobuf(&res, sp, n, &pb) != TG_OK) {
        goto free_bufs;
    }
    req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
        NULL, pb.len, pb.data);
    if (req == NULL || req->n_resource_spans != 1
        || req->resource_spans[0]->n_scope_spans != 1)
    {
        abort();
    }
    if (req->resource_spans[0]->resource == NULL
        || req->resource_spans[0]->resource->n_attributes != res.nattrs)
    {
        abort();
    }
    for (j = 0; j < res.nattrs; j++) {
        tg_fuzz_kv_t  *rkv = req->resource_spans[0]->resource->attributes[j];

        if (strcmp(rkv->key, kv[j].key) != 0
            || (kv[j].value[0] != '\0'
                && (rkv->value == NULL
                    || strcmp(rkv->value->string_value, kv[j].value) != 0)))
        {
            abort();
        }
    }
    ss = req->resource_spans[0]->scope_spans[0];
    if (ss->n_spans != n) {
        abort();
    }
    for (i = 0; i < n; i++) {
        tg_fuzz_check_span(&spans[i], &x[i], ss->spans[i]);
    }
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
        req, NULL);

    if (tg_otlp_encode_json(&res, sp, n, &js) == TG_OK) {
        if (js.len == 0 || js.data[js.len - 1] != '\n'
            || memchr(js.data, '\n', js.len) != js.data + js.len - 1
            || !tg_utf8_valid(js.data, js.len))
        {
            abort(); /* one line of valid UTF-8 */
        }
    }
    if (tg_otlp_gzip(pb.data, pb.len, &gz) == TG_OK) {
        tg_fuzz_gunzip_check(&gz, &pb);
    }

free_bufs:
    tg_otlp_buf_free(&pb);
    tg_otlp_buf_free(&js);
    tg_otlp_buf_free(&gz);
done:
    free(spans);
    free(x);
    return 0;
}
