#include <tg_config.h>
#include <tg_core.h>
#include <tg_cycle.h>
#include <tg_process.h>
#include <tg_cycle.h>
#include <tg_event.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <poll.h>
#include <sys/syscall.h>


typedef struct {
    struct evconnlistener  *lev;
    tg_listen_t            *ls;
} tg_event_listener_t;

tg_event_worker_t  tg_event_worker;

static tg_event_listener_t  tg_event_listeners[64];
static size_t               tg_event_nlisteners;
static struct event        *tg_event_stop_timer;
static struct event        *tg_event_accept_timer;
static uint64_t             tg_event_stop_deadline;

static void tg_event_accept_handler(struct evconnlistener *lev,
    evutil_socket_t fd, struct sockaddr *sa, int len, void *ctx);
static void tg_event_accept_error_handler(struct evconnlistener *lev,
    void *ctx);
static void tg_event_signal_handler(evutil_socket_t fd, short what,
    void *ctx);
static void tg_event_stop_check_handler(evutil_socket_t fd, short what,
    void *ctx);


typedef struct {
    int64_t                ms;
    const struct timeval  *tv;
} tg_event_common_t;

static tg_event_common_t  tg_event_commons[32];
static size_t             tg_event_ncommons;
static struct timeval     tg_event_plain[8];
static size_t             tg_event_nplain;


const struct timeval *
tg_event_timeout(int64_t ms)
{
    size_t          i;
    struct timeval  tv;

    for (i = 0; i < tg_event_ncommons; i++) {
        if (tg_event_commons[i].ms == ms) {
            return tg_event_commons[i].tv;
        }
    }
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    if (tg_event_ncommons < tg_nelts(tg_event_commons)) {
        tg_event_commons[tg_event_ncommons].tv =
            event_base_init_common_timeout(tg_event_worker.base, &tv);
        if (tg_event_commons[tg_event_ncommons].tv) {
            tg_event_commons[tg_event_ncommons].ms = ms;
            return tg_event_commons[tg_event_ncommons++].tv;
        }
    }
    /* more distinct durations than queues: a plain (heap) timeout */
    i = tg_event_nplain++ % tg_nelts(tg_event_plain);
    tg_event_plain[i] = tv;
    return &tg_event_plain[i];
}


void
tg_event_deadline_set(tg_event_deadline_t *d, struct event *ev, int64_t ms)
{
    if (ms <= 0) {
        d->at = 0;
        return;
    }
    d->at = tg_time_ms() + (uint64_t) ms;
    if (d->timer_at && d->timer_at <= d->at) {
        return;
    }
    d->timer_at = d->at;
    evtimer_add(ev, tg_event_timeout(ms));
}


int
tg_event_deadline_passed(tg_event_deadline_t *d, struct event *ev)
{
    uint64_t        now;
    struct timeval  tv;

    d->timer_at = 0;
    if (d->at == 0) {
        return 0; /* set for a deadline that was lifted since */
    }
    now = tg_time_ms();
    if (now < d->at) {
        /* set for an earlier deadline: wait for the rest (off the
           common-timeout queues, which hold one duration each) */
        d->timer_at = d->at;
        tv.tv_sec = (time_t) ((d->at - now) / 1000);
        tv.tv_usec = (suseconds_t) ((d->at - now) % 1000) * 1000;
        evtimer_add(ev, &tv);
        return 0;
    }
    d->at = 0;
    return 1;
}


