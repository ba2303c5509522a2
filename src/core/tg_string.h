#ifndef _TG_STRING_H_INCLUDED_
#define _TG_STRING_H_INCLUDED_

/* Length-delimited byte slices; request data never relies on a NUL. */

typedef struct {
    size_t   len;
    u_char  *data;
} tg_str_t;

#define tg_string(s)     { sizeof(s) - 1, (u_char *) s }
#define tg_null_string   { 0, NULL }
#define tg_str_set(str, text)                                                  \
    (str)->len = sizeof(text) - 1;                                             \
    (str)->data = (u_char *) text
#define TG_STR_FMT       "%.*s"
#define TG_STR_ARG(s)    (int) (s)->len, (char *) (s)->data

#define tg_tolower(c)    (u_char) (((c) >= 'A' && (c) <= 'Z') ? ((c) | 0x20) : (c))

/* Equal bytes, case-sensitive. */
static inline int
tg_str_eq(const tg_str_t *a, const tg_str_t *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/*
 * Equal but for ASCII case (header names). The inline forms compare the
 * lengths first, the usual answer, without a call; with a literal s,
 * tg_str_caseeq_c's strlen() is a constant.
 */
int tg_str_caseeq_n(const u_char *a, const u_char *b, size_t n);

static inline int
tg_str_caseeq(const tg_str_t *a, const tg_str_t *b)
{
    return a->len == b->len && tg_str_caseeq_n(a->data, b->data, a->len);
}

static inline int
tg_str_caseeq_c(const tg_str_t *a, const char *s)
{
    size_t  n;

    n = strlen(s);
    return a->len == n && tg_str_caseeq_n(a->data, (const u_char *) s, n);
}

/* Trims space and horizontal tab on both sides, in place (RFC 9110 OWS). */
void tg_str_trim_ows(tg_str_t *s);

/* Lowercase hex of n bytes into dst (2n bytes, no NUL). Returns dst + 2n. */
u_char *tg_hex_encode(u_char *dst, const u_char *src, size_t n);

/* v in decimal at p (at most 20 bytes, no NUL). Returns the end. */
u_char *tg_utoa(u_char *p, uint64_t v);

/*
 * Copies n bytes of src to p, or as many as fit before last. Returns the
 * end of what was copied.
 */
u_char *tg_cpymem_max(u_char *p, const u_char *last, const void *src,
    size_t n);

/*
 * Decodes exactly 2n lowercase hex digits into n bytes. Returns TG_OK, or
 * TG_ERROR on any other character (uppercase included).
 */
int tg_hex_decode_lc(u_char *dst, const u_char *src, size_t n);

/* Parses a non-negative decimal; TG_ERROR on empty, junk or overflow. */
int tg_atoi(const u_char *p, size_t n, int64_t *out);

/*
 * Parses "30s", "500ms", "2m", "1h" or a bare number of seconds into
 * milliseconds. TG_ERROR on junk.
 */
int tg_parse_time_ms(const tg_str_t *s, int64_t *ms);

/* Parses "512", "16k", "1m", "2g" into bytes. TG_ERROR on junk. */
int tg_parse_size(const tg_str_t *s, int64_t *bytes);

/*
 * Splits the next token separated by sep (outside double quotes) from *rest,
 * trimming OWS; returns 1 when a token (maybe empty) was taken, 0 at end.
 */
int tg_str_next_token(tg_str_t *rest, u_char sep, tg_str_t *token);

/*
 * UTF-8 (RFC 3629). tg_utf8_seq() is the length of the well-formed
 * sequence at p (left bytes there), 0 when there is none; NUL counts as
 * ill-formed. tg_utf8_sanitize() copies n bytes of src to dst as valid
 * UTF-8, each byte not part of a well-formed sequence becoming U+FFFD (dst
 * needs 3 * n bytes), and returns the bytes written; tg_utf8_fixed_len()
 * is that length without writing (n when src needs no repair), and
 * tg_utf8_valid() says whether src needs none.
 */
size_t tg_utf8_seq(const u_char *p, size_t left);

/* Bytes 0x01-0x7f only, which need no repair: a word at a time, inline. */
static inline int
tg_utf8_ascii(const u_char *p, size_t n)
{
    size_t    i;
    uint64_t  w;

    static const uint64_t  ones = 0x0101010101010101ULL;
    static const uint64_t  high = 0x8080808080808080ULL;

    for (i = 0; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        if ((w | (w - ones)) & high) { /* a byte >= 0x80, or a zero byte */
            return 0;
        }
    }
    for ( /* void */ ; i < n; i++) {
        if (p[i] == 0 || p[i] >= 0x80) {
            return 0;
        }
    }
    return 1;
}

size_t tg_utf8_sanitize(u_char *dst, const u_char *src, size_t n);
size_t tg_utf8_fixed_len(const u_char *src, size_t n);
int tg_utf8_valid(const u_char *src, size_t n);

/*
 * Protobuf base-128 varints: tg_varint_size() is how many bytes v takes,
 * tg_varint_put() writes it at p and returns the end.
 */
static inline size_t
tg_varint_size(uint64_t v)
{
    size_t  n;

    for (n = 1; v >= 0x80; n++) {
        v >>= 7;
    }
    return n;
}

static inline u_char *
tg_varint_put(u_char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (u_char) (v | 0x80);
        v >>= 7;
    }
    *p++ = (u_char) v;
    return p;
}

#endif /* _TG_STRING_H_INCLUDED_ */
