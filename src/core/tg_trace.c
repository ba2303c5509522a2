#include <tg_config.h>
#include <tg_core.h>
#include <tg_trace.h>


#define TG_TRACE_TRACESTATE_LONG    128 /* members removed first (3.3.1.5) */
#define TG_TRACE_TRACESTATE_KEY     256
#define TG_TRACE_TRACESTATE_VALUE   256
#define TG_TRACE_TWO_POW_56         72057594037927936.0

static void tg_trace_list_start(const tg_str_t *line, tg_str_t *rest);
static int tg_trace_list_next(tg_str_t *rest, tg_str_t *member);
static int tg_trace_is_zero(const u_char *p, size_t n);
static int tg_trace_decode_padded(u_char *dst, size_t nbytes,
    const tg_str_t *src);
static int tg_trace_ts_keychar(u_char c);
static int tg_trace_ts_key(const u_char *k, size_t n);
static int tg_trace_ts_value(const u_char *v, size_t n);
static int tg_trace_ts_member(const tg_str_t *m, size_t *klen);
static int tg_trace_b3_ids(const tg_str_t *trace_id, const tg_str_t *span_id,
    tg_trace_ctx_t *tc);
static int tg_trace_b3_sampled(const tg_str_t *v);
static size_t tg_trace_jaeger_split(const tg_str_t *v, tg_str_t *f,
    size_t nf);
static const tg_str_t *tg_trace_first_value(const tg_trace_lines_t *l,
    tg_str_t *v);
static int tg_trace_extract_b3(const tg_trace_carrier_t *c,
    tg_trace_ctx_t *tc);
static u_char *tg_trace_put_dec(u_char *p, int v, int width);
static int tg_trace_sampler_ratio(const tg_trace_sampler_t *s,
    const u_char trace_id[16]);


const tg_str_t  tg_trace_header_names[TG_TRACE_HDR_MAX] = {
    tg_string("traceparent"),
    tg_string("b3"),
    tg_string("x-b3-traceid"),
    tg_string("x-b3-spanid"),
    tg_string("x-b3-sampled"),
    tg_string("x-b3-flags"),
    tg_string("uber-trace-id")
};


/*
 * Comma-separated lists. An empty line still yields one (empty) member, so
 * a present but empty header is seen; a comma inside a member is never
 * quoted in any of the grammars handled here.
 */
static void
tg_trace_list_start(const tg_str_t *line, tg_str_t *rest)
{
    *rest = *line;
    if (rest->data == NULL) {
        rest->data = (u_char *) "";
        rest->len = 0;
    }
}


static int
tg_trace_list_next(tg_str_t *rest, tg_str_t *member)
{
    u_char  *comma;

    if (rest->data == NULL) {
        return 0;
    }
    member->data = rest->data;
    comma = memchr(rest->data, ',', rest->len);
    if (comma == NULL) {
        member->len = rest->len;
        rest->data = NULL;
        rest->len = 0;
    } else {
        member->len = (size_t) (comma - rest->data);
        rest->len -= member->len + 1;
        rest->data = comma + 1;
    }
    tg_str_trim_ows(member);
    return 1;
}


static int
tg_trace_is_zero(const u_char *p, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (p[i] != 0) {
            return 0;
        }
    }
    return 1;
}


/* 1 to 2 * nbytes lowercase hex digits, left-padded with zeros. */
static int
tg_trace_decode_padded(u_char *dst, size_t nbytes, const tg_str_t *src)
{
    u_char  buf[32];
    size_t  digits;

    digits = 2 * nbytes;
    if (src->len == 0 || src->len > digits || digits > sizeof(buf)) {
        return TG_ERROR;
    }
    memset(buf, '0', digits - src->len);
    memcpy(buf + digits - src->len, src->data, src->len);
    return tg_hex_decode_lc(dst, buf, nbytes);
}


