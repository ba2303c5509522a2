#include <tg_config.h>
#include <tg_core.h>
#include <tg_cycle.h>
#include <tg_admin.h>
#include <tg_http.h>
#include <tg_process.h>
#include <tg_shm.h>
#include <tg_metrics.h>
#include <tg_json.h>

#include <stdatomic.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>


/*
 * The status page, set in [status] (off when the section is absent):
 *
 *   location = /_status       GET {location}, {location}/json: JSON;
 *                             GET {location}/metrics: Prometheus text 0.0.4
 *   allow = CIDR | all        repeatable; default 127.0.0.1 and ::1;
 *                             other clients get 403
 *   listen = ADDR:PORT        optional: a listener of its own (plain HTTP)
 *                             that serves only the status page; the page
 *                             is then not served on the [main] listeners
 *                             (nor on another page's own listener)
 *
 * On a listener bound to loopback, a Host that is not a loopback name gets
 * 421 (DNS rebinding; tg_admin_access). -t warns when the page can be
 * reached from other hosts (tg_admin_warn_open).
 *
 * Counting: one shared memory zone made by the master the first time a
 * configuration enables the page, and kept for the life of the master, so
 * counters survive reloads. It holds one slot per worker process (twice
 * TG_MAX_WORKERS: the workers of an old and a new configuration overlap
 * during a reload). A worker claims a free slot at start (or the slot of a
 * dead worker), counts into it with relaxed atomic adds and gives it back
 * when it exits; counters stay in the slot, so a later owner continues from
 * them and the page sums every slot. Gauges (active connections, upstream
 * server health as the worker sees it) count only for live owners.
 *
 * Route and server names are interned into fixed tables of the zone by the
 * master only (at configuration load, before fork): routes by prefix,
 * servers by upstream name and server text. Names that do not fit count as
 * route "(other)" or are not tracked.
 *
 * Requests and latency are counted in the LOG phase. Connection counts,
 * trace repairs, upstream failures and exporter counters live in each
 * worker's own memory and are copied into the slot as deltas in the LOG
 * phase, every TG_STATUS_SYNC_MS, before the page is rendered and at exit.
 */

#define TG_STATUS_SLOTS        (2 * TG_MAX_WORKERS)
#define TG_STATUS_ROUTES       64
#define TG_STATUS_ROUTE_NONE   0   /* no route: 404, health, this page */
#define TG_STATUS_ROUTE_OTHER  1   /* the route table is full */
#define TG_STATUS_SERVERS      128
#define TG_STATUS_KEY_LEN      128
#define TG_STATUS_UPS_LEN      64
#define TG_STATUS_CLASSES      6   /* 0: no status, then 1xx .. 5xx */
#define TG_STATUS_BUCKETS      14  /* the bounds below, then +Inf */
#define TG_STATUS_MAGIC        0x74677374
#define TG_STATUS_SYNC_MS      1000
#define TG_STATUS_DEFAULT_LOC  "/_status"

typedef _Atomic uint64_t  tg_status_counter_t;

typedef struct {
    tg_status_counter_t  status[TG_STATUS_CLASSES];
    tg_status_counter_t  bucket[TG_STATUS_BUCKETS]; /* not cumulative */
    tg_status_counter_t  sum_us;
} tg_status_route_t;

typedef struct {
    tg_status_counter_t  failures;  /* counter */
    tg_status_counter_t  fails;     /* gauge: fails in the current window */
    tg_status_counter_t  down;      /* gauge: 1 while marked down */
} tg_status_server_t;

typedef struct {
    _Alignas(64) _Atomic int32_t  pid;  /* owner; 0: free */
    _Atomic uint32_t     claims;        /* owners so far */
    _Atomic uint64_t     since;         /* Unix seconds of the claim */
    tg_status_counter_t  accepted;
    tg_status_counter_t  closed;
    tg_status_counter_t  active;         /* gauge */
    tg_status_counter_t  sampled;
    tg_status_counter_t  unsampled;
    tg_status_counter_t  repairs;
    tg_status_counter_t  metrics[TG_METRICS_MAX]; /* the registry's */
    tg_status_route_t    routes[TG_STATUS_ROUTES];
    tg_status_server_t   servers[TG_STATUS_SERVERS];
} tg_status_slot_t;

typedef struct {
    char  upstream[TG_STATUS_UPS_LEN];
    char  server[TG_STATUS_KEY_LEN];
} tg_status_server_key_t;

typedef struct {
    uint32_t                magic;
    uint32_t                nslots;
    uint64_t                created;     /* Unix seconds */
    /* the key tables have one writer, the master; workers read them */
    _Atomic uint32_t        nroutes;
    _Atomic uint32_t        nservers;
    char                    routes[TG_STATUS_ROUTES][TG_STATUS_KEY_LEN];
    tg_status_server_key_t  servers[TG_STATUS_SERVERS];
    tg_status_slot_t        slots[TG_STATUS_SLOTS];
} tg_status_zone_t;

/* the sums over all slots, for one rendering */
typedef struct {
    uint64_t  accepted;
    uint64_t  closed;
    uint64_t  active;
    uint64_t  sampled;
    uint64_t  unsampled;
    uint64_t  repairs;
    uint64_t  metrics[TG_METRICS_MAX];
    uint64_t  status[TG_STATUS_ROUTES][TG_STATUS_CLASSES];
    uint64_t  bucket[TG_STATUS_ROUTES][TG_STATUS_BUCKETS];
    uint64_t  sum_us[TG_STATUS_ROUTES];
    uint64_t  failures[TG_STATUS_SERVERS];
    uint64_t  fails[TG_STATUS_SERVERS];
    uint64_t  down[TG_STATUS_SERVERS];
    uint32_t  nroutes;
    uint32_t  nservers;
    uint32_t  workers;                 /* live owners */
} tg_status_totals_t;

typedef struct {
    tg_str_t                 location;  /* as written; empty: default */
    tg_array_t              *allow;     /* tg_cidr_t; NULL: the default */
    tg_admin_listen_t        listen;
    /* effective, from init_conf */
    unsigned                 enabled:1;
    tg_str_t                 prefix;    /* location without a trailing '/' */
} tg_status_conf_t;

