#include <tg_config.h>
#include <tg_core.h>
#include <tg_collector_limits.h>
#include <tg_collector_json.h>
#include "tap.h"


/*
 * The collector's request limits: the protobuf pre-pass (counts, the
 * limits and the field budget, the 413/400 split, a partial body) and the
 * JSON reader counting as it parses.
 */

#define TEST_BUF  (1 << 20)

typedef struct {
    u_char  *p;
    size_t   len;
} test_buf_t;


static void
test_byte(test_buf_t *b, u_char c)
{
    if (b->len < TEST_BUF) {
        b->p[b->len++] = c;
    }
}


static void
test_varint(test_buf_t *b, uint64_t v)
{
    while (v >= 0x80) {
        test_byte(b, (u_char) (v | 0x80));
        v >>= 7;
    }
    test_byte(b, (u_char) v);
}


/* field f, length-delimited, holding inner */
static void
test_ld(test_buf_t *b, unsigned f, const test_buf_t *inner)
{
    size_t  i;

    test_varint(b, f << 3 | 2);
    test_varint(b, inner->len);
    for (i = 0; i < inner->len; i++) {
        test_byte(b, inner->p[i]);
    }
}


static void
test_vint(test_buf_t *b, unsigned f, uint64_t v)
{
    test_varint(b, f << 3);
    test_varint(b, v);
}


static test_buf_t *
test_new(void)
{
    test_buf_t  *b;

    b = calloc(1, sizeof(test_buf_t));
    b->p = malloc(TEST_BUF);
    return b;
}


static void
test_free(test_buf_t *b)
{
    free(b->p);
    free(b);
}


static void
test_limits(tg_collector_limits_t *lim, size_t max)
{
    int  i;

    memset(lim, 0, sizeof(tg_collector_limits_t));
    for (i = 0; i < TG_COLLECTOR_FIELDS; i++) {
        lim->max[i] = max;
    }
}


/* A KeyValue with a string value. */
static void
test_kv(test_buf_t *b, unsigned f)
{
    test_buf_t  *kv, *any, *s;

    kv = test_new();
    any = test_new();
    s = test_new();
    memcpy(s->p, "v", 1);
    s->len = 1;
    test_ld(any, 1, s);
    memcpy(s->p, "k", 1);
    test_ld(kv, 1, s);
    test_ld(kv, 2, any);
    test_ld(b, f, kv);
    test_free(kv);
    test_free(any);
    test_free(s);
}


/*
 * One resource (2 attributes) with one scope holding nspans spans of 3
 * attributes, 2 events (1 attribute each) and 1 link, and an attribute
 * whose value is an array of 4 values.
 */
static void
test_request(test_buf_t *req, int nspans)
{
    int          i;
    test_buf_t  *rs, *res, *ss, *sp, *ev, *arr, *any, *kv, *k;

    rs = test_new();
    res = test_new();
    ss = test_new();
    test_kv(res, 1);
    test_kv(res, 1);
    test_ld(rs, 1, res);
    for (i = 0; i < nspans; i++) {
        sp = test_new();
        ev = test_new();
        test_vint(sp, 6, 2);
        test_kv(sp, 9);
        test_kv(sp, 9);
        test_kv(sp, 9);
        test_kv(ev, 3);
        test_ld(sp, 11, ev);
        test_ld(sp, 11, ev);
        ev->len = 0;
        test_ld(sp, 13, ev);

        arr = test_new();
        any = test_new();
        test_vint(any, 3, 7);
        test_ld(arr, 1, any);
        test_ld(arr, 1, any);
        test_ld(arr, 1, any);
        test_ld(arr, 1, any);
        any->len = 0;
        test_ld(any, 5, arr);
        kv = test_new();
        k = test_new();
        k->p[0] = 'a';
        k->len = 1;
        test_ld(kv, 1, k);
        test_ld(kv, 2, any);
        test_ld(sp, 9, kv);
        test_ld(ss, 2, sp);
        test_free(sp);
        test_free(ev);
        test_free(arr);
        test_free(any);
        test_free(kv);
        test_free(k);
    }
    test_ld(rs, 2, ss);
    test_ld(req, 1, rs);
    test_free(rs);
    test_free(res);
    test_free(ss);
}