int
tg_trace_parse_traceparent(const tg_str_t *value, tg_trace_ctx_t *tc)
{
    u_char    version;
    u_char   *p;
    tg_str_t  v;

    memset(tc, 0, sizeof(*tc));
    v = *value;
    tg_str_trim_ows(&v);
    if (v.len < TG_TRACE_TRACEPARENT_LEN) {
        return TG_DECLINED;
    }
    p = v.data;

    if (tg_hex_decode_lc(&version, p, 1) != TG_OK || p[2] != '-'
        || version == 0xff)
    {
        return TG_DECLINED;
    }

    /* 3.2.4: a later version may append fields after another '-' */
    if (version == 0x00) {
        if (v.len != TG_TRACE_TRACEPARENT_LEN) {
            return TG_DECLINED;
        }
    } else if (v.len > TG_TRACE_TRACEPARENT_LEN
               && p[TG_TRACE_TRACEPARENT_LEN] != '-')
    {
        return TG_DECLINED;
    }

    if (p[35] != '-' || p[52] != '-'
        || tg_hex_decode_lc(tc->trace_id, p + 3, 16) != TG_OK
        || tg_hex_decode_lc(tc->span_id, p + 36, 8) != TG_OK
        || tg_hex_decode_lc(&tc->flags, p + 53, 1) != TG_OK
        || tg_trace_is_zero(tc->trace_id, 16)
        || tg_trace_is_zero(tc->span_id, 8))
    {
        memset(tc, 0, sizeof(*tc));
        return TG_DECLINED;
    }

    tc->valid = 1;
    return TG_OK;
}


int
tg_trace_extract_traceparent(const tg_str_t *lines, size_t nlines,
    tg_trace_ctx_t *tc, size_t *ndup)
{
    int             conflict;
    size_t          i, n, nvalid;
    tg_str_t        rest, member;
    tg_trace_ctx_t  first, cur;

    memset(&first, 0, sizeof(first));
    conflict = 0;
    n = 0;
    nvalid = 0;

    for (i = 0; i < nlines; i++) {
        tg_trace_list_start(&lines[i], &rest);
        while (tg_trace_list_next(&rest, &member)) {
            n++;
            /* an invalid member carries no context: it cannot conflict */
            if (conflict
                || tg_trace_parse_traceparent(&member, &cur) != TG_OK)
            {
                continue;
            }
            if (nvalid++ == 0) {
                first = cur;
            } else if (memcmp(cur.trace_id, first.trace_id, 16) != 0) {
                conflict = 1;
            }
        }
    }

    if (ndup != NULL) {
        *ndup = n;
    }
    if (nvalid == 0 || conflict) {
        memset(tc, 0, sizeof(*tc));
        return TG_DECLINED;
    }
    *tc = first;
    return TG_OK;
}


u_char *
tg_trace_format_traceparent(u_char *dst, const u_char trace_id[16],
    const u_char span_id[8], uint8_t flags)
{
    u_char  hex[32];

    tg_hex_encode(hex, trace_id, 16);
    return tg_trace_format_traceparent_hex(dst, hex, span_id, flags);
}


u_char *
tg_trace_format_traceparent_hex(u_char *dst, const u_char trace_hex[32],
    const u_char span_id[8], uint8_t flags)
{
    *dst++ = '0';
    *dst++ = '0';
    *dst++ = '-';
    dst = (u_char *) mempcpy(dst, trace_hex, 32);
    *dst++ = '-';
    dst = tg_hex_encode(dst, span_id, 8);
    *dst++ = '-';
    *dst++ = '0';
    *dst++ = (flags & TG_TRACE_FLAG_SAMPLED) ? '1' : '0';
    return dst;
}


/*
 * W3C Trace Context 3.3.1.3.1, the current text: the key grammar no longer
 * splits tenant and system, so '@' is one more keychar.
 */
static int
tg_trace_ts_keychar(u_char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'
           || c == '-' || c == '*' || c == '/' || c == '@';
}


/* key = (lcalpha / DIGIT) 0*255(keychar), see tg_trace.h */
static int
tg_trace_ts_key(const u_char *k, size_t n)
{
    size_t  i;

    if (n == 0 || n > TG_TRACE_TRACESTATE_KEY
        || !((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= '0' && k[0] <= '9')))
    {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if (!tg_trace_ts_keychar(k[i])) {
            return 0;
        }
    }
    return 1;
}


