#include <tg_config.h>
#include <tg_core.h>
#include <tg_otlp_exporter.h>

#include <pthread.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <curl/curl.h>
#include <sys/resource.h>
#include <sys/syscall.h>


#define TG_OTLP_REPORT_MS    10000        /* drop warnings at most this often */
#define TG_OTLP_RESP_MAX     (64 * 1024)  /* response body kept for parsing */
#define TG_OTLP_ERR_LEN      192
#define TG_OTLP_EXPORTER_NICE 5          /* below the worker thread */

typedef struct tg_otlp_batch_s  tg_otlp_batch_t;

struct tg_otlp_batch_s {
    tg_otlp_exporter_t  *ex;
    tg_otlp_batch_t     *next;
    u_char              *body;       /* malloc'ed, what curl posts */
    size_t               len;
    size_t               nspans;
    CURL                *easy;       /* while a request is in flight */
    struct event        *retry_ev;   /* while waiting for a retry */
    uint64_t             deadline;   /* monotonic ms: export_timeout */
    unsigned             attempts;
    tg_otlp_buf_t        resp;
};

struct tg_otlp_exporter_s {
    tg_otlp_exporter_conf_t   conf;
    tg_otlp_ring_t           *ring;
    tg_otlp_stats_t          *stats;
    pthread_t                 tid;
    struct event_base        *base;
    struct event             *wake_ev;   /* activated by the worker */
    struct event             *flush_ev;  /* schedule_delay */
    struct event             *stop_ev;   /* flush deadline */
    struct event             *report_ev;
    struct event             *curl_ev;   /* CURLMOPT_TIMERFUNCTION's timer */
    CURLM                    *multi;
    struct curl_slist        *headers;
    const tg_span_t         **batch;     /* spans of one export, in the ring */
    tg_otlp_buf_t             enc;
    tg_otlp_buf_t             gz;
    size_t                    body_cap;  /* what the last body took */
    tg_otlp_batch_t          *batches;
    size_t                    nbatches;
    int                       fd;        /* FILE / CONSOLE */
    uint64_t                  rnd;       /* jitter; tg_random is not ours */
    _Atomic int               stop;
    _Atomic int64_t           flush_ms;
    uint64_t                  last_full;
    uint64_t                  last_failed;
    uint64_t                  last_rejected;
    char                      last_error[TG_OTLP_ERR_LEN];
    unsigned                  stopping:1;
    unsigned                  running:1;
};

static void *tg_otlp_exporter_thread(void *data);
static void tg_otlp_exporter_wake(void *data);
static void tg_otlp_exporter_wake_handler(evutil_socket_t fd, short ev,
    void *data);
static void tg_otlp_exporter_flush_handler(evutil_socket_t fd, short ev,
    void *data);
static void tg_otlp_exporter_stop_handler(evutil_socket_t fd, short ev,
    void *data);
static void tg_otlp_exporter_report_handler(evutil_socket_t fd, short ev,
    void *data);
static void tg_otlp_exporter_drain(tg_otlp_exporter_t *ex, int force);
static void tg_otlp_exporter_abort(tg_otlp_exporter_t *ex);
static void tg_otlp_exporter_report(tg_otlp_exporter_t *ex);
static int tg_otlp_exporter_export(tg_otlp_exporter_t *ex, size_t n);
static int tg_otlp_exporter_write(tg_otlp_exporter_t *ex, size_t n);
static void tg_otlp_batch_send(tg_otlp_batch_t *b);
static void tg_otlp_batch_done(tg_otlp_batch_t *b, CURLcode rc,
    long status, int64_t retry_after);
static void tg_otlp_batch_retry(tg_otlp_batch_t *b, int64_t retry_after);
static void tg_otlp_batch_drop(tg_otlp_batch_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void tg_otlp_batch_free(tg_otlp_batch_t *b);
static void tg_otlp_batch_retry_handler(evutil_socket_t fd, short ev,
    void *data);
static int tg_otlp_curl_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp);
static int tg_otlp_curl_timer(CURLM *multi, long timeout_ms, void *userp);
static void tg_otlp_curl_event_handler(evutil_socket_t fd, short ev,
    void *data);