/* one worker's view; the master never counts */
typedef struct {
    tg_status_conf_t       *conf;       /* NULL: off in this process */
    tg_status_slot_t       *slot;
    tg_listen_t            *listen;     /* the dedicated listener, or NULL */
    struct event           *timer;
    int32_t                 pid;
    unsigned                shared:1;   /* no slot of its own was free */
    size_t                  nroutes;
    tg_http_route_t       **route_ptr;  /* the cycle's routes */
    uint32_t               *route_idx;  /* their keys */
    size_t                  nupstreams;
    size_t                 *ups_base;   /* first flat server of upstream i */
    size_t                  nservers;
    tg_upstream_server_t  **server_ptr; /* flat over all upstreams */
    int32_t                *server_idx; /* key, -1: not tracked */
    uint64_t               *server_last; /* failures already copied */
    uint64_t                last_accepted;
    uint64_t                last_closed;
    uint64_t                last_repairs;
    uint64_t                last_metrics[TG_METRICS_MAX];
} tg_status_worker_t;

static void *tg_status_create_conf(tg_cycle_t *cycle);
static int tg_status_init_conf(tg_cycle_t *cycle, void *conf);
static int tg_status_init_process(tg_cycle_t *cycle);
static void tg_status_exit_process(tg_cycle_t *cycle);
static void tg_status_dump_conf(tg_cycle_t *cycle, void *conf, FILE *out);
static int tg_status_content_handler(tg_http_request_t *r);
static int tg_status_log_handler(tg_http_request_t *r);
static int tg_status_conf_error(tg_cycle_t *cycle, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int tg_status_zone_init(void);
static int tg_status_intern_route(tg_str_t *prefix);
static int tg_status_intern_server(tg_str_t *ups, tg_str_t *server);
static int tg_status_find_route(tg_str_t *prefix);
static int tg_status_find_server(tg_str_t *ups, tg_str_t *server);
static int tg_status_key_eq(const char *key, size_t size, tg_str_t *s);
static int tg_status_claim_slot(tg_status_worker_t *w);
static int tg_status_pid_alive(int32_t pid);
static void tg_status_sync(tg_status_worker_t *w, tg_upstream_t *only,
    int all);
static void tg_status_sync_servers(tg_status_worker_t *w, size_t from,
    size_t to, uint64_t now_ms);
static void tg_status_timer_handler(evutil_socket_t fd, short what,
    void *ctx);
static uint32_t tg_status_route_key(tg_status_worker_t *w,
    tg_http_route_t *rt);
static void tg_status_sum(tg_status_totals_t *t);
static void tg_status_json(tg_status_worker_t *w, tg_status_totals_t *t,
    struct evbuffer *b);
static void tg_status_prometheus(tg_status_totals_t *t, struct evbuffer *b);
static void tg_status_json_str(struct evbuffer *b, const char *s);
static void tg_status_json_metrics(tg_status_totals_t *t,
    struct evbuffer *b);
static void tg_status_label_str(struct evbuffer *b, const char *s);
static void tg_status_server_metric(struct evbuffer *b, tg_status_zone_t *z,
    size_t n, const char *name, const char *type, const char *help,
    const uint64_t *values);
static int tg_status_send(tg_http_request_t *r, int status,
    const char *type, const char *extra, struct evbuffer *body);
static int tg_status_send_text(tg_http_request_t *r, int status,
    const char *extra);


static tg_command_t  tg_status_commands[] = {

    { tg_string("location"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_status_conf_t, location) },

    { tg_string("allow"), TG_CONF_TAKE1 | TG_CONF_MULTI, tg_conf_set_allow,
      offsetof(tg_status_conf_t, allow) },

    { tg_string("listen"), TG_CONF_TAKE1, tg_conf_set_admin_listen,
      offsetof(tg_status_conf_t, listen) },

    tg_null_command
};


static const tg_http_module_t  tg_status_http_module = {
    { [TG_HTTP_CONTENT_PHASE] = tg_status_content_handler,
      [TG_HTTP_LOG_PHASE] = tg_status_log_handler }
};


tg_module_t  tg_status_module = {
    .section = tg_string("status"),
    .commands = tg_status_commands,
    .create_conf = tg_status_create_conf,
    .init_conf = tg_status_init_conf,
    .init_process = tg_status_init_process,
    .exit_process = tg_status_exit_process,
    .dump_conf = tg_status_dump_conf,
    .ctx = &tg_status_http_module
};


/* made once by the master, inherited by every worker forked afterwards */
static tg_shm_t             tg_status_shm = { NULL, 0, "status" };
static tg_status_zone_t    *tg_status_zone;
static tg_status_worker_t   tg_status_worker;

/* upper bounds of the latency buckets, ms */
static const uint64_t  tg_status_bounds_ms[TG_STATUS_BUCKETS - 1] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000
};

static const char  *tg_status_le[TG_STATUS_BUCKETS] = {
    "0.001", "0.002", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
    "0.5", "1", "2.5", "5", "10", "+Inf"
};

static const char  *tg_status_classes[TG_STATUS_CLASSES] = {
    "none", "1xx", "2xx", "3xx", "4xx", "5xx"
};


static inline void
tg_status_add(tg_status_counter_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}


static inline uint64_t
tg_status_get(tg_status_counter_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}


static inline void
tg_status_set(tg_status_counter_t *c, uint64_t v)
{
    atomic_store_explicit(c, v, memory_order_relaxed);
}


static void *
tg_status_create_conf(tg_cycle_t *cycle)
{
    return tg_pcalloc(cycle->pool, sizeof(tg_status_conf_t));
}


static int
tg_status_conf_error(tg_cycle_t *cycle, const char *fmt, ...)
{
    int      n;
    va_list  args;

    n = snprintf(cycle->conf_error, TG_CONF_ERRLEN, "[status] ");
    va_start(args, fmt);
    vsnprintf(cycle->conf_error + n, TG_CONF_ERRLEN - n, fmt, args);
    va_end(args);
    return TG_ERROR;
}


/*
 * Defaults and checks; when the page is on, makes the zone (first time
 * only: it outlives cycles) and interns this cycle's routes and servers.
 * Runs in the master, before any worker of this cycle is forked.
 */
