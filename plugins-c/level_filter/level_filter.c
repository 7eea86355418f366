/*
 * level_filter: a Sluice plugin written in freestanding C (no libc), speaking plugin
 * ABI v1 as docs/plugin-abi.md describes it. It exists to prove that the ABI can be
 * implemented from the document alone, without the Rust SDK.
 *
 * Config (MessagePack map, from the transform's YAML `config:` block):
 *     min_level: WARN        # TRACE < DEBUG < INFO < WARN < ERROR; default INFO
 *
 * For each batch it drops the records whose string field `level` ranks below
 * `min_level`, keeps every other record (no `level`, a non-string `level`, or a level
 * name it does not know) byte for byte, and reports how many it dropped as the counter
 * `c_filter_dropped_total` (only when that is more than zero). Level names are matched
 * without regard to ASCII case.
 *
 * Build: ./build.sh  (clang --target=wasm32-unknown-unknown -nostdlib ..., see there).
 * -DABI_VERSION=n makes the module declare another ABI version (used by the tests).
 */

#include <stddef.h>
#include <stdint.h>

#ifndef ABI_VERSION
#define ABI_VERSION 1
#endif

#define EXPORT(name) __attribute__((export_name(name), visibility("default")))

/* ------------------------------------------------------------------------------------ */
/* Freestanding odds and ends                                                            */
/* ------------------------------------------------------------------------------------ */

/* The compiler may emit calls to these even without libc; LLVM never turns the loop of a
 * function called memcpy/memset back into a call to itself. */
void *memcpy(void *dst, const void *src, size_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    uint8_t *d = dst;
    while (n--) *d++ = (uint8_t)c;
    return dst;
}

/* ------------------------------------------------------------------------------------ */
/* Allocator: a bump allocator that rewinds once every buffer has been freed.            */
/*                                                                                        */
/* The host frees each buffer it was given or handed back before the call returns to   */
/* its caller, so between calls nothing is live and the heap starts over. This plugin   */
/* keeps no state on the heap (min_level lives in a static), so that is safe.           */
/* ------------------------------------------------------------------------------------ */

extern uint8_t __heap_base; /* provided by wasm-ld: first byte after data and stack */

#define WASM_PAGE 65536u

static uintptr_t heap_top;   /* next free byte; 0 until first use */
static uintptr_t last_block; /* start of the most recent allocation */
static uint32_t live_blocks; /* allocations not yet freed */

static uintptr_t heap_start(void) { return ((uintptr_t)&__heap_base + 7u) & ~(uintptr_t)7u; }

EXPORT("sluice_alloc")
uint8_t *sluice_alloc(int32_t len) {
    if (len < 0) return 0;
    if (heap_top == 0) heap_top = heap_start();
    uintptr_t start = (heap_top + 7u) & ~(uintptr_t)7u;
    uintptr_t end = start + (uint32_t)len;
    if (end < start) return 0; /* wrapped past 4 GiB */
    uintptr_t have = __builtin_wasm_memory_size(0) * WASM_PAGE;
    if (end > have) {
        uintptr_t pages = (end - have + WASM_PAGE - 1) / WASM_PAGE;
        /* memory.grow returns -1 when refused, e.g. by the host's memory cap; the host
         * then sees 0 and reports out_of_memory. */
        if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) return 0;
    }
    heap_top = end;
    last_block = start;
    live_blocks++;
    return (uint8_t *)start;
}

EXPORT("sluice_free")
void sluice_free(uint8_t *ptr, int32_t len) {
    (void)len;
    if (live_blocks == 0) return; /* a double free: ignore rather than corrupt the count */
    live_blocks--;
    if (live_blocks == 0) {
        heap_top = heap_start();
    } else if ((uintptr_t)ptr == last_block) {
        heap_top = last_block; /* freeing the newest block gives its space back */
    }
}

/* ------------------------------------------------------------------------------------ */
/* MessagePack reader                                                                    */
/* ------------------------------------------------------------------------------------ */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} reader;

static size_t left(const reader *r) { return (size_t)(r->end - r->p); }