static void tg_otlp_curl_timer_handler(evutil_socket_t fd, short ev,
    void *data);
static void tg_otlp_curl_done(tg_otlp_exporter_t *ex);
static size_t tg_otlp_curl_write(char *p, size_t size, size_t n, void *data);
static void tg_otlp_timeval(struct timeval *tv, int64_t ms);
static uint64_t tg_otlp_rand(tg_otlp_exporter_t *ex);


tg_otlp_exporter_t *
tg_otlp_exporter_start(const tg_otlp_exporter_conf_t *conf,
    tg_otlp_ring_t *ring, tg_otlp_stats_t *stats)
{
    int                  err;
    char                 line[512];
    size_t               i;
    sigset_t             all, old;
    struct timeval       tv;
    tg_otlp_exporter_t  *ex;
    struct curl_slist   *sl;

    ex = calloc(1, sizeof(tg_otlp_exporter_t));
    if (ex == NULL) {
        return NULL;
    }
    ex->conf = *conf;
    ex->ring = ring;
    ex->stats = stats;
    ex->fd = -1;
    atomic_init(&ex->stop, 0);
    atomic_init(&ex->flush_ms, 0);
    if (ex->conf.max_export_batch_size == 0) {
        ex->conf.max_export_batch_size = 512;
    }
    if (ex->conf.max_in_flight == 0) {
        ex->conf.max_in_flight = 2;
    }
    if (ex->conf.retry_initial_ms <= 0) {
        ex->conf.retry_initial_ms = 1000;
    }
    if (ex->conf.retry_max_ms <= 0) {
        ex->conf.retry_max_ms = 30000;
    }
    if (ex->conf.schedule_delay_ms <= 0) {
        ex->conf.schedule_delay_ms = 5000;
    }
    ex->rnd = tg_random_u64() | 1;

    /* the worker activates wake_ev from its own thread */
    if (evthread_use_pthreads() != 0) {
        tg_log_error(TG_LOG_ERR, &tg_log_global, 0,
                     "otlp: evthread_use_pthreads() failed");
        goto failed;
    }

    ex->batch = malloc(ex->conf.max_export_batch_size * sizeof(tg_span_t *));
    ex->base = event_base_new();
    if (ex->batch == NULL || ex->base == NULL) {
        goto failed;
    }
    ex->wake_ev = event_new(ex->base, -1, EV_PERSIST,
                            tg_otlp_exporter_wake_handler, ex);
    ex->flush_ev = event_new(ex->base, -1, EV_PERSIST,
                             tg_otlp_exporter_flush_handler, ex);
    ex->stop_ev = evtimer_new(ex->base, tg_otlp_exporter_stop_handler, ex);
    ex->report_ev = event_new(ex->base, -1, EV_PERSIST,
                              tg_otlp_exporter_report_handler, ex);
    ex->curl_ev = evtimer_new(ex->base, tg_otlp_curl_timer_handler, ex);
    if (ex->wake_ev == NULL || ex->flush_ev == NULL || ex->stop_ev == NULL
        || ex->report_ev == NULL || ex->curl_ev == NULL)
    {
        goto failed;
    }

    switch (ex->conf.kind) {

    case TG_OTLP_EXPORT_OTLP:
        ex->multi = curl_multi_init();
        if (ex->multi == NULL) {
            goto failed;
        }
        curl_multi_setopt(ex->multi, CURLMOPT_SOCKETFUNCTION,
                          tg_otlp_curl_socket);
        curl_multi_setopt(ex->multi, CURLMOPT_SOCKETDATA, ex);
        curl_multi_setopt(ex->multi, CURLMOPT_TIMERFUNCTION,
                          tg_otlp_curl_timer);
        curl_multi_setopt(ex->multi, CURLMOPT_TIMERDATA, ex);
        curl_multi_setopt(ex->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                          (long) ex->conf.max_in_flight);
        curl_multi_setopt(ex->multi, CURLMOPT_MAXCONNECTS,
                          (long) ex->conf.max_in_flight);

        /* the slist lives as long as the exporter: every easy uses it */
        sl = curl_slist_append(NULL, ex->conf.json
                                     ? "Content-Type: application/json"
                                     : "Content-Type: application/x-protobuf");
        ex->headers = sl;
        if (sl && ex->conf.gzip) {
            sl = curl_slist_append(ex->headers, "Content-Encoding: gzip");
        }
        if (sl) {
            /* no 100-continue round trip for big batches (DESIGN 6) */
            sl = curl_slist_append(ex->headers, "Expect:");
        }
        for (i = 0; sl && i < ex->conf.nheaders; i++) {
            snprintf(line, sizeof(line), "%s", ex->conf.headers[i]);
            sl = curl_slist_append(ex->headers, line);
        }
        if (sl == NULL) {
            goto failed;
        }
        break;

    case TG_OTLP_EXPORT_FILE:
        ex->fd = open(ex->conf.file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                      0644);
        if (ex->fd < 0) {
            tg_log_error(TG_LOG_ERR, &tg_log_global, errno,
                         "otlp: open(\"%s\") failed", ex->conf.file);
            goto failed;
        }
        break;

    case TG_OTLP_EXPORT_CONSOLE:
        ex->fd = STDERR_FILENO;
        break;

    default:
        goto failed;
    }

    tg_otlp_timeval(&tv, ex->conf.schedule_delay_ms);
    event_add(ex->flush_ev, &tv);
    tg_otlp_timeval(&tv, TG_OTLP_REPORT_MS);
    event_add(ex->report_ev, &tv);

    tg_otlp_ring_set_wake(ring, ex->conf.max_export_batch_size,
                          tg_otlp_exporter_wake, ex);

    /* signals stay with the worker's main thread */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&ex->tid, NULL, tg_otlp_exporter_thread, ex);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        tg_log_error(TG_LOG_ERR, &tg_log_global, err,
                     "otlp: pthread_create() failed");
        tg_otlp_ring_set_wake(ring, 0, NULL, NULL);
        goto failed;
    }
    ex->running = 1;
    return ex;

