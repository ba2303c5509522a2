#include <tg_config.h>
#include <tg_core.h>
#include <tg_trace.h>
#include "tap.h"

/*
 * B3 (openzipkin/b3-propagation README), Jaeger uber-trace-id, the
 * OTEL_PROPAGATORS list and extraction across propagators.
 */

#define T32 "80f198ee56343ba864fe8b2a57d3eff7"
#define T16 "a3ce929d0e0e4736"
#define S16 "e457b5a2e4d86bd1"
#define P16 "05e3ac9a4f6e3b90"

static const u_char  t32_bytes[16] = {
    0x80, 0xf1, 0x98, 0xee, 0x56, 0x34, 0x3b, 0xa8,
    0x64, 0xfe, 0x8b, 0x2a, 0x57, 0xd3, 0xef, 0xf7
};
static const u_char  t16_bytes[16] = {
    0, 0, 0, 0, 0, 0, 0, 0,
    0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36
};
static const u_char  s16_bytes[8] = {
    0xe4, 0x57, 0xb5, 0xa2, 0xe4, 0xd8, 0x6b, 0xd1
};


static tg_str_t *
str(tg_str_t *s, const char *c)
{
    if (c == NULL) {
        return NULL;
    }
    s->data = (u_char *) c;
    s->len = strlen(c);
    return s;
}


static int
b3(const char *v, tg_trace_ctx_t *tc)
{
    tg_str_t  s;

    return tg_trace_parse_b3(str(&s, v), tc);
}


static int
b3m(const char *t, const char *s, const char *smp, const char *f,
    tg_trace_ctx_t *tc)
{
    tg_str_t  a, b, c, d;

    return tg_trace_parse_b3_multi(str(&a, t), str(&b, s), str(&c, smp),
                                   str(&d, f), tc);
}


static int
jaeger(const char *v, tg_trace_ctx_t *tc)
{
    tg_str_t  s;

    return tg_trace_parse_jaeger(str(&s, v), tc);
}


static int
props(const char *list, tg_trace_propagators_t *p)
{
    tg_str_t  s;

    return tg_trace_propagators_parse(str(&s, list), p);
}


static void
b3_rejects(const char *v, const char *why)
{
    tg_trace_ctx_t  tc;

    memset(&tc, 0xa5, sizeof(tc));
    is_int(b3(v, &tc), TG_DECLINED, "b3 rejected: %s", why);
    ok(!tc.valid, "b3 rejected: %s", why);
    ok(!tc.deny, "b3 rejected: %s", why);
    is_int(tc.trace_id[15], 0, "b3 rejected: %s", why);
}


static void
jaeger_rejects(const char *v, const char *why)
{
    tg_trace_ctx_t  tc;

    memset(&tc, 0xa5, sizeof(tc));
    is_int(jaeger(v, &tc), TG_DECLINED, "jaeger rejected: %s", why);
    ok(!tc.valid, "jaeger rejected: %s", why);
    is_int(tc.trace_id[15], 0, "jaeger rejected: %s", why);
}


