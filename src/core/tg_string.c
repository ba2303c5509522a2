#include <tg_config.h>
#include <tg_core.h>


int
tg_str_caseeq_n(const u_char *a, const u_char *b, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (tg_tolower(a[i]) != tg_tolower(b[i])) {
            return 0;
        }
    }
    return 1;
}


void
tg_str_trim_ows(tg_str_t *s)
{
    while (s->len && (s->data[0] == ' ' || s->data[0] == '\t')) {
        s->data++;
        s->len--;
    }
    while (s->len
           && (s->data[s->len - 1] == ' ' || s->data[s->len - 1] == '\t'))
    {
        s->len--;
    }
}


/* every byte's two lowercase hex digits: one table load per byte */
static const char  tg_hex_pairs[] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";


/* the two decimal digits of 0..99 */
static const char  tg_dec_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";


/*
 * The number of digits comes from the bit length (log10(2) ~ 1233/4096)
 * and one comparison; then two digits per division, from the end.
 */
u_char *
tg_utoa(u_char *p, uint64_t v)
{
    size_t   n;
    u_char  *e;

    static const uint64_t  pow10[20] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL,
        10000000ULL, 100000000ULL, 1000000000ULL, 10000000000ULL,
        100000000000ULL, 1000000000000ULL, 10000000000000ULL,
        100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
        100000000000000000ULL, 1000000000000000000ULL,
        10000000000000000000ULL
    };

    n = (size_t) ((64 - __builtin_clzll(v | 1)) * 1233) >> 12;
    n += (v | 1) >= pow10[n];

    e = p + n;
    while (v >= 100) {
        e -= 2;
        memcpy(e, &tg_dec_pairs[2 * (v % 100)], 2);
        v /= 100;
    }
    if (v >= 10) {
        memcpy(e - 2, &tg_dec_pairs[2 * v], 2);
    } else {
        e[-1] = (u_char) ('0' + v);
    }
    return p + n;
}


u_char *
tg_cpymem_max(u_char *p, const u_char *last, const void *src, size_t n)
{
    n = tg_min(n, (size_t) (last - p));
    memcpy(p, src, n);
    return p + n;
}


/*
 * Lowercase hex of four bytes in one 64-bit word, byte k of the text in
 * bits 8k..8k+7: each source byte is spread into a 16-bit lane, its two
 * nibbles become the lane's two bytes, and every nibble turns into '0'+n
 * or 'a'+n-10 (n + 6 carries into bit 4 exactly when n >= 10).
 */
static inline uint64_t
tg_hex_word(const u_char *src)
{
    uint64_t  w, ge10;

    static const uint64_t  nib = 0x000f000f000f000fULL;
    static const uint64_t  ones = 0x0101010101010101ULL;

    w = (uint64_t) src[0] | (uint64_t) src[1] << 16 | (uint64_t) src[2] << 32
        | (uint64_t) src[3] << 48;
    w = ((w >> 4) & nib) | ((w & nib) << 8);
    ge10 = ((w + 0x0606060606060606ULL) >> 4) & ones;
    return w + 0x3030303030303030ULL + ge10 * ('a' - '0' - 10);
}


u_char *
tg_hex_encode(u_char *dst, const u_char *src, size_t n)
{
    size_t    i;
    uint64_t  w;

    for (i = 0; i + 4 <= n; i += 4) {
        w = tg_hex_word(src + i);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(dst, &w, 8);
        dst += 8;
#else
        for (int k = 0; k < 8; k++) {
            *dst++ = (u_char) (w >> (8 * k));
        }
#endif
    }
    for ( /* void */ ; i < n; i++) {
        memcpy(dst, &tg_hex_pairs[2 * src[i]], 2);
        dst += 2;
    }
    return dst;
}


static int
tg_hex_digit_lc(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}


int
tg_hex_decode_lc(u_char *dst, const u_char *src, size_t n)
{
    int     hi, lo;
    size_t  i;

    for (i = 0; i < n; i++) {
        hi = tg_hex_digit_lc(src[2 * i]);
        lo = tg_hex_digit_lc(src[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return TG_ERROR;
        }
        dst[i] = (u_char) (hi << 4 | lo);
    }
    return TG_OK;
}


int
tg_atoi(const u_char *p, size_t n, int64_t *out)
{
    int64_t  v;
    size_t   i;

    if (n == 0) {
        return TG_ERROR;
    }
    v = 0;
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return TG_ERROR;
        }
        if (v > (INT64_MAX - 9) / 10) {
            return TG_ERROR;
        }
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return TG_OK;
}


