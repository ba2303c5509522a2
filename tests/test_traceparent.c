#include <tg_config.h>
#include <tg_core.h>
#include <tg_trace.h>
#include "tap.h"

/*
 * traceparent parse/extract/format: W3C Trace Context Level 1 section 3.2
 * and the vectors of the W3C test harness (test/test.py).
 */

#define TP_TRACE "0af7651916cd43dd8448eb211c80319c"
#define TP_SPAN  "b7ad6b7169203331"
#define TP_VALID "00-" TP_TRACE "-" TP_SPAN "-01"

static const u_char  tp_trace_bytes[16] = {
    0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd,
    0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c
};
static const u_char  tp_span_bytes[8] = {
    0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31
};


static int
parse(const char *s, tg_trace_ctx_t *tc)
{
    tg_str_t  v;

    v.data = (u_char *) s;
    v.len = strlen(s);
    return tg_trace_parse_traceparent(&v, tc);
}


static void
rejects(const char *s, const char *why)
{
    tg_trace_ctx_t  tc;
    int             rc;

    memset(&tc, 0xa5, sizeof(tc));
    rc = parse(s, &tc);
    is_int(rc, TG_DECLINED, "rejected: %s", why);
    ok(!tc.valid, "rejected: %s", why);
    is_int(tc.flags, 0, "rejected: %s", why);
    is_int(tc.trace_id[0], 0, "rejected: %s", why);
    is_int(tc.span_id[0], 0, "rejected: %s", why);
}


static int
extract(const char **lines, size_t n, tg_trace_ctx_t *tc, size_t *ndup)
{
    size_t    i;
    tg_str_t  l[8];

    for (i = 0; i < n; i++) {
        l[i].data = (u_char *) lines[i];
        l[i].len = strlen(lines[i]);
    }
    return tg_trace_extract_traceparent(l, n, tc, ndup);
}


static void
test_valid(void)
{
    tg_trace_ctx_t  tc;

    ok(parse(TP_VALID, &tc) == TG_OK, "v00 traceparent accepted");
    ok(tc.valid, "valid bit set");
    ok(memcmp(tc.trace_id, tp_trace_bytes, 16) == 0, "trace id decoded");
    ok(memcmp(tc.span_id, tp_span_bytes, 8) == 0, "parent id decoded");
    is_int(tc.flags, 0x01, "sampled flag");

    is_int(parse("00-" TP_TRACE "-" TP_SPAN "-00", &tc), TG_OK,
           "unsampled flags 00");
    is_int(tc.flags, 0, "unsampled flags 00");
    is_int(parse("00-" TP_TRACE "-" TP_SPAN "-ff", &tc), TG_OK,
           "unknown flag bits accepted and kept as received");
    is_int(tc.flags, 0xff, "unknown flag bits accepted and kept as received");
    is_int(parse("00-" TP_TRACE "-" TP_SPAN "-09", &tc), TG_OK,
           "flags 09 kept");
    is_int(tc.flags, 0x09, "flags 09 kept");
    ok(parse("01-" TP_TRACE "-" TP_SPAN "-01", &tc) == TG_OK,
       "version 01 exactly 55 bytes accepted");
    ok(parse("fe-" TP_TRACE "-" TP_SPAN "-01", &tc) == TG_OK,
       "version fe accepted");
    ok(parse("00-00000000000000000000000000000001-0000000000000001-01", &tc)
           == TG_OK,
       "ids of value 1 are not zero");
}


