#ifndef _TG_CORE_H_INCLUDED_
#define _TG_CORE_H_INCLUDED_

/* Umbrella header: forward typedefs, result codes, core headers. */

typedef struct tg_pool_s             tg_pool_t;
typedef struct tg_pool_cleanup_s     tg_pool_cleanup_t;
typedef struct tg_array_s            tg_array_t;
typedef struct tg_log_s              tg_log_t;
typedef struct tg_conf_s             tg_conf_t;
typedef struct tg_command_s          tg_command_t;
typedef struct tg_module_s           tg_module_t;
typedef struct tg_cycle_s            tg_cycle_t;
typedef struct tg_listen_s           tg_listen_t;

#define TG_OK        0
#define TG_ERROR    -1
#define TG_DONE     -4 /* hook finished the request itself */
#define TG_DECLINED -5 /* hook not interested; try the next one */

#define LF   (u_char) '\n'
#define CR   (u_char) '\r'
#define CRLF "\r\n"

#define tg_min(a, b) (((a) < (b)) ? (a) : (b))
#define tg_max(a, b) (((a) > (b)) ? (a) : (b))
#define tg_nelts(a)  (sizeof(a) / sizeof((a)[0]))

#include <tg_string.h>
#include <tg_json.h>
#include <tg_pool.h>
#include <tg_array.h>
#include <tg_log.h>
#include <tg_time.h>
#include <tg_random.h>

#endif /* _TG_CORE_H_INCLUDED_ */