static void
test_pb(void)
{
    int                     i, rc;
    char                    err[128];
    test_buf_t             *b, *inner, *tmp;
    tg_collector_limits_t   lim;

    b = test_new();
    test_limits(&lim, 1000);
    rc = tg_collector_pb_scan(&lim, b->p, 0, 0, err, sizeof(err));
    is_int(rc, TG_OK, "an empty request");

    /* the bomb: empty ResourceSpans, one after the other */
    for (i = 0; i < 100000; i++) {
        test_byte(b, 0x0a);
        test_byte(b, 0x00);
    }
    test_limits(&lim, 64);
    rc = tg_collector_pb_scan(&lim, b->p, b->len, 0, err, sizeof(err));
    is_int(rc, TG_DECLINED, "100000 empty resource spans: over the limit");
    is_int(lim.over, TG_COLLECTOR_RESOURCE_SPANS, "... of resource spans");
    is_int(lim.n[TG_COLLECTOR_RESOURCE_SPANS], 65, "... stopped at the 65th");
    rc = tg_collector_pb_scan(&lim, b->p, 128, 0, err, sizeof(err));
    is_int(rc, TG_OK, "64 empty resource spans: at the limit");
    is_int(lim.n[TG_COLLECTOR_RESOURCE_SPANS], 64, "... all counted");
    test_limits(&lim, 1000);
    rc = tg_collector_pb_scan(&lim, b->p, 129, 0, err, sizeof(err));
    is_int(rc, TG_ERROR, "a body cut after a tag: malformed");
    rc = tg_collector_pb_scan(&lim, b->p, 129, 1, err, sizeof(err));
    is_int(rc, TG_OK, "... but fine as the start of a longer body");

    /* counts of each kind */
    b->len = 0;
    test_request(b, 3);
    test_limits(&lim, 1000);
    rc = tg_collector_pb_scan(&lim, b->p, b->len, 0, err, sizeof(err));
    is_int(rc, TG_OK, "a request of 3 spans");
    is_int(lim.n[TG_COLLECTOR_RESOURCE_SPANS], 1, "... 1 resource spans");
    is_int(lim.n[TG_COLLECTOR_SCOPE_SPANS], 1, "... 1 scope spans");
    is_int(lim.n[TG_COLLECTOR_SPANS], 3, "... 3 spans");
    is_int(lim.n[TG_COLLECTOR_EVENTS], 6, "... 6 events");
    is_int(lim.n[TG_COLLECTOR_LINKS], 3, "... 3 links");
    /* 2 resource + 3 x (3 + 2 event + 1 array attribute + 4 elements) */
    is_int(lim.n[TG_COLLECTOR_ATTRIBUTES], 2 + 3 * 10, "... 32 attributes");
    ok(lim.n[TG_COLLECTOR_FIELDS] <= lim.budget, "... within the budget");

    for (i = TG_COLLECTOR_SPANS; i <= TG_COLLECTOR_ATTRIBUTES; i++) {
        test_limits(&lim, 1000);
        rc = tg_collector_pb_scan(&lim, b->p, b->len, 0, err, sizeof(err));
        lim.max[i] = lim.n[i];
        rc = tg_collector_pb_scan(&lim, b->p, b->len, 0, err, sizeof(err));
        is_int(rc, TG_OK, "%s: at the limit", tg_collector_count_name(i));
        lim.max[i]--;
        rc = tg_collector_pb_scan(&lim, b->p, b->len, 0, err, sizeof(err));
        is_int(rc, TG_DECLINED, "%s: one over", tg_collector_count_name(i));
        is_int(lim.over, i, "... names it");
    }

    /* partial: every prefix counts no more than the whole, and no error */
    for (i = 0; i < (int) b->len; i++) {
        test_limits(&lim, 1000);
        rc = tg_collector_pb_scan(&lim, b->p, (size_t) i, 1, err, sizeof(err));
        if (rc != TG_OK || lim.n[TG_COLLECTOR_ATTRIBUTES] > 32) {
            break;
        }
    }
    is_int(i, b->len, "every prefix of the request scans as partial");

    /* a span cut inside, in a partial body, is counted as far as it goes */
    test_limits(&lim, 1000);
    rc = tg_collector_pb_scan(&lim, b->p, b->len / 2, 1, err, sizeof(err));
    ok(rc == TG_OK && lim.n[TG_COLLECTOR_SPANS] >= 1
       && lim.n[TG_COLLECTOR_ATTRIBUTES] > 2, "half a request: counted so far");

    /* a field whose length runs past its message: malformed */
    inner = test_new();
    tmp = test_new();
    b->len = 0;
    test_varint(inner, 2 << 3 | 2);
    test_varint(inner, 50);
    test_ld(b, 1, inner);
    test_byte(b, 0);
    rc = tg_collector_pb_scan(&lim, b->p, b->len, 1, err, sizeof(err));
    is_int(rc, TG_ERROR, "a length past the end of its message: malformed");

    b->len = 0;
    test_varint(b, 1 << 3 | 3);
    rc = tg_collector_pb_scan(&lim, b->p, b->len, 0, err, sizeof(err));
    is_int(rc, TG_ERROR, "a group (wire type 3): malformed");
    b->len = 0;
    test_vint(b, 0, 1);
    rc = tg_collector_pb_scan(&lim, b->p, b->len, 0, err, sizeof(err));
    is_int(rc, TG_ERROR, "field number 0: malformed");
    b->len = 0;
    for (i = 0; i < 11; i++) {
        test_byte(b, 0x80);
    }
    test_byte(b, 0);
    rc = tg_collector_pb_scan(&lim, b->p, b->len, 0, err, sizeof(err));
    is_int(rc, TG_ERROR, "a varint of 12 bytes: malformed");

    /* array values nested 100 deep: AnyValue { array_value { values ... */
    inner->len = 0;
    test_vint(inner, 3, 1);
    for (i = 0; i < 100; i++) {
        tmp->len = 0;
        test_ld(tmp, 1, inner);      /* ArrayValue.values */
        inner->len = 0;
        test_ld(inner, 5, tmp);      /* AnyValue.array_value */
    }
    tmp->len = 0;
    test_ld(tmp, 2, inner);          /* KeyValue.value */
    inner->len = 0;
    test_ld(inner, 9, tmp);          /* Span.attributes */
    tmp->len = 0;
    test_ld(tmp, 2, inner);          /* ScopeSpans.spans */
    inner->len = 0;
    test_ld(inner, 2, tmp);          /* ResourceSpans.scope_spans */
    b->len = 0;
    test_ld(b, 1, inner);
    test_limits(&lim, 100000);
    rc = tg_collector_pb_scan(&lim, b->p, b->len, 0, err, sizeof(err));
    is_int(rc, TG_ERROR, "values nested 100 deep: malformed");
    ok(strstr(err, "nested") != NULL, "... says so: %s", err);

    /* unknown fields beyond what the objects account for */
    inner->len = 0;
    for (i = 0; i < 1000; i++) {
        test_vint(inner, 100, 0);
    }
    b->len = 0;
    test_ld(b, 1, inner);
    test_limits(&lim, 1000);
    rc = tg_collector_pb_scan(&lim, b->p, b->len, 0, err, sizeof(err));
    is_int(rc, TG_DECLINED, "1000 unknown fields in a resource spans: over");
    is_int(lim.over, TG_COLLECTOR_FIELDS, "... the field budget");
    ok(lim.n[TG_COLLECTOR_FIELDS] <= TG_COLLECTOR_FIELDS_BASE
       + TG_COLLECTOR_FIELDS_PER_OBJECT + 1, "... stopped at the budget");

    test_free(b);
    test_free(inner);
    test_free(tmp);
}


