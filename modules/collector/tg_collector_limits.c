#include <tg_config.h>
#include <tg_core.h>
#include <tg_collector_limits.h>


/*
 * The messages of an ExportTraceServiceRequest that the scan enters
 * (opentelemetry/proto/{collector/trace,trace,resource,common}/v1).
 */
#define TG_PB_REQUEST   0
#define TG_PB_RS        1   /* ResourceSpans */
#define TG_PB_RESOURCE  2
#define TG_PB_SS        3   /* ScopeSpans */
#define TG_PB_SCOPE     4   /* InstrumentationScope */
#define TG_PB_SPAN      5
#define TG_PB_EVENT     6
#define TG_PB_LINK      7
#define TG_PB_STATUS    8
#define TG_PB_KV        9   /* KeyValue */
#define TG_PB_ANY       10  /* AnyValue */
#define TG_PB_ARRAY     11  /* ArrayValue */
#define TG_PB_KVLIST    12  /* KeyValueList */

#define TG_PB_NONE      -1

/* a field holding a message: which, and what an occurrence counts as */
typedef struct {
    uint8_t  field;
    int8_t   type;
    int8_t   count;     /* TG_COLLECTOR_*, or TG_PB_NONE */
} tg_collector_pb_sub_t;

/*
 * The fields of a message that hold messages (up to 4; the list ends at
 * field 0). Other fields, known or not, are only counted and skipped.
 */
typedef struct {
    tg_collector_pb_sub_t  sub[4];
} tg_collector_pb_msg_t;

static const tg_collector_pb_msg_t  tg_collector_pb_msgs[] = {
    [TG_PB_REQUEST] = {
        { { 1, TG_PB_RS, TG_COLLECTOR_RESOURCE_SPANS } } },
    [TG_PB_RS] = {
        { { 1, TG_PB_RESOURCE, TG_PB_NONE },
          { 2, TG_PB_SS, TG_COLLECTOR_SCOPE_SPANS } } },
    [TG_PB_RESOURCE] = {
        { { 1, TG_PB_KV, TG_COLLECTOR_ATTRIBUTES } } },
    [TG_PB_SS] = {
        { { 1, TG_PB_SCOPE, TG_PB_NONE },
          { 2, TG_PB_SPAN, TG_COLLECTOR_SPANS } } },
    [TG_PB_SCOPE] = {
        { { 3, TG_PB_KV, TG_COLLECTOR_ATTRIBUTES } } },
    [TG_PB_SPAN] = {
        { { 9, TG_PB_KV, TG_COLLECTOR_ATTRIBUTES },
          { 11, TG_PB_EVENT, TG_COLLECTOR_EVENTS },
          { 13, TG_PB_LINK, TG_COLLECTOR_LINKS },
          { 15, TG_PB_STATUS, TG_PB_NONE } } },
    [TG_PB_EVENT] = {
        { { 3, TG_PB_KV, TG_COLLECTOR_ATTRIBUTES } } },
    [TG_PB_LINK] = {
        { { 4, TG_PB_KV, TG_COLLECTOR_ATTRIBUTES } } },
    [TG_PB_STATUS] = { { { 0, 0, 0 } } },
    [TG_PB_KV] = {
        { { 2, TG_PB_ANY, TG_PB_NONE } } },
    [TG_PB_ANY] = {
        { { 5, TG_PB_ARRAY, TG_PB_NONE },
          { 6, TG_PB_KVLIST, TG_PB_NONE } } },
    [TG_PB_ARRAY] = {
        { { 1, TG_PB_ANY, TG_COLLECTOR_ATTRIBUTES } } },
    [TG_PB_KVLIST] = {
        { { 1, TG_PB_KV, TG_COLLECTOR_ATTRIBUTES } } },
};

typedef struct {
    tg_collector_limits_t  *lim;
    const u_char           *end;      /* of the whole buffer */
    int                     partial;
    char                   *err;
    size_t                  errlen;
} tg_collector_scan_t;

static int tg_collector_pb_message(tg_collector_scan_t *sc, int type,
    const u_char *p, const u_char *end, int depth);
static int tg_collector_pb_varint(const u_char **p, const u_char *end,
    uint64_t *v);

static const char  *tg_collector_count_names[TG_COLLECTOR_NCOUNTS] = {
    "resource spans", "scope spans", "spans", "events", "links",
    "attributes", "fields or values"
};


void
tg_collector_limits_reset(tg_collector_limits_t *lim)
{
    memset(lim->n, 0, sizeof(lim->n));
    lim->budget = TG_COLLECTOR_FIELDS_BASE;
    lim->over = -1;
}


int
tg_collector_count(tg_collector_limits_t *lim, int what)
{
    lim->budget += (what == TG_COLLECTOR_ATTRIBUTES)
                   ? TG_COLLECTOR_FIELDS_PER_ATTRIBUTE
                   : TG_COLLECTOR_FIELDS_PER_OBJECT;
    if (++lim->n[what] > lim->max[what]) {
        lim->over = what;
        return TG_DECLINED;
    }
    return TG_OK;
}


