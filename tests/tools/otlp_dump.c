#include <tg_config.h>
#include <tg_core.h>
#include <tg_otlp_encode.h>

/*
 * Writes one ExportTraceServiceRequest with three known spans to stdout:
 * protobuf by default, OTLP/JSON with --json. t/62-otlp-encode.t decodes
 * it with protoc (and JSON::PP), independently of protobuf-c.
 *
 *   span 0: SERVER root "GET /service-a", sampled, str/int/bool attrs, link
 *   span 1: CLIENT child of 0 "GET", status ERROR, 2 dropped attributes
 *   span 2: SERVER with a remote parent, name with a quote and bad UTF-8
 */


static void
tg_otlp_dump_spans(tg_span_t *s)
{
    u_char  id;

    tg_span_init(&s[0]);
    for (id = 0; id < 16; id++) {
        s[0].trace_id[id] = (u_char) (0xa0 + id);
    }
    memcpy(s[0].span_id, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    s[0].kind = TG_SPAN_KIND_SERVER;
    s[0].flags = 1;
    s[0].start_ns = 1700000000000000001ULL;
    s[0].end_ns = 1700000000500000002ULL;
    tg_span_set_name(&s[0], (u_char *) "GET /service-a", 14);
    tg_span_add_str(&s[0], "http.request.method", (u_char *) "GET", 3);
    tg_span_add_str(&s[0], "url.path", (u_char *) "/service-a/x", 12);
    tg_span_add_str(&s[0], "http.route", (u_char *) "/service-a", 10);
    tg_span_add_int(&s[0], "http.response.status_code", 200);
    tg_span_add_int(&s[0], "server.port", 8080);
    tg_span_add_bool(&s[0], "tracegate.repaired", 1);
    s[0].has_link = 1;
    memset(s[0].link_trace_id, 0xcc, 16);
    memset(s[0].link_span_id, 0xdd, 8);

    tg_span_init(&s[1]);
    memcpy(s[1].trace_id, s[0].trace_id, 16);
    memcpy(s[1].span_id, "\x11\x12\x13\x14\x15\x16\x17\x18", 8);
    memcpy(s[1].parent_id, s[0].span_id, 8);
    s[1].kind = TG_SPAN_KIND_CLIENT;
    s[1].status = TG_SPAN_STATUS_ERROR;
    s[1].flags = 1;
    s[1].start_ns = 1700000000100000000ULL;
    s[1].end_ns = 1700000000400000000ULL;
    s[1].dropped_attrs = 2;
    tg_span_set_name(&s[1], (u_char *) "GET", 3);
    tg_span_add_str(&s[1], "server.address", (u_char *) "127.0.0.1", 9);
    tg_span_add_int(&s[1], "http.response.status_code", 503);
    tg_span_add_str(&s[1], "error.type", (u_char *) "503", 3);
    tg_span_add_int(&s[1], "http.request.resend_count", 1);

    tg_span_init(&s[2]);
    memset(s[2].trace_id, 0x42, 16);
    memcpy(s[2].span_id, "\x21\x22\x23\x24\x25\x26\x27\x28", 8);
    memcpy(s[2].parent_id, "\x31\x32\x33\x34\x35\x36\x37\x38", 8);
    s[2].kind = TG_SPAN_KIND_SERVER;
    s[2].flags = 1;
    s[2].start_ns = 1700000001000000000ULL;
    s[2].end_ns = 1700000001000000500ULL;
    tg_span_set_name(&s[2], (u_char *) "POST \"q\"", 8);
    tg_span_add_str(&s[2], "user_agent.original",
                    (u_char *) "curl\xff/8", 7);
    tg_span_add_int(&s[2], "negative", -7);
    tg_span_add_bool(&s[2], "off", 0);
}


int
main(int argc, char **argv)
{
    int                 json;
    size_t              off;
    ssize_t             n;
    tg_span_t          *spans;
    const tg_span_t    *sp[3];
    tg_otlp_kv_t        attrs[3];
    tg_otlp_buf_t       buf;
    tg_otlp_resource_t  res;

    json = (argc > 1 && strcmp(argv[1], "--json") == 0);

    spans = calloc(3, sizeof(tg_span_t));
    if (spans == NULL) {
        return 1;
    }
    tg_otlp_dump_spans(spans);
    sp[0] = &spans[0];
    sp[1] = &spans[1];
    sp[2] = &spans[2];

    attrs[0].key = "service.name";
    attrs[0].value = "otlp-dump";
    attrs[1].key = "telemetry.sdk.name";
    attrs[1].value = "tracegate";
    attrs[2].key = "telemetry.sdk.language";
    attrs[2].value = "c";
    res.attrs = attrs;
    res.nattrs = 3;

    memset(&buf, 0, sizeof(buf));
    if ((json ? tg_otlp_encode_json(&res, sp, 3, &buf)
              : tg_otlp_encode_protobuf(&res, sp, 3, &buf)) != TG_OK)
    {
        fprintf(stderr, "otlp_dump: encoding failed\n");
        return 1;
    }
    for (off = 0; off < buf.len; off += (size_t) n) {
        n = write(STDOUT_FILENO, buf.data + off, buf.len - off);
        if (n <= 0) {
            return 1;
        }
    }
    tg_otlp_buf_free(&buf);
    free(spans);
    return 0;
}
