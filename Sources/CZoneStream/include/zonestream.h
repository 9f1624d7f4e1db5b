#ifndef MERIDIAN_ZONESTREAM_H
#define MERIDIAN_ZONESTREAM_H
#include <stddef.h>
#include <stdio.h>

/// A zone file read through stdio (so libldns's lexer can take it) that keeps only a window of
/// what it has read: the bytes from the start of the entry being lexed onward. A million-record
/// zone is never held whole in memory.
typedef struct meridian_zone_stream {
    int fd;                      /* -1 for memory mode */
    const unsigned char *src;    /* memory mode: the text */
    size_t srclen;
    unsigned char *buf;          /* file mode: bytes [base, base + filled) */
    size_t cap;
    size_t base;
    size_t filled;
    size_t total;                /* octets handed to stdio so far */
    int error;                   /* errno of a failed read, or 0 */
} meridian_zone_stream;

/// Opens a stream over `fd` (not closed by the stream). NULL on failure.
FILE *meridian_zone_stream_open_fd(meridian_zone_stream *s, int fd);
/// Opens a stream over `len` octets at `text`, which must outlive it. NULL on failure.
FILE *meridian_zone_stream_open_memory(meridian_zone_stream *s, const unsigned char *text, size_t len);
/// The octets at absolute offsets [from, to), or NULL if they are not in the window.
const unsigned char *meridian_zone_stream_bytes(const meridian_zone_stream *s, size_t from, size_t to);
/// Lets the window drop what lies before absolute offset `before`.
void meridian_zone_stream_discard(meridian_zone_stream *s, size_t before);
/// Frees the window (after fclose).
void meridian_zone_stream_release(meridian_zone_stream *s);
#endif