static int
tg_status_init_conf(tg_cycle_t *cycle, void *conf)
{
    size_t                 i, j;
    tg_str_t              *loc;
    tg_upstream_t        **ups;
    tg_http_route_t      **rts;
    tg_status_conf_t      *sc = conf;
    tg_upstream_server_t  *srv;

    if (!cycle->module_seen[tg_status_module.index]) {
        return TG_OK;
    }
    loc = &sc->location;
    if (loc->len == 0) {
        tg_str_set(loc, TG_STATUS_DEFAULT_LOC);
    }
    if (tg_str_caseeq_c(loc, "off")) {
        return TG_OK;
    }
    if (loc->data[0] != '/' || memchr(loc->data, '?', loc->len) != NULL
        || memchr(loc->data, ' ', loc->len) != NULL)
    {
        return tg_status_conf_error(cycle, "location must be a path, as in "
                                    "/_status, or \"off\"");
    }
    sc->prefix = *loc;
    while (sc->prefix.len && sc->prefix.data[sc->prefix.len - 1] == '/') {
        sc->prefix.len--;
    }
    if (sc->prefix.len == 0 && sc->listen.text.len == 0) {
        return tg_status_conf_error(cycle, "location = / would hide every "
                                    "route; use it only with a status "
                                    "listen address");
    }

    if (tg_allow_default(cycle->pool, &sc->allow) != TG_OK) {
        return TG_ERROR;
    }

    if (tg_admin_listen_add(cycle, &sc->listen, "status") != TG_OK) {
        return TG_ERROR;
    }

    if (tg_status_zone_init() != TG_OK) {
        return tg_status_conf_error(cycle, "cannot map the shared memory "
                                    "zone (%zu bytes): %s",
                                    sizeof(tg_status_zone_t),
                                    strerror(errno));
    }
    rts = tg_http_routes(cycle)->elts;
    for (i = 0; i < tg_http_routes(cycle)->nelts; i++) {
        tg_status_intern_route(&rts[i]->prefix);
    }
    ups = tg_upstreams(cycle)->elts;
    for (i = 0; i < tg_upstreams(cycle)->nelts; i++) {
        srv = ups[i]->servers.elts;
        for (j = 0; j < ups[i]->servers.nelts; j++) {
            tg_status_intern_server(&ups[i]->name, &srv[j].text);
        }
    }
    tg_admin_warn_open(cycle, &sc->listen, sc->allow, "status",
                       "the status page");
    sc->enabled = 1;
    return TG_OK;
}


static int
tg_status_zone_init(void)
{
    tg_status_zone_t  *z;

    if (tg_status_zone != NULL) {
        return TG_OK;
    }
    tg_status_shm.size = sizeof(tg_status_zone_t);
    if (tg_shm_alloc(&tg_status_shm) != TG_OK) {
        return TG_ERROR;
    }
    z = (tg_status_zone_t *) tg_status_shm.addr;
    z->magic = TG_STATUS_MAGIC;
    z->nslots = TG_STATUS_SLOTS;
    z->created = (uint64_t) time(NULL);
    strcpy(z->routes[TG_STATUS_ROUTE_NONE], "(none)");
    strcpy(z->routes[TG_STATUS_ROUTE_OTHER], "(other)");
    atomic_store_explicit(&z->nroutes, 2, memory_order_release);
    tg_status_zone = z;
    return TG_OK;
}


static int
tg_status_key_eq(const char *key, size_t size, tg_str_t *s)
{
    return s->len < size && memcmp(key, s->data, s->len) == 0
           && key[s->len] == '\0';
}


static int
tg_status_find_route(tg_str_t *prefix)
{
    uint32_t           i, n;
    tg_status_zone_t  *z = tg_status_zone;

    n = atomic_load_explicit(&z->nroutes, memory_order_acquire);
    for (i = TG_STATUS_ROUTE_OTHER + 1; i < n; i++) {
        if (tg_status_key_eq(z->routes[i], TG_STATUS_KEY_LEN, prefix)) {
            return (int) i;
        }
    }
    return -1;
}


/* Master only. Returns the key, TG_STATUS_ROUTE_OTHER when it is full. */
static int
tg_status_intern_route(tg_str_t *prefix)
{
    int                k;
    uint32_t           n;
    tg_status_zone_t  *z = tg_status_zone;

    k = tg_status_find_route(prefix);
    if (k >= 0) {
        return k;
    }
    n = atomic_load_explicit(&z->nroutes, memory_order_relaxed);
    if (n == TG_STATUS_ROUTES || prefix->len >= TG_STATUS_KEY_LEN) {
        tg_log_error(TG_LOG_NOTICE, &tg_log_global, 0,
                     "status: route " TG_STR_FMT " is counted as \"(other)\""
                     " (%d route names at most, %d bytes each)",
                     TG_STR_ARG(prefix), TG_STATUS_ROUTES - 2,
                     TG_STATUS_KEY_LEN - 1);
        return TG_STATUS_ROUTE_OTHER;
    }
    memcpy(z->routes[n], prefix->data, prefix->len);
    z->routes[n][prefix->len] = '\0';
    atomic_store_explicit(&z->nroutes, n + 1, memory_order_release);
    return (int) n;
}


static int
tg_status_find_server(tg_str_t *ups, tg_str_t *server)
{
    uint32_t           i, n;
    tg_status_zone_t  *z = tg_status_zone;

    n = atomic_load_explicit(&z->nservers, memory_order_acquire);
    for (i = 0; i < n; i++) {
        if (tg_status_key_eq(z->servers[i].upstream, TG_STATUS_UPS_LEN, ups)
            && tg_status_key_eq(z->servers[i].server, TG_STATUS_KEY_LEN,
                                server))
        {
            return (int) i;
        }
    }
    return -1;
}


/* Master only. Returns the key, or -1 when the server is not tracked. */
static int
tg_status_intern_server(tg_str_t *ups, tg_str_t *server)
{
    int                k;
    uint32_t           n;
    tg_status_zone_t  *z = tg_status_zone;

    k = tg_status_find_server(ups, server);
    if (k >= 0) {
        return k;
    }
    n = atomic_load_explicit(&z->nservers, memory_order_relaxed);
    if (n == TG_STATUS_SERVERS || ups->len >= TG_STATUS_UPS_LEN
        || server->len >= TG_STATUS_KEY_LEN)
    {
        tg_log_error(TG_LOG_NOTICE, &tg_log_global, 0,
                     "status: upstream " TG_STR_FMT " server " TG_STR_FMT
                     " is not tracked (%d servers at most)",
                     TG_STR_ARG(ups), TG_STR_ARG(server), TG_STATUS_SERVERS);
        return -1;
    }
    memcpy(z->servers[n].upstream, ups->data, ups->len);
    z->servers[n].upstream[ups->len] = '\0';
    memcpy(z->servers[n].server, server->data, server->len);
    z->servers[n].server[server->len] = '\0';
    atomic_store_explicit(&z->nservers, n + 1, memory_order_release);
    return (int) n;
}