static void
test_invalid(void)
{
    tg_trace_ctx_t  tc;

    /* uppercase, everywhere */
    rejects("00-0AF7651916CD43DD8448EB211C80319C-" TP_SPAN "-01",
            "uppercase trace id");
    rejects("00-0af7651916cd43dd8448eb211c80319C-" TP_SPAN "-01",
            "one uppercase digit in trace id");
    rejects("00-" TP_TRACE "-B7AD6B7169203331-01", "uppercase parent id");
    rejects("00-" TP_TRACE "-" TP_SPAN "-0A", "uppercase flags");
    rejects("0A-" TP_TRACE "-" TP_SPAN "-01", "uppercase version");

    /* version */
    rejects("ff-" TP_TRACE "-" TP_SPAN "-01", "version ff");
    rejects("ff-" TP_TRACE "-" TP_SPAN "-01-00", "version ff with suffix");
    rejects("0g-" TP_TRACE "-" TP_SPAN "-01", "non-hex version 0g");
    rejects("xx-" TP_TRACE "-" TP_SPAN "-01", "non-hex version xx");
    rejects("0-" TP_TRACE "-" TP_SPAN "-01-", "one-digit version");
    rejects("000-" TP_TRACE "-" TP_SPAN "-01", "three-digit version");

    /* lengths */
    rejects("00-0af7651916cd43dd8448eb211c80319-" TP_SPAN "-01",
            "trace id 31 hex");
    rejects("00-0af7651916cd43dd8448eb211c80319cc-" TP_SPAN "-01",
            "trace id 33 hex");
    rejects("00-" TP_TRACE "-b7ad6b716920333-01", "parent id 15 hex");
    rejects("00-" TP_TRACE "-b7ad6b71692033311-01", "parent id 17 hex");
    rejects("00-" TP_TRACE "-" TP_SPAN "-1", "flags 1 hex");
    rejects("00-" TP_TRACE "-" TP_SPAN "-011", "flags 3 hex");
    rejects("00-" TP_TRACE "-" TP_SPAN "-", "flags missing");
    rejects("00-" TP_TRACE "-" TP_SPAN, "flags field missing");
    rejects("", "empty value");
    rejects("   ", "only spaces");
    rejects("00", "version only");

    /* separators */
    rejects("00_" TP_TRACE "-" TP_SPAN "-01", "'_' after version");
    rejects("00-" TP_TRACE "_" TP_SPAN "-01", "'_' after trace id");
    rejects("00-" TP_TRACE "-" TP_SPAN "_01", "'_' after parent id");
    rejects("00-" TP_TRACE "." TP_SPAN "-01", "'.' after trace id");
    rejects("00 " TP_TRACE " " TP_SPAN " 01", "spaces as separators");
    rejects("00--" TP_TRACE TP_SPAN "-01", "shifted separator");

    /* zero ids */
    rejects("00-00000000000000000000000000000000-" TP_SPAN "-01",
            "zero trace id");
    rejects("00-" TP_TRACE "-0000000000000000-01", "zero parent id");
    rejects("cc-00000000000000000000000000000000-" TP_SPAN "-01-x",
            "zero trace id in a future version");

    /* v00 must be exactly 55 bytes */
    rejects(TP_VALID ".", "v00 with trailing '.'");
    rejects(TP_VALID "-xyz", "v00 with trailing -xyz");
    rejects(TP_VALID "-", "v00 with trailing '-'");
    rejects(TP_VALID "0", "v00 56 bytes");
    rejects("00-" TP_TRACE "-" TP_SPAN "-01,", "v00 with trailing comma");

    /* non-hex inside fields */
    rejects("00-0af7651916cd43dd8448eb211c80319g-" TP_SPAN "-01",
            "'g' in trace id");
    rejects("00-" TP_TRACE "-b7ad6b716920333z-01", "'z' in parent id");
    rejects("00-" TP_TRACE "-" TP_SPAN "-0x", "'x' in flags");
    rejects("00-" TP_TRACE "-" TP_SPAN "-\x80\x81", "high bytes in flags");

    /* inner whitespace is not OWS */
    rejects("00 -" TP_TRACE "-" TP_SPAN "-01", "space inside value");

    memset(&tc, 0, sizeof(tc));
    ok(tg_trace_parse_traceparent(&(tg_str_t) tg_null_string, &tc)
           == TG_DECLINED,
       "NULL data, zero length declined");
}


