#ifndef MERIDIAN_CCURL_SHIM_H
#define MERIDIAN_CCURL_SHIM_H
#include <curl/curl.h>

/*
 * curl_easy_setopt, curl_multi_setopt and curl_easy_getinfo are variadic and cannot be called
 * from Swift. These typed wrappers cover the argument kinds libcurl takes: long, pointer
 * (strings, lists, user data), curl_off_t and function pointers.
 */
static inline CURLcode meridian_curl_easy_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode meridian_curl_easy_setopt_ptr(CURL *h, CURLoption o, const void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode meridian_curl_easy_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
typedef size_t (*meridian_curl_write_cb)(char *ptr, size_t size, size_t nmemb, void *userdata);
static inline CURLcode meridian_curl_easy_setopt_write_cb(CURL *h, CURLoption o, meridian_curl_write_cb cb) { return curl_easy_setopt(h, o, cb); }
static inline CURLMcode meridian_curl_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }
static inline CURLMcode meridian_curl_multi_setopt_ptr(CURLM *m, CURLMoption o, const void *v) { return curl_multi_setopt(m, o, v); }
typedef int (*meridian_curl_socket_cb)(CURL *e, curl_socket_t s, int what, void *userp, void *socketp);
typedef int (*meridian_curl_timer_cb)(CURLM *m, long timeout_ms, void *userp);
static inline CURLMcode meridian_curl_multi_setopt_socket_cb(CURLM *m, meridian_curl_socket_cb cb) { return curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, cb); }
static inline CURLMcode meridian_curl_multi_setopt_timer_cb(CURLM *m, meridian_curl_timer_cb cb) { return curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, cb); }
static inline CURLcode meridian_curl_easy_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode meridian_curl_easy_getinfo_ptr(CURL *h, CURLINFO i, void **v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode meridian_curl_easy_getinfo_double(CURL *h, CURLINFO i, double *v) { return curl_easy_getinfo(h, i, v); }

/// Version string of the linked libcurl.
static inline const char *meridian_curl_version(void) { return curl_version(); }
#endif
