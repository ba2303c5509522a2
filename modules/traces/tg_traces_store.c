#include <tg_config.h>
#include <tg_core.h>
#include <tg_traces_store.h>

#include <pthread.h>
#include <sys/mman.h>


typedef struct {
    u_char    trace_id[16];
    uint64_t  seq;            /* 0: slot free */
    uint64_t  start_ns;
    uint64_t  end_ns;
    int32_t   first;          /* span list in arrival order, -1: none */
    int32_t   last;
    int32_t   hash_next;      /* next slot in the bucket, -1: end */
    uint32_t  nspans;
    uint32_t  nerrors;
    uint32_t  dropped;
    char      x_trace_id[TG_TRACES_XID_MAX];
} tg_traces_slot_t;

struct tg_traces_store_s {
    pthread_mutex_t     mutex;
    size_t              size;         /* bytes mapped */
    uint32_t            max_traces;
    uint32_t            max_spans;
    uint32_t            per_trace;
    uint32_t            nbuckets;     /* power of two */
    uint32_t            head;         /* next slot to use */
    uint32_t            count;        /* live traces */
    uint32_t            used_spans;
    int32_t             free_span;    /* free list head, -1: none */
    uint64_t            next_seq;
    tg_traces_stats_t   stats;
    int32_t            *buckets;      /* these point into the mapping, */
    tg_traces_slot_t   *slots;        /* which is at the same address */
    tg_traces_span_t   *spans;        /* in every process (inherited) */
};


static int tg_traces_store_lock(tg_traces_store_t *s);
static void tg_traces_store_reset(tg_traces_store_t *s);
static uint32_t tg_traces_hash(tg_traces_store_t *s, const u_char *id);
static int32_t tg_traces_find(tg_traces_store_t *s, const u_char *id);
static void tg_traces_evict_oldest(tg_traces_store_t *s);
static int32_t tg_traces_new_trace(tg_traces_store_t *s, const u_char *id);
static void tg_traces_summarize(tg_traces_store_t *s, tg_traces_slot_t *t,
    tg_traces_summary_t *sum);
static int tg_traces_match(tg_traces_slot_t *t, const tg_str_t *q);


tg_traces_store_t  *tg_traces_store;


static size_t
tg_traces_buckets(uint32_t max_traces)
{
    size_t  n;

    n = 16;
    while (n < (size_t) max_traces * 2) {
        n <<= 1;
    }
    return n;
}


size_t
tg_traces_store_size(uint32_t max_traces, uint32_t max_spans)
{
    size_t  hdr;

    hdr = (sizeof(tg_traces_store_t) + 63) & ~(size_t) 63;
    return hdr + tg_traces_buckets(max_traces) * sizeof(int32_t)
           + (size_t) max_traces * sizeof(tg_traces_slot_t)
           + (size_t) max_spans * sizeof(tg_traces_span_t);
}


tg_traces_store_t *
tg_traces_store_create(uint32_t max_traces, uint32_t max_spans,
    uint32_t per_trace)
{
    u_char               *p;
    size_t                size, hdr;
    tg_traces_store_t    *s;
    pthread_mutexattr_t   ma;

    if (max_traces == 0 || max_spans == 0) {
        errno = EINVAL;
        return NULL;
    }
    size = tg_traces_store_size(max_traces, max_spans);
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
             -1, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }
    s = (tg_traces_store_t *) p;
    hdr = (sizeof(tg_traces_store_t) + 63) & ~(size_t) 63;
    s->size = size;
    s->max_traces = max_traces;
    s->max_spans = max_spans;
    s->per_trace = per_trace ? per_trace : max_spans;
    s->nbuckets = (uint32_t) tg_traces_buckets(max_traces);
    s->buckets = (int32_t *) (p + hdr);
    s->slots = (tg_traces_slot_t *) (s->buckets + s->nbuckets);
    s->spans = (tg_traces_span_t *) (s->slots + max_traces);

    if (pthread_mutexattr_init(&ma) != 0
        || pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED) != 0
        || pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST) != 0
        || pthread_mutex_init(&s->mutex, &ma) != 0)
    {
        munmap(p, size);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutexattr_destroy(&ma);
    tg_traces_store_reset(s);
    return s;
}


