#include <tg_config.h>
#include <tg_core.h>
#include <tg_trace.h>
#include "tap.h"

/*
 * tracestate: W3C Trace Context section 3.3 (the current key grammar, 32
 * members, duplicates, combining lines, truncation) and the expectations of
 * the W3C test harness (test/test.py).
 */

static tg_pool_t  *pool;
static tg_str_t    out;


static int
ts(const char **lines, size_t n, size_t limit)
{
    size_t    i;
    tg_str_t  l[8];

    for (i = 0; i < n; i++) {
        l[i].data = (u_char *) lines[i];
        l[i].len = strlen(lines[i]);
    }
    return tg_trace_tracestate(pool, l, n, limit, &out);
}


static int
ts1(const char *line)
{
    return ts(&line, 1, TG_TRACE_TRACESTATE_LIMIT);
}


static void
accepts(const char *line, const char *want, const char *why)
{
    int  rc;

    rc = ts1(line);
    ok(rc == TG_OK, "accepted: %s", why);
    if (rc == TG_OK) {
        is_mem(out.data, out.len, want, "canonical: %s", why);
    }
}


static void
rejects(const char *line, const char *why)
{
    is_int(ts1(line), TG_DECLINED, "rejected: %s", why);
    is_int(out.len, 0, "rejected: %s", why);
}


/* "k=" followed by n copies of c, into a static buffer slot */
static char *
member(int slot, const char *key, size_t n, char c)
{
    static char  buf[8][600];
    size_t       k;

    k = strlen(key);
    memcpy(buf[slot], key, k);
    buf[slot][k] = '=';
    memset(buf[slot] + k + 1, c, n);
    buf[slot][k + 1 + n] = '\0';
    return buf[slot];
}


static char *
repeat(char *dst, char c, size_t n)
{
    memset(dst, c, n);
    dst[n] = '\0';
    return dst;
}


