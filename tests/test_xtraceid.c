#include <tg_config.h>
#include <tg_core.h>
#include <tg_trace.h>
#include "tap.h"

/* X-Trace-ID: extraction from header lines, the three generated formats. */

static const u_char  xid_trace[16] = {
    0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd,
    0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c
};


static int
xid(const char **lines, size_t n, tg_str_t *out)
{
    size_t    i;
    tg_str_t  l[4];

    for (i = 0; i < n; i++) {
        l[i].data = (u_char *) lines[i];
        l[i].len = strlen(lines[i]);
    }
    return tg_trace_xid_extract(l, n, out);
}


static int
xid1(const char *line, tg_str_t *out)
{
    return xid(&line, 1, out);
}


static int
all_in(const u_char *p, size_t n, const char *set)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (p[i] == '\0' || strchr(set, p[i]) == NULL) {
            return 0;
        }
    }
    return 1;
}


static void
test_extract(void)
{
    tg_str_t     out;
    const char  *l[3], *line;
    char         buf[200];

    line = "req-42";
    ok(xid1(line, &out) == TG_OK, "plain value accepted");
    is_mem(out.data, out.len, "req-42", "value returned");
    ok(out.data == (u_char *) line, "points into the input");

    ok(xid1("  abc  ", &out) == TG_OK, "OWS around accepted");
    is_mem(out.data, out.len, "abc", "OWS trimmed");
    ok(xid1("abc, def", &out) == TG_OK, "comma-joined list");
    is_mem(out.data, out.len, "abc", "first member taken");
    ok(xid1("abc,abc", &out) == TG_OK, "duplicated value");
    is_mem(out.data, out.len, "abc", "duplicate collapsed to one");
    ok(xid1(", def", &out) == TG_OK, "empty first member");
    is_mem(out.data, out.len, "def", "first non-empty member taken");
    ok(xid1(" ,\t, x1 ,y", &out) == TG_OK, "several empty members");
    is_mem(out.data, out.len, "x1", "first non-empty of several");

    l[0] = "";
    l[1] = "second";
    ok(xid(l, 2, &out) == TG_OK, "empty first line");
    is_mem(out.data, out.len, "second", "second line used");
    l[0] = " , ";
    l[1] = "z,w";
    l[2] = "q";
    ok(xid(l, 3, &out) == TG_OK, "blank first line, list in second");
    is_mem(out.data, out.len, "z", "first member of the second line");
    l[0] = "one";
    l[1] = "two";
    ok(xid(l, 2, &out) == TG_OK, "repeated lines");
    is_mem(out.data, out.len, "one", "first line wins");

    ok(xid1("req-42_a.b:c-AZaz09", &out) == TG_OK, "[A-Za-z0-9._:-]");
    {
        int   b, bad;
        char  v[4];

        /* each byte inside a value: accepted exactly when in the set */
        bad = 0;
        for (b = 1; b < 256; b++) {
            if (b == ',') {
                continue;
            }
            v[0] = 'a';
            v[1] = (char) b;
            v[2] = 'z';
            v[3] = '\0';
            if ((xid1(v, &out) == TG_OK)
                != (isalnum(b) || b == '.' || b == '_' || b == ':'
                    || b == '-'))
            {
                printf("# byte 0x%02x\n", b);
                bad++;
            }
        }
        ok(bad == 0, "a byte is accepted exactly when in [A-Za-z0-9._:-]");
    }
    line = "a\"b<script>";
    ok(xid1(line, &out) == TG_ERROR, "quote and angle brackets refused");
    ok(out.data == (u_char *) line,
       "the refused value is returned for the span");
    ok(out.len == strlen(line), "the refused value is returned for the span");

    memset(buf, 'a', 128);
    buf[128] = '\0';
    is_int(xid1(buf, &out), TG_OK, "128 bytes accepted");
    is_int(out.len, 128, "128 bytes accepted");
    buf[128] = 'a';
    buf[129] = '\0';
    is_int(xid1(buf, &out), TG_ERROR, "129 bytes rejected");
    is_int(out.len, 129, "129 bytes rejected");
    snprintf(buf, sizeof(buf), "  %0128d  ", 0);
    is_int(xid1(buf, &out), TG_OK, "128 bytes with OWS accepted");
    is_int(out.len, 128, "128 bytes with OWS accepted");

    ok(xid1("a b", &out) == TG_ERROR, "inner space rejected");
    ok(xid1("a\tb", &out) == TG_ERROR, "inner tab rejected");
    ok(xid1("\x01" "abc", &out) == TG_ERROR, "control char rejected");
    ok(xid1("abc\r\nX-Evil: 1", &out) == TG_ERROR, "CRLF rejected");
    ok(xid1("ab\x7f", &out) == TG_ERROR, "DEL rejected");
    ok(xid1("caf\xc3\xa9", &out) == TG_ERROR, "non-ASCII rejected");
    ok(xid1("a\x01,b", &out) == TG_ERROR,
       "invalid first member: refused, later ones not tried");
    ok(xid1("", &out) == TG_DECLINED, "empty header");
    ok(xid1(" , ,", &out) == TG_DECLINED, "only empty members");
    ok(xid(l, 0, &out) == TG_DECLINED, "no lines");
}