static void
test_json(void)
{
    int                     i;
    char                    err[128], *big;
    size_t                  n;
    tg_pool_t              *pool;
    tg_json_t              *root;
    tg_collector_limits_t   lim;

    static const char  *req =
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
        "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"s\"}}]},"
        "\"scopeSpans\":[{\"scope\":{\"name\":\"x\"},\"spans\":["
        "{\"traceId\":\"01\",\"attributes\":[{\"key\":\"a\",\"value\":"
        "{\"arrayValue\":{\"values\":[{\"intValue\":1},{\"intValue\":2}]}}},"
        "{\"key\":\"m\",\"value\":{\"kvlistValue\":{\"values\":["
        "{\"key\":\"x\",\"value\":{\"intValue\":1}}]}}}],"
        "\"events\":[{\"name\":\"e\",\"attributes\":[{\"key\":\"e\"}]}],"
        "\"links\":[{\"traceId\":\"02\"},{\"traceId\":\"03\"}]},"
        "{\"traceId\":\"04\"}]}]},"
        "{\"scope_spans\":[{\"spans\":[]}]}]}";

    pool = tg_pool_create(4096);
    test_limits(&lim, 1000);
    root = tg_json_parse(pool, (u_char *) req, strlen(req), &lim, err,
                         sizeof(err));
    ok(root != NULL, "a JSON request parses with limits");
    is_int(lim.n[TG_COLLECTOR_RESOURCE_SPANS], 2, "... 2 resource spans");
    is_int(lim.n[TG_COLLECTOR_SCOPE_SPANS], 2, "... 2 scope spans");
    is_int(lim.n[TG_COLLECTOR_SPANS], 2, "... 2 spans");
    is_int(lim.n[TG_COLLECTOR_EVENTS], 1, "... 1 event");
    is_int(lim.n[TG_COLLECTOR_LINKS], 2, "... 2 links");
    /* service.name, a, 2 values, m, x, e */
    is_int(lim.n[TG_COLLECTOR_ATTRIBUTES], 7, "... 7 attributes");
    ok(lim.n[TG_COLLECTOR_FIELDS] <= lim.budget, "... within the budget");

    for (i = 0; i <= TG_COLLECTOR_ATTRIBUTES; i++) {
        test_limits(&lim, 1000);
        lim.max[i] = i == TG_COLLECTOR_ATTRIBUTES ? 7 : 2;
        if (i == TG_COLLECTOR_EVENTS) {
            lim.max[i] = 1;
        }
        root = tg_json_parse(pool, (u_char *) req, strlen(req), &lim, err,
                             sizeof(err));
        ok(root != NULL, "JSON %s: at the limit", tg_collector_count_name(i));
        lim.max[i]--;
        root = tg_json_parse(pool, (u_char *) req, strlen(req), &lim, err,
                             sizeof(err));
        ok(root == NULL && lim.over == i, "JSON %s: one over",
           tg_collector_count_name(i));
    }

    /* the bomb: empty resource spans */
    n = 2000000;
    big = malloc(n + 64);
    strcpy(big, "{\"resourceSpans\":[{}");
    for (i = (int) strlen(big); i < (int) n; i += 3) {
        memcpy(big + i, ",{}", 3);
    }
    memcpy(big + i, "]}", 3);
    test_limits(&lim, 64);
    root = tg_json_parse(pool, (u_char *) big, strlen(big), &lim, err,
                         sizeof(err));
    ok(root == NULL && lim.over == TG_COLLECTOR_RESOURCE_SPANS,
       "JSON: 666,000 empty resource spans are over the limit");
    is_int(lim.n[TG_COLLECTOR_RESOURCE_SPANS], 65, "... stopped at the 65th");

    /* values the objects do not account for: an unknown array */
    strcpy(big, "{\"x\":[0");
    for (i = (int) strlen(big); i < (int) n; i += 2) {
        memcpy(big + i, ",0", 2);
    }
    memcpy(big + i, "]}", 3);
    root = tg_json_parse(pool, (u_char *) big, strlen(big), &lim, err,
                         sizeof(err));
    ok(root == NULL && lim.over == TG_COLLECTOR_FIELDS,
       "JSON: a million values of an unknown member are over the budget");
    ok(lim.n[TG_COLLECTOR_FIELDS] == TG_COLLECTOR_FIELDS_BASE + 1,
       "... stopped at the budget");

    root = tg_json_parse(pool, (u_char *) big, strlen(big), NULL, err,
                         sizeof(err));
    ok(root != NULL, "... and parses without limits");

    free(big);
    tg_pool_destroy(pool);
}


int
main(void)
{
    test_pb();
    test_json();
    return done_testing();
}