static int
tg_trace_ts_value(const u_char *v, size_t n)
{
    size_t  i;

    if (n == 0 || n > TG_TRACE_TRACESTATE_VALUE || v[n - 1] == ' ') {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (v[i] < 0x20 || v[i] > 0x7e || v[i] == ',' || v[i] == '=') {
            return 0;
        }
    }
    return 1;
}


static int
tg_trace_ts_member(const tg_str_t *m, size_t *klen)
{
    u_char  *eq;
    size_t   k;

    eq = memchr(m->data, '=', m->len);
    if (eq == NULL) {
        return 0;
    }
    k = (size_t) (eq - m->data);
    if (!tg_trace_ts_key(m->data, k)
        || !tg_trace_ts_value(eq + 1, m->len - k - 1))
    {
        return 0;
    }
    *klen = k;
    return 1;
}


int
tg_trace_tracestate(tg_pool_t *pool, const tg_str_t *lines, size_t nlines,
    size_t limit, tg_str_t *out)
{
    u_char    *p;
    size_t     i, j, n, seen, left, sum, kl;
    size_t     klen[TG_TRACE_TRACESTATE_MEMBERS];
    tg_str_t   rest, member, m[TG_TRACE_TRACESTATE_MEMBERS];
    u_char     gone[TG_TRACE_TRACESTATE_MEMBERS];

    out->len = 0;
    out->data = NULL;
    n = 0;
    seen = 0;

    for (i = 0; i < nlines; i++) {
        tg_trace_list_start(&lines[i], &rest);
        while (tg_trace_list_next(&rest, &member)) {
            if (member.len == 0) {
                continue;
            }
            /* the limit is on the list as received, duplicates included */
            if (++seen > TG_TRACE_TRACESTATE_MEMBERS
                || !tg_trace_ts_member(&member, &kl))
            {
                return TG_DECLINED;
            }
            /*
             * a duplicated key: the list is inherited (W3C harness,
             * test_tracestate_duplicated_keys) with the first member of
             * that key: vendors add and update at the left, so it is the
             * most recent one
             */
            for (j = 0; j < n; j++) {
                if (klen[j] == kl && memcmp(m[j].data, member.data, kl) == 0)
                {
                    break;
                }
            }
            if (j < n) {
                continue;
            }
            klen[n] = kl;
            m[n++] = member;
        }
    }
    if (n == 0) {
        return TG_DECLINED;
    }

    /* the joined length is sum + left - 1 */
    memset(gone, 0, sizeof(gone));
    left = n;
    sum = 0;
    for (i = 0; i < n; i++) {
        sum += m[i].len;
    }
    for (i = n; limit && left && sum + left - 1 > limit && i > 0; i--) {
        if (m[i - 1].len > TG_TRACE_TRACESTATE_LONG) {
            gone[i - 1] = 1;
            sum -= m[i - 1].len;
            left--;
        }
    }
    for (i = n; limit && left && sum + left - 1 > limit && i > 0; i--) {
        if (!gone[i - 1]) {
            gone[i - 1] = 1;
            sum -= m[i - 1].len;
            left--;
        }
    }
    if (left == 0) {
        return TG_DECLINED;
    }

    p = tg_pnalloc(pool, sum + left - 1);
    if (p == NULL) {
        return TG_ERROR;
    }
    out->data = p;
    for (i = 0; i < n; i++) {
        if (gone[i]) {
            continue;
        }
        if (p != out->data) {
            *p++ = ',';
        }
        memcpy(p, m[i].data, m[i].len);
        p += m[i].len;
    }
    out->len = (size_t) (p - out->data);
    return TG_OK;
}


/* Trace id 16 or 32 hex, span id 16 hex, neither zero. */
static int
tg_trace_b3_ids(const tg_str_t *trace_id, const tg_str_t *span_id,
    tg_trace_ctx_t *tc)
{
    if ((trace_id->len != 16 && trace_id->len != 32) || span_id->len != 16
        || tg_trace_decode_padded(tc->trace_id, 16, trace_id) != TG_OK
        || tg_trace_decode_padded(tc->span_id, 8, span_id) != TG_OK
        || tg_trace_is_zero(tc->trace_id, 16)
        || tg_trace_is_zero(tc->span_id, 8))
    {
        return TG_ERROR;
    }
    return TG_OK;
}