static int
tg_status_pid_alive(int32_t pid)
{
    return pid > 0 && (kill((pid_t) pid, 0) == 0 || errno == EPERM);
}


/*
 * Takes a free slot, else the slot of a dead worker (its connections died
 * with it: they count as closed), else shares one: the adds stay exact,
 * only the gauges of the two owners mix.
 */
static int
tg_status_claim_slot(tg_status_worker_t *w)
{
    int32_t            expect;
    size_t             i, k;
    tg_status_slot_t  *s;
    tg_status_zone_t  *z = tg_status_zone;

    for (i = 0; i < TG_STATUS_SLOTS; i++) {
        s = &z->slots[i];
        expect = 0;
        if (atomic_compare_exchange_strong(&s->pid, &expect, w->pid)) {
            goto claimed;
        }
    }
    for (i = 0; i < TG_STATUS_SLOTS; i++) {
        s = &z->slots[i];
        expect = atomic_load(&s->pid);
        if (!tg_status_pid_alive(expect)
            && atomic_compare_exchange_strong(&s->pid, &expect, w->pid))
        {
            tg_status_add(&s->closed, tg_status_get(&s->active));
            tg_status_set(&s->active, 0);
            for (k = 0; k < TG_STATUS_SERVERS; k++) {
                tg_status_set(&s->servers[k].fails, 0);
                tg_status_set(&s->servers[k].down, 0);
            }
            goto claimed;
        }
    }
    s = &z->slots[(size_t) w->pid % TG_STATUS_SLOTS];
    w->shared = 1;
    tg_log_error(TG_LOG_WARN, &tg_log_global, 0,
                 "status: all %d slots are taken; sharing slot %zu",
                 TG_STATUS_SLOTS, (size_t) (s - z->slots));

claimed:
    atomic_fetch_add(&s->claims, 1);
    atomic_store(&s->since, (uint64_t) time(NULL));
    w->slot = s;
    return TG_OK;
}


static int
tg_status_init_process(tg_cycle_t *cycle)
{
    int                     k;
    size_t                  i, j, n;
    tg_upstream_t         **ups;
    tg_http_route_t       **rts;
    tg_status_conf_t       *sc;
    tg_upstream_server_t   *srv;
    struct timeval          tv;
    tg_status_worker_t     *w = &tg_status_worker;

    sc = tg_module_conf(cycle, tg_status_module);
    if (!sc->enabled || tg_status_zone == NULL) {
        return TG_OK;
    }
    w->pid = (int32_t) getpid();
    w->listen = tg_admin_listen_get(cycle, &sc->listen);

    /* keys of this cycle's routes and servers, interned by the master */
    w->nroutes = tg_http_routes(cycle)->nelts;
    w->route_ptr = tg_pcalloc(cycle->pool,
                              (w->nroutes + 1) * sizeof(tg_http_route_t *));
    w->route_idx = tg_pcalloc(cycle->pool, (w->nroutes + 1) * sizeof(uint32_t));
    if (w->route_ptr == NULL || w->route_idx == NULL) {
        return TG_ERROR;
    }
    rts = tg_http_routes(cycle)->elts;
    for (i = 0; i < w->nroutes; i++) {
        k = tg_status_find_route(&rts[i]->prefix);
        w->route_ptr[i] = rts[i];
        w->route_idx[i] = k < 0 ? TG_STATUS_ROUTE_OTHER : (uint32_t) k;
    }

    ups = tg_upstreams(cycle)->elts;
    w->nupstreams = tg_upstreams(cycle)->nelts;
    n = 0;
    for (i = 0; i < w->nupstreams; i++) {
        n += ups[i]->servers.nelts;
    }
    w->nservers = n;
    w->ups_base = tg_pcalloc(cycle->pool, (w->nupstreams + 1) * sizeof(size_t));
    w->server_ptr = tg_pcalloc(cycle->pool,
                               (n + 1) * sizeof(tg_upstream_server_t *));
    w->server_idx = tg_pcalloc(cycle->pool, (n + 1) * sizeof(int32_t));
    w->server_last = tg_pcalloc(cycle->pool, (n + 1) * sizeof(uint64_t));
    if (w->ups_base == NULL || w->server_ptr == NULL || w->server_idx == NULL
        || w->server_last == NULL)
    {
        return TG_ERROR;
    }
    n = 0;
    for (i = 0; i < w->nupstreams; i++) {
        w->ups_base[i] = n;
        srv = ups[i]->servers.elts;
        for (j = 0; j < ups[i]->servers.nelts; j++, n++) {
            w->server_ptr[n] = &srv[j];
            w->server_idx[n] = tg_status_find_server(&ups[i]->name,
                                                     &srv[j].text);
            w->server_last[n] = srv[j].failures;
        }
    }
    w->ups_base[i] = n;

    if (tg_status_claim_slot(w) != TG_OK) {
        return TG_ERROR;
    }
    w->last_accepted = tg_http_worker.next_number;
    w->last_closed = tg_http_worker.next_number - tg_event_worker.nconns;
    w->last_repairs = tg_http_worker.trace_repairs;

    w->timer = event_new(tg_event_worker.base, -1, EV_PERSIST,
                         tg_status_timer_handler, w);
    tv.tv_sec = TG_STATUS_SYNC_MS / 1000;
    tv.tv_usec = (TG_STATUS_SYNC_MS % 1000) * 1000;
    if (w->timer == NULL || event_add(w->timer, &tv) < 0) {
        tg_log_error(TG_LOG_EMERG, &tg_log_global, 0,
                     "status: cannot create its timer");
        return TG_ERROR;
    }
    w->conf = sc;
    return TG_OK;
}


