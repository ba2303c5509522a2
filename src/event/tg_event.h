#ifndef _TG_EVENT_H_INCLUDED_
#define _TG_EVENT_H_INCLUDED_

/* Stops accepting on every listener of this worker for ms milliseconds
   (connection limit reached, or out of descriptors). */
void tg_event_accept_pause(int ms);

#endif /* _TG_EVENT_H_INCLUDED_ */
