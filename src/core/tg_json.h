#ifndef _TG_JSON_H_INCLUDED_
#define _TG_JSON_H_INCLUDED_

/*
 * JSON string contents (RFC 8259 section 7), the one escaper of every
 * JSON writer. Well-formed UTF-8 is copied; each byte that is not part of
 * a well-formed sequence (tg_utf8_seq) becomes U+FFFD, written as its
 * three UTF-8 bytes: the same repair as tg_utf8_sanitize(), so the
 * OTLP/JSON and OTLP/protobuf forms of a string are equal, and a reader
 * with a strict UTF-8 decoder takes every line. '"' and '\' are always
 * escaped with a backslash, and every control byte is escaped; how the
 * ASCII bytes are spelled is the writer's format (the flags below), kept
 * as each format has always written it.
 */

#define TG_JSON_SHORT_NRT  0x01 /* \n \r \t, not \u000a \u000d \u0009 */
#define TG_JSON_SHORT_BF   0x02 /* \b \f, not \u0008 \u000c */
#define TG_JSON_UPPER_HEX  0x04 /* \u001F, not \u001f */
#define TG_JSON_RAW_DEL    0x08 /* 0x7f copied, not \u007f */
#define TG_JSON_NUL_BAD    0x10 /* NUL is ill-formed (U+FFFD), as in the
                                   C strings of protobuf-c */

/* Output bytes for one input byte at worst: \u00XX. */
#define TG_JSON_ESCAPE_MAX 6

/*
 * Escapes n bytes of src into [p, last), without quotes, as flags
 * (TG_JSON_*) spell ASCII. Room for TG_JSON_ESCAPE_MAX * n bytes is always
 * enough. Otherwise it stops before the first piece that does not fit
 * (a run of bytes copied as they are, one escape, one UTF-8 sequence) and
 * sets *truncated. Returns the end of the output. Does not allocate.
 */
u_char *tg_json_escape(u_char *p, u_char *last, const u_char *src, size_t n,
    unsigned flags, unsigned *truncated);

#endif /* _TG_JSON_H_INCLUDED_ */