int
tg_trace_parse_b3(const tg_str_t *value, tg_trace_ctx_t *tc)
{
    u_char    parent[8];
    u_char   *dash;
    size_t    nf;
    tg_str_t  v, f[4];

    memset(tc, 0, sizeof(*tc));
    v = *value;
    tg_str_trim_ows(&v);

    if (v.len == 1) {
        if (v.data[0] == '0') {
            tc->deny = 1;
        }
        return TG_DECLINED;
    }

    nf = 0;
    while (v.data != NULL) {
        if (nf == 4) {
            return TG_DECLINED;
        }
        f[nf].data = v.data;
        dash = memchr(v.data, '-', v.len);
        if (dash == NULL) {
            f[nf].len = v.len;
            v.data = NULL;
        } else {
            f[nf].len = (size_t) (dash - v.data);
            v.len -= f[nf].len + 1;
            v.data = dash + 1;
        }
        nf++;
    }
    if (nf < 2 || tg_trace_b3_ids(&f[0], &f[1], tc) != TG_OK) {
        goto invalid;
    }

    if (nf >= 3) {
        if (f[2].len != 1) {
            goto invalid;
        }
        switch (f[2].data[0]) {
        case '1':
            tc->flags = TG_TRACE_FLAG_SAMPLED;
            break;
        case '0':
            tc->flags = 0;
            break;
        case 'd':
            tc->flags = TG_TRACE_FLAG_SAMPLED;
            tc->debug = 1;
            break;
        default:
            goto invalid;
        }
    } else {
        tc->deferred = 1;
    }

    if (nf == 4
        && (f[3].len != 16
            || tg_trace_decode_padded(parent, 8, &f[3]) != TG_OK))
    {
        goto invalid;
    }

    tc->valid = 1;
    return TG_OK;

invalid:
    memset(tc, 0, sizeof(*tc));
    return TG_DECLINED;
}


/* X-B3-Sampled: 1, 0, or -1 when invalid. */
static int
tg_trace_b3_sampled(const tg_str_t *v)
{
    if (v->len == 1 && (v->data[0] == '1' || v->data[0] == '0')) {
        return v->data[0] - '0';
    }
    if (tg_str_caseeq_c(v, "true")) {
        return 1;
    }
    if (tg_str_caseeq_c(v, "false")) {
        return 0;
    }
    return -1;
}


int
tg_trace_parse_b3_multi(const tg_str_t *trace_id, const tg_str_t *span_id,
    const tg_str_t *sampled, const tg_str_t *flags, tg_trace_ctx_t *tc)
{
    int       s, debug;
    tg_str_t  t, sp, v;

    memset(tc, 0, sizeof(*tc));

    s = -1;
    if (sampled != NULL) {
        v = *sampled;
        tg_str_trim_ows(&v);
        s = tg_trace_b3_sampled(&v);
        if (s < 0) {
            return TG_DECLINED;
        }
    }

    debug = 0;
    if (flags != NULL) {
        v = *flags;
        tg_str_trim_ows(&v);
        debug = v.len == 1 && v.data[0] == '1';
    }

    if (trace_id == NULL || span_id == NULL) {
        if (trace_id == NULL && span_id == NULL && s == 0 && !debug) {
            tc->deny = 1;
        }
        return TG_DECLINED;
    }

    t = *trace_id;
    sp = *span_id;
    tg_str_trim_ows(&t);
    tg_str_trim_ows(&sp);
    if (tg_trace_b3_ids(&t, &sp, tc) != TG_OK) {
        memset(tc, 0, sizeof(*tc));
        return TG_DECLINED;
    }

    if (debug) {
        tc->flags = TG_TRACE_FLAG_SAMPLED;
        tc->debug = 1;
    } else if (s >= 0) {
        tc->flags = s ? TG_TRACE_FLAG_SAMPLED : 0;
    } else {
        tc->deferred = 1;
    }
    tc->valid = 1;
    return TG_OK;
}