failed:
    tg_otlp_exporter_stop(ex, 0);
    return NULL;
}


void
tg_otlp_exporter_stop(tg_otlp_exporter_t *ex, int64_t flush_ms)
{
    if (ex == NULL) {
        return;
    }
    if (ex->running) {
        atomic_store(&ex->flush_ms, flush_ms);
        atomic_store(&ex->stop, 1);
        event_active(ex->wake_ev, EV_READ, 0);
        pthread_join(ex->tid, NULL);
        tg_otlp_ring_set_wake(ex->ring, 0, NULL, NULL);
    }

    if (ex->multi) {
        /* may call the socket callback: the base must still exist */
        curl_multi_cleanup(ex->multi);
    }
    if (ex->wake_ev) {
        event_free(ex->wake_ev);
    }
    if (ex->flush_ev) {
        event_free(ex->flush_ev);
    }
    if (ex->stop_ev) {
        event_free(ex->stop_ev);
    }
    if (ex->report_ev) {
        event_free(ex->report_ev);
    }
    if (ex->curl_ev) {
        event_free(ex->curl_ev);
    }
    if (ex->base) {
        event_base_free(ex->base);
    }
    if (ex->fd > STDERR_FILENO) {
        close(ex->fd);
    }
    curl_slist_free_all(ex->headers);
    tg_otlp_buf_free(&ex->enc);
    tg_otlp_buf_free(&ex->gz);
    free(ex->batch);
    free(ex);
}