int
tg_traces_store_same(tg_traces_store_t *s, uint32_t max_traces,
    uint32_t max_spans, uint32_t per_trace)
{
    return s != NULL && s->max_traces == max_traces
           && s->max_spans == max_spans
           && s->per_trace == (per_trace ? per_trace : max_spans);
}


void
tg_traces_store_destroy(tg_traces_store_t *s)
{
    if (s != NULL) {
        munmap(s, s->size);
    }
}


/* Clears everything: the state after create, or after a lock owner died. */
static void
tg_traces_store_reset(tg_traces_store_t *s)
{
    uint32_t  i;

    for (i = 0; i < s->nbuckets; i++) {
        s->buckets[i] = -1;
    }
    memset(s->slots, 0, (size_t) s->max_traces * sizeof(tg_traces_slot_t));
    for (i = 0; i < s->max_spans; i++) {
        s->spans[i].next = (i + 1 < s->max_spans) ? (int32_t) (i + 1) : -1;
    }
    s->free_span = 0;
    s->head = 0;
    s->count = 0;
    s->used_spans = 0;
    s->next_seq = 1;
}


/*
 * EOWNERDEAD: a worker died inside a critical section, so the lists may be
 * half-updated; the store starts empty again rather than trusting them.
 */
static int
tg_traces_store_lock(tg_traces_store_t *s)
{
    int  rc;

    rc = pthread_mutex_lock(&s->mutex);
    if (rc == EOWNERDEAD) {
        tg_traces_store_reset(s);
        pthread_mutex_consistent(&s->mutex);
        return TG_OK;
    }
    return rc == 0 ? TG_OK : TG_ERROR;
}


static uint32_t
tg_traces_hash(tg_traces_store_t *s, const u_char *id)
{
    uint64_t  h;

    /* trace ids are random (W3C): their low bytes are a good hash */
    memcpy(&h, id + 8, sizeof(h));
    h ^= h >> 29;
    return (uint32_t) h & (s->nbuckets - 1);
}


static int32_t
tg_traces_find(tg_traces_store_t *s, const u_char *id)
{
    int32_t  i;

    for (i = s->buckets[tg_traces_hash(s, id)]; i >= 0;
         i = s->slots[i].hash_next)
    {
        if (memcmp(s->slots[i].trace_id, id, 16) == 0) {
            return i;
        }
    }
    return -1;
}


static void
tg_traces_evict_oldest(tg_traces_store_t *s)
{
    int32_t            *pp, j, next;
    uint32_t            old;
    tg_traces_slot_t   *t;

    if (s->count == 0) {
        return;
    }
    old = (s->head + s->max_traces - s->count) % s->max_traces;
    t = &s->slots[old];

    for (pp = &s->buckets[tg_traces_hash(s, t->trace_id)]; *pp >= 0;
         pp = &s->slots[*pp].hash_next)
    {
        if (*pp == (int32_t) old) {
            *pp = t->hash_next;
            break;
        }
    }
    for (j = t->first; j >= 0; j = next) {
        next = s->spans[j].next;
        s->spans[j].next = s->free_span;
        s->free_span = j;
        s->used_spans--;
    }
    memset(t, 0, sizeof(tg_traces_slot_t));
    s->count--;
    s->stats.traces_evicted++;
}


static int32_t
tg_traces_new_trace(tg_traces_store_t *s, const u_char *id)
{
    uint32_t           h, slot;
    tg_traces_slot_t  *t;

    if (s->count == s->max_traces) {
        tg_traces_evict_oldest(s);
    }
    slot = s->head;
    s->head = (s->head + 1) % s->max_traces;
    s->count++;

    t = &s->slots[slot];
    memset(t, 0, sizeof(tg_traces_slot_t));
    memcpy(t->trace_id, id, 16);
    t->seq = s->next_seq++;
    t->first = -1;
    t->last = -1;
    h = tg_traces_hash(s, id);
    t->hash_next = s->buckets[h];
    s->buckets[h] = (int32_t) slot;
    return (int32_t) slot;
}


