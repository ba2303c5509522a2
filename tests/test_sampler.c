#include <tg_config.h>
#include <tg_core.h>
#include <tg_trace.h>
#include "tap.h"

#include <math.h>

/*
 * Samplers named as the OTel SDK: init, the trace-id ratio rule (rightmost
 * 7 bytes < ratio * 2^56), determinism, parent-based behaviour, accuracy.
 */

#define NIDS 100000

static const char  *names[] = {
    "always_on", "always_off", "traceidratio", "parentbased_always_on",
    "parentbased_always_off", "parentbased_traceidratio"
};


static int
init(tg_trace_sampler_t *s, const char *name, double ratio)
{
    tg_str_t  n;

    n.data = (u_char *) name;
    n.len = strlen(name);
    return tg_trace_sampler_init(s, &n, ratio);
}


/* A trace id whose rightmost 7 bytes are v (big-endian), others 0xee. */
static void
id_low(u_char id[16], uint64_t v)
{
    int  i;

    memset(id, 0xee, 16);
    for (i = 15; i >= 9; i--) {
        id[i] = (u_char) (v & 0xff);
        v >>= 8;
    }
}


static void
test_init(void)
{
    tg_trace_sampler_t  s;
    size_t              i;

    for (i = 0; i < tg_nelts(names); i++) {
        is_int(init(&s, names[i], 0.5), TG_OK, "sampler %s", names[i]);
        ok(s.kind == (int) i + 1, "sampler %s", names[i]);
    }
    is_int(init(&s, "ParentBased_TraceIdRatio", 0.5), TG_OK,
           "names are case-insensitive");
    is_int(s.kind, TG_TRACE_SAMPLER_PARENTBASED_TRACEIDRATIO,
           "names are case-insensitive");
    ok(init(&s, "jaeger_remote", 1.0) == TG_ERROR, "jaeger_remote: error");
    ok(init(&s, "xray", 1.0) == TG_ERROR, "xray: error");
    ok(init(&s, "always_on ", 1.0) == TG_ERROR, "trailing space: error");
    ok(init(&s, "", 1.0) == TG_ERROR, "empty name: error");
    ok(init(&s, "traceidratio", -0.01) == TG_ERROR, "ratio < 0: error");
    ok(init(&s, "traceidratio", 1.01) == TG_ERROR, "ratio > 1: error");
    ok(init(&s, "traceidratio", NAN) == TG_ERROR, "ratio NaN: error");
    ok(init(&s, "traceidratio", INFINITY) == TG_ERROR, "ratio inf: error");
    ok(init(&s, "always_on", 2.0) == TG_ERROR,
       "ratio checked for every kind");

    is_int(init(&s, "traceidratio", 1.0), TG_OK, "ratio 1: threshold 2^56");
    ok(s.threshold == (uint64_t) 1 << 56, "ratio 1: threshold 2^56");
    is_int(init(&s, "traceidratio", 0.5), TG_OK, "ratio 0.5: threshold 2^55");
    ok(s.threshold == (uint64_t) 1 << 55, "ratio 0.5: threshold 2^55");
    ok(s.ratio == 0.5, "ratio 0.5: threshold 2^55");
    is_int(init(&s, "traceidratio", 0.25), TG_OK, "ratio 0.25: threshold 2^54");
    ok(s.threshold == (uint64_t) 1 << 54, "ratio 0.25: threshold 2^54");
    is_int(init(&s, "traceidratio", 0.0), TG_OK, "ratio 0: threshold 0");
    is_int(s.threshold, 0, "ratio 0: threshold 0");
}


