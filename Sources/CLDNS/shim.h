#ifndef MERIDIAN_CLDNS_SHIM_H
#define MERIDIAN_CLDNS_SHIM_H
#include <ldns/ldns.h>
#include <stdio_ext.h>

/// Version string of the linked libldns.
static inline const char *meridian_ldns_version(void) { return ldns_version(); }
/// Makes `f` skip the stream lock on every getc: libldns reads zone text a character at a
/// time, and the stream is used by one thread only.
static inline void meridian_stream_unlocked(FILE *f) { __fsetlocking(f, FSETLOCKING_BYCALLER); }
#endif
