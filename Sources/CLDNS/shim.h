#ifndef MERIDIAN_CLDNS_SHIM_H
#define MERIDIAN_CLDNS_SHIM_H
#include <ldns/ldns.h>

/// Version string of the linked libldns.
static inline const char *meridian_ldns_version(void) { return ldns_version(); }
#endif