static void
test_b3_single(void)
{
    tg_trace_ctx_t  tc;

    ok(b3(T32 "-" S16 "-1-" P16, &tc) == TG_OK, "b3 with all four fields");
    ok(tc.valid, "b3 ids decoded");
    ok(memcmp(tc.trace_id, t32_bytes, 16) == 0, "b3 ids decoded");
    ok(memcmp(tc.span_id, s16_bytes, 8) == 0, "b3 ids decoded");
    is_int(tc.flags, 1, "b3 sampled 1");
    ok(!tc.deferred, "b3 sampled 1");
    ok(!tc.debug, "b3 sampled 1");

    is_int(b3(T32 "-" S16 "-0", &tc), TG_OK,
           "b3 sampling 0: not sampled, still a valid context");
    is_int(tc.flags, 0, "b3 sampling 0: not sampled, still a valid context");
    ok(!tc.deferred, "b3 sampling 0: not sampled, still a valid context");
    ok(!tc.deny, "b3 sampling 0: not sampled, still a valid context");
    is_int(b3(T32 "-" S16 "-d", &tc), TG_OK, "b3 debug: sampled + debug");
    is_int(tc.flags, 1, "b3 debug: sampled + debug");
    ok(tc.debug, "b3 debug: sampled + debug");
    is_int(b3(T32 "-" S16, &tc), TG_OK, "b3 without sampling: deferred");
    ok(tc.deferred, "b3 without sampling: deferred");
    is_int(tc.flags, 0, "b3 without sampling: deferred");
    is_int(b3(T16 "-" S16 "-1", &tc), TG_OK,
           "b3 64-bit trace id left-padded to 128 bits");
    ok(memcmp(tc.trace_id, t16_bytes, 16) == 0,
       "b3 64-bit trace id left-padded to 128 bits");
    ok(b3("  " T32 "-" S16 "-1 \t", &tc) == TG_OK, "b3 OWS tolerated");
    ok(b3(T32 "-" S16 "-1-0000000000000000", &tc) == TG_OK,
       "b3 zero parent span id is only checked for form");

    memset(&tc, 0xa5, sizeof(tc));
    is_int(b3("0", &tc), TG_DECLINED, "b3: 0 is deny-only: declined with deny");
    ok(!tc.valid, "b3: 0 is deny-only: declined with deny");
    ok(tc.deny, "b3: 0 is deny-only: declined with deny");
    is_int(b3(" 0 ", &tc), TG_DECLINED, "b3: 0 with OWS");
    ok(tc.deny, "b3: 0 with OWS");
    is_int(b3("1", &tc), TG_DECLINED,
           "b3: 1 alone (accept without ids) ignored");
    ok(!tc.deny, "b3: 1 alone (accept without ids) ignored");
    ok(!tc.valid, "b3: 1 alone (accept without ids) ignored");
    is_int(b3("d", &tc), TG_DECLINED, "b3: d alone ignored");
    ok(!tc.deny, "b3: d alone ignored");

    b3_rejects(T32 "-" S16 "-1-" P16 "-x", "five fields");
    b3_rejects("80F198EE56343BA864FE8B2A57D3EFF7-" S16 "-1",
               "uppercase trace id");
    b3_rejects(T32 "-E457B5A2E4D86BD1-1", "uppercase span id");
    b3_rejects(T32 "-" S16 "-D", "uppercase debug");
    b3_rejects("80f198ee56343ba864fe-" S16 "-1", "20-hex trace id");
    b3_rejects("80f198ee56343ba864fe8b2a57d3eff7a-" S16 "-1",
               "33-hex trace id");
    b3_rejects(T32 "-e457b5a2e4d86bd-1", "15-hex span id");
    b3_rejects(T32 "-e457b5a2e4d86bd1a-1", "17-hex span id");
    b3_rejects(T32 "-" S16 "-2", "sampling 2");
    b3_rejects(T32 "-" S16 "-true", "sampling true");
    b3_rejects(T32 "-" S16 "-", "empty sampling");
    b3_rejects(T32 "-" S16 "-1-05e3ac9a4f6e3b9", "15-hex parent");
    b3_rejects(T32 "-" S16 "-1-05E3AC9A4F6E3B90", "uppercase parent");
    b3_rejects(T32 "-" S16 "-1-", "empty parent");
    b3_rejects("00000000000000000000000000000000-" S16 "-1", "zero trace id");
    b3_rejects("0000000000000000-" S16 "-1", "zero 64-bit trace id");
    b3_rejects(T32 "-0000000000000000-1", "zero span id");
    b3_rejects(T32, "trace id only");
    b3_rejects("", "empty");
    b3_rejects("-", "lone dash");
    b3_rejects("2", "sampling-only 2");
    b3_rejects(T32 "_" S16 "_1", "wrong separator");
}


