#include <tg_config.h>
#include <tg_core.h>
#include <tg_span.h>
#include "tap.h"

/*
 * tg_span attributes: the bytes they are kept as (OTLP Span.attributes
 * fields), the literal-key forms against the checked ones, repair of keys
 * and values, the limits, and tg_span_attr_next on cut bytes.
 */

static const u_char  test_attr_str[] = {
    0x4a, 0x0e,                          /* Span.attributes, 14 bytes */
    0x0a, 0x08, 'u', 'r', 'l', '.', 'p', 'a', 't', 'h', /* key */
    0x12, 0x02, 0x0a, 0x00               /* string_value "" */
};

static const u_char  test_attr_int[] = {
    0x4a, 0x10,                          /* 16 bytes */
    0x0a, 0x01, 'n',
    0x12, 0x0b, 0x18,                    /* int_value -1: 10 bytes */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
};

static const u_char  test_attr_bool[] = {
    0x4a, 0x04, 0x12, 0x02, 0x10, 0x01   /* no key, bool_value true */
};


/*
 * The inline forms (tg_span_add_strk, tg_span_add_intk) against the
 * general path (tg_span_add_string, tg_span_add_varint with a checked
 * key, which never takes the inline one): the same bytes, the same counts
 * and the same answer, across the inline form's bounds (key length, value
 * length, non-ASCII bytes, value limit, count limit, room).
 */
static int
test_same(tg_span_t *x, tg_span_t *y, int rx, int ry)
{
    return rx == ry && x->attr_len == y->attr_len && x->nattrs == y->nattrs
           && x->dropped_attrs == y->dropped_attrs
           && memcmp(x->attrs, y->attrs, x->attr_len) == 0;
}


static int
test_inline_paths(void)
{
    int             rx, ry;
    char            key[100];
    size_t          k, n, fill, j;
    u_char          v[140];
    tg_span_t       x, y;
    unsigned        lim, bad;

    static const size_t   klens[] = { 1, 2, 31, 32, 63, 64, 99 };
    static const int64_t  nums[] = { 0, 1, 127, 128, 16383, 16384, -1,
                                     INT64_MAX, INT64_MIN };

    memset(key, 'k', sizeof(key));
    for (n = 0; n < sizeof(v); n++) {
        v[n] = (u_char) ('a' + n % 26);
    }
    for (k = 0; k < sizeof(klens) / sizeof(klens[0]); k++) {
        for (n = 0; n < sizeof(v); n++) {
            for (bad = 0; bad < 3; bad++) {
                for (lim = 0; lim < 2; lim++) {
                    tg_span_init(&x);
                    tg_span_init(&y);
                    x.attr_value_limit = y.attr_value_limit =
                        (uint16_t) (lim ? 40 : 0);
                    if (bad && n) {
                        v[n - 1] = bad == 1 ? 0xc3 : 0x00;
                    }
                    rx = tg_span_add_strk(&x, key, klens[k], v, n);
                    ry = tg_span_add_string(&y, key, klens[k], 1, v, n);
                    if (n) {
                        v[n - 1] = (u_char) ('a' + (n - 1) % 26);
                    }
                    if (!test_same(&x, &y, rx, ry)) {
                        printf("# string: key %zu, value %zu, bad %u, limit %u\n",
                             klens[k], n, bad, lim);
                        return 0;
                    }
                }
            }
        }
        for (n = 0; n < sizeof(nums) / sizeof(nums[0]); n++) {
            tg_span_init(&x);
            tg_span_init(&y);
            rx = tg_span_add_intk(&x, key, klens[k], nums[n]);
            ry = tg_span_add_varint(&y, key, klens[k], 1, 0x18,
                                    (uint64_t) nums[n]);
            rx += 2 * (tg_span_add_boolk(&x, key, klens[k], (int) n)
                       == TG_OK);
            ry += 2 * (tg_span_add_varint(&y, key, klens[k], 1, 0x10, n != 0)
                       == TG_OK);
            if (!test_same(&x, &y, rx, ry)) {
                printf("# int/bool: key %zu, value %lld\n", klens[k],
                     (long long) nums[n]);
                return 0;
            }
        }
    }

    /* the count limit and every amount of room left */
    for (fill = 0; fill < 120; fill++) {
        tg_span_init(&x);
        tg_span_init(&y);
        x.attr_count_limit = y.attr_count_limit = 200;
        for (j = 0; j + 40 < TG_SPAN_ATTR_BYTES - fill; j += 40) {
            tg_span_add_string(&x, key, 30, 1, v, 34);
            tg_span_add_string(&y, key, 30, 1, v, 34);
        }
        while (x.attr_len + 8 + fill < TG_SPAN_ATTR_BYTES) {
            tg_span_add_string(&x, key, 1, 1, v, 0);
            tg_span_add_string(&y, key, 1, 1, v, 0);
        }
        for (n = 0; n < 3; n++) {
            rx = tg_span_add_strk(&x, key, 5, v, fill / 3 + n);
            ry = tg_span_add_string(&y, key, 5, 1, v, fill / 3 + n);
            rx += 2 * (tg_span_add_intk(&x, key, 5, 300) == TG_OK);
            ry += 2 * (tg_span_add_varint(&y, key, 5, 1, 0x18, 300) == TG_OK);
            if (!test_same(&x, &y, rx, ry)) {
                printf("# room: fill %zu, value %zu\n", fill, fill / 3 + n);
                return 0;
            }
        }
    }
    for (lim = 1; lim < 4; lim++) {
        tg_span_init(&x);
        tg_span_init(&y);
        x.attr_count_limit = y.attr_count_limit = (uint16_t) lim;
        for (n = 0; n < 5; n++) {
            rx = tg_span_str_lit(&x, "k", v, 3);
            ry = tg_span_add_string(&y, "k", 1, 1, v, 3);
            if (!test_same(&x, &y, rx, ry)) {
                printf("# count limit %u, attribute %zu\n", lim, n);
                return 0;
            }
        }
    }
    return 1;
}


