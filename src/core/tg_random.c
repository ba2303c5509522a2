#include <tg_config.h>
#include <tg_core.h>

#include <openssl/rand.h>


static uint64_t  tg_random_state[4];
static int       tg_random_seeded;


static inline uint64_t
tg_random_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}


int
tg_random_init(void)
{
    if (RAND_bytes((u_char *) tg_random_state, sizeof(tg_random_state)) != 1) {
        return TG_ERROR;
    }
    if ((tg_random_state[0] | tg_random_state[1] | tg_random_state[2]
         | tg_random_state[3])
        == 0)
    {
        tg_random_state[0] = 1;
    }
    tg_random_seeded = 1;
    return TG_OK;
}


uint64_t
tg_random_u64(void)
{
    uint64_t  r, t;

    if (!tg_random_seeded && tg_random_init() != TG_OK) {
        /* last resort: time and pid, still never zero */
        tg_random_state[0] = tg_time_now_ns() ^ (uint64_t) getpid() << 32;
        tg_random_state[1] = 0x9e3779b97f4a7c15ULL;
        tg_random_seeded = 1;
    }
    r = tg_random_rotl(tg_random_state[1] * 5, 7) * 9;
    t = tg_random_state[1] << 17;
    tg_random_state[2] ^= tg_random_state[0];
    tg_random_state[3] ^= tg_random_state[1];
    tg_random_state[1] ^= tg_random_state[2];
    tg_random_state[0] ^= tg_random_state[3];
    tg_random_state[2] ^= t;
    tg_random_state[3] = tg_random_rotl(tg_random_state[3], 45);
    return r;
}


void
tg_random_trace_id(u_char id[16])
{
    uint64_t  a, b;

    do {
        a = tg_random_u64();
        b = tg_random_u64();
    } while ((a | b) == 0);
    memcpy(id, &a, 8);
    memcpy(id + 8, &b, 8);
}


void
tg_random_span_id(u_char id[8])
{
    uint64_t  a;

    do {
        a = tg_random_u64();
    } while (a == 0);
    memcpy(id, &a, 8);
}