static void
test_b3_multi(void)
{
    tg_trace_ctx_t  tc;

    ok(b3m(T32, S16, "1", NULL, &tc) == TG_OK, "multi sampled 1");
    ok(tc.valid, "multi sampled 1");
    is_int(tc.flags, 1, "multi sampled 1");
    ok(memcmp(tc.trace_id, t32_bytes, 16) == 0, "multi ids decoded");
    ok(memcmp(tc.span_id, s16_bytes, 8) == 0, "multi ids decoded");
    ok(b3m(T32, S16, "0", NULL, &tc) == TG_OK, "multi sampled 0");
    is_int(tc.flags, 0, "multi sampled 0");
    ok(!tc.deferred, "multi sampled 0");
    ok(b3m(T32, S16, "true", NULL, &tc) == TG_OK,
       "multi sampled true (lenient)");
    is_int(tc.flags, 1, "multi sampled true (lenient)");
    ok(b3m(T32, S16, "False", NULL, &tc) == TG_OK,
       "multi sampled False (lenient, any case)");
    is_int(tc.flags, 0, "multi sampled False (lenient, any case)");
    ok(b3m(T32, S16, NULL, NULL, &tc) == TG_OK,
       "multi without sampled: deferred");
    ok(tc.deferred, "multi without sampled: deferred");
    is_int(tc.flags, 0, "multi without sampled: deferred");
    ok(b3m(T32, S16, NULL, "1", &tc) == TG_OK,
       "multi X-B3-Flags: 1 is debug, sampled");
    is_int(tc.flags, 1, "multi X-B3-Flags: 1 is debug, sampled");
    ok(tc.debug, "multi X-B3-Flags: 1 is debug, sampled");
    ok(!tc.deferred, "multi X-B3-Flags: 1 is debug, sampled");
    is_int(b3m(T32, S16, "0", "1", &tc), TG_OK, "debug wins over sampled 0");
    is_int(tc.flags, 1, "debug wins over sampled 0");
    ok(tc.debug, "debug wins over sampled 0");
    is_int(b3m(T32, S16, "1", "0", &tc), TG_OK,
           "X-B3-Flags other than 1 ignored");
    is_int(tc.flags, 1, "X-B3-Flags other than 1 ignored");
    ok(!tc.debug, "X-B3-Flags other than 1 ignored");
    ok(b3m(T16, S16, "1", NULL, &tc) == TG_OK,
       "multi 64-bit trace id left-padded");
    ok(memcmp(tc.trace_id, t16_bytes, 16) == 0,
       "multi 64-bit trace id left-padded");
    ok(b3m(" " T32 " ", "\t" S16, " 1 ", " 1", &tc) == TG_OK,
       "multi OWS tolerated in every header");

    memset(&tc, 0xa5, sizeof(tc));
    ok(b3m(NULL, NULL, "0", NULL, &tc) == TG_DECLINED,
       "multi X-B3-Sampled: 0 alone is a deny");
    ok(tc.deny, "multi X-B3-Sampled: 0 alone is a deny");
    ok(!tc.valid, "multi X-B3-Sampled: 0 alone is a deny");
    ok(b3m(NULL, NULL, "1", NULL, &tc) == TG_DECLINED,
       "multi X-B3-Sampled: 1 alone ignored");
    ok(!tc.deny, "multi X-B3-Sampled: 1 alone ignored");
    ok(b3m(NULL, NULL, "0", "1", &tc) == TG_DECLINED,
       "multi sampled 0 with debug is not a deny");
    ok(!tc.deny, "multi sampled 0 with debug is not a deny");
    ok(b3m(T32, NULL, "0", NULL, &tc) == TG_DECLINED,
       "multi trace id without span id: declined, not a deny");
    ok(!tc.deny, "multi trace id without span id: declined, not a deny");
    ok(b3m(NULL, S16, "1", NULL, &tc) == TG_DECLINED,
       "multi span id without trace id: declined");
    ok(b3m(T32, S16, "yes", NULL, &tc) == TG_DECLINED,
       "multi sampled yes: declined");
    ok(!tc.valid, "multi sampled yes: declined");
    ok(b3m(T32, S16, "", NULL, &tc) == TG_DECLINED, "multi sampled empty");
    ok(b3m(T32, "e457b5a2e4d86bd", "1", NULL, &tc) == TG_DECLINED,
       "multi 15-hex span id");
    ok(b3m("80F198EE56343BA864FE8B2A57D3EFF7", S16, "1", NULL, &tc)
           == TG_DECLINED,
       "multi uppercase trace id");
    ok(b3m("00000000000000000000000000000000", S16, "1", NULL, &tc)
           == TG_DECLINED,
       "multi zero trace id");
    ok(b3m(T32, "0000000000000000", "1", NULL, &tc) == TG_DECLINED,
       "multi zero span id");
    ok(b3m(T32 "," T32, S16, "1", NULL, &tc) == TG_DECLINED,
       "multi comma-joined value is not an id");
}


