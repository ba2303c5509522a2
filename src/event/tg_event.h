#ifndef _TG_EVENT_H_INCLUDED_
#define _TG_EVENT_H_INCLUDED_

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
void tg_event_bev_reader(struct bufferevent *bev);

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
