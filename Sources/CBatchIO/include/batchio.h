#ifndef MERIDIAN_BATCHIO_H
#define MERIDIAN_BATCHIO_H
#include <stddef.h>

/*
 * Batched UDP for the data plane (recvmmsg/sendmmsg, as gdnsd and Knot do it): one batch per
 * thread holds `count` receive buffers with their peers and `count` send buffers, all
 * allocated once. The calls below do no allocation.
 */
typedef struct meridian_udp_batch meridian_udp_batch;

/// A batch of `count` datagrams of at most `in_size` octets in and `out_size` out; NULL on failure.
meridian_udp_batch *meridian_udp_batch_new(unsigned count, unsigned in_size, unsigned out_size);
void meridian_udp_batch_free(meridian_udp_batch *b);

/// A UDP socket bound to `host` (numeric IPv4 or IPv6) and `port` with SO_REUSEPORT, a receive
/// timeout of `timeout_ms` (so a thread can see it should stop) and `rcvbuf` octets of receive
/// buffer (best effort). Returns the descriptor, or -errno.
int meridian_udp_socket(const char *host, int port, int timeout_ms, int rcvbuf);

/// Receives up to `count` datagrams (waits for the first, up to the socket's timeout). Returns
/// how many, 0 on timeout or interruption, or -errno.
int meridian_udp_batch_recv(meridian_udp_batch *b, int fd);

/// Datagram `i` of the last receive: its octets and length; `truncated` is set when it was
/// longer than the buffer.
const unsigned char *meridian_udp_batch_in(const meridian_udp_batch *b, unsigned i, size_t *length, int *truncated);

/// The sender of datagram `i` as 16 octets (IPv4 in the first 4, IPv4-mapped IPv6 turned into
/// IPv4); returns 4 or 6, or 0 for another family.
int meridian_udp_batch_peer(const meridian_udp_batch *b, unsigned i, unsigned char address[16]);
/// The source port of datagram `i` (host order), 0 when the family is unknown.
unsigned short meridian_udp_batch_peer_port(const meridian_udp_batch *b, unsigned i);

/// Send buffer `slot` (`out_size` octets).
unsigned char *meridian_udp_batch_out(meridian_udp_batch *b, unsigned slot);

/// Queues send buffer `slot`, `length` octets, to the sender of received datagram `i`.
void meridian_udp_batch_queue(meridian_udp_batch *b, unsigned slot, unsigned i, size_t length);

/// Sends the `n` queued datagrams (sendmmsg, again for what a partial send left). Returns how
/// many were sent; a datagram the kernel refuses (an unreachable peer) is skipped.
int meridian_udp_batch_send(meridian_udp_batch *b, int fd, unsigned n);
/// Names the calling thread (as `ps -L` and /proc show it); at most 15 characters are kept.
void meridian_set_thread_name(const char *name);
#endif