/*
 * Splits on ':' or "%3A"/"%3a" into at most nf fields; returns the count,
 * or nf + 1 when there are more.
 */
static size_t
tg_trace_jaeger_split(const tg_str_t *v, tg_str_t *f, size_t nf)
{
    size_t  i, start, n, sep;

    n = 0;
    start = 0;
    i = 0;
    while (i < v->len) {
        if (v->data[i] == ':') {
            sep = 1;
        } else if (v->data[i] == '%' && i + 2 < v->len
                   && v->data[i + 1] == '3'
                   && (v->data[i + 2] == 'A' || v->data[i + 2] == 'a'))
        {
            sep = 3;
        } else {
            i++;
            continue;
        }
        if (n + 1 == nf) {
            return nf + 1;
        }
        f[n].data = v->data + start;
        f[n].len = i - start;
        n++;
        i += sep;
        start = i;
    }
    f[n].data = v->data + start;
    f[n].len = v->len - start;
    return n + 1;
}


int
tg_trace_parse_jaeger(const tg_str_t *value, tg_trace_ctx_t *tc)
{
    u_char    parent[8], flags;
    tg_str_t  v, f[4];

    memset(tc, 0, sizeof(*tc));
    v = *value;
    tg_str_trim_ows(&v);

    if (tg_trace_jaeger_split(&v, f, 4) != 4
        || tg_trace_decode_padded(tc->trace_id, 16, &f[0]) != TG_OK
        || tg_trace_decode_padded(tc->span_id, 8, &f[1]) != TG_OK
        || tg_trace_decode_padded(parent, 8, &f[2]) != TG_OK
        || tg_trace_decode_padded(&flags, 1, &f[3]) != TG_OK
        || tg_trace_is_zero(tc->trace_id, 16)
        || tg_trace_is_zero(tc->span_id, 8))
    {
        memset(tc, 0, sizeof(*tc));
        return TG_DECLINED;
    }

    /* jaeger-client: 0x01 sampled, 0x02 debug (always sent with sampled) */
    if (flags & 0x02) {
        tc->debug = 1;
        flags |= TG_TRACE_FLAG_SAMPLED;
    }
    tc->flags = flags & TG_TRACE_FLAG_SAMPLED;
    tc->valid = 1;
    return TG_OK;
}


u_char *
tg_trace_format_b3(u_char *dst, const u_char trace_id[16],
    const u_char span_id[8], uint8_t flags)
{
    dst = tg_hex_encode(dst, trace_id, 16);
    *dst++ = '-';
    dst = tg_hex_encode(dst, span_id, 8);
    *dst++ = '-';
    *dst++ = (flags & TG_TRACE_FLAG_SAMPLED) ? '1' : '0';
    return dst;
}


void
tg_trace_format_b3_multi(tg_trace_b3_multi_t *out, const u_char trace_id[16],
    const u_char span_id[8], uint8_t flags)
{
    tg_hex_encode(out->trace_id, trace_id, 16);
    tg_hex_encode(out->span_id, span_id, 8);
    out->sampled = (flags & TG_TRACE_FLAG_SAMPLED) ? '1' : '0';
}


u_char *
tg_trace_format_jaeger(u_char *dst, const u_char trace_id[16],
    const u_char span_id[8], uint8_t flags)
{
    u_char  f;

    f = flags & TG_TRACE_FLAG_SAMPLED;
    dst = tg_hex_encode(dst, trace_id, 16);
    *dst++ = ':';
    dst = tg_hex_encode(dst, span_id, 8);
    *dst++ = ':';
    *dst++ = '0';
    *dst++ = ':';
    return tg_hex_encode(dst, &f, 1);
}