static void
tg_status_exit_process(tg_cycle_t *cycle)
{
    size_t               i;
    tg_status_slot_t    *s;
    tg_status_worker_t  *w = &tg_status_worker;

    if (w->conf == NULL) {
        return;
    }
    /* the exporter has stopped (its module exits first): final values */
    tg_status_sync(w, NULL, 1);
    s = w->slot;
    if (!w->shared) {
        tg_status_set(&s->active, 0);
        for (i = 0; i < TG_STATUS_SERVERS; i++) {
            tg_status_set(&s->servers[i].fails, 0);
            tg_status_set(&s->servers[i].down, 0);
        }
        atomic_store_explicit(&s->pid, 0, memory_order_release);
    }
    event_free(w->timer);
    w->timer = NULL;
    w->conf = NULL;
}


static void
tg_status_sync_servers(tg_status_worker_t *w, size_t from, size_t to,
    uint64_t now_ms)
{
    size_t                 i;
    int32_t                k;
    tg_status_server_t    *ss;
    tg_upstream_server_t  *srv;

    for (i = from; i < to; i++) {
        k = w->server_idx[i];
        if (k < 0) {
            continue;
        }
        srv = w->server_ptr[i];
        ss = &w->slot->servers[k];
        if (srv->failures != w->server_last[i]) {
            tg_status_add(&ss->failures, srv->failures - w->server_last[i]);
            w->server_last[i] = srv->failures;
        }
        tg_status_set(&ss->fails, (uint64_t) srv->fails);
        tg_status_set(&ss->down, srv->down_until_ms > now_ms);
    }
}


/*
 * Copies this worker's own counters into its slot as deltas, with every
 * server when all is set, else only those of the upstream only (NULL:
 * none), as the LOG phase of a request does.
 */
static void
tg_status_sync(tg_status_worker_t *w, tg_upstream_t *only, int all)
{
    size_t              i, nmetrics;
    uint64_t            v, closed;
    tg_status_slot_t   *s = w->slot;
    const tg_metric_t  *metrics;
    tg_upstream_t     **ups;

    v = tg_http_worker.next_number;
    if (v != w->last_accepted) {
        tg_status_add(&s->accepted, v - w->last_accepted);
        w->last_accepted = v;
    }
    closed = v - tg_event_worker.nconns;
    if (closed > w->last_closed) {
        tg_status_add(&s->closed, closed - w->last_closed);
        w->last_closed = closed;
    }
    if (!w->shared) {
        tg_status_set(&s->active, tg_event_worker.nconns);
    }
    v = tg_http_worker.trace_repairs;
    if (v != w->last_repairs) {
        tg_status_add(&s->repairs, v - w->last_repairs);
        w->last_repairs = v;
    }

    metrics = tg_metrics(tg_cycle, &nmetrics);
    for (i = 0; i < nmetrics; i++) {
        v = atomic_load_explicit(metrics[i].value, memory_order_relaxed);
        if (v > w->last_metrics[i]) {
            tg_status_add(&s->metrics[i], v - w->last_metrics[i]);
            w->last_metrics[i] = v;
        }
    }

    if (all) {
        tg_status_sync_servers(w, 0, w->nservers, tg_time_ms());
        return;
    }
    if (only == NULL) {
        return;
    }
    ups = tg_upstreams(tg_cycle)->elts;
    for (i = 0; i < w->nupstreams; i++) {
        if (ups[i] == only) {
            tg_status_sync_servers(w, w->ups_base[i], w->ups_base[i + 1],
                                   tg_time_ms());
            return;
        }
    }
}


static void
tg_status_timer_handler(evutil_socket_t fd, short what, void *ctx)
{
    tg_status_sync(ctx, NULL, 1);
}


static uint32_t
tg_status_route_key(tg_status_worker_t *w, tg_http_route_t *rt)
{
    size_t  i;

    if (rt == NULL) {
        return TG_STATUS_ROUTE_NONE;
    }
    for (i = 0; i < w->nroutes; i++) {
        if (w->route_ptr[i] == rt) {
            return w->route_idx[i];
        }
    }
    return TG_STATUS_ROUTE_OTHER;
}


static int
tg_status_log_handler(tg_http_request_t *r)
{
    size_t               b;
    uint64_t             now, us;
    tg_status_route_t   *rs;
    tg_status_worker_t  *w = &tg_status_worker;

    if (w->conf == NULL) {
        return TG_OK;
    }
    rs = &w->slot->routes[tg_status_route_key(w, r->route)];
    tg_status_add(&rs->status[r->status >= 100 && r->status < 600
                                  ? r->status / 100 : 0], 1);
    now = tg_time_now_ns();
    us = (r->start_ns && now > r->start_ns) ? (now - r->start_ns) / 1000 : 0;
    for (b = 0; b < TG_STATUS_BUCKETS - 1; b++) {
        if (us <= tg_status_bounds_ms[b] * 1000) {
            break;
        }
    }
    tg_status_add(&rs->bucket[b], 1);
    tg_status_add(&rs->sum_us, us);
    tg_status_add(r->sampled ? &w->slot->sampled : &w->slot->unsampled, 1);
    tg_status_sync(w, r->upstream.conf, 0);
    return TG_OK;
}


/* Sums every slot; gauges only of slots whose owner is alive. */
static void
tg_status_sum(tg_status_totals_t *t)
{
    size_t             i, j, k;
    tg_status_slot_t  *s;
    tg_status_zone_t  *z = tg_status_zone;

    t->nroutes = atomic_load_explicit(&z->nroutes, memory_order_acquire);
    t->nservers = atomic_load_explicit(&z->nservers, memory_order_acquire);
    for (i = 0; i < TG_STATUS_SLOTS; i++) {
        s = &z->slots[i];
        if (atomic_load(&s->claims) == 0) {
            continue;
        }
        t->accepted += tg_status_get(&s->accepted);
        t->closed += tg_status_get(&s->closed);
        t->sampled += tg_status_get(&s->sampled);
        t->unsampled += tg_status_get(&s->unsampled);
        t->repairs += tg_status_get(&s->repairs);
        for (k = 0; k < TG_METRICS_MAX; k++) {
            t->metrics[k] += tg_status_get(&s->metrics[k]);
        }
        for (j = 0; j < t->nroutes; j++) {
            for (k = 0; k < TG_STATUS_CLASSES; k++) {
                t->status[j][k] += tg_status_get(&s->routes[j].status[k]);
            }
            for (k = 0; k < TG_STATUS_BUCKETS; k++) {
                t->bucket[j][k] += tg_status_get(&s->routes[j].bucket[k]);
            }
            t->sum_us[j] += tg_status_get(&s->routes[j].sum_us);
        }
        for (j = 0; j < t->nservers; j++) {
            t->failures[j] += tg_status_get(&s->servers[j].failures);
        }
        if (!tg_status_pid_alive(atomic_load(&s->pid))) {
            continue;
        }
        t->workers++;
        t->active += tg_status_get(&s->active);
        for (j = 0; j < t->nservers; j++) {
            t->fails[j] += tg_status_get(&s->servers[j].fails);
            t->down[j] += tg_status_get(&s->servers[j].down) ? 1 : 0;
        }
    }
}