static void *
tg_otlp_exporter_thread(void *data)
{
    int                  nice;
    tg_otlp_exporter_t  *ex = data;

    /*
     * Exporting is background work: a few notches below the worker (Linux
     * sets a thread's own nice value), so that handling requests on the
     * same core preempts an export in progress instead of waiting behind
     * it. It still gets its share when the core is busy.
     */
    errno = 0;
    nice = getpriority(PRIO_PROCESS, 0);
    if (errno == 0) {
        (void) setpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid),
                           tg_min(nice + TG_OTLP_EXPORTER_NICE, 19));
    }

    event_base_dispatch(ex->base);

    tg_otlp_exporter_abort(ex);
    tg_otlp_exporter_report(ex);
    return NULL;
}


/* Runs on the worker's thread: the ring reached a batch. */
static void
tg_otlp_exporter_wake(void *data)
{
    tg_otlp_exporter_t  *ex = data;

    event_active(ex->wake_ev, EV_READ, 0);
}


static void
tg_otlp_exporter_wake_handler(evutil_socket_t fd, short ev, void *data)
{
    int64_t              ms;
    struct timeval       tv;
    tg_otlp_exporter_t  *ex = data;

    if (atomic_load(&ex->stop) && !ex->stopping) {
        ex->stopping = 1;
        ms = atomic_load(&ex->flush_ms);
        if (ms <= 0) {
            tg_otlp_exporter_abort(ex);
            event_base_loopexit(ex->base, NULL);
            return;
        }
        tg_otlp_timeval(&tv, ms);
        evtimer_add(ex->stop_ev, &tv);
    }
    tg_otlp_exporter_drain(ex, ex->stopping);
}


static void
tg_otlp_exporter_flush_handler(evutil_socket_t fd, short ev, void *data)
{
    tg_otlp_exporter_drain(data, 1);
}


static void
tg_otlp_exporter_stop_handler(evutil_socket_t fd, short ev, void *data)
{
    tg_otlp_exporter_t  *ex = data;

    tg_otlp_exporter_abort(ex);
    event_base_loopexit(ex->base, NULL);
}


static void
tg_otlp_exporter_report_handler(evutil_socket_t fd, short ev, void *data)
{
    tg_otlp_exporter_report(data);
}


/*
 * Starts exports while there is room in flight: full batches always, a
 * partial one when forced (the delay passed, or stopping). The ring keeps
 * what does not fit; when it fills, the worker drops.
 */
static void
tg_otlp_exporter_drain(tg_otlp_exporter_t *ex, int force)
{
    size_t  n, count;

    while (ex->nbatches < ex->conf.max_in_flight) {
        count = tg_otlp_ring_count(ex->ring);
        if (count == 0 || (!force && count < ex->conf.max_export_batch_size))
        {
            break;
        }
        n = tg_otlp_ring_peek(ex->ring, ex->batch,
                              ex->conf.max_export_batch_size,
                              TG_OTLP_BATCH_BYTES_MAX);
        if (n == 0) {
            break;
        }
        /* encoded straight from the ring, which gets the bytes back after */
        if (tg_otlp_exporter_export(ex, n) != TG_OK) {
            tg_otlp_stat_add(&ex->stats->dropped_failed, n);
        }
        tg_otlp_ring_release(ex->ring);
    }

    if (ex->stopping && ex->nbatches == 0
        && tg_otlp_ring_count(ex->ring) == 0)
    {
        event_base_loopexit(ex->base, NULL);
    }
}


/* Counts everything still queued or in flight as failed and frees it. */
static void
tg_otlp_exporter_abort(tg_otlp_exporter_t *ex)
{
    size_t  n;

    while (ex->batches) {
        tg_otlp_batch_drop(ex->batches, "exporter stopped");
    }
    while ((n = tg_otlp_ring_peek(ex->ring, ex->batch,
                                  ex->conf.max_export_batch_size,
                                  TG_OTLP_BATCH_BYTES_MAX)))
    {
        tg_otlp_ring_release(ex->ring);
        tg_otlp_stat_add(&ex->stats->dropped_failed, n);
    }
}