static uint32_t be16(const uint8_t *p) { return ((uint32_t)p[0] << 8) | p[1]; }
static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Reads an unsigned big-endian length of `width` bytes; 0 when truncated. */
static int read_len(reader *r, unsigned width, uint32_t *out) {
    if (left(r) < width) return 0;
    *out = width == 1 ? r->p[0] : width == 2 ? be16(r->p) : be32(r->p);
    r->p += width;
    return 1;
}

static int skip_bytes(reader *r, uint64_t n) {
    if (n > left(r)) return 0;
    r->p += n;
    return 1;
}

/* Skips exactly one value of any type, nested ones included. Iterative, so a deeply
 * nested value cannot overflow the stack: `pending` counts the values still to skip. */
static int mp_skip(reader *r) {
    uint64_t pending = 1;
    while (pending > 0) {
        /* every value takes at least one byte, so more pending values than bytes left
         * means the input lies about its lengths */
        if (pending > left(r)) return 0;
        pending--;
        uint8_t m = *r->p++;
        uint32_t n;
        if (m <= 0x7f || m >= 0xe0) continue;                  /* fixint */
        if (m >= 0x80 && m <= 0x8f) { pending += 2u * (m & 0x0f); continue; } /* fixmap */
        if (m >= 0x90 && m <= 0x9f) { pending += m & 0x0f; continue; }        /* fixarray */
        if (m >= 0xa0 && m <= 0xbf) { if (!skip_bytes(r, m & 0x1f)) return 0; continue; }
        switch (m) {
        case 0xc0: case 0xc2: case 0xc3: break;                /* nil, false, true */
        case 0xc4: case 0xd9: if (!read_len(r, 1, &n) || !skip_bytes(r, n)) return 0; break;
        case 0xc5: case 0xda: if (!read_len(r, 2, &n) || !skip_bytes(r, n)) return 0; break;
        case 0xc6: case 0xdb: if (!read_len(r, 4, &n) || !skip_bytes(r, n)) return 0; break;
        case 0xc7: if (!read_len(r, 1, &n) || !skip_bytes(r, (uint64_t)n + 1)) return 0; break;
        case 0xc8: if (!read_len(r, 2, &n) || !skip_bytes(r, (uint64_t)n + 1)) return 0; break;
        case 0xc9: if (!read_len(r, 4, &n) || !skip_bytes(r, (uint64_t)n + 1)) return 0; break;
        case 0xcc: case 0xd0: if (!skip_bytes(r, 1)) return 0; break;
        case 0xcd: case 0xd1: if (!skip_bytes(r, 2)) return 0; break;
        case 0xca: case 0xce: case 0xd2: if (!skip_bytes(r, 4)) return 0; break;
        case 0xcb: case 0xcf: case 0xd3: if (!skip_bytes(r, 8)) return 0; break;
        case 0xd4: if (!skip_bytes(r, 2)) return 0; break;     /* fixext 1 (+ type) */
        case 0xd5: if (!skip_bytes(r, 3)) return 0; break;
        case 0xd6: if (!skip_bytes(r, 5)) return 0; break;
        case 0xd7: if (!skip_bytes(r, 9)) return 0; break;
        case 0xd8: if (!skip_bytes(r, 17)) return 0; break;
        case 0xdc: if (!read_len(r, 2, &n)) return 0; pending += n; break;
        case 0xdd: if (!read_len(r, 4, &n)) return 0; pending += n; break;
        case 0xde: if (!read_len(r, 2, &n)) return 0; pending += 2ull * n; break;
        case 0xdf: if (!read_len(r, 4, &n)) return 0; pending += 2ull * n; break;
        default: return 0; /* 0xc1 is never used */
        }
    }
    return 1;
}

/* If the next value is a string, consumes it and returns 1 with its bytes; otherwise
 * consumes nothing and returns 0. Returns -1 when a string header is truncated. */