int
tg_parse_time_ms(const tg_str_t *s, int64_t *ms)
{
    size_t   n;
    int64_t  v, mul;

    n = 0;
    while (n < s->len && s->data[n] >= '0' && s->data[n] <= '9') {
        n++;
    }
    if (tg_atoi(s->data, n, &v) != TG_OK) {
        return TG_ERROR;
    }
    if (n == s->len || (s->len - n == 1 && s->data[n] == 's')) {
        mul = 1000;
    } else if (s->len - n == 2 && memcmp(s->data + n, "ms", 2) == 0) {
        mul = 1;
    } else if (s->len - n == 1 && s->data[n] == 'm') {
        mul = 60000;
    } else if (s->len - n == 1 && s->data[n] == 'h') {
        mul = 3600000;
    } else {
        return TG_ERROR;
    }
    if (v > INT64_MAX / mul) {
        return TG_ERROR;
    }
    *ms = v * mul;
    return TG_OK;
}


int
tg_parse_size(const tg_str_t *s, int64_t *bytes)
{
    size_t   n;
    int64_t  v, mul;

    n = 0;
    while (n < s->len && s->data[n] >= '0' && s->data[n] <= '9') {
        n++;
    }
    if (tg_atoi(s->data, n, &v) != TG_OK || s->len - n > 1) {
        return TG_ERROR;
    }
    mul = 1;
    if (n < s->len) {
        switch (tg_tolower(s->data[n])) {
        case 'k':
            mul = 1024;
            break;
        case 'm':
            mul = 1024 * 1024;
            break;
        case 'g':
            mul = 1024 * 1024 * 1024;
            break;
        default:
            return TG_ERROR;
        }
    }
    if (v > INT64_MAX / mul) {
        return TG_ERROR;
    }
    *bytes = v * mul;
    return TG_OK;
}


int
tg_str_next_token(tg_str_t *rest, u_char sep, tg_str_t *token)
{
    size_t  i;
    int     quoted;

    if (rest->data == NULL) {
        return 0;
    }
    quoted = 0;
    for (i = 0; i < rest->len; i++) {
        if (rest->data[i] == '"') {
            quoted = !quoted;
        } else if (rest->data[i] == '\\' && quoted && i + 1 < rest->len) {
            i++;
        } else if (rest->data[i] == sep && !quoted) {
            break;
        }
    }
    token->data = rest->data;
    token->len = i;
    tg_str_trim_ows(token);
    if (i < rest->len) {
        rest->data += i + 1;
        rest->len -= i + 1;
    } else {
        rest->data = NULL;
        rest->len = 0;
    }
    return 1;
}


/* Length of the well-formed UTF-8 sequence at p (RFC 3629 table), or 0. */
size_t
tg_utf8_seq(const u_char *p, size_t left)
{
    u_char  c, lo, hi;
    size_t  n, i;

    c = p[0];
    if (c >= 0x01 && c < 0x80) {
        return 1;
    }
    lo = 0x80;
    hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = (c == 0xe0) ? 0xa0 : 0x80;
        hi = (c == 0xed) ? 0x9f : 0xbf;   /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = (c == 0xf0) ? 0x90 : 0x80;
        hi = (c == 0xf4) ? 0x8f : 0xbf;   /* <= U+10FFFF */
    } else {
        return 0;
    }
    if (left < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (i = 2; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    return n;
}


int
tg_utf8_valid(const u_char *src, size_t n)
{
    size_t  i, k;

    for (i = 0; i < n; i += k) {
        if (src[i] >= 0x01 && src[i] < 0x80) {
            k = 1;
            continue;
        }
        k = tg_utf8_seq(src + i, n - i);
        if (k == 0) {
            return 0;
        }
    }
    return 1;
}


size_t
tg_utf8_sanitize(u_char *dst, const u_char *src, size_t n)
{
    size_t   i, k;
    u_char  *p;

    p = dst;
    for (i = 0; i < n; i += k) {
        k = tg_utf8_seq(src + i, n - i);
        if (k == 0) {
            *p++ = 0xef;
            *p++ = 0xbf;
            *p++ = 0xbd;
            k = 1;
            continue;
        }
        memcpy(p, src + i, k);
        p += k;
    }
    return (size_t) (p - dst);
}


/*
 * Length of src[0..n) once tg_utf8_sanitize() has repaired it: n for
 * valid UTF-8 without NUL, more otherwise (a bad byte becomes 3 bytes).
 * Text is mostly ASCII: eight bytes in 0x01-0x7f are checked at a time
 * (none has the high bit, and subtracting 1 from each borrows, setting a
 * high bit, only at a 0), the last eight of the string overlapping bytes
 * already checked, a shorter string in one word; anything else is
 * measured sequence by sequence.
 */
size_t
tg_utf8_fixed_len(const u_char *src, size_t n)
{
    size_t  i, k, len;

    if (tg_utf8_ascii(src, n)) {
        return n;  /* the usual case; src may be NULL when n is 0 */
    }
    i = 0;
    len = n;
    while (i < n) {
        if (src[i] >= 0x01 && src[i] < 0x80) {
            i++;
            continue;
        }
        k = tg_utf8_seq(src + i, n - i);
        if (k == 0) {
            len += 2;
            k = 1;
        }
        i += k;
    }
    return len;
}
