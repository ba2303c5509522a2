#include <tg_config.h>
#include <tg_core.h>
#include <tg_trace.h>

/*
 * libFuzzer target: the trace context parsers (src/core/tg_trace.c).
 *
 * The input is split on '\n' into up to 8 lines. Every parser sees the
 * same bytes: the whole input as one value, and the lines as repeated
 * header lines. Beyond "no crash, no overread" (each line is copied into
 * its own exact-size heap buffer, so ASan sees a read past its end), the
 * results are checked against the contracts of tg_trace.h:
 *   - an accepted context has non-zero ids and re-parses identically
 *     after formatting (traceparent, b3, jaeger);
 *   - a canonical tracestate is a fixed point, fits the limit, and has no
 *     space at either end (values may hold inner spaces);
 *   - an extracted X-Trace-ID is 1..128 bytes of 0x21-0x7e inside input.
 */

#define TG_FUZZ_MAX_LINES 8

static void tg_fuzz_check_ctx(const tg_trace_ctx_t *tc);
static void tg_fuzz_check_roundtrip(const tg_trace_ctx_t *tc);


static void
tg_fuzz_check_ctx(const tg_trace_ctx_t *tc)
{
    static const u_char  zero[16];

    if (!tc->valid) {
        abort();
    }
    if (memcmp(tc->trace_id, zero, 16) == 0
        || memcmp(tc->span_id, zero, 8) == 0)
    {
        abort(); /* zero ids are invalid in every format */
    }
}


