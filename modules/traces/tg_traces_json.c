#include <tg_config.h>
#include <tg_core.h>
#include <tg_http.h>
#include <tg_traces_json.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>


void
tg_traces_json_str(struct evbuffer *b, const u_char *s, size_t n)
{
    u_char                 *p;
    unsigned                t;
    struct evbuffer_iovec   v;

    if (evbuffer_reserve_space(b, TG_JSON_ESCAPE_MAX * n + 2, &v, 1) < 1) {
        return;
    }
    p = v.iov_base;
    *p++ = '"';
    t = 0;
    p = tg_json_escape(p, p + TG_JSON_ESCAPE_MAX * n, s, n, TG_JSON_RAW_DEL,
                       &t);
    *p++ = '"';
    v.iov_len = (size_t) (p - (u_char *) v.iov_base);
    evbuffer_commit_space(b, &v, 1);
}


static void
tg_traces_json_cstr(struct evbuffer *b, const char *s)
{
    tg_traces_json_str(b, (const u_char *) s, strlen(s));
}


static void
tg_traces_json_hex(struct evbuffer *b, const u_char *id, size_t n)
{
    u_char  hex[34];

    hex[0] = '"';
    tg_hex_encode(hex + 1, id, n);
    hex[2 * n + 1] = '"';
    evbuffer_add(b, hex, 2 * n + 2);
}


void
tg_traces_json_summary(struct evbuffer *b, const tg_traces_summary_t *sum)
{
    uint64_t     dur;
    const char  *p, *e;

    /* a span may end before it starts (a sender's clock): 0, as per span */
    dur = sum->end_ns > sum->start_ns ? sum->end_ns - sum->start_ns : 0;

    evbuffer_add_printf(b, "{\"trace_id\":");
    tg_traces_json_hex(b, sum->trace_id, 16);
    evbuffer_add_printf(b, ",\"root_name\":");
    tg_traces_json_cstr(b, sum->root_name);
    evbuffer_add_printf(b, ",\"root_service\":");
    tg_traces_json_cstr(b, sum->root_service);
    evbuffer_add_printf(b, ",\"root_path\":");
    tg_traces_json_cstr(b, sum->root_path);
    evbuffer_add_printf(b, ",\"services\":[");
    for (p = sum->services; *p; p = *e ? e + 1 : e) {
        e = strchr(p, ',');
        if (e == NULL) {
            e = p + strlen(p);
        }
        if (p != sum->services) {
            evbuffer_add(b, ",", 1);
        }
        tg_traces_json_str(b, (const u_char *) p, (size_t) (e - p));
    }
    evbuffer_add_printf(b,
                        "],\"start_unix_nano\":\"%" PRIu64 "\","
                        "\"start_ms\":%" PRIu64 ".%03u,"
                        "\"duration_us\":%" PRIu64 ".%03u,"
                        "\"span_count\":%u,\"error_count\":%u,"
                        "\"dropped_spans\":%u,\"x_trace_id\":",
                        sum->start_ns, sum->start_ns / 1000000,
                        (unsigned) (sum->start_ns / 1000 % 1000),
                        dur / 1000, (unsigned) (dur % 1000),
                        sum->nspans, sum->nerrors, sum->dropped);
    if (sum->x_trace_id[0]) {
        tg_traces_json_cstr(b, sum->x_trace_id);
    } else {
        evbuffer_add(b, "null", 4);
    }
    evbuffer_add(b, "}", 1);
}


void
tg_traces_json_span(struct evbuffer *b, const tg_traces_span_t *sp,
    uint64_t base_ns)
{
    size_t             off, first;
    uint64_t           start, dur;
    tg_traces_attr_t   a;
    static u_char      zero[8];
    static const char *kinds[] = { "UNSPECIFIED", "INTERNAL", "SERVER",
                                   "CLIENT", "PRODUCER", "CONSUMER" };
    static const char *statuses[] = { "UNSET", "OK", "ERROR" };

    start = sp->start_ns > base_ns ? sp->start_ns - base_ns : 0;
    dur = sp->end_ns > sp->start_ns ? sp->end_ns - sp->start_ns : 0;

    evbuffer_add_printf(b, "{\"span_id\":");
    tg_traces_json_hex(b, sp->span_id, 8);
    evbuffer_add_printf(b, ",\"parent_span_id\":");
    if (memcmp(sp->parent_id, zero, 8) == 0) {
        evbuffer_add(b, "null", 4);
    } else {
        tg_traces_json_hex(b, sp->parent_id, 8);
    }
    evbuffer_add_printf(b, ",\"name\":");
    tg_traces_json_cstr(b, sp->name);
    evbuffer_add_printf(b, ",\"service\":");
    tg_traces_json_cstr(b, sp->service);
    evbuffer_add_printf(b,
                        ",\"kind\":\"%s\",\"status\":\"%s\","
                        "\"received\":%s,"
                        "\"start_unix_nano\":\"%" PRIu64 "\","
                        "\"end_unix_nano\":\"%" PRIu64 "\","
                        "\"offset_us\":%" PRIu64 ".%03u,"
                        "\"duration_us\":%" PRIu64 ".%03u,"
                        "\"dropped_attributes_count\":%u,\"attributes\":{",
                        kinds[sp->kind < 6 ? sp->kind : 0],
                        statuses[sp->status < 3 ? sp->status : 0],
                        sp->received ? "true" : "false",
                        sp->start_ns, sp->end_ns,
                        start / 1000, (unsigned) (start % 1000),
                        dur / 1000, (unsigned) (dur % 1000),
                        (unsigned) sp->dropped_attrs);
    off = 0;
    first = 1;
    while (tg_traces_attr_next(sp, &off, &a)) {
        if (!first) {
            evbuffer_add(b, ",", 1);
        }
        first = 0;
        tg_traces_json_str(b, a.key.data, a.key.len);
        evbuffer_add(b, ":", 1);
        if (a.type == TG_SPAN_ATTR_STRING) {
            tg_traces_json_str(b, a.str.data, a.str.len);
        } else if (a.type == TG_TRACES_ATTR_DOUBLE) {
            /* already JSON number text, checked when it was stored */
            evbuffer_add(b, a.str.data, a.str.len);
        } else if (a.type == TG_SPAN_ATTR_INT) {
            evbuffer_add_printf(b, "%" PRId64, a.num);
        } else {
            evbuffer_add_printf(b, "%s", a.num ? "true" : "false");
        }
    }
    evbuffer_add(b, "}}", 2);
}