static void
test_ratio_rule(void)
{
    tg_trace_sampler_t  s;
    u_char              id[16];

    init(&s, "traceidratio", 0.5);
    id_low(id, ((uint64_t) 1 << 55) - 1);
    ok(tg_trace_sampler_sample(&s, NULL, id) == 1, "2^55 - 1 sampled at 0.5");
    id_low(id, (uint64_t) 1 << 55);
    ok(tg_trace_sampler_sample(&s, NULL, id) == 0,
       "2^55 not sampled at 0.5");
    id_low(id, 0);
    id[8] = 0xff;
    ok(tg_trace_sampler_sample(&s, NULL, id) == 1,
       "byte 8 and the left half do not count");
    memset(id, 0, 9);
    id[9] = 0x80;
    ok(tg_trace_sampler_sample(&s, NULL, id) == 0,
       "only the rightmost 7 bytes count");

    init(&s, "traceidratio", 1.0);
    memset(id, 0xff, 16);
    ok(tg_trace_sampler_sample(&s, NULL, id) == 1,
       "ratio 1 samples the largest id");
    init(&s, "traceidratio", 0.0);
    id_low(id, 0);
    ok(tg_trace_sampler_sample(&s, NULL, id) == 0,
       "ratio 0 does not sample the smallest id");
    id_low(id, 1);
    ok(tg_trace_sampler_sample(&s, NULL, id) == 0, "ratio 0, id 1");

    init(&s, "traceidratio", 0.25);
    id_low(id, ((uint64_t) 1 << 54) - 1);
    ok(tg_trace_sampler_sample(&s, NULL, id) == 1, "below 2^54 at 0.25");
    id_low(id, (uint64_t) 1 << 54);
    ok(tg_trace_sampler_sample(&s, NULL, id) == 0, "2^54 at 0.25");
}


static void
test_determinism(void)
{
    tg_trace_sampler_t  s, copy;
    u_char              id[16];
    size_t              i;
    int                 k, same, d;

    for (i = 0; i < tg_nelts(names); i++) {
        init(&s, names[i], 0.3);
        same = 1;
        for (k = 0; k < 2000; k++) {
            tg_random_trace_id(id);
            d = tg_trace_sampler_sample(&s, NULL, id);
            copy = s;
            if (d != tg_trace_sampler_sample(&s, NULL, id)
                || d != tg_trace_sampler_sample(&copy, NULL, id)
                || (d != 0 && d != 1))
            {
                same = 0;
            }
        }
        ok(same, "%s: same id, same decision (0 or 1)", names[i]);
    }
}