size_t
tg_traces_store_add(tg_traces_store_t *s, const tg_traces_span_t *spans,
    size_t n)
{
    size_t             i, stored;
    int32_t            ti, si;
    uint64_t           seq;
    tg_traces_attr_t   a;
    tg_traces_slot_t  *t;
    size_t             off;

    if (s == NULL || tg_traces_store_lock(s) != TG_OK) {
        return 0;
    }
    stored = 0;
    for (i = 0; i < n; i++) {
        ti = tg_traces_find(s, spans[i].trace_id);
        if (ti < 0) {
            ti = tg_traces_new_trace(s, spans[i].trace_id);
        }
        t = &s->slots[ti];
        if (t->nspans >= s->per_trace) {
            t->dropped++;
            s->stats.spans_dropped++;
            continue;
        }
        /* no free record: evict from the oldest, never the trace itself */
        seq = t->seq;
        while (s->free_span < 0 && s->count > 1
               && s->slots[(s->head + s->max_traces - s->count)
                           % s->max_traces].seq != seq)
        {
            tg_traces_evict_oldest(s);
        }
        if (s->free_span < 0) {
            t->dropped++;
            s->stats.spans_dropped++;
            continue;
        }
        si = s->free_span;
        s->free_span = s->spans[si].next;
        s->used_spans++;
        memcpy(&s->spans[si], &spans[i], sizeof(tg_traces_span_t));
        s->spans[si].next = -1;
        if (t->last >= 0) {
            s->spans[t->last].next = si;
        } else {
            t->first = si;
        }
        t->last = si;

        if (t->nspans == 0 || spans[i].start_ns < t->start_ns) {
            t->start_ns = spans[i].start_ns;
        }
        if (spans[i].end_ns > t->end_ns) {
            t->end_ns = spans[i].end_ns;
        }
        t->nspans++;
        if (spans[i].status == TG_SPAN_STATUS_ERROR) {
            t->nerrors++;
        }
        if (t->x_trace_id[0] == '\0') {
            off = 0;
            while (tg_traces_attr_next(&spans[i], &off, &a)) {
                if (a.type == TG_SPAN_ATTR_STRING
                    && tg_str_caseeq_c(&a.key, "tracegate.x_trace_id"))
                {
                    tg_traces_span_set(t->x_trace_id, TG_TRACES_XID_MAX,
                                       a.str.data, a.str.len);
                    break;
                }
            }
        }
        s->stats.spans_added++;
        stored++;
    }
    pthread_mutex_unlock(&s->mutex);
    return stored;
}


/*
 * The root: the first span with no parent; else (a trace whose root has
 * not arrived, or was cut) the earliest span.
 */
static void
tg_traces_summarize(tg_traces_store_t *s, tg_traces_slot_t *t,
    tg_traces_summary_t *sum)
{
    int32_t            j;
    size_t             len, n, off;
    const char        *found;
    tg_traces_attr_t   a;
    static u_char      zero[8];
    tg_traces_span_t  *sp, *root, *early;

    memset(sum, 0, sizeof(tg_traces_summary_t));
    memcpy(sum->trace_id, t->trace_id, 16);
    sum->start_ns = t->start_ns;
    sum->end_ns = t->end_ns;
    sum->nspans = t->nspans;
    sum->nerrors = t->nerrors;
    sum->dropped = t->dropped;
    memcpy(sum->x_trace_id, t->x_trace_id, TG_TRACES_XID_MAX);

    root = NULL;
    early = NULL;
    len = 0;
    for (j = t->first; j >= 0; j = sp->next) {
        sp = &s->spans[j];
        if (root == NULL && memcmp(sp->parent_id, zero, 8) == 0) {
            root = sp;
        }
        if (early == NULL || sp->start_ns < early->start_ns) {
            early = sp;
        }
        n = strlen(sp->service);
        found = strstr(sum->services, sp->service);
        while (found != NULL
               && !((found == sum->services || found[-1] == ',')
                    && (found[n] == ',' || found[n] == '\0')))
        {
            found = strstr(found + 1, sp->service);
        }
        if (n && found == NULL && len + n + 2 < sizeof(sum->services)) {
            if (len) {
                sum->services[len++] = ',';
            }
            memcpy(sum->services + len, sp->service, n + 1);
            len += n;
        }
    }
    if (root == NULL) {
        root = early;
    }
    if (root != NULL) {
        memcpy(sum->root_name, root->name, TG_TRACES_NAME_MAX);
        memcpy(sum->root_service, root->service, TG_TRACES_SERVICE_MAX);
        off = 0;
        while (tg_traces_attr_next(root, &off, &a)) {
            if (a.type == TG_SPAN_ATTR_STRING
                && tg_str_caseeq_c(&a.key, "url.path"))
            {
                tg_traces_span_set(sum->root_path, sizeof(sum->root_path),
                                   a.str.data, a.str.len);
                break;
            }
        }
    }
}