static void
test_ows(void)
{
    tg_trace_ctx_t  tc;

    is_int(parse("  " TP_VALID, &tc), TG_OK, "leading spaces tolerated");
    ok(tc.valid, "leading spaces tolerated");
    ok(parse(TP_VALID "   ", &tc) == TG_OK, "trailing spaces tolerated");
    ok(parse("\t" TP_VALID "\t", &tc) == TG_OK, "tabs around tolerated");
    is_int(parse(" \t " TP_VALID " \t", &tc), TG_OK,
           "mixed OWS tolerated, ids intact");
    ok(memcmp(tc.trace_id, tp_trace_bytes, 16) == 0,
       "mixed OWS tolerated, ids intact");
    rejects("\n" TP_VALID, "newline is not OWS");
    rejects(TP_VALID "\r", "CR is not OWS");
}


static void
test_future_version(void)
{
    tg_trace_ctx_t  tc;

    ok(parse("cc-" TP_TRACE "-" TP_SPAN "-01-future", &tc) == TG_OK,
       "cc with -future accepted");
    ok(memcmp(tc.trace_id, tp_trace_bytes, 16) == 0,
       "cc: trace id kept");
    ok(memcmp(tc.span_id, tp_span_bytes, 8) == 0, "cc: parent id kept");
    is_int(tc.flags, 1, "cc: flags parsed");
    ok(parse("cc-" TP_TRACE "-" TP_SPAN "-01-", &tc) == TG_OK,
       "cc with bare '-' suffix accepted");
    ok(parse("cc-" TP_TRACE "-" TP_SPAN "-01", &tc) == TG_OK,
       "cc with exactly 55 bytes accepted");
    ok(parse("  cc-" TP_TRACE "-" TP_SPAN "-01-what-ever  ", &tc) == TG_OK,
       "cc with OWS and several extra fields accepted");
    rejects("cc-" TP_TRACE "-" TP_SPAN "-01.future", "cc-...-01.future");
    rejects("cc-" TP_TRACE "-" TP_SPAN "-0", "cc shorter than 55");
    rejects("cc-" TP_TRACE "-" TP_SPAN "-01future", "cc, no '-' after flags");
    rejects("cc-" TP_TRACE "-" TP_SPAN "-011-x", "cc, 3-digit flags");
    rejects("cc-0AF7651916CD43DD8448EB211C80319C-" TP_SPAN "-01-x",
            "cc with uppercase trace id");
    rejects("cc-" TP_TRACE "-0000000000000000-01-x", "cc zero parent id");
}


static void
test_format(void)
{
    u_char          buf[TG_TRACE_TRACEPARENT_LEN + 8], *end;
    tg_trace_ctx_t  tc;
    tg_str_t        v;
    u_char          id[16], span[8];

    memset(buf, 'X', sizeof(buf));
    end = tg_trace_format_traceparent(buf, tp_trace_bytes, tp_span_bytes, 1);
    ok(end == buf + TG_TRACE_TRACEPARENT_LEN, "format returns dst + 55");
    is_mem(buf, end - buf, TP_VALID, "formatted v00");
    ok(buf[TG_TRACE_TRACEPARENT_LEN] == 'X', "no byte written past 55");

    end = tg_trace_format_traceparent(buf, tp_trace_bytes, tp_span_bytes,
                                      0xff);
    is_mem(buf, end - buf, "00-" TP_TRACE "-" TP_SPAN "-01",
           "flags ff sent as 01 (other bits dropped)");
    end = tg_trace_format_traceparent(buf, tp_trace_bytes, tp_span_bytes,
                                      0x02);
    is_mem(buf, end - buf, "00-" TP_TRACE "-" TP_SPAN "-00",
           "flags 02 sent as 00");
    end = tg_trace_format_traceparent(buf, tp_trace_bytes, tp_span_bytes,
                                      0x00);
    is_mem(buf, end - buf, "00-" TP_TRACE "-" TP_SPAN "-00",
           "flags 00 sent as 00");
    memset(buf, 'X', sizeof(buf));
    end = tg_trace_format_traceparent_hex(buf, (const u_char *) TP_TRACE,
                                          tp_span_bytes, 0x03);
    ok(end == buf + TG_TRACE_TRACEPARENT_LEN,
       "from a hex trace id: 55 bytes, none past");
    is_int(buf[TG_TRACE_TRACEPARENT_LEN], 'X',
           "from a hex trace id: 55 bytes, none past");
    is_mem(buf, end - buf, "00-" TP_TRACE "-" TP_SPAN "-01",
           "from a hex trace id: the same value");

    /* a future version is downgraded: parse cc, format 00 */
    ok(parse("cc-" TP_TRACE "-" TP_SPAN "-03-future", &tc) == TG_OK,
       "cc parsed for downgrade");
    end = tg_trace_format_traceparent(buf, tc.trace_id, tc.span_id,
                                      tc.flags);
    is_mem(buf, end - buf, TP_VALID, "cc downgraded to 00, flag 02 dropped");

    tg_random_trace_id(id);
    tg_random_span_id(span);
    end = tg_trace_format_traceparent(buf, id, span, 1);
    v.data = buf;
    v.len = (size_t) (end - buf);
    is_int(tg_trace_parse_traceparent(&v, &tc), TG_OK,
           "format/parse round trip of random ids");
    ok(memcmp(tc.trace_id, id, 16) == 0,
       "format/parse round trip of random ids");
    ok(memcmp(tc.span_id, span, 8) == 0,
       "format/parse round trip of random ids");
    is_int(tc.flags, 1, "format/parse round trip of random ids");
}