static void
tg_status_json_str(struct evbuffer *b, const char *s)
{
    u_char    *out, *end;
    size_t     n;
    unsigned   cut;

    /* names come from the configuration: short, but not trusted to be
       valid UTF-8 */
    n = strlen(s);
    out = malloc(TG_JSON_ESCAPE_MAX * n + 2);
    if (out == NULL) {
        evbuffer_add(b, "\"\"", 2);
        return;
    }
    cut = 0;
    out[0] = '"';
    end = tg_json_escape(out + 1, out + 1 + TG_JSON_ESCAPE_MAX * n,
                         (const u_char *) s, n, 0, &cut);
    *end++ = '"';
    evbuffer_add(b, out, (size_t) (end - out));
    free(out);
}


static void
tg_status_json(tg_status_worker_t *w, tg_status_totals_t *t,
    struct evbuffer *b)
{
    size_t             i, k;
    uint64_t           total, cum;
    tg_status_zone_t  *z = tg_status_zone;

    evbuffer_add_printf(b,
        "{\"version\":\"" TG_VERSION "\",\"since\":%" PRIu64
        ",\"now\":%" PRIu64 ",\"workers\":%u,\"slot_pid\":%d,"
        "\"connections\":{\"accepted\":%" PRIu64 ",\"active\":%" PRIu64
        ",\"closed\":%" PRIu64 "},",
        z->created, (uint64_t) time(NULL), t->workers, (int) w->pid,
        t->accepted, t->active, t->closed);

    /* requests by status class over every route */
    total = 0;
    evbuffer_add_printf(b, "\"requests\":{");
    for (k = 1; k < TG_STATUS_CLASSES; k++) {
        cum = 0;
        for (i = 0; i < t->nroutes; i++) {
            cum += t->status[i][k];
        }
        total += cum;
        evbuffer_add_printf(b, "\"%s\":%" PRIu64 ",", tg_status_classes[k],
                            cum);
    }
    cum = 0;
    for (i = 0; i < t->nroutes; i++) {
        cum += t->status[i][0];
    }
    evbuffer_add_printf(b, "\"none\":%" PRIu64 ",\"total\":%" PRIu64 "},",
                        cum, total + cum);

    evbuffer_add_printf(b, "\"routes\":[");
    for (i = 0; i < t->nroutes; i++) {
        total = 0;
        for (k = 0; k < TG_STATUS_CLASSES; k++) {
            total += t->status[i][k];
        }
        if (i == TG_STATUS_ROUTE_OTHER && total == 0) {
            continue;
        }
        evbuffer_add_printf(b, "%s{\"route\":", i ? "," : "");
        tg_status_json_str(b, z->routes[i]);
        evbuffer_add_printf(b, ",\"requests\":%" PRIu64 ",\"status\":{",
                            total);
        for (k = 1; k < TG_STATUS_CLASSES; k++) {
            evbuffer_add_printf(b, "\"%s\":%" PRIu64 ",",
                                tg_status_classes[k], t->status[i][k]);
        }
        evbuffer_add_printf(b, "\"none\":%" PRIu64 "},\"latency_ms\":{"
                            "\"buckets\":[", t->status[i][0]);
        cum = 0;
        for (k = 0; k < TG_STATUS_BUCKETS; k++) {
            cum += t->bucket[i][k];
            if (k < TG_STATUS_BUCKETS - 1) {
                evbuffer_add_printf(b, "{\"le\":%" PRIu64 ",\"count\":%"
                                    PRIu64 "},", tg_status_bounds_ms[k], cum);
            } else {
                evbuffer_add_printf(b, "{\"le\":\"+Inf\",\"count\":%" PRIu64
                                    "}", cum);
            }
        }
        evbuffer_add_printf(b, "],\"count\":%" PRIu64 ",\"sum\":%" PRIu64
                            ".%03" PRIu64 "}}", cum, t->sum_us[i] / 1000,
                            t->sum_us[i] % 1000);
    }

    evbuffer_add_printf(b, "],\"upstreams\":[");
    for (i = 0; i < t->nservers; i++) {
        evbuffer_add_printf(b, "%s{\"upstream\":", i ? "," : "");
        tg_status_json_str(b, z->servers[i].upstream);
        evbuffer_add_printf(b, ",\"server\":");
        tg_status_json_str(b, z->servers[i].server);
        evbuffer_add_printf(b, ",\"failures\":%" PRIu64 ",\"fails\":%" PRIu64
                            ",\"down_workers\":%" PRIu64 ",\"up\":%s}",
                            t->failures[i], t->fails[i], t->down[i],
                            t->down[i] ? "false" : "true");
    }

    evbuffer_add_printf(b, "],\"trace\":{\"sampled\":%" PRIu64
                        ",\"unsampled\":%" PRIu64 ",\"repairs\":%" PRIu64
                        "}", t->sampled, t->unsampled, t->repairs);
    tg_status_json_metrics(t, b);
    evbuffer_add(b, "}\n", 2);
}


/*
 * The registry's counters as JSON members of the page's object, nested
 * by their dotted paths: "exporter.dropped.queue_full" goes into
 * "exporter":{"dropped":{"queue_full":N}}. Entries under one object are
 * consecutive in the registry.
 */