static void
test_parent(void)
{
    tg_trace_sampler_t  s;
    tg_trace_ctx_t      parent;
    u_char              lo[16], hi[16];

    id_low(lo, 0);                       /* sampled by any ratio > 0 */
    id_low(hi, ((uint64_t) 1 << 56) - 1); /* sampled only by ratio 1 */
    memset(&parent, 0, sizeof(parent));
    parent.valid = 1;

    parent.flags = 1;
    init(&s, "parentbased_always_off", 1.0);
    ok(tg_trace_sampler_sample(&s, &parent, hi) == 1,
       "parentbased_always_off follows a sampled parent");
    init(&s, "parentbased_traceidratio", 0.1);
    ok(tg_trace_sampler_sample(&s, &parent, hi) == 1,
       "parentbased_traceidratio follows a sampled parent");
    parent.flags = 0xff;
    ok(tg_trace_sampler_sample(&s, &parent, hi) == 1,
       "sampled bit tested as a bit");

    parent.flags = 0;
    init(&s, "parentbased_always_on", 1.0);
    ok(tg_trace_sampler_sample(&s, &parent, lo) == 0,
       "parentbased_always_on follows an unsampled parent");
    init(&s, "parentbased_traceidratio", 1.0);
    ok(tg_trace_sampler_sample(&s, &parent, lo) == 0,
       "parentbased_traceidratio follows an unsampled parent");
    parent.flags = 0x02;
    ok(tg_trace_sampler_sample(&s, &parent, lo) == 0,
       "flags 02 is not sampled");

    /* no parent: the root sampler */
    init(&s, "parentbased_always_on", 1.0);
    ok(tg_trace_sampler_sample(&s, NULL, hi) == 1,
       "parentbased_always_on, no parent: on");
    init(&s, "parentbased_always_off", 1.0);
    ok(tg_trace_sampler_sample(&s, NULL, lo) == 0,
       "parentbased_always_off, no parent: off");
    init(&s, "parentbased_traceidratio", 0.5);
    ok(tg_trace_sampler_sample(&s, NULL, lo) == 1,
       "parentbased_traceidratio, no parent: ratio");
    is_int(tg_trace_sampler_sample(&s, NULL, hi), 0,
           "parentbased_traceidratio, no parent: ratio");

    parent.valid = 0;
    parent.flags = 1;
    init(&s, "parentbased_always_off", 1.0);
    ok(tg_trace_sampler_sample(&s, &parent, lo) == 0,
       "invalid parent is no parent (its flags ignored)");

    parent.valid = 1;
    parent.deferred = 1;
    parent.flags = 0;
    init(&s, "parentbased_always_on", 1.0);
    ok(tg_trace_sampler_sample(&s, &parent, lo) == 1,
       "deferred parent (B3 without decision): root sampler decides");
    init(&s, "parentbased_traceidratio", 0.5);
    is_int(tg_trace_sampler_sample(&s, &parent, lo), 1,
           "deferred parent: ratio applies");
    is_int(tg_trace_sampler_sample(&s, &parent, hi), 0,
           "deferred parent: ratio applies");

    memset(&parent, 0, sizeof(parent));
    parent.deny = 1;
    init(&s, "parentbased_always_on", 1.0);
    ok(tg_trace_sampler_sample(&s, &parent, lo) == 0,
       "B3 deny: parent-based does not sample the new root");
    init(&s, "always_on", 1.0);
    ok(tg_trace_sampler_sample(&s, &parent, lo) == 1,
       "B3 deny ignored by always_on");

    /* non-parent-based samplers ignore the parent */
    memset(&parent, 0, sizeof(parent));
    parent.valid = 1;
    parent.flags = 1;
    init(&s, "always_off", 1.0);
    ok(tg_trace_sampler_sample(&s, &parent, lo) == 0,
       "always_off ignores a sampled parent");
    init(&s, "traceidratio", 0.5);
    ok(tg_trace_sampler_sample(&s, &parent, hi) == 0,
       "traceidratio ignores a sampled parent");
    parent.flags = 0;
    init(&s, "always_on", 1.0);
    ok(tg_trace_sampler_sample(&s, &parent, hi) == 1,
       "always_on ignores an unsampled parent");
}


static double
measure(const char *name, double ratio)
{
    tg_trace_sampler_t  s;
    u_char              id[16];
    int                 i, n;

    init(&s, name, ratio);
    n = 0;
    for (i = 0; i < NIDS; i++) {
        tg_random_trace_id(id);
        n += tg_trace_sampler_sample(&s, NULL, id);
    }
    return (double) n / NIDS;
}


static void
test_accuracy(void)
{
    double  r;

    ok(tg_random_init() == TG_OK, "random generator seeded");

    r = measure("traceidratio", 0.1);
    ok(fabs(r - 0.1) < 0.01, "ratio 0.1 over %d ids: %.4f", NIDS, r);
    r = measure("traceidratio", 0.5);
    ok(fabs(r - 0.5) < 0.01, "ratio 0.5 over %d ids: %.4f", NIDS, r);
    /* sd = sqrt(0.01 * 0.99 / 1e5) = 0.00031: 0.003 is ~9.5 sd */
    r = measure("traceidratio", 0.01);
    ok(fabs(r - 0.01) < 0.003, "ratio 0.01 over %d ids: %.4f", NIDS, r);
    r = measure("parentbased_traceidratio", 0.1);
    ok(fabs(r - 0.1) < 0.01, "parentbased root ratio 0.1: %.4f", r);
    r = measure("traceidratio", 1.0);
    ok(r == 1.0, "ratio 1.0 samples all: %.4f", r);
    r = measure("traceidratio", 0.0);
    ok(r == 0.0, "ratio 0.0 samples none: %.4f", r);
}


int
main(void)
{
    test_init();
    test_ratio_rule();
    test_determinism();
    test_parent();
    test_accuracy();
    return done_testing();
}