static void
test_extract(void)
{
    tg_trace_ctx_t  tc;
    size_t          ndup;
    const char     *l[4];

    l[0] = TP_VALID;
    ndup = 99;
    is_int(extract(l, 1, &tc, &ndup), TG_OK, "single line");
    ok(tc.valid, "single line");
    is_int(ndup, 1, "one value seen");

    l[0] = TP_VALID ", 00-" TP_TRACE "-1111111111111111-00";
    ok(extract(l, 1, &tc, &ndup) == TG_OK,
       "comma-joined, same trace id: repaired");
    is_int(ndup, 2, "two values seen");
    ok(memcmp(tc.span_id, tp_span_bytes, 8) == 0,
       "first value wins (its parent id and flags)");
    is_int(tc.flags, 1, "first value wins (its parent id and flags)");

    l[0] = TP_VALID "," TP_VALID;
    is_int(extract(l, 1, &tc, &ndup), TG_OK,
           "identical comma-joined duplicate repaired");
    is_int(ndup, 2, "identical comma-joined duplicate repaired");

    l[0] = TP_VALID;
    l[1] = TP_VALID;
    is_int(extract(l, 2, &tc, &ndup), TG_OK, "repeated header lines repaired");
    is_int(ndup, 2, "repeated header lines repaired");

    l[0] = " " TP_VALID " ,\t" TP_VALID;
    l[1] = "00-" TP_TRACE "-2222222222222222-00";
    is_int(extract(l, 2, &tc, &ndup), TG_OK,
           "lines and comma lists combined, OWS around members");
    is_int(ndup, 3, "lines and comma lists combined, OWS around members");
    ok(memcmp(tc.span_id, tp_span_bytes, 8) == 0, "first of three wins");

    l[0] = "00-" TP_TRACE "-2222222222222222-00";
    l[1] = TP_VALID;
    is_int(extract(l, 2, &tc, &ndup), TG_OK, "first line wins over the second");
    is_int(tc.span_id[0], 0x22, "first line wins over the second");
    is_int(tc.flags, 0, "first line wins over the second");

    l[0] = TP_VALID ",00-11111111111111111111111111111111-" TP_SPAN "-01";
    memset(&tc, 0xa5, sizeof(tc));
    ok(extract(l, 1, &tc, &ndup) == TG_DECLINED,
       "comma-joined, different trace ids: declined");
    ok(!tc.valid, "context zeroed on decline");
    is_int(tc.trace_id[0], 0, "context zeroed on decline");
    is_int(ndup, 2, "values counted on decline");

    l[0] = TP_VALID;
    l[1] = "00-11111111111111111111111111111111-" TP_SPAN "-01";
    ok(extract(l, 2, &tc, &ndup) == TG_DECLINED,
       "two lines, different trace ids: declined");

    /* invalid members are ignored; the first valid one wins */
    l[0] = TP_VALID ",00-" TP_TRACE "-1111111111111111-0X";
    is_int(extract(l, 1, &tc, &ndup), TG_OK,
           "invalid second member ignored: the first kept");
    is_int(ndup, 2, "invalid second member ignored: the first kept");
    ok(memcmp(tc.span_id, tp_span_bytes, 8) == 0,
       "invalid second member ignored: the first kept");
    l[0] = "garbage," TP_VALID;
    is_int(extract(l, 1, &tc, &ndup), TG_OK,
           "invalid first member ignored: the second kept");
    is_int(ndup, 2, "invalid first member ignored: the second kept");
    ok(memcmp(tc.span_id, tp_span_bytes, 8) == 0,
       "invalid first member ignored: the second kept");
    l[0] = TP_VALID;
    l[1] = "ff-" TP_TRACE "-" TP_SPAN "-01";
    is_int(extract(l, 2, &tc, &ndup), TG_OK, "invalid second line ignored");
    is_int(ndup, 2, "invalid second line ignored");

    l[0] = TP_VALID ",";
    is_int(extract(l, 1, &tc, &ndup), TG_OK,
           "trailing comma (an empty member) ignored");
    is_int(ndup, 2, "trailing comma (an empty member) ignored");
    l[0] = TP_VALID;
    l[1] = "";
    is_int(extract(l, 2, &tc, &ndup), TG_OK, "empty second line ignored");
    is_int(ndup, 2, "empty second line ignored");
    l[0] = " ";
    is_int(extract(l, 1, &tc, &ndup), TG_DECLINED,
           "whitespace-only line: declined");
    is_int(ndup, 1, "whitespace-only line: declined");
    l[0] = "ff-" TP_TRACE "-" TP_SPAN "-01, garbage";
    l[1] = "";
    memset(&tc, 0xa5, sizeof(tc));
    is_int(extract(l, 2, &tc, &ndup), TG_DECLINED,
           "no valid member: declined, all counted");
    is_int(ndup, 3, "no valid member: declined, all counted");
    ok(!tc.valid, "context zeroed on decline");
    is_int(tc.trace_id[0], 0, "context zeroed on decline");
    ndup = 99;
    is_int(extract(l, 0, &tc, &ndup), TG_DECLINED,
           "no lines: declined, ndup 0");
    is_int(ndup, 0, "no lines: declined, ndup 0");

    l[0] = TP_VALID "," TP_VALID;
    ok(extract(l, 1, &tc, NULL) == TG_OK, "ndup may be NULL");

    l[0] = "cc-" TP_TRACE "-" TP_SPAN "-01-future";
    l[1] = TP_VALID;
    is_int(extract(l, 2, &tc, &ndup), TG_OK,
           "future version and v00 with one trace id repaired");
    is_int(ndup, 2, "future version and v00 with one trace id repaired");
}


