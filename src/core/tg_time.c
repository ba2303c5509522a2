#include <tg_config.h>
#include <tg_core.h>


int  tg_worker_slot = -1;
int  tg_log_to_stderr = 1;

static time_t  tg_time_log_sec = -1;
static char    tg_time_log_cache[20];


uint64_t
tg_time_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}


uint64_t
tg_time_now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}


size_t
tg_time_log_str(char *dst)
{
    time_t     now;
    struct tm  tm;

    now = time(NULL);
    if (now != tg_time_log_sec) {
        localtime_r(&now, &tm);
        strftime(tg_time_log_cache, sizeof(tg_time_log_cache),
                 "%Y/%m/%d %H:%M:%S", &tm);
        tg_time_log_sec = now;
    }
    memcpy(dst, tg_time_log_cache, 19);
    return 19;
}