static int mp_str(reader *r, const uint8_t **s, uint32_t *len) {
    if (left(r) < 1) return -1;
    uint8_t m = r->p[0];
    reader t = {r->p + 1, r->end};
    uint32_t n;
    if (m >= 0xa0 && m <= 0xbf) n = m & 0x1f;
    else if (m == 0xd9) { if (!read_len(&t, 1, &n)) return -1; }
    else if (m == 0xda) { if (!read_len(&t, 2, &n)) return -1; }
    else if (m == 0xdb) { if (!read_len(&t, 4, &n)) return -1; }
    else return 0;
    if (n > left(&t)) return -1;
    *s = t.p;
    *len = n;
    r->p = t.p + n;
    return 1;
}

/* Container headers: 1 and the element count, 0 if the next value is not one. */
static int mp_array(reader *r, uint32_t *n) {
    if (left(r) < 1) return 0;
    uint8_t m = r->p[0];
    reader t = {r->p + 1, r->end};
    if (m >= 0x90 && m <= 0x9f) *n = m & 0x0f;
    else if (m == 0xdc) { if (!read_len(&t, 2, n)) return 0; }
    else if (m == 0xdd) { if (!read_len(&t, 4, n)) return 0; }
    else return 0;
    r->p = t.p;
    return 1;
}

static int mp_map(reader *r, uint32_t *n) {
    if (left(r) < 1) return 0;
    uint8_t m = r->p[0];
    reader t = {r->p + 1, r->end};
    if (m >= 0x80 && m <= 0x8f) *n = m & 0x0f;
    else if (m == 0xde) { if (!read_len(&t, 2, n)) return 0; }
    else if (m == 0xdf) { if (!read_len(&t, 4, n)) return 0; }
    else return 0;
    r->p = t.p;
    return 1;
}

/* ------------------------------------------------------------------------------------ */
/* MessagePack writer (into a buffer sized by the caller, never overrun)                 */
/* ------------------------------------------------------------------------------------ */

typedef struct {
    uint8_t *p;
} writer;

static void w_u8(writer *w, uint8_t b) { *w->p++ = b; }
static void w_raw(writer *w, const void *src, size_t n) {
    memcpy(w->p, src, n);
    w->p += n;
}
static void w_be(writer *w, uint64_t v, unsigned width) {
    for (unsigned i = width; i-- > 0;) w_u8(w, (uint8_t)(v >> (8 * i)));
}

static void w_header(writer *w, uint32_t n, uint8_t fix, uint8_t fix_max, uint8_t m16, uint8_t m32) {
    if (n <= fix_max) w_u8(w, (uint8_t)(fix | n));
    else if (n <= 0xffff) { w_u8(w, m16); w_be(w, n, 2); }
    else { w_u8(w, m32); w_be(w, n, 4); }
}
static void w_map(writer *w, uint32_t n) { w_header(w, n, 0x80, 15, 0xde, 0xdf); }
static void w_array(writer *w, uint32_t n) { w_header(w, n, 0x90, 15, 0xdc, 0xdd); }

static void w_strn(writer *w, const void *s, uint32_t n) {
    if (n <= 31) w_u8(w, (uint8_t)(0xa0 | n));
    else if (n <= 0xff) { w_u8(w, 0xd9); w_be(w, n, 1); }
    else if (n <= 0xffff) { w_u8(w, 0xda); w_be(w, n, 2); }
    else { w_u8(w, 0xdb); w_be(w, n, 4); }
    w_raw(w, s, n);
}

static uint32_t cstrlen(const char *s) {
    uint32_t n = 0;
    while (s[n]) n++;
    return n;
}
static void w_str(writer *w, const char *s) { w_strn(w, s, cstrlen(s)); }

static void w_f64(writer *w, double v) {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    w_u8(w, 0xcb);
    w_be(w, bits, 8);
}

/* ------------------------------------------------------------------------------------ */
/* Responses                                                                              */
/* ------------------------------------------------------------------------------------ */

/* i64 result: buffer address in the high 32 bits, length in the low 32 bits. */
static int64_t pack(const uint8_t *ptr, uint32_t len) {
    return (int64_t)(((uint64_t)(uintptr_t)ptr << 32) | len);
}

/* Builds a message from up to three pieces (text, a quoted string, text). */
typedef struct {
    char buf[160];
    uint32_t n;
} msg;

