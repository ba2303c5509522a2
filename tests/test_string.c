#include <tg_config.h>
#include <tg_core.h>
#include "tap.h"

int
main(void)
{
    tg_str_t  s = tg_string("  \tvalue \t"), rest, tok;
    u_char    buf[16], bytes[4], num[24], *p;
    int64_t   v;

    tg_str_trim_ows(&s);
    is_mem(s.data, s.len, "value", "OWS trimmed both sides");

    p = tg_utoa(num, 0);
    is_mem(num, (size_t) (p - num), "0", "utoa 0");
    p = tg_utoa(num, 404);
    is_mem(num, (size_t) (p - num), "404", "utoa 404");
    p = tg_utoa(num, UINT64_MAX);
    is_mem(num, (size_t) (p - num), "18446744073709551615", "utoa max");
    {
        int       bad;
        char      want[24];
        uint64_t  p10, d, x;

        /* 0..10^5 in full, then either side of every power of ten */
        bad = 0;
        for (x = 0; x <= 100000 && !bad; x++) {
            p = tg_utoa(num, x);
            snprintf(want, sizeof(want), "%" PRIu64, x);
            bad = (size_t) (p - num) != strlen(want)
                  || memcmp(num, want, strlen(want)) != 0;
        }
        for (p10 = 10; p10 <= 10000000000000000000ULL && !bad; p10 *= 10) {
            for (d = 0; d < 3 && !bad; d++) {
                x = p10 - 1 + d;
                p = tg_utoa(num, x);
                snprintf(want, sizeof(want), "%" PRIu64, x);
                bad = (size_t) (p - num) != strlen(want)
                      || memcmp(num, want, strlen(want)) != 0;
            }
            if (p10 > UINT64_MAX / 10) {
                break;
            }
        }
        ok(!bad, "utoa 0..100000 and around every power of ten%s%s",
           bad ? ", failed at " : "", bad ? want : "");
    }
    p = tg_cpymem_max(buf, buf + 4, "abc", 3);
    p = tg_cpymem_max(p, buf + 4, "def", 3);
    is_mem(buf, (size_t) (p - buf), "abcd", "cpymem_max stops at last");
    p = tg_cpymem_max(p, buf + 4, "x", 1);
    ok(p == buf + 4, "cpymem_max at last copies nothing");

    tg_hex_encode(buf, (const u_char *) "\x0a\xf7\x00\xff", 4);
    is_mem(buf, 8, "0af700ff", "hex encode lowercase");
    {
        /* every byte value, at every offset of the 4-byte groups and of
           the byte-wise tail, against the obvious encoding */
        u_char  all[259], text[2 * 259 + 1], want[2 * 259 + 1];
        size_t  i, len, bad;

        for (i = 0; i < sizeof(all); i++) {
            all[i] = (u_char) (i * 7 + 3);
        }
        bad = 0;
        for (len = 0; len <= sizeof(all); len++) {
            for (i = 0; i < len; i++) {
                sprintf((char *) want + 2 * i, "%02x", all[i]);
            }
            if (tg_hex_encode(text, all, len) != text + 2 * len
                || memcmp(text, want, 2 * len) != 0)
            {
                bad++;
            }
        }
        ok(bad == 0, "hex encode: every length 0..259, all byte values");
    }
    is_int(tg_hex_decode_lc(bytes, (const u_char *) "0af700ff", 4), TG_OK,
           "hex decode lowercase");
    ok(memcmp(bytes, "\x0a\xf7\x00\xff", 4) == 0, "hex decode lowercase");
    ok(tg_hex_decode_lc(bytes, (const u_char *) "0AF700FF", 4) == TG_ERROR,
       "uppercase hex rejected");

    tg_str_t  a = tg_string("Content-Length"), b = tg_string("content-length");
    ok(tg_str_caseeq(&a, &b), "case-insensitive compare");
    ok(!tg_str_eq(&a, &b), "case-sensitive compare differs");

    tg_str_t  t1 = tg_string("30s"), t2 = tg_string("250ms"),
              t3 = tg_string("2m"), t4 = tg_string("5x"), t5 = tg_string("");
    is_int(tg_parse_time_ms(&t1, &v), TG_OK, "30s");
    is_int(v, 30000, "30s");
    is_int(tg_parse_time_ms(&t2, &v), TG_OK, "250ms");
    is_int(v, 250, "250ms");
    is_int(tg_parse_time_ms(&t3, &v), TG_OK, "2m");
    is_int(v, 120000, "2m");
    ok(tg_parse_time_ms(&t4, &v) == TG_ERROR, "5x rejected");
    ok(tg_parse_time_ms(&t5, &v) == TG_ERROR, "empty time rejected");

    tg_str_t  z1 = tg_string("16k"), z2 = tg_string("1m"),
              z3 = tg_string("12"), z4 = tg_string("1kb");
    is_int(tg_parse_size(&z1, &v), TG_OK, "16k");
    is_int(v, 16384, "16k");
    is_int(tg_parse_size(&z2, &v), TG_OK, "1m");
    is_int(v, 1048576, "1m");
    is_int(tg_parse_size(&z3, &v), TG_OK, "12");
    is_int(v, 12, "12");
    ok(tg_parse_size(&z4, &v) == TG_ERROR, "1kb rejected");
    ok(tg_atoi((const u_char *) "99999999999999999999", 20, &v) == TG_ERROR,
       "overflow rejected");

    rest = (tg_str_t) tg_string("a, \"b,c\" ,, d");
    ok(tg_str_next_token(&rest, ',', &tok), "token a");
    is_int(tok.len, 1, "token a");
    ok(tg_str_next_token(&rest, ',', &tok), "quoted token");
    is_mem(tok.data, tok.len, "\"b,c\"", "comma inside quotes kept");
    ok(tg_str_next_token(&rest, ',', &tok), "empty member");
    is_int(tok.len, 0, "empty member");
    ok(tg_str_next_token(&rest, ',', &tok), "last token");
    is_mem(tok.data, tok.len, "d", "last token trimmed");
    ok(!tg_str_next_token(&rest, ',', &tok), "end of list");

    return done_testing();
}