/*
 * Reads and writes of plain-socket bufferevents.
 *
 * libevent's own read callback asks the kernel how many bytes wait
 * (ioctl FIONREAD) before every read and then reads at most 4 KiB: two
 * system calls where one does, for every request and every response, and
 * a streamed body cut into 4 KiB reads. tg_event_bev_reader() points the
 * bufferevent's read event at tg_event_bev_read_handler instead: one
 * recv() of up to TG_EVENT_READ_SIZE bytes into this worker's buffer,
 * lent to the read callback or appended to the bufferevent's input.
 *
 * Both of the socket's events are edge-triggered (EV_ET), as nginx
 * registers its sockets: a level-triggered epoll puts every socket it
 * reported back on its ready list and polls it again in the next
 * epoll_wait() only to find it drained, which is one more tcp_poll() per
 * read and per write. An edge comes only when something new arrives, so
 * each handler makes sure nothing is left behind that no edge would
 * announce:
 *
 *   - a read that filled the buffer may have left bytes in the socket, and
 *     a peer's FIN that came with the last bytes (EV_CLOSED, EPOLLRDHUP) is
 *     only seen by one more recv(): in both cases the read event is made
 *     active again, so the next read happens in this loop iteration after
 *     the other ready events, as a level-triggered event would have had it;
 *   - libevent's write callback writes at most 16 KiB, or 128 chains, per
 *     call: tg_event_bev_write_handler wraps it and, while output is left,
 *     makes the write event active again when poll() finds room in the
 *     socket. A full socket is marked as waiting for room by that poll(),
 *     so its draining is an edge.
 *
 * Adding an event to epoll polls the socket, so enabling reads or writes
 * again after a pause reports what waits. libevent drops EPOLLET when it
 * deletes one of the two events and keeps the other (the socket is then
 * level-triggered until the next add): both handlers are right either way.
 *
 * Everything else stays with libevent: enabling and disabling adds and
 * deletes these same events, timeouts set with bufferevent_set_timeouts()
 * arm them, callbacks are looked up on every call (bufferevent_setcb() may
 * change them), libevent's write callback finishes a connect, and
 * bufferevent_free() finalizes them. What is not carried over are read
 * watermarks and rate limits, which tracegate never sets on these
 * bufferevents.
 *
 * The events are the ev_read and ev_write fields of struct bufferevent,
 * which libevent still publishes (event2/bufferevent_struct.h) and which
 * are compiled against the installed header. bufferevent_setfd() and
 * bufferevent_socket_connect() assign them again: call this after them.
 * Worker thread only (one shared buffer).
 */

#define TG_EVENT_READ_SIZE  65536

static u_char  tg_event_read_buf[TG_EVENT_READ_SIZE];

static void tg_event_bev_read_handler(evutil_socket_t fd, short what,
    void *ctx);
static void tg_event_bev_write_handler(evutil_socket_t fd, short what,
    void *ctx);

/* libevent's write callback for socket bufferevents, which ours wraps */
static event_callback_fn  tg_event_bev_writecb;

/* the bufferevent whose handler runs; NULL once tg_event_bev_free()d */
static struct bufferevent  *tg_event_handling;


static void
tg_event_bev_reassign(struct event *ev, short events, event_callback_fn cb,
    void *arg, const struct timeval *timeout)
{
    int  pending;

    pending = event_pending(ev, EV_READ | EV_WRITE | EV_TIMEOUT, NULL);
    if (pending) {
        event_del(ev);
    }
    event_assign(ev, event_get_base(ev), event_get_fd(ev), events, cb, arg);
    if (pending) {
        event_add(ev, evutil_timerisset(timeout) ? timeout : NULL);
    }
}


void
tg_event_bev_reader(struct bufferevent *bev)
{
    event_callback_fn  cb;

    tg_event_bev_reassign(&bev->ev_read,
                          event_get_events(&bev->ev_read) | EV_ET | EV_CLOSED,
                          tg_event_bev_read_handler, bev, &bev->timeout_read);
    cb = event_get_callback(&bev->ev_write);
    if (cb == tg_event_bev_write_handler) {
        return;
    }
    tg_event_bev_writecb = cb;
    tg_event_bev_reassign(&bev->ev_write,
                          event_get_events(&bev->ev_write) | EV_ET,
                          tg_event_bev_write_handler, bev,
                          &bev->timeout_write);
}


static void
tg_event_bev_write_handler(evutil_socket_t fd, short what, void *ctx)
{
    struct pollfd        pfd;
    struct evbuffer     *out;
    struct bufferevent  *bev = ctx;

    out = bufferevent_get_output(bev);
    tg_event_handling = bev;
    tg_event_bev_writecb(fd, what, bev);
    if (tg_event_handling != bev) {
        return; /* freed by a callback */
    }
    tg_event_handling = NULL;
    if (what == EV_TIMEOUT || evbuffer_get_length(out) == 0
        || !event_pending(&bev->ev_write, EV_WRITE, NULL))
    {
        return;
    }
    /* bytes left: a socket with room left gives no edge, a full one does
       (poll() marks it as waiting for room) */
    pfd.fd = fd;
    pfd.events = POLLOUT;
    pfd.revents = 0;
    if (poll(&pfd, 1, 0) != 0) {
        event_active(&bev->ev_write, EV_WRITE, 1);
    }
}


/* bytes of tg_event_read_buf handed to bev's read callback, not yet taken */
static struct {
    struct bufferevent  *bev;
    const u_char        *data;
    size_t               len;
} tg_event_lent;


