#ifndef MERIDIAN_TCPPROBE_H
#define MERIDIAN_TCPPROBE_H
#include <stdint.h>
#include <sys/socket.h>

/*
 * TCP connect checks on one thread with epoll: a nonblocking connect, a wait for it to finish
 * or time out, and a close with a reset (SO_LINGER 0, as HAProxy's checks do). Requests are
 * handed over in batches (one lock and one eventfd write per batch) and results come back in
 * batches through a callback on the engine's thread.
 */
typedef struct meridian_tcp_prober meridian_tcp_prober;

typedef struct {
    uint64_t id;
    /// 0 when the connection was established, else the errno (ETIMEDOUT at the timeout).
    int error;
} meridian_tcp_result;

typedef struct {
    uint64_t id;
    struct sockaddr_storage address;
    socklen_t length;
    int timeout_ms;
} meridian_tcp_request;

typedef void (*meridian_tcp_done)(void *context, const meridian_tcp_result *results, int count);

/// NULL when epoll or eventfd cannot be made.
meridian_tcp_prober *meridian_tcp_prober_new(void);
void meridian_tcp_prober_free(meridian_tcp_prober *p);

/// Fills `r->address` from `family` 4 or 6 and 16 octets of address, and `port`.
void meridian_tcp_request_set(meridian_tcp_request *r, uint64_t id, int family, const unsigned char address[16], int port, int timeout_ms);

/// Queues `count` requests (any thread); 0, or -1 when out of memory.
int meridian_tcp_prober_submit(meridian_tcp_prober *p, const meridian_tcp_request *requests, int count);

/// Runs the engine on the calling thread until `meridian_tcp_prober_stop`; `done` gets each
/// batch of results. Requests still running at the stop are reported with ECANCELED.
void meridian_tcp_prober_run(meridian_tcp_prober *p, meridian_tcp_done done, void *context);
void meridian_tcp_prober_stop(meridian_tcp_prober *p);
/// Checks of `family` (4 or 6) leave from `address` (bound before connecting, port chosen at
/// connect time); call before the first submit. Returns 0, or -1 for a bad family.
int meridian_tcp_prober_set_source(meridian_tcp_prober *p, int family, const unsigned char address[16]);
#endif