static void
test_jaeger(void)
{
    tg_trace_ctx_t  tc;
    u_char          want[16];

    is_int(jaeger(T32 ":" S16 ":0:1", &tc), TG_OK, "jaeger sampled");
    ok(tc.valid, "jaeger sampled");
    is_int(tc.flags, 1, "jaeger sampled");
    ok(!tc.debug, "jaeger sampled");
    ok(memcmp(tc.trace_id, t32_bytes, 16) == 0, "jaeger ids decoded");
    ok(memcmp(tc.span_id, s16_bytes, 8) == 0, "jaeger ids decoded");
    is_int(jaeger(T32 ":" S16 ":" P16 ":0", &tc), TG_OK,
           "jaeger not sampled, parent given");
    is_int(tc.flags, 0, "jaeger not sampled, parent given");
    is_int(jaeger(T32 ":" S16 ":0:01", &tc), TG_OK, "jaeger two-digit flags");
    is_int(tc.flags, 1, "jaeger two-digit flags");
    is_int(jaeger(T32 ":" S16 ":0:3", &tc), TG_OK,
           "jaeger flags 3: sampled + debug");
    is_int(tc.flags, 1, "jaeger flags 3: sampled + debug");
    ok(tc.debug, "jaeger flags 3: sampled + debug");
    is_int(jaeger(T32 ":" S16 ":0:2", &tc), TG_OK,
           "jaeger debug implies sampled");
    is_int(tc.flags, 1, "jaeger debug implies sampled");
    ok(tc.debug, "jaeger debug implies sampled");
    is_int(jaeger(T32 ":" S16 ":0:ff", &tc), TG_OK,
           "jaeger unknown flag bits dropped");
    is_int(tc.flags, 1, "jaeger unknown flag bits dropped");
    is_int(jaeger(T32 ":" S16 ":0:4", &tc), TG_OK,
           "jaeger flag 4 alone is not sampled");
    is_int(tc.flags, 0, "jaeger flag 4 alone is not sampled");
    is_int(jaeger(T16 ":" S16 ":0:1", &tc), TG_OK,
           "jaeger 64-bit trace id left-padded");
    ok(memcmp(tc.trace_id, t16_bytes, 16) == 0,
       "jaeger 64-bit trace id left-padded");

    memset(want, 0, sizeof(want));
    want[14] = 0x0a;
    want[15] = 0xbc;
    is_int(jaeger("abc:def:0:1", &tc), TG_OK,
           "jaeger short trace id left-padded");
    ok(memcmp(tc.trace_id, want, 16) == 0, "jaeger short trace id left-padded");
    is_int(tc.span_id[6], 0x0d, "jaeger short span id left-padded");
    is_int(tc.span_id[7], 0xef, "jaeger short span id left-padded");
    is_int(tc.span_id[0], 0, "jaeger short span id left-padded");
    is_int(tc.span_id[5], 0, "jaeger short span id left-padded");
    is_int(jaeger("1:1:0:1", &tc), TG_OK, "jaeger one-digit ids");
    is_int(tc.trace_id[15], 1, "jaeger one-digit ids");

    is_int(jaeger(T32 "%3A" S16 "%3A0%3A1", &tc), TG_OK,
           "jaeger URL-encoded %%3A separators");
    is_int(tc.flags, 1, "jaeger URL-encoded %%3A separators");
    ok(memcmp(tc.trace_id, t32_bytes, 16) == 0,
       "jaeger URL-encoded %%3A separators");
    ok(memcmp(tc.span_id, s16_bytes, 8) == 0,
       "jaeger URL-encoded %%3A separators");
    ok(jaeger(T32 "%3a" S16 "%3a0%3a1", &tc) == TG_OK,
       "jaeger lowercase %%3a separators");
    ok(jaeger(" " T32 ":" S16 ":0:1\t", &tc) == TG_OK, "jaeger OWS");

    jaeger_rejects("0:" S16 ":0:1", "zero trace id");
    jaeger_rejects("00000000000000000000000000000000:" S16 ":0:1",
                   "zero 128-bit trace id");
    jaeger_rejects(T32 ":0:0:1", "zero span id");
    jaeger_rejects(T32 ":0000000000000000:0:1", "zero 16-hex span id");
    jaeger_rejects(T32 "0:" S16 ":0:1", "33-hex trace id");
    jaeger_rejects(T32 ":" S16 "0:0:1", "17-hex span id");
    jaeger_rejects(T32 ":" S16 ":" P16 "0:1", "17-hex parent id");
    jaeger_rejects(T32 ":" S16 ":0:100", "3-digit flags");
    jaeger_rejects(T32 ":" S16 ":0:", "empty flags");
    jaeger_rejects(T32 ":" S16 "::1", "empty parent");
    jaeger_rejects(":" S16 ":0:1", "empty trace id");
    jaeger_rejects(T32 ":" S16 ":0", "three fields");
    jaeger_rejects(T32 ":" S16 ":0:1:1", "five fields");
    jaeger_rejects("80F198EE56343BA864FE8B2A57D3EFF7:" S16 ":0:1",
                   "uppercase trace id");
    jaeger_rejects(T32 ":" S16 ":0:x", "non-hex flags");
    jaeger_rejects(T32 "%3" S16 ":0:1", "truncated %3");
    jaeger_rejects(T32 "%3B" S16 ":0:1:0", "%3B is not a separator");
    jaeger_rejects(T32 "-" S16 "-0-1", "dash separators");
    jaeger_rejects("", "empty value");
}