static void
test_generate(void)
{
    u_char    buf[TG_TRACE_XID_MAX + 1], id[16];
    size_t    n;
    int       i, good;
    tg_str_t  name;

    memset(buf, 'X', sizeof(buf));
    n = tg_trace_xid_generate(buf, TG_TRACE_XID_HEX, xid_trace, 0);
    is_int(n, 32, "hex: 32 chars");
    is_mem(buf, n, "0af7651916cd43dd8448eb211c80319c", "hex is the trace id");
    ok(buf[32] == 'X', "hex: nothing past the length");

    n = tg_trace_xid_generate(buf, TG_TRACE_XID_UUID, xid_trace, 0);
    is_int(n, 36, "uuid: 36 chars");
    is_mem(buf, n, "0af76519-16cd-43dd-8448-eb211c80319c",
           "uuid from the trace id (bits already v4/variant 10)");

    memset(id, 0xff, 16);
    n = tg_trace_xid_generate(buf, TG_TRACE_XID_UUID, id, 0);
    is_mem(buf, n, "ffffffff-ffff-4fff-bfff-ffffffffffff",
           "uuid: version nibble and variant bits forced (all ones)");
    memset(id, 0, 16);
    n = tg_trace_xid_generate(buf, TG_TRACE_XID_UUID, id, 0);
    is_mem(buf, n, "00000000-0000-4000-8000-000000000000",
           "uuid: version nibble and variant bits forced (all zeros)");

    good = 1;
    for (i = 0; i < 1000; i++) {
        tg_random_trace_id(id);
        n = tg_trace_xid_generate(buf, TG_TRACE_XID_UUID, id, 0);
        if (n != 36 || buf[8] != '-' || buf[13] != '-' || buf[18] != '-'
            || buf[23] != '-' || buf[14] != '4'
            || strchr("89ab", buf[19]) == NULL
            || !all_in(buf, 8, "0123456789abcdef")
            || !all_in(buf + 9, 4, "0123456789abcdef")
            || !all_in(buf + 14, 4, "0123456789abcdef")
            || !all_in(buf + 19, 4, "0123456789abcdef")
            || !all_in(buf + 24, 12, "0123456789abcdef"))
        {
            good = 0;
        }
    }
    ok(good, "1000 random uuids: layout, lowercase, version 4, variant");

    n = tg_trace_xid_generate(buf, TG_TRACE_XID_TIME, xid_trace,
                              1779377400ULL * 1000000000ULL + 999999999);
    is_int(n, 31, "time: 31 chars");
    is_mem(buf, n, "trace-20260521T153000Z-1c80319c",
           "time: UTC seconds, last 8 hex of the trace id");
    n = tg_trace_xid_generate(buf, TG_TRACE_XID_TIME, xid_trace,
                              1709251199ULL * 1000000000ULL);
    is_mem(buf, n, "trace-20240229T235959Z-1c80319c", "time: leap day");
    n = tg_trace_xid_generate(buf, TG_TRACE_XID_TIME, xid_trace, 0);
    is_mem(buf, n, "trace-19700101T000000Z-1c80319c", "time: epoch");
    tg_random_trace_id(id);
    n = tg_trace_xid_generate(buf, TG_TRACE_XID_TIME, id, tg_time_now_ns());
    is_int(n, 31, "time now: layout and charset");
    ok(memcmp(buf, "trace-", 6) == 0, "time now: layout and charset");
    is_int(buf[14], 'T', "time now: layout and charset");
    is_int(buf[21], 'Z', "time now: layout and charset");
    is_int(buf[22], '-', "time now: layout and charset");
    ok(all_in(buf + 6, 8, "0123456789"), "time now: layout and charset");
    ok(all_in(buf + 15, 6, "0123456789"), "time now: layout and charset");
    ok(all_in(buf + 23, 8, "0123456789abcdef"), "time now: layout and charset");

    n = tg_trace_xid_generate(buf, 42, xid_trace, 0);
    is_mem(buf, n, "0af7651916cd43dd8448eb211c80319c",
           "unknown format: hex");

    tg_str_set(&name, "hex");
    is_int(tg_trace_xid_format_parse(&name), TG_TRACE_XID_HEX, "name hex");
    tg_str_set(&name, "uuid");
    is_int(tg_trace_xid_format_parse(&name), TG_TRACE_XID_UUID, "name uuid");
    tg_str_set(&name, "TIME");
    is_int(tg_trace_xid_format_parse(&name), TG_TRACE_XID_TIME,
           "name TIME (case-insensitive)");
    tg_str_set(&name, "guid");
    is_int(tg_trace_xid_format_parse(&name), TG_ERROR, "name guid: error");
    tg_str_set(&name, "");
    is_int(tg_trace_xid_format_parse(&name), TG_ERROR, "empty name: error");
}


int
main(void)
{
    test_extract();
    test_generate();
    return done_testing();
}