static int
tg_traces_match(tg_traces_slot_t *t, const tg_str_t *q)
{
    u_char  hex[33];
    size_t  i, xlen;

    tg_hex_encode(hex, t->trace_id, 16);
    if (q->len <= 32) {
        for (i = 0; i < q->len; i++) {
            if (tg_tolower(q->data[i]) != hex[i]) {
                break;
            }
        }
        if (i == q->len) {
            return 1;
        }
    }
    xlen = strlen(t->x_trace_id);
    return xlen == q->len
           && strncasecmp(t->x_trace_id, (char *) q->data, xlen) == 0;
}


size_t
tg_traces_store_list(tg_traces_store_t *s, const tg_str_t *q,
    tg_traces_summary_t *out, size_t max)
{
    size_t             n;
    uint32_t           k, slot;
    tg_traces_slot_t  *t;

    if (s == NULL || max == 0 || tg_traces_store_lock(s) != TG_OK) {
        return 0;
    }
    n = 0;
    for (k = 1; k <= s->count && n < max; k++) {
        slot = (s->head + s->max_traces - k) % s->max_traces;
        t = &s->slots[slot];
        if (q != NULL && q->len && !tg_traces_match(t, q)) {
            continue;
        }
        tg_traces_summarize(s, t, &out[n++]);
    }
    pthread_mutex_unlock(&s->mutex);
    return n;
}


ssize_t
tg_traces_store_get(tg_traces_store_t *s, const u_char *trace_id,
    tg_traces_span_t **spans, tg_traces_summary_t *sum)
{
    size_t             n;
    int32_t            ti, j;
    tg_traces_slot_t  *t;
    tg_traces_span_t  *out;

    *spans = NULL;
    if (s == NULL || tg_traces_store_lock(s) != TG_OK) {
        return 0;
    }
    ti = tg_traces_find(s, trace_id);
    if (ti < 0 || s->slots[ti].nspans == 0) {
        pthread_mutex_unlock(&s->mutex);
        return 0;
    }
    t = &s->slots[ti];
    out = malloc((size_t) t->nspans * sizeof(tg_traces_span_t));
    if (out == NULL) {
        pthread_mutex_unlock(&s->mutex);
        return -1;
    }
    n = 0;
    for (j = t->first; j >= 0 && n < t->nspans; j = s->spans[j].next) {
        memcpy(&out[n++], &s->spans[j], sizeof(tg_traces_span_t));
    }
    tg_traces_summarize(s, t, sum);
    pthread_mutex_unlock(&s->mutex);
    *spans = out;
    return (ssize_t) n;
}


void
tg_traces_store_stats(tg_traces_store_t *s, tg_traces_stats_t *st)
{
    memset(st, 0, sizeof(tg_traces_stats_t));
    if (s == NULL || tg_traces_store_lock(s) != TG_OK) {
        return;
    }
    *st = s->stats;
    st->traces = s->count;
    st->spans = s->used_spans;
    pthread_mutex_unlock(&s->mutex);
}


void
tg_traces_span_init(tg_traces_span_t *sp)
{
    memset(sp, 0, offsetof(tg_traces_span_t, attrs));
    sp->next = -1;
}