static void
test_format(void)
{
    u_char               buf[80], *end;
    tg_trace_b3_multi_t  m;
    tg_trace_ctx_t       tc;
    tg_str_t             v;

    end = tg_trace_format_b3(buf, t32_bytes, s16_bytes, 1);
    ok(end == buf + TG_TRACE_B3_LEN, "b3 format length 51");
    is_mem(buf, end - buf, T32 "-" S16 "-1", "b3 sampled");
    end = tg_trace_format_b3(buf, t32_bytes, s16_bytes, 0);
    is_mem(buf, end - buf, T32 "-" S16 "-0", "b3 not sampled");
    end = tg_trace_format_b3(buf, t32_bytes, s16_bytes, 0x02);
    is_mem(buf, end - buf, T32 "-" S16 "-0", "b3 ignores other flag bits");
    end = tg_trace_format_b3(buf, t16_bytes, s16_bytes, 1);
    is_mem(buf, end - buf, "0000000000000000" T16 "-" S16 "-1",
           "b3 64-bit id sent as 32 hex");
    v.data = buf;
    v.len = (size_t) (end - buf);
    is_int(tg_trace_parse_b3(&v, &tc), TG_OK, "b3 format/parse round trip");
    ok(memcmp(tc.trace_id, t16_bytes, 16) == 0, "b3 format/parse round trip");
    is_int(tc.flags, 1, "b3 format/parse round trip");

    memset(&m, 'X', sizeof(m));
    tg_trace_format_b3_multi(&m, t32_bytes, s16_bytes, 1);
    is_mem(m.trace_id, sizeof(m.trace_id), T32, "X-B3-TraceId value");
    is_mem(m.span_id, sizeof(m.span_id), S16, "X-B3-SpanId value");
    ok(m.sampled == '1', "X-B3-Sampled 1");
    tg_trace_format_b3_multi(&m, t32_bytes, s16_bytes, 0xfe);
    ok(m.sampled == '0', "X-B3-Sampled 0 when bit 0 clear");

    end = tg_trace_format_jaeger(buf, t32_bytes, s16_bytes, 1);
    ok(end == buf + TG_TRACE_JAEGER_LEN, "jaeger format length 54");
    is_mem(buf, end - buf, T32 ":" S16 ":0:01", "jaeger sampled");
    end = tg_trace_format_jaeger(buf, t32_bytes, s16_bytes, 0x02);
    is_mem(buf, end - buf, T32 ":" S16 ":0:00",
           "jaeger keeps only the sampled bit");
    v.data = buf;
    v.len = (size_t) (end - buf);
    is_int(tg_trace_parse_jaeger(&v, &tc), TG_OK,
           "jaeger format/parse round trip");
    ok(memcmp(tc.trace_id, t32_bytes, 16) == 0,
       "jaeger format/parse round trip");
    ok(memcmp(tc.span_id, s16_bytes, 8) == 0, "jaeger format/parse round trip");
    is_int(tc.flags, 0, "jaeger format/parse round trip");
}


