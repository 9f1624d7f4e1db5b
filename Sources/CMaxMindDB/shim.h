#ifndef MERIDIAN_CMAXMINDDB_SHIM_H
#define MERIDIAN_CMAXMINDDB_SHIM_H
#include <maxminddb.h>

/// Version string of the linked libmaxminddb.
static inline const char *meridian_mmdb_version(void) { return MMDB_lib_version(); }
#endif