static void
tg_otlp_exporter_report(tg_otlp_exporter_t *ex)
{
    uint64_t  full, failed, rejected;

    full = atomic_load_explicit(&ex->stats->dropped_full,
                                memory_order_relaxed);
    failed = atomic_load_explicit(&ex->stats->dropped_failed,
                                  memory_order_relaxed);
    rejected = atomic_load_explicit(&ex->stats->rejected,
                                    memory_order_relaxed);
    if (full == ex->last_full && failed == ex->last_failed
        && rejected == ex->last_rejected)
    {
        return;
    }
    tg_log_error(TG_LOG_WARN, &tg_log_global, 0,
                 "otlp: spans lost since last report: %" PRIu64
                 " queue full, %" PRIu64 " export failed, %" PRIu64
                 " rejected by the receiver (totals %" PRIu64 "/%" PRIu64
                 "/%" PRIu64 ")%s%s",
                 full - ex->last_full, failed - ex->last_failed,
                 rejected - ex->last_rejected, full, failed, rejected,
                 ex->last_error[0] ? "; last error: " : "", ex->last_error);
    ex->last_full = full;
    ex->last_failed = failed;
    ex->last_rejected = rejected;
    ex->last_error[0] = '\0';
}


/* Encodes batch[0..n) and sends or writes it. */
static int
tg_otlp_exporter_export(tg_otlp_exporter_t *ex, size_t n)
{
    int               rc;
    tg_otlp_buf_t    *body;
    tg_otlp_batch_t  *b;

    if (ex->conf.kind != TG_OTLP_EXPORT_OTLP) {
        return tg_otlp_exporter_write(ex, n);
    }

    /*
     * A sent batch keeps its body, so each export starts a new buffer:
     * sized like the last one, not grown from 4 KiB by copies.
     */
    ex->enc.len = 0;
    if (tg_otlp_buf_reserve(&ex->enc, ex->body_cap) != TG_OK) {
        snprintf(ex->last_error, TG_OTLP_ERR_LEN, "out of memory");
        return TG_ERROR;
    }
    rc = ex->conf.json
         ? tg_otlp_encode_json(ex->conf.resource, ex->batch, n, &ex->enc)
         : tg_otlp_encode_protobuf(ex->conf.resource, ex->batch, n,
                                   &ex->enc);
    if (rc != TG_OK) {
        snprintf(ex->last_error, TG_OTLP_ERR_LEN, "encoding failed");
        return TG_ERROR;
    }
    if (ex->conf.json) {
        ex->enc.len--;              /* the line's '\n' */
    }
    body = &ex->enc;
    if (ex->conf.gzip) {
        if (tg_otlp_gzip(ex->enc.data, ex->enc.len, &ex->gz) != TG_OK) {
            snprintf(ex->last_error, TG_OTLP_ERR_LEN, "gzip failed");
            return TG_ERROR;
        }
        body = &ex->gz;
    }

    b = calloc(1, sizeof(tg_otlp_batch_t));
    if (b == NULL) {
        return TG_ERROR;
    }
    /* the batch takes the buffer; the next encode allocates afresh */
    b->ex = ex;
    b->body = body->data;
    b->len = body->len;
    b->nspans = n;
    b->deadline = tg_time_ms() + (uint64_t) ex->conf.export_timeout_ms;
    if (body == &ex->enc) {
        ex->body_cap = body->cap;
    }
    body->data = NULL;
    body->len = 0;
    body->cap = 0;

    b->next = ex->batches;
    ex->batches = b;
    ex->nbatches++;
    tg_otlp_batch_send(b);
    return TG_OK;
}