int
main(void)
{
    size_t          off, i, n;
    tg_span_t       a, b;
    tg_span_attr_t  at;
    u_char          v[300];

    tg_span_init(&a);
    tg_span_str_lit(&a, "url.path", (u_char *) "", 0);
    is_int(a.attr_len, sizeof(test_attr_str),
           "a string attribute's bytes (an empty value is written)");
    ok(memcmp(a.attrs, test_attr_str, sizeof(test_attr_str)) == 0,
       "a string attribute's bytes (an empty value is written)");
    tg_span_init(&a);
    tg_span_int_lit(&a, "n", -1);
    is_int(a.attr_len, sizeof(test_attr_int),
           "an int attribute's bytes (negative: 10-byte varint)");
    ok(memcmp(a.attrs, test_attr_int, sizeof(test_attr_int)) == 0,
       "an int attribute's bytes (negative: 10-byte varint)");
    tg_span_init(&a);
    tg_span_add_bool(&a, "", 7);
    is_int(a.attr_len, sizeof(test_attr_bool),
           "a bool attribute with an empty key: no key field, value 1");
    ok(memcmp(a.attrs, test_attr_bool, sizeof(test_attr_bool)) == 0,
       "a bool attribute with an empty key: no key field, value 1");

    /* an empty value may come as NULL (an absent header, an empty query) */
    tg_span_init(&a);
    ok(tg_span_str_lit(&a, "url.path", NULL, 0) == TG_OK,
       "a NULL empty value is written as \"\"");
    is_int(a.attr_len, sizeof(test_attr_str),
           "a NULL empty value is written as \"\"");
    ok(memcmp(a.attrs, test_attr_str, sizeof(test_attr_str)) == 0,
       "a NULL empty value is written as \"\"");

    /* the literal forms write what the checked ones write */
    tg_span_init(&a);
    tg_span_init(&b);
    tg_span_str_lit(&a, "http.request.method", (u_char *) "GET", 3);
    tg_span_int_lit(&a, "http.response.status_code", 200);
    tg_span_bool_lit(&a, "tracegate.traceparent_repaired", 1);
    tg_span_add_str(&b, "http.request.method", (u_char *) "GET", 3);
    tg_span_add_int(&b, "http.response.status_code", 200);
    tg_span_add_bool(&b, "tracegate.traceparent_repaired", 1);
    is_int(a.nattrs, 3, "literal keys give the same bytes as checked keys");
    ok(a.attr_len == b.attr_len,
       "literal keys give the same bytes as checked keys");
    ok(memcmp(a.attrs, b.attrs, a.attr_len) == 0,
       "literal keys give the same bytes as checked keys");
    off = 0;
    n = 0;
    while (tg_span_attr_next(&a, &off, &at)) {
        n++;
    }
    is_int(n, 3, "all three read back");
    ok(off == a.attr_len, "all three read back");
    ok(tg_span_attr_find(&a, "http.response.status_code", &at),
       "found by key: int 200");
    is_int(at.type, TG_SPAN_ATTR_INT, "found by key: int 200");
    is_int(at.num, 200, "found by key: int 200");
    ok(tg_span_attr_find(&a, "tracegate.traceparent_repaired", &at),
       "found by key: bool true");
    is_int(at.type, TG_SPAN_ATTR_BOOL, "found by key: bool true");
    is_int(at.num, 1, "found by key: bool true");
    ok(!tg_span_attr_find(&a, "http.request", &at), "a prefix is no match");

    /* repair when added: the key too; NUL is replaced like a bad byte */
    tg_span_init(&a);
    tg_span_add_str(&a, "k\xc3", (u_char *) "a\0b\xe2\x82", 5);
    off = 0;
    ok(tg_span_attr_next(&a, &off, &at), "a repaired attribute reads back");
    is_mem(at.key.data, at.key.len, "k\xef\xbf\xbd", "key repaired");
    is_mem(at.str.data, at.str.len, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd",
           "value repaired: NUL and a cut sequence");

    /* value limit: cut first, then repaired (a cut sequence) */
    tg_span_init(&a);
    a.attr_value_limit = 2;
    tg_span_add_str(&a, "k", (u_char *) "\xc3\xa9\xc3\xa9", 4);
    tg_span_add_str(&a, "j", (u_char *) "a\xc3\xa9", 3);
    tg_span_attr_find(&a, "k", &at);
    is_mem(at.str.data, at.str.len, "\xc3\xa9", "value cut at the limit");
    tg_span_attr_find(&a, "j", &at);
    is_mem(at.str.data, at.str.len, "a\xef\xbf\xbd",
           "a sequence cut by the limit is repaired");

    /* count limit and keys over 255 bytes */
    tg_span_init(&a);
    a.attr_count_limit = 2;
    for (i = 0; i < 4; i++) {
        tg_span_int_lit(&a, "n", (int64_t) i);
    }
    is_int(a.nattrs, 2, "count limit: 2 kept, 2 dropped");
    is_int(a.dropped_attrs, 2, "count limit: 2 kept, 2 dropped");
    tg_span_init(&a);
    memset(v, 'k', sizeof(v));
    is_int(tg_span_add_strk(&a, (char *) v, 256, (u_char *) "x", 1),
           TG_DECLINED, "a 256-byte key is dropped, 255 kept");
    is_int(tg_span_add_strk(&a, (char *) v, 255, (u_char *) "x", 1), TG_OK,
           "a 256-byte key is dropped, 255 kept");
    is_int(a.dropped_attrs, 1, "a 256-byte key is dropped, 255 kept");

    /* room: values that do not fit are dropped whole, later ones still fit */
    tg_span_init(&a);
    memset(v, 'v', sizeof(v));
    for (i = 0; tg_span_add_str(&a, "k", v, sizeof(v)) == TG_OK; i++) {
        /* fill */
    }
    /* 1 + 2 field, 1 + 1 + 1 key, 1 + 2 value, 1 + 2 + 300 string */
    is_int(i, TG_SPAN_ATTR_BYTES / 312,
           "%zu 300-byte values fit (312 bytes each)", i);
    is_int(a.dropped_attrs, 1, "%zu 300-byte values fit (312 bytes each)", i);
    n = TG_SPAN_ATTR_BYTES - a.attr_len - 12;
    is_int(tg_span_add_str(&a, "k", v, n + 1), TG_DECLINED,
           "a value that fills the rest exactly is kept, one byte more is not");
    is_int(tg_span_add_str(&a, "k", v, n), TG_OK,
           "a value that fills the rest exactly is kept, one byte more is not");
    is_int(a.attr_len, TG_SPAN_ATTR_BYTES,
           "a value that fills the rest exactly is kept, one byte more is not");

    /* reading stops at bytes it cannot read, never past attr_len */
    tg_span_init(&a);
    tg_span_str_lit(&a, "a", (u_char *) "xyz", 3);
    tg_span_str_lit(&a, "b", (u_char *) "uvw", 3);
    n = a.attr_len;
    for (i = 1; i < n; i++) {
        a.attr_len = (uint16_t) i;
        off = 0;
        while (tg_span_attr_next(&a, &off, &at)) {
            if (at.str.data + at.str.len > a.attrs + i) {
                break;
            }
        }
        if (off > i || (off != 0 && off != n / 2)) {
            break;
        }
    }
    ok(i == n, "cut anywhere, only whole attributes are read (at %zu)", i);
    a.attr_len = (uint16_t) n;
    a.attrs[0] = 0x42;
    off = 0;
    ok(!tg_span_attr_next(&a, &off, &at), "an unknown field stops reading");

    ok(test_inline_paths(), "the inline forms write what the general path "
       "writes, across their bounds");

    return done_testing();
}
