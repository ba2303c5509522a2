#include <tg_config.h>
#include <tg_core.h>
#include "tap.h"

/*
 * tg_json_escape: the one policy for ill-formed UTF-8 (U+FFFD for each
 * byte, as tg_utf8_sanitize), the ASCII spelling of each writer's flags,
 * and where a cut output stops.
 */

#define FFFD  "\xef\xbf\xbd"

/* the flags of the writers (access log json, OTLP/JSON, the trace API) */
#define AL    (TG_JSON_SHORT_NRT | TG_JSON_SHORT_BF | TG_JSON_UPPER_HEX)
#define OTLP  (TG_JSON_SHORT_NRT | TG_JSON_NUL_BAD)
#define TR    TG_JSON_RAW_DEL

static u_char  out[4096];
static size_t  outlen;


static const char *
esc(const char *s, size_t n, unsigned flags)
{
    u_char    *p;
    unsigned   t;

    t = 0;
    p = tg_json_escape(out, out + sizeof(out) - 1, (const u_char *) s, n,
                       flags, &t);
    outlen = (size_t) (p - out);
    *p = '\0';
    return t ? "(truncated)" : (const char *) out;
}


/* Bytes 0x00-0x7f each alone, as the reference for flags writes them. */
static size_t
ref_ascii(u_char *o, u_char c, unsigned flags)
{
    const char  *hex;

    hex = (flags & TG_JSON_UPPER_HEX) ? "0123456789ABCDEF"
                                      : "0123456789abcdef";
    if (c == '"' || c == '\\') {
        o[0] = '\\';
        o[1] = c;
        return 2;
    }
    if ((flags & TG_JSON_SHORT_NRT) && (c == '\n' || c == '\r' || c == '\t')) {
        o[0] = '\\';
        o[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        return 2;
    }
    if ((flags & TG_JSON_SHORT_BF) && (c == '\b' || c == '\f')) {
        o[0] = '\\';
        o[1] = c == '\b' ? 'b' : 'f';
        return 2;
    }
    if (c == 0 && (flags & TG_JSON_NUL_BAD)) {
        memcpy(o, FFFD, 3);
        return 3;
    }
    if (c < 0x20 || (c == 0x7f && !(flags & TG_JSON_RAW_DEL))) {
        memcpy(o, "\\u00", 4);
        o[4] = (u_char) hex[c >> 4];
        o[5] = (u_char) hex[c & 0xf];
        return 6;
    }
    o[0] = c;
    return 1;
}


int
main(void)
{
    int            bad;
    size_t         i, n, room, k;
    u_char        *p;
    unsigned       t, f, flags[3] = { AL, OTLP, TR };
    u_char         want[1024], src[256];
    const char    *s;

    /* ASCII: every byte, under each writer's flags */
    for (f = 0; f < 3; f++) {
        for (i = 0, n = 0; i < 128; i++) {
            src[i] = (u_char) i;
            n += ref_ascii(want + n, (u_char) i, flags[f]);
        }
        want[n] = '\0';
        esc((char *) src, 128, flags[f]);
        is_mem(out, outlen, (char *) want, "every ASCII byte, flags %u",
               flags[f]);
    }
    is_str(esc("a\"b\\c\r\n\t\b\f\x01\x7f", 12, AL),
           "a\\\"b\\\\c\\r\\n\\t\\b\\f\\u0001\\u007F", "access log spelling");
    is_str(esc("a\"b\\c\r\n\t\b\f\x01\x7f", 12, OTLP),
           "a\\\"b\\\\c\\r\\n\\t\\u0008\\u000c\\u0001\\u007f",
           "OTLP/JSON spelling");
    is_str(esc("a\"b\\c\r\n\t\b\f\x01\x7f", 12, TR),
           "a\\\"b\\\\c\\u000d\\u000a\\u0009\\u0008\\u000c\\u0001\x7f",
           "trace API spelling");
    esc("a\0b", 3, OTLP);
    is_mem(out, outlen, "a" FFFD "b", "NUL is ill-formed for OTLP");
    is_str(esc("a\0b", 3, AL), "a\\u0000b", "NUL is \\u0000 otherwise");

    /* well-formed UTF-8 is copied, under every flag */
    s = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xed\x9f\xbf";
    for (f = 0; f < 3; f++) {
        is_str(esc(s, strlen(s), flags[f]), s, "valid UTF-8 copied, flags %u",
               flags[f]);
    }

    /* the one policy: U+FFFD for each byte not in a well-formed sequence */
    for (f = 0; f < 3; f++) {
        is_str(esc("\xc0\x80", 2, flags[f]), FFFD FFFD,
               "overlong: U+FFFD per byte, flags %u", flags[f]);
        is_str(esc("\xed\xa0\x80", 3, flags[f]), FFFD FFFD FFFD,
               "surrogate: U+FFFD per byte, flags %u", flags[f]);
        is_str(esc("\xf4\x90\x80\x80", 4, flags[f]), FFFD FFFD FFFD FFFD,
               "above U+10FFFF: U+FFFD per byte, flags %u", flags[f]);
        is_str(esc("a\xe2\x82(\xff\xc3\xa9\x80", 8, flags[f]),
               "a" FFFD FFFD "(" FFFD "\xc3\xa9" FFFD,
               "truncated sequence, stray bytes, flags %u", flags[f]);
    }

    /* every byte 0x80-0xff alone */
    bad = 0;
    for (i = 0x80; i < 0x100; i++) {
        src[0] = (u_char) i;
        esc((char *) src, 1, AL);
        bad += outlen != 3 || memcmp(out, FFFD, 3) != 0;
    }
    ok(bad == 0, "each byte from 0x80 alone is U+FFFD");

    /* at most TG_JSON_ESCAPE_MAX bytes out for a byte in */
    for (i = 0; i < 256; i++) {
        src[i] = (u_char) i;
    }
    bad = 0;
    for (f = 0; f < 3; f++) {
        t = 0;
        p = tg_json_escape(out, out + TG_JSON_ESCAPE_MAX * 256, src, 256,
                           flags[f], &t);
        bad += t != 0 || p > out + TG_JSON_ESCAPE_MAX * 256;
    }
    ok(bad == 0, "TG_JSON_ESCAPE_MAX bytes per byte are enough");

    /* cut: whole pieces only, as far as they fit */
    s = "ab\"cd\xc3\xa9\xff\x01";
    n = strlen(s);
    esc(s, n, AL);
    memcpy(want, out, outlen);
    k = outlen;
    is_mem(want, k, "ab\\\"cd\xc3\xa9" FFFD "\\u0001", "the whole of it");
    bad = 0;
    for (room = 0; room < k; room++) {
        static const size_t  ends[] = { 0, 2, 4, 6, 8, 11, 17 };
        size_t               e, j;

        t = 0;
        p = tg_json_escape(out, out + room, (const u_char *) s, n, AL, &t);
        for (e = 0, j = 0; j < sizeof(ends) / sizeof(ends[0]); j++) {
            if (ends[j] <= room) {
                e = ends[j];
            }
        }
        bad += t != 1 || (size_t) (p - out) != e || memcmp(out, want, e) != 0;
    }
    t = 0;
    p = tg_json_escape(out, out + k, (const u_char *) s, n, AL, &t);
    bad += t != 0 || (size_t) (p - out) != k;
    ok(bad == 0, "a cut output ends after the last piece that fits");

    return done_testing();
}