/* FILE and CONSOLE: one OTLP/JSON line per batch, one write(2) each. */
static int
tg_otlp_exporter_write(tg_otlp_exporter_t *ex, size_t n)
{
    size_t   off;
    ssize_t  w;

    ex->enc.len = 0;
    if (tg_otlp_encode_json(ex->conf.resource, ex->batch, n, &ex->enc)
        != TG_OK)
    {
        snprintf(ex->last_error, TG_OTLP_ERR_LEN, "encoding failed");
        return TG_ERROR;
    }
    for (off = 0; off < ex->enc.len; off += (size_t) w) {
        w = write(ex->fd, ex->enc.data + off, ex->enc.len - off);
        if (w < 0 && errno == EINTR) {
            w = 0;
            continue;
        }
        if (w <= 0) {
            snprintf(ex->last_error, TG_OTLP_ERR_LEN, "write(\"%s\"): %s",
                     ex->conf.file ? ex->conf.file : "stderr",
                     strerror(errno));
            return TG_ERROR;
        }
    }
    tg_otlp_stat_add(&ex->stats->exported, n);
    return TG_OK;
}


static void
tg_otlp_batch_send(tg_otlp_batch_t *b)
{
    CURL                *easy;
    int64_t              left, timeout;
    uint64_t             now;
    tg_otlp_exporter_t  *ex = b->ex;

    now = tg_time_ms();
    if (now >= b->deadline) {
        tg_otlp_batch_drop(b, "export_timeout passed before attempt %u",
                           b->attempts + 1);
        return;
    }
    left = (int64_t) (b->deadline - now);
    timeout = tg_min(ex->conf.timeout_ms, left);

    easy = curl_easy_init();
    if (easy == NULL) {
        tg_otlp_batch_drop(b, "curl_easy_init() failed");
        return;
    }
    b->easy = easy;
    b->resp.len = 0;
    b->attempts++;

    curl_easy_setopt(easy, CURLOPT_URL, ex->conf.endpoint);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, b);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    /* not copied by curl: b->body lives until the batch is freed */
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, b->body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) b->len);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, ex->headers);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "tracegate/" TG_VERSION);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) timeout);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, tg_otlp_curl_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, b);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS,
                     (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (ex->conf.certificate) {
        curl_easy_setopt(easy, CURLOPT_CAINFO, ex->conf.certificate);
    }

    tg_otlp_stat_add(&ex->stats->requests, 1);
    if (curl_multi_add_handle(ex->multi, easy) != CURLM_OK) {
        tg_otlp_batch_drop(b, "curl_multi_add_handle() failed");
    }
}


static size_t
tg_otlp_curl_write(char *p, size_t size, size_t n, void *data)
{
    size_t            len;
    tg_otlp_batch_t  *b = data;

    len = size * n;
    if (b->resp.len + len <= TG_OTLP_RESP_MAX
        && tg_otlp_buf_reserve(&b->resp, len) == TG_OK)
    {
        memcpy(b->resp.data + b->resp.len, p, len);
        b->resp.len += len;
    }
    return len;
}


/*
 * OTLP/HTTP (opentelemetry-proto docs/specification.md): 2xx is success,
 * possibly partial; 429, 502, 503 and 504 are retryable, honouring
 * Retry-After; every other status is final. Connection-level failures are
 * retried too.
 */
