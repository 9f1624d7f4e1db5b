#define _GNU_SOURCE
#include "zonestream.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ssize_t zs_read(void *cookie, char *out, size_t size) {
    meridian_zone_stream *s = cookie;
    if (s->fd < 0) {
        size_t left = s->srclen - s->total;
        size_t n = size < left ? size : left;
        memcpy(out, s->src + s->total, n);
        s->total += n;
        return (ssize_t)n;
    }
    ssize_t n;
    do { n = read(s->fd, out, size); } while (n < 0 && errno == EINTR);
    if (n < 0) { s->error = errno; return -1; }
    if (n == 0) return 0;
    if (s->filled + (size_t)n > s->cap) {
        size_t cap = s->cap ? s->cap : 1 << 16;
        while (cap < s->filled + (size_t)n) {
            if (cap > ((size_t)-1) / 2) { s->error = ENOMEM; return -1; }
            cap *= 2;
        }
        unsigned char *grown = realloc(s->buf, cap);
        if (!grown) { s->error = ENOMEM; return -1; }
        s->buf = grown;
        s->cap = cap;
    }
    memcpy(s->buf + s->filled, out, (size_t)n);
    s->filled += (size_t)n;
    s->total += (size_t)n;
    return n;
}

/* ftell asks for the position with (0, SEEK_CUR) and subtracts what stdio holds unread. */
static int zs_seek(void *cookie, off64_t *offset, int whence) {
    meridian_zone_stream *s = cookie;
    if (whence == SEEK_CUR && *offset == 0) {
        *offset = (off64_t)s->total;
        return 0;
    }
    errno = ESPIPE;
    return -1;
}

static FILE *zs_open(meridian_zone_stream *s) {
    cookie_io_functions_t io = { .read = zs_read, .write = NULL, .seek = zs_seek, .close = NULL };
    return fopencookie(s, "r", io);
}

FILE *meridian_zone_stream_open_fd(meridian_zone_stream *s, int fd) {
    memset(s, 0, sizeof *s);
    s->fd = fd;
    return zs_open(s);
}

FILE *meridian_zone_stream_open_memory(meridian_zone_stream *s, const unsigned char *text, size_t len) {
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->src = text;
    s->srclen = len;
    return zs_open(s);
}

const unsigned char *meridian_zone_stream_bytes(const meridian_zone_stream *s, size_t from, size_t to) {
    if (from > to) return NULL;
    if (s->fd < 0) return to <= s->srclen ? s->src + from : NULL;
    if (from < s->base || to > s->base + s->filled) return NULL;
    return s->buf + (from - s->base);
}

void meridian_zone_stream_discard(meridian_zone_stream *s, size_t before) {
    if (s->fd < 0 || before <= s->base) return;
    size_t drop = before - s->base;
    if (drop > s->filled) drop = s->filled;
    /* Move only when the dropped part is large, so lexing stays linear. */
    if (drop < (1 << 20) && drop < s->filled / 2) return;
    memmove(s->buf, s->buf + drop, s->filled - drop);
    s->filled -= drop;
    s->base += drop;
}

void meridian_zone_stream_release(meridian_zone_stream *s) {
    free(s->buf);
    s->buf = NULL;
    s->cap = s->filled = 0;
}
