#include <tg_config.h>
#include <tg_core.h>
#include <tg_otlp_encode.h>
#include <zlib.h>
#include <opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h>
#include <tap.h>

/*
 * Encoder: pack with protobuf-c, unpack with the generated code and check
 * every field we set; the JSON form checked by content; gzip round trip;
 * partial_success parsing; UTF-8 repair.
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
    rattrs[0].key = "service.name";
    rattrs[0].value = "tracegate-test";
    rattrs[1].key = "host.name";
    rattrs[1].value = "h1";
    res.attrs = rattrs;
    res.nattrs = 2;
    memset(&buf, 0, sizeof(buf));
    memset(&gz, 0, sizeof(gz));

    /* protobuf round trip */
    is_int(tg_otlp_encode_protobuf(&res, spans, 2, &buf), TG_OK,
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
    ok(ps->trace_id.len == 16 && memcmp(ps->trace_id.data, test_tid, 16) == 0,
       "trace id: 16 raw bytes");
    ok(ps->span_id.len == 8 && memcmp(ps->span_id.data, test_sid, 8) == 0,
       "span id: 8 raw bytes");
    is_int(ps->parent_span_id.len, 0, "root span: empty parent");
    is_str(ps->name, "GET /service-a", "name");
    is_int(ps->kind, 2, "kind SERVER = 2");
    ok(ps->start_time_unix_nano == 1700000000123456789ULL
       && ps->end_time_unix_nano == 1700000000223456789ULL, "times");
    is_int(ps->flags, 0x101, "flags: sampled + has-is-remote, local parent");
    is_int(ps->n_attributes, 9, "nine attributes");
    kv = test_attr(ps, "http.request.method");
    ok(kv && kv->value->value_case
       == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
       && strcmp(kv->value->string_value, "GET") == 0, "string attribute");
    kv = test_attr(ps, "http.response.status_code");
    ok(kv && kv->value->value_case
       == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE
       && kv->value->int_value == 200, "int attribute");
    kv = test_attr(ps, "negative");
    ok(kv && kv->value->int_value == -42, "negative int attribute");
    kv = test_attr(ps, "flag.true");
    ok(kv && kv->value->value_case
       == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE
       && kv->value->bool_value, "bool true");
    kv = test_attr(ps, "flag.false");
    ok(kv && kv->value->value_case
       == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE
       && !kv->value->bool_value, "bool false keeps its type");
    kv = test_attr(ps, "quote");
    ok(kv && strcmp(kv->value->string_value, "a\"b\\c\nd\x01") == 0,
       "control characters kept in protobuf");
    kv = test_attr(ps, "bad.utf8");
    ok(kv && strcmp(kv->value->string_value,
                    "x\xef\xbf\xbdy\xef\xbf\xbd") == 0,
       "invalid UTF-8 bytes become U+FFFD");
    kv = test_attr(ps, "utf8");
    ok(kv && strcmp(kv->value->string_value,
                    "caf\xc3\xa9 \xf0\x9f\x98\x80") == 0,
       "valid UTF-8 untouched");
    kv = test_attr(ps, "empty");
    ok(kv && kv->value->value_case
       == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
       && kv->value->string_value[0] == '\0', "empty string attribute");
    is_int(ps->n_links, 1, "one link");
    ok(ps->n_links == 1 && ps->links[0]->trace_id.len == 16
       && ps->links[0]->trace_id.data[0] == 0x11
       && ps->links[0]->span_id.len == 8
       && ps->links[0]->span_id.data[7] == 0x22, "link ids");
    ok(ps->status == NULL, "UNSET status not sent");
    is_int(ps->dropped_attributes_count, 0, "no dropped attributes");

    ps = req->resource_spans[0]->scope_spans[0]->spans[1];
    ok(ps->parent_span_id.len == 8
       && memcmp(ps->parent_span_id.data, test_sid, 8) == 0,
       "child: parent id");
    is_int(ps->kind, 3, "kind CLIENT = 3");
    ok(ps->status && ps->status->code == 2, "status ERROR = 2");
    is_int(ps->dropped_attributes_count, 3, "dropped_attributes_count");
    is_int(ps->n_links, 0, "no link");
    is_int(ps->flags, 0x101, "CLIENT: parent is local");

    test_req(free_unpacked)(req, NULL);

    /* SERVER with a parent: the parent came from traceparent */
    memcpy(spans[0].parent_id, test_cid, 8);
    tg_otlp_encode_protobuf(&res, spans, 1, &buf);
    req = test_req(unpack)(NULL, buf.len, buf.data);
    ok(req && req->resource_spans[0]->scope_spans[0]->spans[0]->flags
              == 0x301, "SERVER with parent: remote parent flags");
    if (req) {
        test_req(free_unpacked)(req, NULL);
    }
    memset(spans[0].parent_id, 0, 8);

    /* gzip round trip */
    tg_otlp_encode_protobuf(&res, spans, 2, &buf);
    is_int(tg_otlp_gzip(buf.data, buf.len, &gz), TG_OK, "gzip");
    ok(gz.len > 10 && gz.data[0] == 0x1f && gz.data[1] == 0x8b,
       "gzip magic");
    memset(&zs, 0, sizeof(zs));
    inflateInit2(&zs, 15 + 16);
    zs.next_in = gz.data;
    zs.avail_in = (uInt) gz.len;
    zs.next_out = plain;
    zs.avail_out = sizeof(plain);
    zrc = inflate(&zs, Z_FINISH);
    ok(zrc == Z_STREAM_END && zs.total_out == buf.len
       && memcmp(plain, buf.data, buf.len) == 0, "gunzip gives the body back");
    inflateEnd(&zs);

    /* JSON */
    buf.len = 0;
    is_int(tg_otlp_encode_json(&res, spans, 2, &buf), TG_OK, "json encode");
    ok(buf.len > 0 && buf.data[buf.len - 1] == '\n'
       && memchr(buf.data, '\n', buf.len) == buf.data + buf.len - 1,
       "exactly one line");
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
    ok(test_has(&buf, "{\"key\":\"flag.true\",\"value\":{\"boolValue\":true}}")
       && test_has(&buf, "{\"boolValue\":false}"), "json bools");
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
    ok(rejected == 5 && strcmp(msg, "x y") == 0, "json partial success");
    n = (size_t) snprintf((char *) plain, sizeof(plain), "%s",
                          "{\"partialSuccess\":{\"rejectedSpans\": 12}}");
    tg_otlp_decode_response(plain, n, 1, &rejected, msg, sizeof(msg));
    is_int(rejected, 12, "json rejectedSpans as a number");

    /* UTF-8 validation vectors */
    ok(tg_otlp_utf8_valid((u_char *) "\xf0\x9f\x98\x80", 4), "4-byte valid");
    ok(!tg_otlp_utf8_valid((u_char *) "\xc0\x80", 2), "overlong rejected");
    ok(!tg_otlp_utf8_valid((u_char *) "\xed\xa0\x80", 3),
       "surrogate rejected");
    ok(!tg_otlp_utf8_valid((u_char *) "\xf4\x90\x80\x80", 4),
       "above U+10FFFF rejected");
    ok(!tg_otlp_utf8_valid((u_char *) "a\0b", 3), "NUL rejected");
    n = tg_otlp_utf8_sanitize(dst, (u_char *) "\xe2\x82", 2);
    is_mem(dst, n, "\xef\xbf\xbd\xef\xbf\xbd", "truncated sequence replaced");

    tg_otlp_buf_free(&buf);
    tg_otlp_buf_free(&gz);
    free(spans);
    return done_testing();
}