static int
tg_event_input_append(struct bufferevent *bev, const u_char *data, size_t n)
{
    int               err;
    struct evbuffer  *in;

    in = bufferevent_get_input(bev);
    evbuffer_unfreeze(in, 0); /* a bufferevent freezes its input's end */
    err = evbuffer_add(in, data, n);
    evbuffer_freeze(in, 0);
    return err == 0 ? TG_OK : TG_ERROR;
}


static int tg_event_input_commit(struct bufferevent *bev);


static void
tg_event_bev_read_handler(evutil_socket_t fd, short what, void *ctx)
{
    int                    err, rc;
    short                  events;
    void                  *arg;
    ssize_t                n;
    struct bufferevent    *bev = ctx;
    bufferevent_data_cb    readcb;
    bufferevent_event_cb   eventcb;

    bufferevent_getcb(bev, &readcb, NULL, &eventcb, &arg);
    err = 0;
    if (what == EV_TIMEOUT) {
        /* no bytes for the read timeout (EV_TIMEOUT|EV_READ: bytes won) */
        events = BEV_EVENT_READING | BEV_EVENT_TIMEOUT;
        goto failed;
    }

    /* not recv(): no cancellation point to set up around the call (this
       process never cancels a thread), see tg_event_write() */
    n = syscall(SYS_recvfrom, fd, tg_event_read_buf, sizeof(tg_event_read_buf),
                0, NULL, NULL);
    if (n > 0) {
        tg_event_handling = bev;
        if (readcb && evbuffer_get_length(bufferevent_get_input(bev)) == 0) {
            /* lent where they lie; what the callback leaves is kept */
            tg_event_lent.bev = bev;
            tg_event_lent.data = tg_event_read_buf;
            tg_event_lent.len = (size_t) n;
            readcb(bev, arg);
            /* nothing to keep when bev was freed (it forgot the bytes) */
            rc = tg_event_input_commit(bev);
        } else {
            rc = tg_event_input_append(bev, tg_event_read_buf, (size_t) n);
            if (rc == TG_OK && readcb) {
                readcb(bev, arg);
            }
        }
        if (tg_event_handling != bev) {
            return; /* freed by the callback */
        }
        tg_event_handling = NULL;
        if (rc == TG_OK) {
            /* edge-triggered: bytes left in the socket, or its FIN, need
               another recv() (see above) */
            if ((n == (ssize_t) sizeof(tg_event_read_buf) || (what & EV_CLOSED))
                && event_pending(&bev->ev_read, EV_READ, NULL))
            {
                event_active(&bev->ev_read, EV_READ | (what & EV_CLOSED), 1);
            }
            return;
        }
        err = ENOMEM;
        events = BEV_EVENT_READING | BEV_EVENT_ERROR;
    } else if (n == 0) {
        events = BEV_EVENT_READING | BEV_EVENT_EOF;
    } else {
        err = errno;
        if (err == EINTR) {
            event_active(&bev->ev_read, what & (EV_READ | EV_CLOSED), 1);
            return;
        }
        if (err == EAGAIN || err == EWOULDBLOCK) {
            return;
        }
        events = BEV_EVENT_READING | BEV_EVENT_ERROR;
    }

failed:
    bufferevent_disable(bev, EV_READ);
    if (eventcb) {
        errno = err; /* what EVUTIL_SOCKET_ERROR() tells the handler */
        eventcb(bev, events, arg);
    }
}


/*
 * What evbuffer_write() does for a plain socket, without its bookkeeping
 * for sendfile and without the cancellation point libc's writev() sets up
 * in a threaded process (two atomic operations per call): one writev(2)
 * of the buffer's first chains.
 */
#define TG_EVENT_WRITE_IOVS  64

_Static_assert(sizeof(struct evbuffer_iovec) == sizeof(struct iovec)
                   && offsetof(struct evbuffer_iovec, iov_len)
                          == offsetof(struct iovec, iov_len),
               "evbuffer_iovec is laid out as struct iovec");

ssize_t
tg_event_write(struct evbuffer *out, int fd)
{
    int                    nv;
    ssize_t                n;
    struct evbuffer_iovec  v[TG_EVENT_WRITE_IOVS];

    /* an evbuffer_iovec is a struct iovec where the system has one */
    nv = evbuffer_peek(out, -1, NULL, v, TG_EVENT_WRITE_IOVS);
    if (nv <= 0) {
        return 0;
    }
    nv = tg_min(nv, TG_EVENT_WRITE_IOVS);
    n = syscall(SYS_writev, fd, (struct iovec *) v, nv);
    if (n > 0) {
        evbuffer_drain(out, (size_t) n);
    }
    return n;
}


