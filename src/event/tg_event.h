#ifndef _TG_EVENT_H_INCLUDED_
#define _TG_EVENT_H_INCLUDED_

/*
 * A worker's loop: its base (made after fork), the connections that
 * protocol layers count in nconns (the accept limit, worker_connections,
 * compares with it) and whether a stop began. One per worker process.
 */
typedef struct {
    struct event_base  *base;
    size_t              nconns;
    unsigned            shutting_down:1;
} tg_event_worker_t;

extern tg_event_worker_t  tg_event_worker;

/*
 * In a worker, after fork: makes the base, the signal events (QUIT
 * graceful, TERM/INT fast, USR1 reopen) and a listener on fds[slot] of
 * every listen of the cycle, which hands each accepted socket to the
 * listen's handler. TG_OK, else TG_ERROR (logged).
 */
int tg_event_init_worker(tg_cycle_t *cycle, int slot);

/*
 * Runs the loop until a fast stop, or a graceful one whose modules'
 * drain hooks report no busy connection (or shutdown_timeout passed).
 */
void tg_event_run(void);

/* Stops accepting on every listener of this worker for ms milliseconds
   (connection limit reached, or out of descriptors). */
void tg_event_accept_pause(int ms);

/*
 * A timeout of ms milliseconds for event_add and bufferevent_set_timeouts
 * in this worker. The same few durations are armed for every connection,
 * so they use libevent's common-timeout queues: adding one is an append,
 * not a heap operation. The pointer stays valid for the worker's life.
 */
const struct timeval *tg_event_timeout(int64_t ms);

/*
 * Points a plain-socket bufferevent's reads at tracegate's reader (one
 * recv() per readable socket, no FIONREAD ioctl, up to 64 KiB). Call it
 * once the bufferevent has its descriptor (after bufferevent_socket_new()
 * with a socket, or after bufferevent_socket_connect()). Worker thread.
 */
struct bufferevent;
struct evbuffer;
void tg_event_bev_reader(struct bufferevent *bev);

/*
 * The input of a bufferevent, whether or not the bytes just read were put
 * in it. When the reader reads into a connection whose input buffer is
 * empty, it hands the bytes to the read callback where they lie, in the
 * reader's buffer, and appends to the input buffer only what the callback
 * left (then the callback is done: the next read calls it again). The
 * callback and what it calls reach the input through these:
 *
 *   tg_event_input_peek()    the next bytes to parse (a pointer and their
 *                            length; 0 when none), valid until the next
 *                            call below
 *   tg_event_input_drain()   consumes n of them
 *   tg_event_input_move()    consumes n of them, appended to dst
 *   tg_event_input_length()  all that waits
 *
 * A bufferevent is freed with tg_event_bev_free(), which forgets bytes
 * handed over for it. For any other bufferevent these are the evbuffer
 * calls. Worker thread.
 */
size_t tg_event_input_peek(struct bufferevent *bev, const char **data);
void tg_event_input_drain(struct bufferevent *bev, size_t n);
int tg_event_input_move(struct bufferevent *bev, struct evbuffer *dst,
    size_t n);
size_t tg_event_input_length(struct bufferevent *bev);
void tg_event_bev_free(struct bufferevent *bev);

/*
 * Writes what it can of out to a plain socket with one writev(2), drains
 * what was written; returns that (0: out empty) or -1 with errno set.
 * The caller unfreezes a bufferevent's output around it.
 */
ssize_t tg_event_write(struct evbuffer *out, int fd);

/* writev(2) without a cancellation point (tg_event_write()). */
struct iovec;
ssize_t tg_event_sendv(int fd, const struct iovec *iov, int n);

/*
 * A deadline kept on a timer event, set lazily: a new deadline moves the
 * event only when it would fire too late, so a connection that sets one
 * for every request or every read costs no libevent call for it. The
 * event's handler asks tg_event_deadline_passed() first: a firing for an
 * earlier deadline sets the event again for what is left.
 */
typedef struct {
    uint64_t  timer_at;  /* ms the event fires, 0: not pending */
    uint64_t  at;        /* ms the deadline is due, 0: none */
} tg_event_deadline_t;

struct event;

/* Sets the deadline ms from now on ev (ms <= 0: none). Worker thread. */
void tg_event_deadline_set(tg_event_deadline_t *d, struct event *ev,
    int64_t ms);

/*
 * From ev's handler: 1 when the deadline has passed (it is cleared), 0
 * when it was lifted or is still ahead (ev is set again for the rest).
 */
int tg_event_deadline_passed(tg_event_deadline_t *d, struct event *ev);

#endif /* _TG_EVENT_H_INCLUDED_ */