static void
tg_status_json_metrics(tg_status_totals_t *t, struct evbuffer *b)
{
    size_t              i, n, depth, keep, plen, len;
    const char         *path, *prev, *p, *dot;
    const tg_metric_t  *m;

    m = tg_metrics(tg_cycle, &n);
    prev = "";
    plen = 0;
    depth = 0;
    for (i = 0; i < n; i++) {
        path = m[i].json;
        /* the objects this path shares with the previous one stay open */
        keep = 0;
        for (p = path; (dot = strchr(p, '.')) != NULL; p = dot + 1) {
            len = (size_t) (dot - path) + 1;
            if (len > plen || strncmp(path, prev, len) != 0) {
                break;
            }
            keep++;
        }
        for (; depth > keep; depth--) {
            evbuffer_add(b, "}", 1);
        }
        evbuffer_add(b, ",", 1);
        for (; (dot = strchr(p, '.')) != NULL; p = dot + 1) {
            evbuffer_add_printf(b, "\"%.*s\":{", (int) (dot - p), p);
            depth++;
        }
        evbuffer_add_printf(b, "\"%s\":%" PRIu64, p, t->metrics[i]);
        prev = path;
        plen = strlen(path);
    }
    for (; depth > 0; depth--) {
        evbuffer_add(b, "}", 1);
    }
}


/* A label value: backslash, double quote and newline escaped. */
static void
tg_status_label_str(struct evbuffer *b, const char *s)
{
    evbuffer_add(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            evbuffer_add_printf(b, "\\%c", *s);
        } else if (*s == '\n') {
            evbuffer_add(b, "\\n", 2);
        } else {
            evbuffer_add(b, s, 1);
        }
    }
    evbuffer_add(b, "\"", 1);
}


/* One Prometheus metric with a sample per upstream server. */
static void
tg_status_server_metric(struct evbuffer *b, tg_status_zone_t *z, size_t n,
    const char *name, const char *type, const char *help,
    const uint64_t *values)
{
    size_t  i;

    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                        type);
    for (i = 0; i < n; i++) {
        evbuffer_add_printf(b, "%s{upstream=", name);
        tg_status_label_str(b, z->servers[i].upstream);
        evbuffer_add_printf(b, ",server=");
        tg_status_label_str(b, z->servers[i].server);
        evbuffer_add_printf(b, "} %" PRIu64 "\n", values[i]);
    }
}


/* Prometheus text exposition format 0.0.4. */
static void
tg_status_prometheus(tg_status_totals_t *t, struct evbuffer *b)
{
    size_t              i, k, n;
    uint64_t            total, cum;
    tg_status_zone_t   *z = tg_status_zone;
    const tg_metric_t  *m;

    evbuffer_add_printf(b,
        "# HELP tracegate_workers Worker processes counting into the "
        "status zone.\n# TYPE tracegate_workers gauge\n"
        "tracegate_workers %u\n"
        "# HELP tracegate_start_time_seconds When the counters started "
        "(Unix time).\n# TYPE tracegate_start_time_seconds gauge\n"
        "tracegate_start_time_seconds %" PRIu64 "\n"
        "# HELP tracegate_connections_accepted_total Client connections "
        "accepted.\n# TYPE tracegate_connections_accepted_total counter\n"
        "tracegate_connections_accepted_total %" PRIu64 "\n"
        "# HELP tracegate_connections_closed_total Client connections "
        "handled and closed.\n"
        "# TYPE tracegate_connections_closed_total counter\n"
        "tracegate_connections_closed_total %" PRIu64 "\n"
        "# HELP tracegate_connections_active Open client connections.\n"
        "# TYPE tracegate_connections_active gauge\n"
        "tracegate_connections_active %" PRIu64 "\n",
        t->workers, z->created, t->accepted, t->closed, t->active);

    evbuffer_add_printf(b,
        "# HELP tracegate_requests_total Requests finished, by route and "
        "status class.\n# TYPE tracegate_requests_total counter\n");
    for (i = 0; i < t->nroutes; i++) {
        for (k = 0; k < TG_STATUS_CLASSES; k++) {
            if (t->status[i][k] == 0
                && (k == 0 || i == TG_STATUS_ROUTE_OTHER))
            {
                continue;
            }
            evbuffer_add_printf(b, "tracegate_requests_total{route=");
            tg_status_label_str(b, z->routes[i]);
            evbuffer_add_printf(b, ",code=\"%s\"} %" PRIu64 "\n",
                                tg_status_classes[k], t->status[i][k]);
        }
    }

    evbuffer_add_printf(b,
        "# HELP tracegate_request_duration_seconds Time from the first "
        "request byte to the end of the response, by route.\n"
        "# TYPE tracegate_request_duration_seconds histogram\n");
    for (i = 0; i < t->nroutes; i++) {
        total = 0;
        for (k = 0; k < TG_STATUS_BUCKETS; k++) {
            total += t->bucket[i][k];
        }
        if (i == TG_STATUS_ROUTE_OTHER && total == 0) {
            continue;
        }
        cum = 0;
        for (k = 0; k < TG_STATUS_BUCKETS; k++) {
            cum += t->bucket[i][k];
            evbuffer_add_printf(b,
                                "tracegate_request_duration_seconds_bucket"
                                "{route=");
            tg_status_label_str(b, z->routes[i]);
            evbuffer_add_printf(b, ",le=\"%s\"} %" PRIu64 "\n",
                                tg_status_le[k], cum);
        }
        evbuffer_add_printf(b, "tracegate_request_duration_seconds_sum"
                            "{route=");
        tg_status_label_str(b, z->routes[i]);
        evbuffer_add_printf(b, "} %" PRIu64 ".%06" PRIu64 "\n",
                            t->sum_us[i] / 1000000, t->sum_us[i] % 1000000);
        evbuffer_add_printf(b, "tracegate_request_duration_seconds_count"
                            "{route=");
        tg_status_label_str(b, z->routes[i]);
        evbuffer_add_printf(b, "} %" PRIu64 "\n", cum);
    }

    tg_status_server_metric(b, z, t->nservers,
                            "tracegate_upstream_failures_total", "counter",
                            "Failed attempts to upstream servers.",
                            t->failures);
    tg_status_server_metric(b, z, t->nservers,
                            "tracegate_upstream_server_fails", "gauge",
                            "Failures within fail_timeout, summed over the "
                            "workers' views.", t->fails);
    tg_status_server_metric(b, z, t->nservers,
                            "tracegate_upstream_server_down", "gauge",
                            "Workers that currently mark the server down.",
                            t->down);

    evbuffer_add_printf(b,
        "# HELP tracegate_trace_requests_total Requests by sampling "
        "decision.\n# TYPE tracegate_trace_requests_total counter\n"
        "tracegate_trace_requests_total{sampled=\"true\"} %" PRIu64 "\n"
        "tracegate_trace_requests_total{sampled=\"false\"} %" PRIu64 "\n"
        "# HELP tracegate_trace_repairs_total Duplicated trace contexts "
        "repaired.\n# TYPE tracegate_trace_repairs_total counter\n"
        "tracegate_trace_repairs_total %" PRIu64 "\n",
        t->sampled, t->unsampled, t->repairs);

    m = tg_metrics(tg_cycle, &n);
    for (k = 0; k < n; k++) {
        if (k == 0 || strcmp(m[k].name, m[k - 1].name) != 0) {
            evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s counter\n",
                                m[k].name, m[k].help, m[k].name);
        }
        evbuffer_add_printf(b, "%s%s%s%s %" PRIu64 "\n", m[k].name,
                            m[k].labels ? "{" : "",
                            m[k].labels ? m[k].labels : "",
                            m[k].labels ? "}" : "", t->metrics[k]);
    }
}