static void
test_propagators(void)
{
    tg_trace_propagators_t  p;

    is_int(props("tracecontext,b3,b3multi,jaeger", &p), TG_OK,
           "all four propagators");
    is_int(p.n, 4, "all four propagators");
    is_int(p.order[0], TG_TRACE_PROP_TRACECONTEXT, "order as listed");
    is_int(p.order[1], TG_TRACE_PROP_B3, "order as listed");
    is_int(p.order[2], TG_TRACE_PROP_B3MULTI, "order as listed");
    is_int(p.order[3], TG_TRACE_PROP_JAEGER, "order as listed");
    is_int(props(" jaeger , tracecontext ", &p), TG_OK,
           "order kept, OWS trimmed");
    is_int(p.n, 2, "order kept, OWS trimmed");
    is_int(p.order[0], TG_TRACE_PROP_JAEGER, "order kept, OWS trimmed");
    is_int(p.order[1], TG_TRACE_PROP_TRACECONTEXT, "order kept, OWS trimmed");
    is_int(props("b3,b3,tracecontext,b3", &p), TG_OK,
           "duplicates ignored, first position kept");
    is_int(p.n, 2, "duplicates ignored, first position kept");
    is_int(p.order[0], TG_TRACE_PROP_B3,
           "duplicates ignored, first position kept");
    is_int(p.order[1], TG_TRACE_PROP_TRACECONTEXT,
           "duplicates ignored, first position kept");
    is_int(props("TraceContext,B3Multi", &p), TG_OK,
           "names are case-insensitive");
    is_int(p.n, 2, "names are case-insensitive");
    is_int(p.order[1], TG_TRACE_PROP_B3MULTI, "names are case-insensitive");
    is_int(props("tracecontext,,b3,", &p), TG_OK, "empty members skipped");
    is_int(p.n, 2, "empty members skipped");
    is_int(props("tracecontext,baggage", &p), TG_OK,
           "baggage accepted and ignored (OTel default list)");
    is_int(p.n, 1, "baggage accepted and ignored (OTel default list)");
    is_int(p.order[0], TG_TRACE_PROP_TRACECONTEXT,
           "baggage accepted and ignored (OTel default list)");
    is_int(props("none", &p), TG_OK, "none: propagate nothing");
    is_int(p.n, 0, "none: propagate nothing");
    is_int(props("tracecontext,none", &p), TG_OK, "none wins over the others");
    is_int(p.n, 0, "none wins over the others");
    ok(props("xray", &p) == TG_ERROR, "unsupported xray: error");
    ok(props("tracecontext,b4", &p) == TG_ERROR, "unknown name: error");
    ok(props("trace context", &p) == TG_ERROR, "inner space: error");
    ok(props("", &p) == TG_ERROR, "empty list: error");
    ok(props(" , ", &p) == TG_ERROR, "list of empty members: error");

    ok(props("b3multi,tracecontext", &p) == TG_OK, "parsed for inject");
    ok(tg_trace_propagators_inject(&p, TG_TRACE_PROP_B3MULTI),
       "listed propagators injected");
    ok(tg_trace_propagators_inject(&p, TG_TRACE_PROP_TRACECONTEXT),
       "listed propagators injected");
    ok(!tg_trace_propagators_inject(&p, TG_TRACE_PROP_B3),
       "others not injected");
    ok(!tg_trace_propagators_inject(&p, TG_TRACE_PROP_JAEGER),
       "others not injected");
    is_int(props("none", &p), TG_OK, "none injects nothing");
    ok(!tg_trace_propagators_inject(&p, TG_TRACE_PROP_TRACECONTEXT),
       "none injects nothing");
}