static void m_add(msg *m, const char *s, uint32_t n) {
    for (uint32_t i = 0; i < n && m->n < sizeof m->buf; i++) m->buf[m->n++] = s[i];
}
static void m_cstr(msg *m, const char *s) { m_add(m, s, cstrlen(s)); }
static void m_u32(msg *m, uint32_t v) {
    char digits[10];
    int i = 0;
    do { digits[i++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (i--) m_add(m, &digits[i], 1);
}

/* {"error": head + quoted + tail}; `quoted` comes from the input, so it is sized here
 * rather than squeezed into `msg`. */
static int64_t error_response(const msg *head, const uint8_t *quoted, uint32_t qlen, const char *tail) {
    uint32_t tlen = tail ? cstrlen(tail) : 0;
    uint32_t total = head->n + qlen + tlen;
    uint8_t *buf = sluice_alloc((int32_t)(total + 16));
    if (!buf) __builtin_trap(); /* out of memory: the host reports out_of_memory */
    writer w = {buf};
    w_map(&w, 1);
    w_str(&w, "error");
    /* one string header for the three pieces */
    if (total <= 31) w_u8(&w, (uint8_t)(0xa0 | total));
    else if (total <= 0xff) { w_u8(&w, 0xd9); w_be(&w, total, 1); }
    else if (total <= 0xffff) { w_u8(&w, 0xda); w_be(&w, total, 2); }
    else { w_u8(&w, 0xdb); w_be(&w, total, 4); }
    w_raw(&w, head->buf, head->n);
    if (qlen) w_raw(&w, quoted, qlen);
    if (tlen) w_raw(&w, tail, tlen);
    return pack(buf, (uint32_t)(w.p - buf));
}

static int64_t error_text(const char *text) {
    msg m = {{0}, 0};
    m_cstr(&m, text);
    return error_response(&m, 0, 0, 0);
}

/* ------------------------------------------------------------------------------------ */
/* Levels                                                                                 */
/* ------------------------------------------------------------------------------------ */

enum { LEVEL_UNKNOWN = -1, TRACE = 0, DEBUG, INFO, WARN, ERROR };

static const char *const LEVEL_NAMES[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR"};

static int min_rank = INFO;

static uint8_t upper(uint8_t c) { return (c >= 'a' && c <= 'z') ? (uint8_t)(c - 32) : c; }

static int level_rank(const uint8_t *s, uint32_t n) {
    for (int rank = TRACE; rank <= ERROR; rank++) {
        const char *name = LEVEL_NAMES[rank];
        uint32_t len = cstrlen(name);
        if (len != n) continue;
        uint32_t i = 0;
        while (i < n && upper(s[i]) == (uint8_t)name[i]) i++;
        if (i == n) return rank;
    }
    return LEVEL_UNKNOWN;
}

static int str_eq(const uint8_t *s, uint32_t n, const char *lit) {
    uint32_t len = cstrlen(lit);
    if (len != n) return 0;
    for (uint32_t i = 0; i < n; i++)
        if (s[i] != (uint8_t)lit[i]) return 0;
    return 1;
}

/* ------------------------------------------------------------------------------------ */
/* The ABI                                                                                */
/* ------------------------------------------------------------------------------------ */

EXPORT("sluice_abi_version")
int32_t sluice_abi_version(void) { return ABI_VERSION; }

/* Config: nothing (no `config:` block), nil, or a map {min_level: str}. */
EXPORT("sluice_init")
int64_t sluice_init(const uint8_t *ptr, int32_t len) {
    min_rank = INFO;
    if (len == 0) return 0;
    reader r = {ptr, ptr + len};
    if (r.p[0] == 0xc0) return 0; /* nil: same as no config */
    uint32_t n;
    if (!mp_map(&r, &n)) return error_text("config must be a map, e.g. {min_level: WARN}");
    int rank = INFO;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *key;
        uint32_t klen;
        if (mp_str(&r, &key, &klen) != 1) return error_text("config keys must be strings");
        if (!str_eq(key, klen, "min_level")) {
            msg m = {{0}, 0};
            m_cstr(&m, "unknown config key `");
            return error_response(&m, key, klen, "` (expected min_level)");
        }
        const uint8_t *value;
        uint32_t vlen;
        if (mp_str(&r, &value, &vlen) != 1)
            return error_text("min_level must be a string: TRACE, DEBUG, INFO, WARN or ERROR");
        rank = level_rank(value, vlen);
        if (rank == LEVEL_UNKNOWN) {
            msg m = {{0}, 0};
            m_cstr(&m, "unknown min_level `");
            return error_response(&m, value, vlen, "`");
        }
    }
    min_rank = rank;
    return 0; /* the empty response: success, nothing to say */
}

/* Reads one record (a map) and everything in it. Sets *keep and returns 1, or returns 0
 * with the reason in `err` when the record is not a well-formed map with string keys. */
static int scan_record(reader *r, uint32_t index, int *keep, msg *err) {
    uint32_t n;
    if (!mp_map(r, &n)) {
        m_cstr(err, "input batch is not a MessagePack array of maps: record ");
        m_u32(err, index);
        m_cstr(err, " is not a map");
        return 0;
    }
    *keep = 1;
    int seen_level = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *key;
        uint32_t klen;
        int got = mp_str(r, &key, &klen);
        if (got < 0) goto truncated;
        if (got == 0) {
            m_cstr(err, "input batch: record ");
            m_u32(err, index);
            m_cstr(err, " has a key that is not a string");
            return 0;
        }
        if (!seen_level && str_eq(key, klen, "level")) {
            seen_level = 1;
            const uint8_t *value;
            uint32_t vlen;
            got = mp_str(r, &value, &vlen);
            if (got < 0) goto truncated;
            if (got == 1) {
                int rank = level_rank(value, vlen);
                *keep = rank == LEVEL_UNKNOWN || rank >= min_rank;
                continue;
            }
            /* a level that is not a string: keep the record, skip the value */
        }
        if (!mp_skip(r)) goto truncated;
    }
    return 1;
truncated:
    m_cstr(err, "input batch is not valid MessagePack (truncated or bad marker in record ");
    m_u32(err, index);
    m_cstr(err, ")");
    return 0;
}

EXPORT("sluice_process")
int64_t sluice_process(const uint8_t *ptr, int32_t len) {
    reader r = {ptr, ptr + len};
    uint32_t count;
    if (!mp_array(&r, &count)) return error_text("input batch is not a MessagePack array of maps");

    /* Pass 1: check every record is a well-formed map and count what goes. */
    reader first = r;
    uint32_t kept = 0, dropped = 0, kept_bytes = 0;
    for (uint32_t i = 0; i < count; i++) {
        msg err = {{0}, 0};
        const uint8_t *start = first.p;
        int keep;
        if (!scan_record(&first, i, &keep, &err)) return error_response(&err, 0, 0, 0);
        if (keep) { kept++; kept_bytes += (uint32_t)(first.p - start); }
        else dropped++;
    }
    if (first.p != first.end) return error_text("input batch has trailing bytes after its array");

    if (kept == 0 && dropped == 0) return 0; /* empty batch in, nothing out */

    /* Pass 2: write {"records": [kept maps, copied unchanged], "metrics": [...]}. */
    uint8_t *buf = sluice_alloc((int32_t)(kept_bytes + 128));
    if (!buf) __builtin_trap();
    writer w = {buf};
    w_map(&w, (kept > 0) + (dropped > 0));
    if (kept > 0) {
        w_str(&w, "records");
        w_array(&w, kept);
        for (uint32_t i = 0; i < count; i++) {
            msg err = {{0}, 0};
            const uint8_t *start = r.p;
            int keep = 1;
            scan_record(&r, i, &keep, &err); /* cannot fail: pass 1 checked every record */
            if (keep) w_raw(&w, start, (size_t)(r.p - start));
        }
    }
    if (dropped > 0) {
        w_str(&w, "metrics");
        w_array(&w, 1);
        w_map(&w, 3);
        w_str(&w, "name");
        w_str(&w, "c_filter_dropped_total");
        w_str(&w, "kind");
        w_str(&w, "counter");
        w_str(&w, "value");
        w_f64(&w, (double)dropped);
    }
    return pack(buf, (uint32_t)(w.p - buf));
}