int
tg_trace_propagators_parse(const tg_str_t *list, tg_trace_propagators_t *p)
{
    int       kind, none;
    size_t    i, named;
    tg_str_t  rest, name;

    memset(p, 0, sizeof(*p));
    none = 0;
    named = 0;

    tg_trace_list_start(list, &rest);
    while (tg_trace_list_next(&rest, &name)) {
        if (name.len == 0) {
            continue;
        }
        named++;
        if (tg_str_caseeq_c(&name, "tracecontext")) {
            kind = TG_TRACE_PROP_TRACECONTEXT;
        } else if (tg_str_caseeq_c(&name, "b3")) {
            kind = TG_TRACE_PROP_B3;
        } else if (tg_str_caseeq_c(&name, "b3multi")) {
            kind = TG_TRACE_PROP_B3MULTI;
        } else if (tg_str_caseeq_c(&name, "jaeger")) {
            kind = TG_TRACE_PROP_JAEGER;
        } else if (tg_str_caseeq_c(&name, "none")) {
            none = 1;
            continue;
        } else if (tg_str_caseeq_c(&name, "baggage")) {
            continue;
        } else {
            memset(p, 0, sizeof(*p));
            return TG_ERROR;
        }
        for (i = 0; i < p->n; i++) {
            if (p->order[i] == kind) {
                break;
            }
        }
        if (i == p->n) {
            p->order[p->n++] = (uint8_t) kind;
        }
    }

    if (named == 0) {
        return TG_ERROR;
    }
    if (none) {
        p->n = 0;
    }
    return TG_OK;
}


int
tg_trace_propagators_inject(const tg_trace_propagators_t *p, int kind)
{
    size_t  i;

    for (i = 0; i < p->n; i++) {
        if (p->order[i] == kind) {
            return 1;
        }
    }
    return 0;
}


/* The first member of the first line, or NULL when the header is absent. */
static const tg_str_t *
tg_trace_first_value(const tg_trace_lines_t *l, tg_str_t *v)
{
    tg_str_t  rest;

    if (l->n == 0 || l->lines == NULL) {
        return NULL;
    }
    tg_trace_list_start(&l->lines[0], &rest);
    tg_trace_list_next(&rest, v);
    return v;
}


static int
tg_trace_extract_b3(const tg_trace_carrier_t *c, tg_trace_ctx_t *tc)
{
    unsigned  deny;
    tg_str_t  v[5];

    deny = 0;
    if (tg_trace_first_value(&c->hdr[TG_TRACE_HDR_B3], &v[0]) != NULL) {
        if (tg_trace_parse_b3(&v[0], tc) == TG_OK) {
            return TG_OK;
        }
        deny = tc->deny;
    }

    if (c->hdr[TG_TRACE_HDR_B3_TRACE_ID].n || c->hdr[TG_TRACE_HDR_B3_SPAN_ID].n
        || c->hdr[TG_TRACE_HDR_B3_SAMPLED].n || c->hdr[TG_TRACE_HDR_B3_FLAGS].n)
    {
        if (tg_trace_parse_b3_multi(
                tg_trace_first_value(&c->hdr[TG_TRACE_HDR_B3_TRACE_ID], &v[1]),
                tg_trace_first_value(&c->hdr[TG_TRACE_HDR_B3_SPAN_ID], &v[2]),
                tg_trace_first_value(&c->hdr[TG_TRACE_HDR_B3_SAMPLED], &v[3]),
                tg_trace_first_value(&c->hdr[TG_TRACE_HDR_B3_FLAGS], &v[4]),
                tc)
            == TG_OK)
        {
            return TG_OK;
        }
        deny |= tc->deny;
    }

    memset(tc, 0, sizeof(*tc));
    tc->deny = deny;
    return TG_DECLINED;
}