static void
tg_otlp_batch_done(tg_otlp_batch_t *b, CURLcode rc, long status,
    int64_t retry_after)
{
    char                 msg[128];
    int64_t              rejected;
    tg_otlp_exporter_t  *ex = b->ex;

    if (rc == CURLE_OK && status >= 200 && status < 300) {
        rejected = 0;
        if (tg_otlp_decode_response(b->resp.data, b->resp.len, ex->conf.json,
                                    &rejected, msg, sizeof(msg))
            != TG_OK)
        {
            rejected = 0;
        }
        if (rejected < 0) {
            rejected = 0;
        }
        if ((uint64_t) rejected > b->nspans) {
            rejected = (int64_t) b->nspans;
        }
        if (rejected) {
            tg_otlp_stat_add(&ex->stats->rejected, (uint64_t) rejected);
            snprintf(ex->last_error, TG_OTLP_ERR_LEN,
                     "partial success: %" PRId64 " rejected: %s", rejected,
                     msg);
        }
        tg_otlp_stat_add(&ex->stats->exported,
                         b->nspans - (uint64_t) rejected);
        tg_otlp_batch_free(b);
        return;
    }

    if (rc == CURLE_OK) {
        if (status == 429 || status == 502 || status == 503 || status == 504)
        {
            snprintf(ex->last_error, TG_OTLP_ERR_LEN, "HTTP %ld from %s",
                     status, ex->conf.endpoint);
            tg_otlp_batch_retry(b, retry_after);
            return;
        }
        tg_otlp_batch_drop(b, "HTTP %ld from %s (not retryable)", status,
                           ex->conf.endpoint);
        return;
    }

    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        snprintf(ex->last_error, TG_OTLP_ERR_LEN, "%s: %s",
                 ex->conf.endpoint, curl_easy_strerror(rc));
        tg_otlp_batch_retry(b, 0);
        return;
    default:
        tg_otlp_batch_drop(b, "%s: %s (not retryable)", ex->conf.endpoint,
                           curl_easy_strerror(rc));
        return;
    }
}


/*
 * Exponential backoff with jitter (half fixed, half random), or the
 * server's Retry-After; never past the batch's export_timeout nor, while
 * stopping, past the flush deadline (the stop timer drops it then).
 */
static void
tg_otlp_batch_retry(tg_otlp_batch_t *b, int64_t retry_after)
{
    int64_t              delay, backoff;
    unsigned             shift;
    struct timeval       tv;
    tg_otlp_exporter_t  *ex = b->ex;

    if (retry_after > 0) {
        delay = tg_min(retry_after, (int64_t) 86400) * 1000;
    } else {
        shift = tg_min(b->attempts - 1, 20u);
        backoff = tg_min(ex->conf.retry_initial_ms << shift,
                         ex->conf.retry_max_ms);
        delay = backoff / 2
                + (int64_t) (tg_otlp_rand(ex) % (uint64_t) (backoff / 2 + 1));
    }

    if ((int64_t) (tg_time_ms() + (uint64_t) delay) >= (int64_t) b->deadline)
    {
        tg_otlp_batch_drop(b, "%s; giving up: retry in %" PRId64
                           " ms would pass export_timeout", ex->last_error,
                           delay);
        return;
    }

    if (b->retry_ev == NULL) {
        b->retry_ev = evtimer_new(ex->base, tg_otlp_batch_retry_handler, b);
        if (b->retry_ev == NULL) {
            tg_otlp_batch_drop(b, "evtimer_new() failed");
            return;
        }
    }
    tg_otlp_stat_add(&ex->stats->retried, 1);
    tg_otlp_timeval(&tv, delay);
    evtimer_add(b->retry_ev, &tv);
}


static void
tg_otlp_batch_retry_handler(evutil_socket_t fd, short ev, void *data)
{
    tg_otlp_batch_send(data);
}


static void
tg_otlp_batch_drop(tg_otlp_batch_t *b, const char *fmt, ...)
{
    va_list              ap;
    tg_otlp_exporter_t  *ex = b->ex;
    char                 msg[TG_OTLP_ERR_LEN];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    memcpy(ex->last_error, msg, sizeof(msg));

    tg_otlp_stat_add(&ex->stats->dropped_failed, b->nspans);
    tg_otlp_batch_free(b);
}