static void
tg_fuzz_check_roundtrip(const tg_trace_ctx_t *tc)
{
    u_char          buf[TG_TRACE_TRACEPARENT_LEN + TG_TRACE_JAEGER_LEN];
    tg_str_t        v;
    tg_trace_ctx_t  back;

    v.data = buf;
    v.len = (size_t) (tg_trace_format_traceparent(buf, tc->trace_id,
                                                  tc->span_id, tc->flags)
                      - buf);
    if (v.len != TG_TRACE_TRACEPARENT_LEN
        || tg_trace_parse_traceparent(&v, &back) != TG_OK
        || memcmp(back.trace_id, tc->trace_id, 16) != 0
        || memcmp(back.span_id, tc->span_id, 8) != 0
        || back.flags != (tc->flags & TG_TRACE_FLAG_SAMPLED))
    {
        abort();
    }

    v.len = (size_t) (tg_trace_format_b3(buf, tc->trace_id, tc->span_id,
                                         tc->flags)
                      - buf);
    if (v.len != TG_TRACE_B3_LEN || tg_trace_parse_b3(&v, &back) != TG_OK
        || memcmp(back.trace_id, tc->trace_id, 16) != 0
        || memcmp(back.span_id, tc->span_id, 8) != 0
        || (back.flags & 1) != (tc->flags & 1))
    {
        abort();
    }

    v.len = (size_t) (tg_trace_format_jaeger(buf, tc->trace_id, tc->span_id,
                                             tc->flags)
                      - buf);
    if (v.len != TG_TRACE_JAEGER_LEN
        || tg_trace_parse_jaeger(&v, &back) != TG_OK
        || memcmp(back.trace_id, tc->trace_id, 16) != 0
        || memcmp(back.span_id, tc->span_id, 8) != 0
        || (back.flags & 1) != (tc->flags & 1))
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                     source;
    size_t                  i, n, start, ndup;
    u_char                 *copy[TG_FUZZ_MAX_LINES], *whole;
    tg_str_t                lines[TG_FUZZ_MAX_LINES], v, out, again;
    tg_str_t               *b3m[4];
    tg_pool_t              *pool;
    tg_trace_ctx_t          tc;
    tg_trace_carrier_t      car;
    tg_trace_propagators_t  props;

    /* the whole input, exactly sized */
    whole = malloc(size ? size : 1);
    if (whole == NULL) {
        return 0;
    }
    memcpy(whole, data, size);
    v.data = whole;
    v.len = size;

    n = 0;
    start = 0;
    for (i = 0; i <= size && n < TG_FUZZ_MAX_LINES; i++) {
        if (i == size || data[i] == '\n') {
            copy[n] = malloc(i - start ? i - start : 1);
            if (copy[n] == NULL) {
                break;
            }
            memcpy(copy[n], data + start, i - start);
            lines[n].data = copy[n];
            lines[n].len = i - start;
            n++;
            start = i + 1;
        }
    }

    if (tg_trace_parse_traceparent(&v, &tc) == TG_OK) {
        tg_fuzz_check_ctx(&tc);
        tg_fuzz_check_roundtrip(&tc);
    } else if (tc.valid) {
        abort();
    }
    if (tg_trace_parse_b3(&v, &tc) == TG_OK) {
        tg_fuzz_check_ctx(&tc);
        tg_fuzz_check_roundtrip(&tc);
    }
    if (tg_trace_parse_jaeger(&v, &tc) == TG_OK) {
        tg_fuzz_check_ctx(&tc);
        tg_fuzz_check_roundtrip(&tc);
    }
    for (i = 0; i < 4; i++) {
        b3m[i] = i < n ? &lines[i] : NULL;
    }
    if (tg_trace_parse_b3_multi(b3m[0], b3m[1], b3m[2], b3m[3], &tc)
        == TG_OK)
    {
        tg_fuzz_check_ctx(&tc);
    }

    ndup = 0;
    if (tg_trace_extract_traceparent(lines, n, &tc, &ndup) == TG_OK) {
        tg_fuzz_check_ctx(&tc);
        if (ndup == 0) {
            abort();
        }
    }

    pool = tg_pool_create(1024);
    if (pool == NULL) {
        goto done;
    }
    for (i = 0; i < 2; i++) {
        size_t  limit = i ? TG_TRACE_TRACESTATE_LIMIT : 0;

        if (tg_trace_tracestate(pool, lines, n, limit, &out) != TG_OK) {
            continue;
        }
        if (out.len == 0 || (limit && out.len > limit)
            || out.data[0] == ' ' || out.data[out.len - 1] == ' ')
        {
            abort();
        }
        /* canonical output is a fixed point */
        if (tg_trace_tracestate(pool, &out, 1, limit, &again) != TG_OK
            || !tg_str_eq(&out, &again))
        {
            abort();
        }
    }
    tg_pool_destroy(pool);

    if (tg_trace_xid_extract(lines, n, &out) == TG_OK) {
        int  inside = 0;

        if (out.len == 0 || out.len > TG_TRACE_XID_MAX) {
            abort();
        }
        for (i = 0; i < out.len; i++) {
            if (out.data[i] < 0x21 || out.data[i] > 0x7e) {
                abort();
            }
        }
        for (i = 0; i < n; i++) {
            if (out.data >= lines[i].data
                && out.data + out.len <= lines[i].data + lines[i].len)
            {
                inside = 1;
            }
        }
        if (!inside) {
            abort();
        }
    }

    if (tg_trace_propagators_parse(&v, &props) == TG_OK) {
        if (props.n > TG_TRACE_PROP_MAX) {
            abort();
        }
        for (i = 0; i < props.n; i++) {
            if (props.order[i] < 1 || props.order[i] > TG_TRACE_PROP_MAX) {
                abort();
            }
        }
        /* extraction over the lines as every carrier header */
        memset(&car, 0, sizeof(car));
        for (i = 0; i < TG_TRACE_HDR_MAX && i < n; i++) {
            car.hdr[i].lines = &lines[i];
            car.hdr[i].n = n - i;
        }
        if (tg_trace_extract(&props, &car, &tc, &source, &ndup) == TG_OK) {
            tg_fuzz_check_ctx(&tc);
            if (source < 1 || source > TG_TRACE_PROP_MAX) {
                abort();
            }
        }
    }
    (void) tg_trace_xid_format_parse(&v);

done:
    for (i = 0; i < n; i++) {
        free(copy[i]);
    }
    free(whole);
    return 0;
}