ssize_t
tg_event_sendv(int fd, const struct iovec *iov, int n)
{
    return syscall(SYS_writev, fd, iov, n);
}


/* Takes up to n of the lent bytes; returns how many. */
static size_t
tg_event_lent_take(size_t n)
{
    n = tg_min(n, tg_event_lent.len);
    tg_event_lent.data += n;
    tg_event_lent.len -= n;
    return n;
}


size_t
tg_event_input_peek(struct bufferevent *bev, const char **data)
{
    struct evbuffer_iovec  vec;

    if (tg_event_lent.bev == bev) {
        *data = (const char *) tg_event_lent.data;
        return tg_event_lent.len;
    }
    if (evbuffer_peek(bufferevent_get_input(bev), -1, NULL, &vec, 1) < 1) {
        return 0;
    }
    *data = vec.iov_base;
    return vec.iov_len;
}


void
tg_event_input_drain(struct bufferevent *bev, size_t n)
{
    if (tg_event_lent.bev == bev) {
        tg_event_lent_take(n);
        return;
    }
    evbuffer_drain(bufferevent_get_input(bev), n);
}


int
tg_event_input_move(struct bufferevent *bev, struct evbuffer *dst, size_t n)
{
    if (tg_event_lent.bev == bev) {
        n = tg_min(n, tg_event_lent.len);
        if (evbuffer_add(dst, tg_event_lent.data, n) != 0) {
            return TG_ERROR;
        }
        tg_event_lent_take(n);
        return TG_OK;
    }
    return evbuffer_remove_buffer(bufferevent_get_input(bev), dst, n) < 0
           ? TG_ERROR
           : TG_OK;
}


size_t
tg_event_input_length(struct bufferevent *bev)
{
    return evbuffer_get_length(bufferevent_get_input(bev))
           + (tg_event_lent.bev == bev ? tg_event_lent.len : 0);
}


/*
 * After the read callback: what it left of the lent bytes goes into the
 * input buffer. Nothing to do when bev was not lent any (or was freed).
 */
static int
tg_event_input_commit(struct bufferevent *bev)
{
    if (tg_event_lent.bev != bev) {
        return TG_OK;
    }
    tg_event_lent.bev = NULL;
    if (tg_event_lent.len == 0) {
        return TG_OK;
    }
    return tg_event_input_append(bev, tg_event_lent.data, tg_event_lent.len);
}


void
tg_event_bev_free(struct bufferevent *bev)
{
    if (tg_event_lent.bev == bev) {
        tg_event_lent.bev = NULL;
    }
    if (tg_event_handling == bev) {
        tg_event_handling = NULL;
    }
    bufferevent_free(bev);
}


static void
tg_event_accept_handler(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int len, void *ctx)
{
    tg_event_listener_t  *el = ctx;

    el->ls->handler(fd, sa, (socklen_t) len, el->ls);
}


/* Pauses every listener (connection limit or EMFILE) for a moment. */
void
tg_event_accept_pause(int ms)
{
    size_t          i;
    struct timeval  tv;

    for (i = 0; i < tg_event_nlisteners; i++) {
        evconnlistener_disable(tg_event_listeners[i].lev);
    }
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    evtimer_add(tg_event_accept_timer, &tv);
}


static void
tg_event_accept_resume_handler(evutil_socket_t fd, short what, void *ctx)
{
    size_t  i;

    if (tg_event_worker.shutting_down) {
        return;
    }
    if (tg_event_worker.nconns >= (size_t) tg_cycle->main.worker_connections) {
        tg_event_accept_pause(100);
        return;
    }
    for (i = 0; i < tg_event_nlisteners; i++) {
        evconnlistener_enable(tg_event_listeners[i].lev);
    }
}


static void
tg_event_accept_error_handler(struct evconnlistener *lev, void *ctx)
{
    int  err;

    err = EVUTIL_SOCKET_ERROR();
    tg_log_error(TG_LOG_ALERT, &tg_log_global, err, "accept() failed");
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        tg_event_accept_pause(100);
    }
}


static void
tg_event_stop_listening(void)
{
    size_t  i;

    for (i = 0; i < tg_event_nlisteners; i++) {
        if (tg_event_listeners[i].lev) {
            evconnlistener_free(tg_event_listeners[i].lev);
            tg_event_listeners[i].lev = NULL;
        }
    }
    tg_event_nlisteners = 0;
}