int
tg_trace_extract(const tg_trace_propagators_t *p, const tg_trace_carrier_t *c,
    tg_trace_ctx_t *tc, int *source, size_t *ndup)
{
    int             rc;
    size_t          i, nd, tp_nd;
    unsigned        deny;
    tg_str_t        v;
    const tg_str_t *first;

    deny = 0;
    tp_nd = 0;
    for (i = 0; i < p->n; i++) {
        nd = 0;
        switch (p->order[i]) {
        case TG_TRACE_PROP_TRACECONTEXT:
            rc = tg_trace_extract_traceparent(
                c->hdr[TG_TRACE_HDR_TRACEPARENT].lines,
                c->hdr[TG_TRACE_HDR_TRACEPARENT].n, tc, &nd);
            tp_nd = nd;
            break;
        case TG_TRACE_PROP_B3:
        case TG_TRACE_PROP_B3MULTI:
            rc = tg_trace_extract_b3(c, tc);
            break;
        case TG_TRACE_PROP_JAEGER:
            first = tg_trace_first_value(&c->hdr[TG_TRACE_HDR_UBER_TRACE_ID],
                                         &v);
            rc = first ? tg_trace_parse_jaeger(first, tc) : TG_DECLINED;
            break;
        default:
            rc = TG_DECLINED;
            break;
        }
        if (rc == TG_OK) {
            if (source != NULL) {
                *source = p->order[i];
            }
            if (ndup != NULL) {
                *ndup = nd;
            }
            return TG_OK;
        }
        deny |= tc->deny;
    }

    memset(tc, 0, sizeof(*tc));
    tc->deny = deny;
    if (source != NULL) {
        *source = 0;
    }
    if (ndup != NULL) {
        *ndup = tp_nd; /* so a caller can log conflicting duplicates */
    }
    return TG_DECLINED;
}