/* Copies n bytes as a NUL-terminated string, cut at a UTF-8 boundary. */
void
tg_traces_span_set(char *dst, size_t size, const u_char *src, size_t n)
{
    if (n >= size) {
        n = size - 1;
        while (n > 0 && (src[n] & 0xc0) == 0x80) {
            n--;
        }
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}


int
tg_traces_span_add(tg_traces_span_t *sp, uint8_t type, const u_char *key,
    size_t klen, const u_char *val, size_t vlen, int64_t num)
{
    u_char  *p;
    size_t   need;

    if (klen > 255) {
        klen = 255;
    }
    if (vlen > 512) {
        vlen = 512;
    }
    need = 2 + klen;
    if (type == TG_SPAN_ATTR_STRING || type == TG_TRACES_ATTR_DOUBLE) {
        need += 2 + vlen;
    } else if (type == TG_SPAN_ATTR_INT) {
        need += 8;
    } else {
        need += 1;
    }
    if (sp->attr_len + need > TG_TRACES_ATTR_BYTES) {
        if (sp->dropped_attrs < UINT16_MAX) {
            sp->dropped_attrs++;
        }
        return TG_DECLINED;
    }
    p = sp->attrs + sp->attr_len;
    *p++ = type;
    *p++ = (u_char) klen;
    memcpy(p, key, klen);
    p += klen;
    if (type == TG_SPAN_ATTR_STRING || type == TG_TRACES_ATTR_DOUBLE) {
        *p++ = (u_char) (vlen & 0xff);
        *p++ = (u_char) (vlen >> 8);
        memcpy(p, val, vlen);
    } else if (type == TG_SPAN_ATTR_INT) {
        memcpy(p, &num, 8);
    } else {
        *p = num ? 1 : 0;
    }
    sp->attr_len += (uint16_t) need;
    sp->nattrs++;
    return TG_OK;
}


int
tg_traces_attr_next(const tg_traces_span_t *sp, size_t *off,
    tg_traces_attr_t *a)
{
    size_t         o, vlen;
    const u_char  *p;

    o = *off;
    if (o + 2 > sp->attr_len) {
        return 0;
    }
    p = sp->attrs;
    memset(a, 0, sizeof(tg_traces_attr_t));
    a->type = p[o];
    a->key.len = p[o + 1];
    a->key.data = (u_char *) p + o + 2;
    o += 2 + a->key.len;
    if (a->type == TG_SPAN_ATTR_STRING || a->type == TG_TRACES_ATTR_DOUBLE) {
        vlen = (size_t) p[o] | ((size_t) p[o + 1] << 8);
        a->str.len = vlen;
        a->str.data = (u_char *) p + o + 2;
        o += 2 + vlen;
    } else if (a->type == TG_SPAN_ATTR_INT) {
        memcpy(&a->num, p + o, 8);
        o += 8;
    } else {
        a->num = p[o];
        o += 1;
    }
    *off = o;
    return 1;
}


void
tg_traces_span_from(tg_traces_span_t *sp, const tg_span_t *s,
    const tg_str_t *service)
{
    size_t          off;
    tg_span_attr_t  a;

    tg_traces_span_init(sp);
    memcpy(sp->trace_id, s->trace_id, 16);
    memcpy(sp->span_id, s->span_id, 8);
    memcpy(sp->parent_id, s->parent_id, 8);
    sp->start_ns = s->start_ns;
    sp->end_ns = s->end_ns;
    sp->kind = s->kind;
    sp->status = s->status;
    tg_traces_span_set(sp->service, TG_TRACES_SERVICE_MAX, service->data,
                       service->len);
    tg_traces_span_set(sp->name, TG_TRACES_NAME_MAX, (u_char *) s->name,
                       strlen(s->name));
    /* those the span dropped already, then those the record cannot hold */
    sp->dropped_attrs = s->dropped_attrs;
    off = 0;
    while (tg_span_attr_next(s, &off, &a)) {
        tg_traces_span_add(sp, a.type, a.key.data, a.key.len, a.str.data,
                           a.str.len, a.num);
    }
}