static void
tg_event_stop_check_handler(evutil_socket_t fd, short what, void *ctx)
{
    size_t          i, left;
    struct timeval  tv = { 0, 100 * 1000 };

    left = 0;
    for (i = 0; tg_modules[i]; i++) {
        if (tg_modules[i]->drain) {
            left += tg_modules[i]->drain(tg_cycle);
        }
    }
    if (left == 0 || tg_time_ms() >= tg_event_stop_deadline) {
        if (left) {
            tg_log_error(TG_LOG_WARN, &tg_log_global, 0,
                         "shutdown timeout: closing %zu connections", left);
        }
        event_base_loopexit(tg_event_worker.base, NULL);
        return;
    }
    evtimer_add(tg_event_stop_timer, &tv);
}


static void
tg_event_signal_handler(evutil_socket_t fd, short what, void *ctx)
{
    int  signo = (int) fd;

    switch (signo) {
    case SIGQUIT:
        if (tg_event_worker.shutting_down) {
            return;
        }
        tg_log_error(TG_LOG_NOTICE, &tg_log_global, 0,
                     "gracefully shutting down");
        tg_event_worker.shutting_down = 1;
        tg_event_stop_listening();
        tg_event_stop_deadline = tg_time_ms()
                                 + (uint64_t) tg_cycle->main.shutdown_timeout;
        tg_event_stop_check_handler(-1, 0, NULL);
        break;
    case SIGTERM:
    case SIGINT:
        tg_event_worker.shutting_down = 1;
        tg_event_stop_listening();
        event_base_loopexit(tg_event_worker.base, NULL);
        break;
    case SIGUSR1:
        tg_log_reopen(&tg_log_global);
        break;
    default:
        break;
    }
}


int
tg_event_init_worker(tg_cycle_t *cycle, int slot)
{
    size_t             i;
    tg_listen_t       *ls;
    struct event      *ev;
    static const int   sigs[] = { SIGQUIT, SIGTERM, SIGINT, SIGUSR1, SIGHUP };

    /*
     * Only this thread touches the worker's base (the exporter thread has
     * its own), so the per-operation mutex evthread_use_pthreads() would
     * add is pure cost.
     */
    {
        struct event_config  *ecfg = event_config_new();

        if (ecfg) {
            event_config_set_flag(ecfg, EVENT_BASE_FLAG_NOLOCK);
            tg_event_worker.base = event_base_new_with_config(ecfg);
            event_config_free(ecfg);
        }
    }
    if (tg_event_worker.base == NULL) {
        tg_log_error(TG_LOG_EMERG, &tg_log_global, 0,
                     "event_base_new() failed");
        return TG_ERROR;
    }
    for (i = 0; i < tg_nelts(sigs); i++) {
        ev = evsignal_new(tg_event_worker.base, sigs[i],
                          tg_event_signal_handler, NULL);
        if (ev == NULL || evsignal_add(ev, NULL) < 0) {
            tg_log_error(TG_LOG_EMERG, &tg_log_global, 0,
                         "evsignal_add() failed");
            return TG_ERROR;
        }
    }
    tg_event_stop_timer = evtimer_new(tg_event_worker.base,
                                      tg_event_stop_check_handler, NULL);
    tg_event_accept_timer = evtimer_new(tg_event_worker.base,
                                        tg_event_accept_resume_handler, NULL);

    ls = cycle->main.listens.elts;
    if (cycle->main.listens.nelts > tg_nelts(tg_event_listeners)) {
        tg_log_error(TG_LOG_EMERG, &tg_log_global, 0,
                     "more than %zu listen addresses",
                     tg_nelts(tg_event_listeners));
        return TG_ERROR;
    }
    for (i = 0; i < cycle->main.listens.nelts; i++) {
        tg_event_listener_t  *el = &tg_event_listeners[tg_event_nlisteners];

        el->ls = &ls[i];
        el->lev = evconnlistener_new(tg_event_worker.base,
                                     tg_event_accept_handler, el,
                                     LEV_OPT_CLOSE_ON_FREE, -1,
                                     ls[i].fds[slot]);
        if (el->lev == NULL) {
            tg_log_error(TG_LOG_EMERG, &tg_log_global, errno,
                         "evconnlistener_new() on " TG_STR_FMT " failed",
                         TG_STR_ARG(&ls[i].text));
            return TG_ERROR;
        }
        evconnlistener_set_error_cb(el->lev, tg_event_accept_error_handler);
        tg_event_nlisteners++;
    }
    return TG_OK;
}


void
tg_event_run(void)
{
    event_base_dispatch(tg_event_worker.base);
    tg_event_worker.shutting_down = 1;
}