static void
test_valid(void)
{
    const char  *l[3];

    accepts("rojo=00f067aa0ba902b7", "rojo=00f067aa0ba902b7", "one member");
    accepts("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "two members");
    accepts(" rojo=1 ,\tcongo=2 \t", "rojo=1,congo=2",
            "OWS around members dropped");
    accepts("a_-*/9z=v", "a_-*/9z=v", "simple key with every keychar");
    accepts("fw529a3039@dt=x", "fw529a3039@dt=x", "multi-tenant key");
    accepts("0abc@sys-1_*/=v", "0abc@sys-1_*/=v",
            "tenant starting with a digit, system with keychars");
    accepts("1abc=1", "1abc=1", "key starting with a digit");
    accepts("foo@=1,bar=2", "foo@=1,bar=2",
            "'@' last in a key (test_tracestate_key_illegal_vendor_format)");
    accepts("foo@@=1,bar=2", "foo@@=1,bar=2", "two '@' in a row");
    accepts("a@b@c=1", "a@b@c=1", "two '@' apart");
    accepts("t@1s=1", "t@1s=1", "a digit after '@'");
    accepts("t@_s=1", "t@_s=1", "a keychar after '@'");
    accepts("0@=1", "0@=1", "a digit then '@'");
    accepts("k= v", "k= v", "leading space of a value kept");
    accepts("k=v w", "k=v w", "space inside a value");
    accepts("k=v  ", "k=v", "trailing spaces are OWS, not value");
    accepts("k=!\"#$%&'()*+-./:;<>?@[\\]^_`{|}~",
            "k=!\"#$%&'()*+-./:;<>?@[\\]^_`{|}~",
            "every printable except ',' and '='");

    /* empty members */
    accepts(",,a=1, ,\t,b=2,", "a=1,b=2", "empty members skipped");
    accepts("a=1,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,b=2", "a=1,b=2",
            "many empty members do not count towards 32");

    /* combining lines in order */
    l[0] = "a=1";
    l[1] = "b=2,c=3";
    l[2] = "d=4";
    ok(ts(l, 3, 512) == TG_OK, "three lines combined");
    is_mem(out.data, out.len, "a=1,b=2,c=3,d=4", "combined in order");
    l[0] = "b=2";
    l[1] = "a=1";
    ok(ts(l, 2, 512) == TG_OK, "two lines, reverse keys");
    is_mem(out.data, out.len, "b=2,a=1", "line order kept, not sorted");
    l[0] = "";
    l[1] = " , a=1";
    l[2] = " ";
    ok(ts(l, 3, 512) == TG_OK, "empty lines among valid ones");
    is_mem(out.data, out.len, "a=1", "empty lines ignored");
}


static void
test_keys(void)
{
    char  key[300], m[600];

    /* key = (lcalpha / DIGIT) 0*255(keychar): 256 at most, '@' anywhere */
    repeat(key, 'a', 256);
    snprintf(m, sizeof(m), "%s=v", key);
    ok(ts1(m) == TG_OK, "256-char key accepted");
    repeat(key, 'a', 257);
    snprintf(m, sizeof(m), "%s=v", key);
    rejects(m, "257-char key");
    repeat(key, '9', 256);
    snprintf(m, sizeof(m), "%s=v", key);
    ok(ts1(m) == TG_OK, "256-char key of digits accepted");

    /* no separate tenant (241) and system (14) lengths any more */
    repeat(key, 't', 241);
    snprintf(m, sizeof(m), "%s@sys=v", key);
    ok(ts1(m) == TG_OK, "241 chars before '@' accepted");
    repeat(key, 't', 242);
    snprintf(m, sizeof(m), "%s@sys=v", key);
    ok(ts1(m) == TG_OK, "242 chars before '@' accepted");
    snprintf(m, sizeof(m), "t@%s=v", repeat(key, 's', 15));
    ok(ts1(m) == TG_OK, "15 chars after '@' accepted");
    repeat(key, 't', 252);
    snprintf(m, sizeof(m), "%s@sys=v", key);
    ok(ts1(m) == TG_OK, "256-char key with '@' accepted");
    repeat(key, 't', 253);
    snprintf(m, sizeof(m), "%s@sys=v", key);
    rejects(m, "257-char key with '@'");

    rejects("Rojo=1", "uppercase key");
    rejects("roJo=1", "uppercase inside key");
    rejects("ro.jo=1", "'.' in key");
    rejects("ro jo=1", "space in key");
    rejects("rojo =1", "space before '='");
    rejects("_abc=1", "key starting with '_'");
    rejects("*abc=1", "key starting with '*'");
    rejects("@sys=1", "'@' first");
    rejects("@foo=1,bar=2", "'@' first, next to a valid member");
    rejects("T@s=1", "uppercase before '@'");
    rejects("t@S=1", "uppercase after '@'");
    rejects("t@s.x=1", "'.' after '@'");
    rejects("_t@s=1", "key starting with '_', with '@'");
    rejects("=v", "empty key");
    rejects("ro\x01jo=1", "control character in key");
    rejects("rojo=1,Congo=2", "one bad key spoils the list");
}


static void
test_values(void)
{
    char  m[600];

    rejects("novalue", "member without '='");
    rejects("k=", "empty value (value = 0*255chr nblk-chr)");
    rejects("k=   ", "value of spaces only");
    rejects("k=a=b", "'=' in value");
    rejects("k==", "value '='");
    rejects("k=a\x01", "control character in value");
    rejects("k=a\tb", "tab inside value");
    rejects("k=a\x7f", "DEL in value");
    rejects("k=\xc3\xa9", "non-ASCII in value");
    rejects("a=1,k=", "empty value after a valid member");

    ok(ts1(member(0, "k", 256, 'v')) == TG_OK, "256-char value accepted");
    rejects(member(0, "k", 257, 'v'), "257-char value");
    snprintf(m, sizeof(m), "k=%s", "a b");
    ok(ts1(m) == TG_OK, "inner space accepted");
}


static void
test_counts(void)
{
    char         line[1024], *p;
    int          i;
    const char  *l[2];

    p = line;
    for (i = 0; i < 32; i++) {
        p += sprintf(p, "%sk%d=%d", i ? "," : "", i, i);
    }
    ok(ts1(line) == TG_OK, "32 members accepted");
    ok(out.len == strlen(line), "32 members all kept");
    strcpy(p, ",k32=32");
    rejects(line, "33 members");

    p = line;
    for (i = 0; i < 32; i++) {
        p += sprintf(p, "%sk%d=%d, ,", i ? "," : "", i, i);
    }
    ok(ts1(line) == TG_OK, "32 members with empty ones accepted");

    /* 16 + 17 over two lines */
    p = line;
    for (i = 0; i < 16; i++) {
        p += sprintf(p, "%sa%d=%d", i ? "," : "", i, i);
    }
    l[0] = line;
    l[1] = "b0=0,b1=1,b2=2,b3=3,b4=4,b5=5,b6=6,b7=7,b8=8,b9=9,b10=10,"
           "b11=11,b12=12,b13=13,b14=14,b15=15,b16=16";
    ok(ts(l, 2, 0) == TG_DECLINED, "33 members across two lines rejected");

    /* duplicates count towards the 32 as received */
    p = line;
    for (i = 0; i < 32; i++) {
        p += sprintf(p, "%sk%d=%d", i ? "," : "", i, i);
    }
    strcpy(p, ",k0=again");
    rejects(line, "32 distinct keys and a duplicate: 33 members");
}


/*
 * Duplicated keys (test_tracestate_duplicated_keys): the list is inherited
 * with the first member of each key; later ones with the same key go.
 */
static void
test_duplicates(void)
{
    const char  *l[3];

    accepts("foo=1,foo=1", "foo=1", "identical duplicate: one kept");
    accepts("foo=1,foo=2", "foo=1", "duplicate key: the first kept");
    accepts("a=1,b=2,a=3", "a=1,b=2", "duplicate key after another key");
    accepts("b=0,a=1,a=2,c=3,a=4", "b=0,a=1,c=3",
            "three of one key among others, order kept");
    accepts("t@s=1,t@s=2", "t@s=1", "duplicate key with '@'");
    accepts("foo@=1,foo@=2,bar=3", "foo@=1,bar=3",
            "duplicate key ending in '@'");
    is_int(ts1("t@s=1,t@s2=2,t2@s=3"), TG_OK,
           "similar but distinct keys all kept");
    is_int(out.len, 19, "similar but distinct keys all kept");
    is_int(ts1("ab=1,abc=2,a=3"), TG_OK, "prefix keys are distinct");
    is_int(out.len, 14, "prefix keys are distinct");

    l[0] = "a=1,b=2";
    l[1] = "c=3,a=4";
    ok(ts(l, 2, 512) == TG_OK, "duplicate key across lines accepted");
    is_mem(out.data, out.len, "a=1,b=2,c=3", "across lines: the first kept");
    l[0] = "foo=1";
    l[1] = "foo=1";
    ok(ts(l, 2, 512) == TG_OK, "identical lines accepted");
    is_mem(out.data, out.len, "foo=1", "identical lines: one kept");

    /* a duplicate is still a member: an invalid one spoils the list */
    rejects("foo=1,foo=", "invalid duplicate (empty value)");
    rejects("foo=1,foo=a=b", "invalid duplicate ('=' in value)");
    l[0] = "foo=1";
    l[1] = "Foo=2,foo=3";
    ok(ts(l, 2, 512) == TG_DECLINED, "invalid key beside a duplicate");
}


/*
 * The harness's key vectors (test_tracestate_key_length_limit and
 * _illegal_vendor_format): "foo=1" in one line, the key under test in a
 * second one; both members pass, or the whole list is dropped.
 */
static void
test_harness_keys(void)
{
    char         key[300], m[600];
    const char  *l[2];

    l[0] = "foo=1";
    l[1] = m;

    snprintf(m, sizeof(m), "%s=1", repeat(key, 'z', 256));
    is_int(ts(l, 2, 512), TG_OK, "foo=1 + 256 x z: both passed");
    is_int(out.len, 5 + 1 + 258, "foo=1 + 256 x z: both passed");
    snprintf(m, sizeof(m), "%s=1", repeat(key, 'z', 257));
    ok(ts(l, 2, 512) == TG_DECLINED, "foo=1 + 257 x z: list dropped");

    snprintf(m, sizeof(m), "%s@v=1", repeat(key, 't', 242));
    ok(ts(l, 2, 512) == TG_OK, "foo=1 + 242 x t @v: accepted");
    if (is_int(out.len, 5 + 1 + 246,
               "foo=1 + 242 x t @v: both members passed"))
    {
        ok(memcmp(out.data, "foo=1,", 6) == 0, "foo=1 + 242 x t @v: foo first");
        ok(memcmp(out.data + 6, m, 246) == 0, "foo=1 + 242 x t @v: then ours");
    }

    repeat(key, 't', 241);
    key[241] = '@';
    repeat(key + 242, 'v', 14);
    snprintf(m, sizeof(m), "%s=1", key);
    ok(strlen(key) == 256, "241 x t @ 14 x v is 256 characters");
    ok(ts(l, 2, 512) == TG_OK, "foo=1 + 241 x t @ 14 x v: accepted");
    if (is_int(out.len, 5 + 1 + 258,
               "foo=1 + 241 x t @ 14 x v: both members passed"))
    {
        ok(memcmp(out.data + 6, m, 258) == 0,
           "foo=1 + 241 x t @ 14 x v: ours intact");
    }

    repeat(key + 242, 'v', 15);
    snprintf(m, sizeof(m), "%s=1", key);
    ok(ts(l, 2, 512) == TG_DECLINED,
       "foo=1 + 241 x t @ 15 x v (257): list dropped");

    snprintf(m, sizeof(m), "foo@=1,bar=2");
    ok(ts(l + 1, 1, 512) == TG_OK, "foo@=1,bar=2 accepted");
    is_mem(out.data, out.len, "foo@=1,bar=2", "foo@=1,bar=2: both passed");

    snprintf(m, sizeof(m), "@foo=1,bar=2");
    ok(ts(l + 1, 1, 512) == TG_DECLINED, "@foo=1,bar=2: list dropped");
    snprintf(m, sizeof(m), "bar=2,@foo=1");
    ok(ts(l, 2, 512) == TG_DECLINED, "'@' first in a second line: dropped");
    snprintf(m, sizeof(m), "Foo=1");
    ok(ts(l, 2, 512) == TG_DECLINED, "uppercase key in a second line");
    snprintf(m, sizeof(m), "fo.o=1");
    ok(ts(l, 2, 512) == TG_DECLINED, "'.' in a key in a second line");
}


static void
test_empty(void)
{
    const char  *l[2];

    rejects("", "empty header (accepted, but nothing to send)");
    rejects(" , ,\t", "whitespace-only members");
    ok(ts(l, 0, 512) == TG_DECLINED, "no lines");
    l[0] = "";
    l[1] = ",";
    ok(ts(l, 2, 512) == TG_DECLINED, "empty lines");
}


static void
test_truncation(void)
{
    char         want[1200], line[1200], key[16];
    const char  *l[8];
    int          i;

    /* long (>128) members go first, rightmost first, until it fits */
    l[0] = member(0, "a0", 100, 'x');   /* 103 */
    l[1] = member(1, "l1", 200, 'y');   /* 203 */
    l[2] = member(2, "a2", 100, 'x');   /* 103 */
    l[3] = member(3, "l3", 150, 'y');   /* 153 */
    l[4] = member(4, "a4", 100, 'x');   /* 103: 669 joined */
    ok(ts(l, 5, 512) == TG_OK, "669 bytes truncated to fit 512");
    snprintf(want, sizeof(want), "%s,%s,%s", l[0], l[2], l[4]);
    is_mem(out.data, out.len, want, "both long members removed, short kept");

    l[0] = member(0, "l0", 200, 'y');   /* 203 */
    l[1] = member(1, "a1", 100, 'x');   /* 103 */
    l[2] = member(2, "l2", 200, 'y');   /* 203 */
    l[3] = member(3, "a3", 100, 'x');   /* 103: 615 joined */
    ok(ts(l, 4, 512) == TG_OK, "615 bytes truncated");
    snprintf(want, sizeof(want), "%s,%s,%s", l[0], l[1], l[3]);
    is_mem(out.data, out.len, want,
           "only the rightmost long member removed (enough)");

    for (i = 0; i < 6; i++) {
        snprintf(key, sizeof(key), "b%d", i);
        l[i] = member(i, key, 97, 'z');
    }   /* 6 x 100 + 5 = 605 */
    ok(ts(l, 6, 512) == TG_OK, "605 bytes without long members truncated");
    snprintf(want, sizeof(want), "%s,%s,%s,%s,%s", l[0], l[1], l[2], l[3],
             l[4]);
    is_mem(out.data, out.len, want, "removed from the right: 5 left");
    ok(out.len == 504, "504 bytes after truncation");

    l[0] = member(0, "l0", 200, 'y');   /* 203 */
    l[1] = member(1, "c1", 117, 'w');   /* 120 */
    l[2] = member(2, "c2", 117, 'w');
    l[3] = member(3, "c3", 117, 'w');
    l[4] = member(4, "c4", 117, 'w');
    l[5] = member(5, "c5", 117, 'w');   /* 203 + 600 + 5 = 808 */
    ok(ts(l, 6, 512) == TG_OK, "808 bytes truncated");
    snprintf(want, sizeof(want), "%s,%s,%s,%s", l[1], l[2], l[3], l[4]);
    is_mem(out.data, out.len, want,
           "long member first, then from the right");

    /* exactly 128 is not "longer than 128"; 129 is */
    l[0] = member(0, "e0", 125, 'q');   /* 128 */
    l[1] = member(1, "s1", 97, 'q');    /* 100 */
    l[2] = member(2, "s2", 97, 'q');
    l[3] = member(3, "s3", 97, 'q');
    l[4] = member(4, "s4", 97, 'q');    /* 128 + 400 + 4 = 532 */
    ok(ts(l, 5, 512) == TG_OK, "128-byte member is not long");
    snprintf(want, sizeof(want), "%s,%s,%s,%s", l[0], l[1], l[2], l[3]);
    is_mem(out.data, out.len, want, "128: the rightmost member went");
    l[0] = member(0, "e0", 126, 'q');   /* 129 */
    ok(ts(l, 5, 512) == TG_OK, "129-byte member is long");
    snprintf(want, sizeof(want), "%s,%s,%s,%s", l[1], l[2], l[3], l[4]);
    is_mem(out.data, out.len, want, "129: the long member went first");

    /* exact fit */
    l[0] = member(0, "f0", 252, 'f');   /* 255 */
    l[1] = member(1, "f1", 253, 'f');   /* 256: 512 joined */
    is_int(ts(l, 2, 512), TG_OK, "exactly 512 kept whole");
    is_int(out.len, 512, "exactly 512 kept whole");

    /* limit 0: no truncation */
    l[0] = member(0, "l0", 256, 'y');
    l[1] = member(1, "l1", 256, 'y');
    l[2] = member(2, "l2", 256, 'y');
    is_int(ts(l, 3, 0), TG_OK, "limit 0 keeps everything");
    is_int(out.len, 3 * 259 + 2, "limit 0 keeps everything");

    /* nothing fits */
    l[0] = member(0, "a", 20, 'x');
    is_int(ts(l, 1, 10), TG_DECLINED,
           "nothing left after truncation: declined (never send empty)");
    ok(out.len == 0,
       "nothing left after truncation: declined (never send empty)");
    l[0] = member(0, "l", 200, 'x');
    l[1] = member(1, "m", 200, 'x');
    ok(ts(l, 2, 100) == TG_DECLINED, "all long members removed: declined");

    /* output does not alias the input, and has no spaces */
    snprintf(line, sizeof(line), " a=1 , b=2 ");
    l[0] = line;
    is_int(ts(l, 1, 512), TG_OK, "result allocated from the pool");
    ok((out.data < (u_char *) line
        || out.data >= (u_char *) line + sizeof(line)),
       "result allocated from the pool");
    is_mem(out.data, out.len, "a=1,b=2", "canonical without spaces");
}


int
main(void)
{
    pool = tg_pool_create(4096);
    if (pool == NULL) {
        printf("Bail out! no pool\n");
        return 1;
    }
    test_valid();
    test_keys();
    test_values();
    test_counts();
    test_duplicates();
    test_harness_keys();
    test_empty();
    test_truncation();
    tg_pool_destroy(pool);
    return done_testing();
}