/* [A-Za-z0-9._:-]: what ids of every common format are made of */
static const uint8_t  tg_trace_xid_char[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1, [':'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
    ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
    ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
    ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
    ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};


int
tg_trace_xid_extract(const tg_str_t *lines, size_t nlines, tg_str_t *out)
{
    size_t    i, j;
    tg_str_t  rest, member;

    out->len = 0;
    out->data = NULL;

    for (i = 0; i < nlines; i++) {
        tg_trace_list_start(&lines[i], &rest);
        while (tg_trace_list_next(&rest, &member)) {
            if (member.len == 0) {
                continue;
            }
            *out = member;
            if (member.len > TG_TRACE_XID_MAX) {
                return TG_ERROR;
            }
            for (j = 0; j < member.len; j++) {
                if (!tg_trace_xid_char[member.data[j]]) {
                    return TG_ERROR;
                }
            }
            return TG_OK;
        }
    }
    return TG_DECLINED;
}


static u_char *
tg_trace_put_dec(u_char *p, int v, int width)
{
    int  i;

    for (i = width - 1; i >= 0; i--) {
        p[i] = (u_char) ('0' + v % 10);
        v /= 10;
    }
    return p + width;
}


size_t
tg_trace_xid_generate(u_char *dst, int format, const u_char trace_id[16],
    uint64_t now_ns)
{
    u_char     *p, b[16];
    time_t      sec;
    struct tm   tm;

    p = dst;
    switch (format) {

    case TG_TRACE_XID_UUID:
        /* RFC 9562 5.4: version 4 in the top nibble of octet 6, variant 10 */
        memcpy(b, trace_id, 16);
        b[6] = (u_char) ((b[6] & 0x0f) | 0x40);
        b[8] = (u_char) ((b[8] & 0x3f) | 0x80);
        p = tg_hex_encode(p, b, 4);
        *p++ = '-';
        p = tg_hex_encode(p, b + 4, 2);
        *p++ = '-';
        p = tg_hex_encode(p, b + 6, 2);
        *p++ = '-';
        p = tg_hex_encode(p, b + 8, 2);
        *p++ = '-';
        p = tg_hex_encode(p, b + 10, 6);
        break;

    case TG_TRACE_XID_TIME:
        sec = (time_t) (now_ns / 1000000000);
        if (gmtime_r(&sec, &tm) == NULL) {
            memset(&tm, 0, sizeof(tm));
        }
        memcpy(p, "trace-", 6);
        p += 6;
        p = tg_trace_put_dec(p, (tm.tm_year + 1900) % 10000, 4);
        p = tg_trace_put_dec(p, tm.tm_mon + 1, 2);
        p = tg_trace_put_dec(p, tm.tm_mday, 2);
        *p++ = 'T';
        p = tg_trace_put_dec(p, tm.tm_hour, 2);
        p = tg_trace_put_dec(p, tm.tm_min, 2);
        p = tg_trace_put_dec(p, tm.tm_sec, 2);
        *p++ = 'Z';
        *p++ = '-';
        p = tg_hex_encode(p, trace_id + 12, 4);
        break;

    default:
        p = tg_hex_encode(p, trace_id, 16);
        break;
    }
    return (size_t) (p - dst);
}


int
tg_trace_xid_format_parse(const tg_str_t *name)
{
    if (tg_str_caseeq_c(name, "hex")) {
        return TG_TRACE_XID_HEX;
    }
    if (tg_str_caseeq_c(name, "uuid")) {
        return TG_TRACE_XID_UUID;
    }
    if (tg_str_caseeq_c(name, "time")) {
        return TG_TRACE_XID_TIME;
    }
    return TG_ERROR;
}


int
tg_trace_sampler_init(tg_trace_sampler_t *s, const tg_str_t *name,
    double ratio)
{
    static const struct {
        const char  *name;
        int          kind;
    } kinds[] = {
        { "always_on", TG_TRACE_SAMPLER_ALWAYS_ON },
        { "always_off", TG_TRACE_SAMPLER_ALWAYS_OFF },
        { "traceidratio", TG_TRACE_SAMPLER_TRACEIDRATIO },
        { "parentbased_always_on", TG_TRACE_SAMPLER_PARENTBASED_ALWAYS_ON },
        { "parentbased_always_off", TG_TRACE_SAMPLER_PARENTBASED_ALWAYS_OFF },
        { "parentbased_traceidratio",
          TG_TRACE_SAMPLER_PARENTBASED_TRACEIDRATIO }
    };
    size_t  i;

    if (!(ratio >= 0.0 && ratio <= 1.0)) {
        return TG_ERROR;
    }
    for (i = 0; i < tg_nelts(kinds); i++) {
        if (tg_str_caseeq_c(name, kinds[i].name)) {
            break;
        }
    }
    if (i == tg_nelts(kinds)) {
        return TG_ERROR;
    }

    s->kind = kinds[i].kind;
    s->ratio = ratio;
    if (ratio >= 1.0) {
        s->threshold = (uint64_t) 1 << 56;
    } else {
        s->threshold = (uint64_t) (ratio * TG_TRACE_TWO_POW_56);
    }
    return TG_OK;
}


/* W3C Level 2 3.2.2.6: the rightmost 7 bytes are the random part. */
static int
tg_trace_sampler_ratio(const tg_trace_sampler_t *s, const u_char trace_id[16])
{
    int       i;
    uint64_t  r;

    r = 0;
    for (i = 9; i < 16; i++) {
        r = r << 8 | trace_id[i];
    }
    return r < s->threshold;
}


int
tg_trace_sampler_sample(const tg_trace_sampler_t *s,
    const tg_trace_ctx_t *parent, const u_char trace_id[16])
{
    switch (s->kind) {
    case TG_TRACE_SAMPLER_ALWAYS_ON:
        return 1;
    case TG_TRACE_SAMPLER_ALWAYS_OFF:
        return 0;
    case TG_TRACE_SAMPLER_TRACEIDRATIO:
        return tg_trace_sampler_ratio(s, trace_id);
    case TG_TRACE_SAMPLER_PARENTBASED_ALWAYS_ON:
    case TG_TRACE_SAMPLER_PARENTBASED_ALWAYS_OFF:
    case TG_TRACE_SAMPLER_PARENTBASED_TRACEIDRATIO:
        break;
    default:
        return 0;
    }

    if (parent != NULL) {
        if (parent->valid && !parent->deferred) {
            return (parent->flags & TG_TRACE_FLAG_SAMPLED) ? 1 : 0;
        }
        if (!parent->valid && parent->deny) {
            return 0;
        }
    }

    switch (s->kind) {
    case TG_TRACE_SAMPLER_PARENTBASED_ALWAYS_ON:
        return 1;
    case TG_TRACE_SAMPLER_PARENTBASED_ALWAYS_OFF:
        return 0;
    default:
        return tg_trace_sampler_ratio(s, trace_id);
    }
}
