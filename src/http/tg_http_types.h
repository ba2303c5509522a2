#ifndef _TG_HTTP_TYPES_H_INCLUDED_
#define _TG_HTTP_TYPES_H_INCLUDED_

/* Forward typedefs of the HTTP layer, for its headers and its modules. */

typedef struct tg_upstream_s         tg_upstream_t;
typedef struct tg_upstream_server_s  tg_upstream_server_t;
typedef struct tg_http_route_s       tg_http_route_t;
typedef struct tg_http_conn_s        tg_http_conn_t;
typedef struct tg_http_request_s     tg_http_request_t;
typedef struct tg_http_header_s      tg_http_header_t;

#endif /* _TG_HTTP_TYPES_H_INCLUDED_ */