static void
tg_otlp_batch_free(tg_otlp_batch_t *b)
{
    tg_otlp_batch_t     **pp;
    tg_otlp_exporter_t   *ex = b->ex;

    for (pp = &ex->batches; *pp; pp = &(*pp)->next) {
        if (*pp == b) {
            *pp = b->next;
            ex->nbatches--;
            break;
        }
    }
    if (b->easy) {
        curl_multi_remove_handle(ex->multi, b->easy);
        curl_easy_cleanup(b->easy);
    }
    if (b->retry_ev) {
        event_free(b->retry_ev);
    }
    tg_otlp_buf_free(&b->resp);
    free(b->body);
    free(b);
}


/* curl multi glue (docs/examples/multi-event.c; DESIGN 6 curl traps) */

static int
tg_otlp_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp,
    void *socketp)
{
    short                kind;
    struct event        *ev = socketp;
    tg_otlp_exporter_t  *ex = userp;

    if (what == CURL_POLL_REMOVE) {
        if (ev) {
            event_free(ev);
        }
        return 0;
    }

    kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0)
           | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (ev == NULL) {
        ev = event_new(ex->base, s, kind, tg_otlp_curl_event_handler, ex);
        if (ev == NULL) {
            return -1;
        }
        curl_multi_assign(ex->multi, s, ev);
    } else {
        event_del(ev);
        event_assign(ev, ex->base, s, kind, tg_otlp_curl_event_handler, ex);
    }
    event_add(ev, NULL);
    return 0;
}


/* -1 deletes the timer, any other value replaces it; never act here. */
static int
tg_otlp_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct timeval       tv;
    tg_otlp_exporter_t  *ex = userp;

    if (timeout_ms < 0) {
        evtimer_del(ex->curl_ev);
        return 0;
    }
    tg_otlp_timeval(&tv, timeout_ms);
    evtimer_add(ex->curl_ev, &tv);
    return 0;
}


static void
tg_otlp_curl_event_handler(evutil_socket_t fd, short ev, void *data)
{
    int                  running, action;
    tg_otlp_exporter_t  *ex = data;

    action = ((ev & EV_READ) ? CURL_CSELECT_IN : 0)
             | ((ev & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(ex->multi, fd, action, &running);
    tg_otlp_curl_done(ex);
}


static void
tg_otlp_curl_timer_handler(evutil_socket_t fd, short ev, void *data)
{
    int                  running;
    tg_otlp_exporter_t  *ex = data;

    curl_multi_socket_action(ex->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    tg_otlp_curl_done(ex);
}


/* Drains curl_multi_info_read after every socket_action. */
static void
tg_otlp_curl_done(tg_otlp_exporter_t *ex)
{
    int               pending, finished;
    long              status;
    CURL             *easy;
    CURLcode          rc;
    CURLMsg          *msg;
    curl_off_t        retry_after;
    tg_otlp_batch_t  *b;

    finished = 0;
    while ((msg = curl_multi_info_read(ex->multi, &pending))) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        easy = msg->easy_handle;
        rc = msg->data.result;  /* msg dies at curl_multi_remove_handle */
        b = NULL;
        status = 0;
        retry_after = 0;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &b);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after);
        curl_multi_remove_handle(ex->multi, easy);
        curl_easy_cleanup(easy);
        if (b == NULL) {
            continue;
        }
        b->easy = NULL;
        tg_otlp_batch_done(b, rc, status, (int64_t) retry_after);
        finished = 1;
    }
    if (finished) {
        tg_otlp_exporter_drain(ex, ex->stopping);
    }
}


static void
tg_otlp_timeval(struct timeval *tv, int64_t ms)
{
    tv->tv_sec = (time_t) (ms / 1000);
    tv->tv_usec = (suseconds_t) ((ms % 1000) * 1000);
}


/* xorshift64: jitter only, per exporter, no locking needed */
static uint64_t
tg_otlp_rand(tg_otlp_exporter_t *ex)
{
    ex->rnd ^= ex->rnd << 13;
    ex->rnd ^= ex->rnd >> 7;
    ex->rnd ^= ex->rnd << 17;
    return ex->rnd;
}
