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

#endif /* _TG_EVENT_H_INCLUDED_ */