/* The core's response writer, never cached by a browser or a proxy. */
static int
tg_status_send(tg_http_request_t *r, int status, const char *type,
    const char *extra, struct evbuffer *body)
{
    char  headers[256];

    snprintf(headers, sizeof(headers), "Cache-Control: no-store\r\n%s",
             extra ? extra : "");
    return tg_http_send_response(r, status, type, headers, body);
}


static int
tg_status_send_text(tg_http_request_t *r, int status, const char *extra)
{
    int               rc;
    struct evbuffer  *b;

    b = evbuffer_new();
    if (b == NULL) {
        tg_http_close_connection(r->c);
        return TG_DONE;
    }
    evbuffer_add_printf(b, "%d %s\n", status, tg_http_status_reason(status));
    rc = tg_status_send(r, status, "text/plain; charset=utf-8", extra, b);
    evbuffer_free(b);
    return rc;
}


static int
tg_status_content_handler(tg_http_request_t *r)
{
    int                  rc, prom;
    tg_str_t             rest;
    struct evbuffer     *b;
    tg_status_conf_t    *sc;
    tg_status_totals_t  *t;
    tg_status_worker_t  *w = &tg_status_worker;

    sc = w->conf;
    if (sc == NULL) {
        return TG_DECLINED;
    }
    if (w->listen != NULL ? r->c->listen != w->listen
                          : r->c->listen->owner != NULL)
    {
        /* served on its own listener, else on the [main] ones only */
        return TG_DECLINED;
    }
    if (r->path.len < sc->prefix.len
        || memcmp(r->path.data, sc->prefix.data, sc->prefix.len) != 0
        || (r->path.len > sc->prefix.len
            && r->path.data[sc->prefix.len] != '/'))
    {
        if (w->listen == NULL) {
            return TG_DECLINED;
        }
        /* the status listener serves nothing else */
        r->route = NULL;
        return tg_status_send_text(r, 404, NULL);
    }
    r->route = NULL;
    r->upstream.conf = NULL;

    rc = tg_admin_access(r->c->listen, &r->c->peer.sa, &r->host, sc->allow);
    if (rc == 403) {
        tg_log_error(TG_LOG_INFO, &r->c->log, 0,
                     "status: client %s is not allowed", r->c->peer_text);
        return tg_status_send_text(r, 403, NULL);
    }
    if (rc != TG_OK) {
        tg_log_error(TG_LOG_INFO, &r->c->log, 0,
                     "status: Host \"" TG_STR_FMT "\" from %s is not a "
                     "loopback name", TG_STR_ARG(&r->host), r->c->peer_text);
        return tg_status_send_text(r, rc, NULL);
    }
    if (!tg_str_caseeq_c(&r->method, "GET")
        && !tg_str_caseeq_c(&r->method, "HEAD"))
    {
        return tg_status_send_text(r, 405, "Allow: GET, HEAD\r\n");
    }

    rest.data = r->path.data + sc->prefix.len;
    rest.len = r->path.len - sc->prefix.len;
    if (rest.len == 0 || tg_str_caseeq_c(&rest, "/")
        || tg_str_caseeq_c(&rest, "/json"))
    {
        prom = 0;
    } else if (tg_str_caseeq_c(&rest, "/metrics")) {
        prom = 1;
    } else {
        return tg_status_send_text(r, 404, NULL);
    }

    tg_status_sync(w, NULL, 1);
    t = tg_pcalloc(r->pool, sizeof(tg_status_totals_t));
    b = evbuffer_new();
    if (t == NULL || b == NULL) {
        if (b != NULL) {
            evbuffer_free(b);
        }
        return tg_status_send_text(r, 500, NULL);
    }
    tg_status_sum(t);
    if (prom) {
        tg_status_prometheus(t, b);
        rc = tg_status_send(r, 200, "text/plain; version=0.0.4; "
                            "charset=utf-8", NULL, b);
    } else {
        tg_status_json(w, t, b);
        rc = tg_status_send(r, 200, "application/json", NULL, b);
    }
    evbuffer_free(b);
    return rc;
}


static void
tg_status_dump_conf(tg_cycle_t *cycle, void *conf, FILE *out)
{
    tg_status_conf_t  *sc = conf;

    if (!sc->enabled) {
        fprintf(out, "[status]\nlocation = off\n");
        return;
    }
    fprintf(out, "[status]\nlocation = %.*s\n",
            sc->prefix.len ? (int) sc->prefix.len : 1,
            sc->prefix.len ? (char *) sc->prefix.data : "/");
    tg_allow_dump(out, sc->allow);
    if (sc->listen.text.len) {
        fprintf(out, "listen = " TG_STR_FMT "\n",
                TG_STR_ARG(&sc->listen.text));
    } else {
        fprintf(out, "; listen: served on the [main] listeners\n");
    }
    fprintf(out, "; shared zone: %zu bytes, %d worker slots, %d routes, "
            "%d servers\n", sizeof(tg_status_zone_t), TG_STATUS_SLOTS,
            TG_STATUS_ROUTES - 2, TG_STATUS_SERVERS);
}
