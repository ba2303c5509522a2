#include <tg_config.h>
#include <tg_core.h>


/*
 * 1 for the bytes that are not copied as they are in every format:
 * controls, '"', '\\', DEL, and from 0x80 on UTF-8 (tg_utf8_seq).
 */
static const u_char  tg_json_special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
};


u_char *
tg_json_escape(u_char *p, u_char *last, const u_char *src, size_t n,
    unsigned flags, unsigned *truncated)
{
    size_t        i, j, k;
    u_char        c, e;
    const char   *hex;

    for (i = 0; i < n; i = j + 1) {
        /* a run of bytes that stay as they are, copied at once */
        for (j = i; j < n && tg_json_special[src[j]] == 0; j++) {
            /* scan */
        }
        if ((size_t) (last - p) < j - i) {
            *truncated = 1;
            break;
        }
        p = (u_char *) mempcpy(p, src + i, j - i);
        if (j == n) {
            break;
        }

        c = src[j];
        if (c >= 0x80) {
            k = tg_utf8_seq(src + j, n - j);
            if (k != 0) {
                if ((size_t) (last - p) < k) {
                    *truncated = 1;
                    break;
                }
                p = (u_char *) mempcpy(p, src + j, k);
                j += k - 1;
                continue;
            }

        } else {
            switch (c) {
            case '"':  e = '"'; break;
            case '\\': e = '\\'; break;
            case '\n': e = (flags & TG_JSON_SHORT_NRT) ? 'n' : 0; break;
            case '\r': e = (flags & TG_JSON_SHORT_NRT) ? 'r' : 0; break;
            case '\t': e = (flags & TG_JSON_SHORT_NRT) ? 't' : 0; break;
            case '\b': e = (flags & TG_JSON_SHORT_BF) ? 'b' : 0; break;
            case '\f': e = (flags & TG_JSON_SHORT_BF) ? 'f' : 0; break;
            default:   e = 0; break;
            }
            if (e) {
                if (last - p < 2) {
                    *truncated = 1;
                    break;
                }
                *p++ = '\\';
                *p++ = e;
                continue;
            }
            if (c == 0x7f && (flags & TG_JSON_RAW_DEL)) {
                if (last - p < 1) {
                    *truncated = 1;
                    break;
                }
                *p++ = c;
                continue;
            }
            if (c != 0 || !(flags & TG_JSON_NUL_BAD)) {
                if (last - p < 6) {
                    *truncated = 1;
                    break;
                }
                hex = (flags & TG_JSON_UPPER_HEX) ? "0123456789ABCDEF"
                                                  : "0123456789abcdef";
                p = (u_char *) mempcpy(p, "\\u00", 4);
                *p++ = (u_char) hex[c >> 4];
                *p++ = (u_char) hex[c & 0xf];
                continue;
            }
        }

        /* ill-formed: U+FFFD REPLACEMENT CHARACTER for the one byte */
        if (last - p < 3) {
            *truncated = 1;
            break;
        }
        *p++ = 0xef;
        *p++ = 0xbf;
        *p++ = 0xbd;
    }
    return p;
}