/*
 * The repair applied to the valid members only: "ff-T-S1-01,00-T-S2-01"
 * continues T with parent S2; valid members with different trace ids still
 * restart (W3C test_traceparent_duplicated), whatever the invalid ones say.
 */
static void
test_extract_invalid_members(void)
{
    tg_trace_ctx_t  tc;
    size_t          ndup;
    const char     *l[4];

    static const u_char  s2[8] = {
        0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22
    };

    l[0] = "ff-" TP_TRACE "-" TP_SPAN "-01,00-" TP_TRACE "-2222222222222222-01";
    ndup = 0;
    is_int(extract(l, 1, &tc, &ndup), TG_OK, "ff-T-S1-01,00-T-S2-01: repaired");
    ok(tc.valid, "ff-T-S1-01,00-T-S2-01: repaired");
    ok(memcmp(tc.trace_id, tp_trace_bytes, 16) == 0,
       "ff-T-S1-01,00-T-S2-01: T continued, parent S2");
    ok(memcmp(tc.span_id, s2, 8) == 0,
       "ff-T-S1-01,00-T-S2-01: T continued, parent S2");
    is_int(tc.flags, 1, "ff-T-S1-01,00-T-S2-01: T continued, parent S2");
    is_int(ndup, 2, "ff-T-S1-01,00-T-S2-01: two values seen (a repair)");

    l[0] = "ff-" TP_TRACE "-" TP_SPAN "-01";
    l[1] = "00-" TP_TRACE "-2222222222222222-01";
    is_int(extract(l, 2, &tc, &ndup), TG_OK,
           "the same as two lines: parent S2");
    ok(memcmp(tc.span_id, s2, 8) == 0, "the same as two lines: parent S2");
    is_int(ndup, 2, "the same as two lines: parent S2");

    l[0] = "ff-" TP_TRACE "-" TP_SPAN "-01,00-" TP_TRACE "-2222222222222222-00";
    l[1] = TP_VALID;
    is_int(extract(l, 2, &tc, &ndup), TG_OK,
           "invalid, then two valid with one trace id: the first valid wins");
    ok(memcmp(tc.span_id, s2, 8) == 0,
       "invalid, then two valid with one trace id: the first valid wins");
    ok(tc.flags == 0,
       "invalid, then two valid with one trace id: the first valid wins");
    is_int(ndup, 3,
           "invalid, then two valid with one trace id: the first valid wins");

    l[0] = "ff-11111111111111111111111111111111-" TP_SPAN "-01";
    l[1] = "00-" TP_TRACE "-2222222222222222-01";
    is_int(extract(l, 2, &tc, &ndup), TG_OK,
           "an invalid member's other trace id does not count");
    ok(memcmp(tc.trace_id, tp_trace_bytes, 16) == 0,
       "an invalid member's other trace id does not count");

    l[0] = "00-" TP_TRACE "-" TP_SPAN "-01.x,garbage," TP_VALID;
    is_int(extract(l, 1, &tc, &ndup), TG_OK,
           "two invalid members, then one valid: it wins");
    is_int(ndup, 3, "two invalid members, then one valid: it wins");
    ok(memcmp(tc.span_id, tp_span_bytes, 8) == 0,
       "two invalid members, then one valid: it wins");

    l[0] = "00-" TP_TRACE "-0000000000000000-01," TP_VALID;
    is_int(extract(l, 1, &tc, &ndup), TG_OK, "zero parent id ignored");
    ok(memcmp(tc.span_id, tp_span_bytes, 8) == 0, "zero parent id ignored");

    /* valid members with different trace ids: a new trace */
    l[0] = "ff-" TP_TRACE "-" TP_SPAN "-01," TP_VALID
           ",00-11111111111111111111111111111111-" TP_SPAN "-01";
    memset(&tc, 0xa5, sizeof(tc));
    is_int(extract(l, 1, &tc, &ndup), TG_DECLINED,
           "invalid, then two valid with different trace ids: declined");
    is_int(ndup, 3,
           "invalid, then two valid with different trace ids: declined");
    ok(!tc.valid, "context zeroed");
    is_int(tc.trace_id[0], 0, "context zeroed");
    l[0] = "00-11111111111111111111111111111111-" TP_SPAN "-01";
    l[1] = "garbage";
    l[2] = TP_VALID;
    is_int(extract(l, 3, &tc, &ndup), TG_DECLINED,
           "different trace ids on lines around an invalid one: declined");
    is_int(ndup, 3,
           "different trace ids on lines around an invalid one: declined");

    /* W3C test_traceparent_duplicated */
    l[0] = "00-12345678901234567890123456789011-1234567890123456-01";
    l[1] = "00-12345678901234567890123456789012-1234567890123456-01";
    ok(extract(l, 2, &tc, &ndup) == TG_DECLINED,
       "test_traceparent_duplicated: declined");
}


int
main(void)
{
    test_valid();
    test_invalid();
    test_ows();
    test_future_version();
    test_format();
    test_extract();
    test_extract_invalid_members();
    return done_testing();
}