int
tg_collector_count_field(tg_collector_limits_t *lim)
{
    if (++lim->n[TG_COLLECTOR_FIELDS] > lim->budget) {
        lim->over = TG_COLLECTOR_FIELDS;
        return TG_DECLINED;
    }
    return TG_OK;
}


const char *
tg_collector_count_name(int what)
{
    return (what >= 0 && what < TG_COLLECTOR_NCOUNTS)
           ? tg_collector_count_names[what] : "?";
}


int
tg_collector_pb_scan(tg_collector_limits_t *lim, const u_char *p, size_t len,
    int partial, char *err, size_t errlen)
{
    tg_collector_scan_t  sc;

    tg_collector_limits_reset(lim);
    sc.lim = lim;
    sc.end = p + len;
    sc.partial = partial;
    sc.err = err;
    sc.errlen = errlen;
    err[0] = '\0';
    return tg_collector_pb_message(&sc, TG_PB_REQUEST, p, p + len, 0);
}


/*
 * A base 128 varint (protobuf encoding guide): 1 with *v, 0 when the bytes
 * end first, -1 when it runs past 10 bytes.
 */
static int
tg_collector_pb_varint(const u_char **p, const u_char *end, uint64_t *v)
{
    unsigned       shift;
    const u_char  *q;

    *v = 0;
    for (q = *p, shift = 0; q < end; q++, shift += 7) {
        if (shift > 63) {
            return -1;
        }
        *v |= (uint64_t) (*q & 0x7f) << shift;
        if (*q < 0x80) {
            *p = q + 1;
            return 1;
        }
    }
    return 0;
}


/*
 * One message of the given type in p[0..end). A field cut by end is
 * malformed unless the scan is partial and end is the buffer's end: then
 * the scan stops there (after entering a cut message as far as it goes).
 */
static int
tg_collector_pb_message(tg_collector_scan_t *sc, int type, const u_char *p,
    const u_char *end, int depth)
{
    int                            rc, cut;
    size_t                         i;
    uint64_t                       tag, field, n;
    const u_char                  *q;
    const tg_collector_pb_msg_t   *m;
    const tg_collector_pb_sub_t   *sub;

    m = &tg_collector_pb_msgs[type];
    cut = sc->partial && end == sc->end;

    while (p < end) {
        rc = tg_collector_pb_varint(&p, end, &tag);
        if (rc <= 0) {
            goto short_or_bad;
        }
        field = tag >> 3;
        if (field == 0 || field > 0x1fffffff) {
            snprintf(sc->err, sc->errlen, "a protobuf field number is 0 or "
                     "too big");
            return TG_ERROR;
        }

        sub = NULL;
        if ((tag & 7) == 2) {
            for (i = 0; i < tg_nelts(m->sub) && m->sub[i].field; i++) {
                if (m->sub[i].field == field) {
                    sub = &m->sub[i];
                    break;
                }
            }
        }
        if (sub && sub->count != TG_PB_NONE
            && tg_collector_count(sc->lim, sub->count) != TG_OK)
        {
            return TG_DECLINED;
        }
        if (tg_collector_count_field(sc->lim) != TG_OK) {
            return TG_DECLINED;
        }

        switch (tag & 7) {
        case 0:
            rc = tg_collector_pb_varint(&p, end, &n);
            if (rc <= 0) {
                goto short_or_bad;
            }
            break;
        case 1:
        case 5:
            n = (tag & 7) == 1 ? 8 : 4;
            if ((size_t) (end - p) < n) {
                rc = 0;
                goto short_or_bad;
            }
            p += n;
            break;
        case 2:
            rc = tg_collector_pb_varint(&p, end, &n);
            if (rc <= 0) {
                goto short_or_bad;
            }
            q = end;
            if (n <= (uint64_t) (end - p)) {
                q = p + n;
            } else if (!cut) {
                rc = 0;
                goto short_or_bad;
            }
            if (sub) {
                if (depth >= TG_COLLECTOR_PB_DEPTH_MAX) {
                    snprintf(sc->err, sc->errlen, "protobuf messages nested "
                             "more than %d deep", TG_COLLECTOR_PB_DEPTH_MAX);
                    return TG_ERROR;
                }
                rc = tg_collector_pb_message(sc, sub->type, p, q, depth + 1);
                if (rc != TG_OK) {
                    return rc;
                }
            }
            p = q;
            break;
        default:
            /* groups (3, 4) and 6, 7: protobuf-c does not read them */
            snprintf(sc->err, sc->errlen, "protobuf wire type %d",
                     (int) (tag & 7));
            return TG_ERROR;
        }
    }
    return TG_OK;

short_or_bad:
    if (rc == 0 && cut) {
        return TG_OK;
    }
    snprintf(sc->err, sc->errlen, rc == 0 ? "a protobuf field is cut short"
                                          : "a protobuf varint is too long");
    return TG_ERROR;
}
