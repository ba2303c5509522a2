#ifndef _TG_CONF_H_INCLUDED_
#define _TG_CONF_H_INCLUDED_

/*
 * The .conf reader: inih driven through our own line reader, which counts
 * lines (the inih handler gets none), rejects lines inih would split (198
 * characters or more) and indented lines (inih's multi-line mode), and sees
 * section headers first so that empty and repeated sections are caught.
 *
 * Sections: [main], [upstream NAME], [route PREFIX] and one per module
 * (module->section). Keys dispatch through tg_command_t tables. Every error
 * is "FILE:LINE: problem" in cf->error; the first one stops the load.
 */

#define TG_CONF_TAKE1  0x0000
#define TG_CONF_MULTI  0x0001 /* repeated key appends instead of erroring */
#define TG_CONF_MAIN   0x0002 /* module key that lives in [main] */
#define TG_CONF_SECRET 0x0004 /* a credential: errors and -T never show the
                                 value (tg_conf_secret) */

#define TG_CONF_OK     NULL
#define TG_CONF_UNSET  -1
#define TG_CONF_ERRLEN 512
#define TG_CONF_LINE_MAX 197 /* inih r55 splits lines of 198+ chars */

/*
 * A directive handler: parses cf->value for cmd into conf (the section's
 * struct). Returns TG_CONF_OK or a static/pool message ("invalid value").
 */
typedef char *(*tg_conf_set_pt)(tg_conf_t *cf, tg_command_t *cmd, void *conf);

struct tg_command_s {
    tg_str_t        name;
    unsigned        flags;
    tg_conf_set_pt  set;
    size_t          offset;
};

#define tg_null_command { tg_null_string, 0, NULL, 0 }

typedef struct {
    tg_str_t  key;
    tg_str_t  value;
} tg_keyval_t;

struct tg_conf_s {
    tg_pool_t     *pool;  /* the cycle's pool: conf data lives here */
    tg_cycle_t    *cycle;
    const char    *file;  /* current file name */
    int            line;  /* current line */
    int            depth; /* include depth */
    tg_str_t       value; /* the current key's value (valid during set) */
    tg_str_t       name;  /* the current key */
    void          *ctx;   /* current section's struct */
    tg_command_t  *cmds;  /* current section's commands */
    tg_module_t   *module;
    tg_array_t    *seen;  /* keys seen in the current section (dup check) */
    tg_array_t    *files; /* every file read (for -T): tg_str_t paths */
    char           error[TG_CONF_ERRLEN];
    unsigned       failed:1;
};

/*
 * Reads path (relative to the cycle prefix unless absolute) into
 * cf->cycle. TG_OK, or TG_ERROR with cf->error filled.
 */
int tg_conf_parse_file(tg_conf_t *cf, const char *path);

/* Records "FILE:LINE: message" as the first error; returns TG_ERROR. */
int tg_conf_error(tg_conf_t *cf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Whether key, read in [section] (NULL: before any section header, as in
 * an included file), names a TG_CONF_SECRET command; with no section
 * known, a secret command of that name in any module counts. For -T,
 * which prints the files read with such values replaced.
 */
int tg_conf_secret(const tg_str_t *section, const tg_str_t *key);

/* Joins prefix and a relative path into a pool C string. */
char *tg_conf_full_path(tg_pool_t *pool, const char *prefix, tg_str_t *path);

/* Gives a setting its default when the file left it unset. */
#define tg_conf_default(v, d)                                                  \
    do {                                                                       \
        if ((v) == TG_CONF_UNSET) {                                            \
            (v) = (d);                                                         \
        }                                                                      \
    } while (0)
#define tg_conf_default_str(s, d)                                              \
    do {                                                                       \
        if ((s).data == NULL) {                                                \
            tg_str_set(&(s), d);                                               \
        }                                                                      \
    } while (0)


/* Generic setters; offset is into the section's struct. */
char *tg_conf_set_str(tg_conf_t *cf, tg_command_t *cmd, void *conf);
char *tg_conf_set_flag(tg_conf_t *cf, tg_command_t *cmd, void *conf); /* int */
char *tg_conf_set_num(tg_conf_t *cf, tg_command_t *cmd, void *conf);  /* int64 */
char *tg_conf_set_msec(tg_conf_t *cf, tg_command_t *cmd, void *conf); /* int64 */
char *tg_conf_set_size(tg_conf_t *cf, tg_command_t *cmd, void *conf); /* int64 */
char *tg_conf_add_str(tg_conf_t *cf, tg_command_t *cmd, void *conf);  /* tg_array_t* of tg_str_t */
char *tg_conf_add_keyval(tg_conf_t *cf, tg_command_t *cmd, void *conf); /* "k v" or "k=v" */

#endif /* _TG_CONF_H_INCLUDED_ */