static void
set_hdr(tg_trace_carrier_t *c, int h, tg_str_t *store, const char *v)
{
    store->data = (u_char *) v;
    store->len = strlen(v);
    c->hdr[h].lines = store;
    c->hdr[h].n = 1;
}


static void
test_extract(void)
{
    int                     src;
    size_t                  ndup;
    tg_str_t                s[8];
    tg_trace_ctx_t          tc;
    tg_trace_carrier_t      c;
    tg_trace_propagators_t  p;

    is_mem(tg_trace_header_names[TG_TRACE_HDR_TRACEPARENT].data,
           tg_trace_header_names[TG_TRACE_HDR_TRACEPARENT].len,
           "traceparent", "header name table: traceparent");
    is_mem(tg_trace_header_names[TG_TRACE_HDR_B3_TRACE_ID].data,
           tg_trace_header_names[TG_TRACE_HDR_B3_TRACE_ID].len,
           "x-b3-traceid", "header name table: x-b3-traceid");
    is_mem(tg_trace_header_names[TG_TRACE_HDR_UBER_TRACE_ID].data,
           tg_trace_header_names[TG_TRACE_HDR_UBER_TRACE_ID].len,
           "uber-trace-id", "header name table: uber-trace-id");

    memset(&c, 0, sizeof(c));
    set_hdr(&c, TG_TRACE_HDR_TRACEPARENT, &s[0],
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01,"
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    set_hdr(&c, TG_TRACE_HDR_B3, &s[1], T32 "-" S16 "-0");

    props("tracecontext,b3", &p);
    is_int(tg_trace_extract(&p, &c, &tc, &src, &ndup), TG_OK,
           "tracecontext listed first wins");
    is_int(src, TG_TRACE_PROP_TRACECONTEXT, "tracecontext listed first wins");
    is_int(tc.trace_id[0], 0x0a, "tracecontext listed first wins");
    is_int(ndup, 2, "ndup passed through from traceparent");

    props("b3,tracecontext", &p);
    is_int(tg_trace_extract(&p, &c, &tc, &src, &ndup), TG_OK,
           "b3 listed first wins");
    is_int(src, TG_TRACE_PROP_B3, "b3 listed first wins");
    ok(memcmp(tc.trace_id, t32_bytes, 16) == 0, "b3 listed first wins");
    is_int(tc.flags, 0, "b3 listed first wins");
    is_int(ndup, 0, "ndup 0 for b3");

    set_hdr(&c, TG_TRACE_HDR_TRACEPARENT, &s[0], "garbage");
    props("tracecontext,b3", &p);
    ok(tg_trace_extract(&p, &c, &tc, &src, NULL) == TG_OK,
       "invalid traceparent falls through to b3");
    is_int(src, TG_TRACE_PROP_B3, "invalid traceparent falls through to b3");

    props("tracecontext", &p);
    is_int(tg_trace_extract(&p, &c, &tc, &src, &ndup), TG_DECLINED,
           "b3 not listed: declined");
    is_int(src, 0, "b3 not listed: declined");
    ok(!tc.valid, "b3 not listed: declined");
    ok(!tc.deny, "b3 not listed: declined");

    /* single header precedes multi; invalid single falls back to multi */
    memset(&c, 0, sizeof(c));
    set_hdr(&c, TG_TRACE_HDR_B3, &s[1], T32 "-" S16 "-1");
    set_hdr(&c, TG_TRACE_HDR_B3_TRACE_ID, &s[2], T16);
    set_hdr(&c, TG_TRACE_HDR_B3_SPAN_ID, &s[3], S16);
    props("b3multi", &p);
    ok(tg_trace_extract(&p, &c, &tc, &src, NULL) == TG_OK,
       "b3multi extraction: single header takes precedence");
    is_int(src, TG_TRACE_PROP_B3MULTI,
           "b3multi extraction: single header takes precedence");
    ok(memcmp(tc.trace_id, t32_bytes, 16) == 0,
       "b3multi extraction: single header takes precedence");
    set_hdr(&c, TG_TRACE_HDR_B3, &s[1], "bogus");
    ok(tg_trace_extract(&p, &c, &tc, &src, NULL) == TG_OK,
       "invalid single header: multi headers used");
    ok(memcmp(tc.trace_id, t16_bytes, 16) == 0,
       "invalid single header: multi headers used");
    ok(tc.deferred, "invalid single header: multi headers used");

    /* deny */
    memset(&c, 0, sizeof(c));
    set_hdr(&c, TG_TRACE_HDR_B3, &s[1], "0");
    props("tracecontext,b3", &p);
    ok(tg_trace_extract(&p, &c, &tc, &src, NULL) == TG_DECLINED,
       "b3: 0 alone: declined with deny");
    ok(tc.deny, "b3: 0 alone: declined with deny");
    ok(!tc.valid, "b3: 0 alone: declined with deny");
    set_hdr(&c, TG_TRACE_HDR_TRACEPARENT, &s[0],
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    ok(tg_trace_extract(&p, &c, &tc, &src, NULL) == TG_OK,
       "deny does not override a valid traceparent");
    ok(!tc.deny, "deny does not override a valid traceparent");
    is_int(tc.flags, 1, "deny does not override a valid traceparent");
    memset(&c, 0, sizeof(c));
    set_hdr(&c, TG_TRACE_HDR_B3_SAMPLED, &s[4], "0");
    ok(tg_trace_extract(&p, &c, &tc, &src, NULL) == TG_DECLINED,
       "X-B3-Sampled: 0 alone: deny");
    ok(tc.deny, "X-B3-Sampled: 0 alone: deny");

    /* jaeger: first member of the first line */
    memset(&c, 0, sizeof(c));
    s[5].data = (u_char *) ("abc:def:0:1, 123:456:0:0");
    s[5].len = strlen((char *) s[5].data);
    s[6].data = (u_char *) "789:abc:0:0";
    s[6].len = strlen((char *) s[6].data);
    c.hdr[TG_TRACE_HDR_UBER_TRACE_ID].lines = &s[5];
    c.hdr[TG_TRACE_HDR_UBER_TRACE_ID].n = 2;
    props("jaeger", &p);
    ok(tg_trace_extract(&p, &c, &tc, &src, NULL) == TG_OK,
       "jaeger first value wins");
    is_int(src, TG_TRACE_PROP_JAEGER, "jaeger first value wins");
    is_int(tc.trace_id[15], 0xbc, "jaeger first value wins");
    is_int(tc.flags, 1, "jaeger first value wins");

    props("none", &p);
    ok(tg_trace_extract(&p, &c, &tc, &src, NULL) == TG_DECLINED,
       "none extracts nothing");

    memset(&c, 0, sizeof(c));
    props("tracecontext,b3,b3multi,jaeger", &p);
    ok(tg_trace_extract(&p, &c, &tc, NULL, NULL) == TG_DECLINED,
       "no headers at all: declined");
    ok(!tc.valid, "no headers at all: declined");
    ok(!tc.deny, "no headers at all: declined");
}


int
main(void)
{
    test_b3_single();
    test_b3_multi();
    test_jaeger();
    test_format();
    test_propagators();
    test_extract();
    return done_testing();
}
