#define _GNU_SOURCE
#include "batchio.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct meridian_udp_batch {
    unsigned count, in_size, out_size;
    unsigned char *in, *out;
    struct sockaddr_storage *peers;
    struct iovec *in_iov, *out_iov;
    struct mmsghdr *in_msgs, *out_msgs;
};

meridian_udp_batch *meridian_udp_batch_new(unsigned count, unsigned in_size, unsigned out_size) {
    if (count == 0 || count > 1024 || in_size == 0 || out_size == 0) return NULL;
    meridian_udp_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->count = count;
    b->in_size = in_size;
    b->out_size = out_size;
    b->in = malloc((size_t)count * in_size);
    b->out = malloc((size_t)count * out_size);
    b->peers = calloc(count, sizeof *b->peers);
    b->in_iov = calloc(count, sizeof *b->in_iov);
    b->out_iov = calloc(count, sizeof *b->out_iov);
    b->in_msgs = calloc(count, sizeof *b->in_msgs);
    b->out_msgs = calloc(count, sizeof *b->out_msgs);
    if (!b->in || !b->out || !b->peers || !b->in_iov || !b->out_iov || !b->in_msgs || !b->out_msgs) {
        meridian_udp_batch_free(b);
        return NULL;
    }
    return b;
}

void meridian_udp_batch_free(meridian_udp_batch *b) {
    if (!b) return;
    free(b->in); free(b->out); free(b->peers); free(b->in_iov); free(b->out_iov); free(b->in_msgs); free(b->out_msgs);
    free(b);
}

int meridian_udp_socket(const char *host, int port, int timeout_ms, int rcvbuf) {
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((unsigned short)port);
        len = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((unsigned short)port);
        len = sizeof *a6;
    } else {
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) { int e = errno; close(fd); return -e; }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) { int e = errno; close(fd); return -e; }
    return fd;
}

int meridian_udp_batch_recv(meridian_udp_batch *b, int fd) {
    for (unsigned i = 0; i < b->count; i++) {
        b->in_iov[i].iov_base = b->in + (size_t)i * b->in_size;
        b->in_iov[i].iov_len = b->in_size;
        struct msghdr *h = &b->in_msgs[i].msg_hdr;
        h->msg_name = &b->peers[i];
        h->msg_namelen = sizeof b->peers[i];
        h->msg_iov = &b->in_iov[i];
        h->msg_iovlen = 1;
        h->msg_control = NULL;
        h->msg_controllen = 0;
        h->msg_flags = 0;
        b->in_msgs[i].msg_len = 0;
    }
    /* Wait for the first datagram, then take what is already queued. */
    int n = recvmmsg(fd, b->in_msgs, b->count, MSG_WAITFORONE, NULL);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -errno;
    return n;
}

const unsigned char *meridian_udp_batch_in(const meridian_udp_batch *b, unsigned i, size_t *length, int *truncated) {
    *length = b->in_msgs[i].msg_len;
    *truncated = (b->in_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    return b->in + (size_t)i * b->in_size;
}

int meridian_udp_batch_peer(const meridian_udp_batch *b, unsigned i, unsigned char address[16]) {
    memset(address, 0, 16);
    const struct sockaddr_storage *p = &b->peers[i];
    if (p->ss_family == AF_INET) {
        memcpy(address, &((const struct sockaddr_in *)p)->sin_addr, 4);
        return 4;
    }
    if (p->ss_family == AF_INET6) {
        const unsigned char *a = (const unsigned char *)&((const struct sockaddr_in6 *)p)->sin6_addr;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
        if (memcmp(a, mapped, 12) == 0) {
            memcpy(address, a + 12, 4);
            return 4;
        }
        memcpy(address, a, 16);
        return 6;
    }
    return 0;
}

unsigned short meridian_udp_batch_peer_port(const meridian_udp_batch *b, unsigned i) {
    const struct sockaddr_storage *p = &b->peers[i];
    if (p->ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)p)->sin_port);
    if (p->ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)p)->sin6_port);
    return 0;
}

unsigned char *meridian_udp_batch_out(meridian_udp_batch *b, unsigned slot) {
    return b->out + (size_t)slot * b->out_size;
}

void meridian_udp_batch_queue(meridian_udp_batch *b, unsigned slot, unsigned i, size_t length) {
    b->out_iov[slot].iov_base = b->out + (size_t)slot * b->out_size;
    b->out_iov[slot].iov_len = length < b->out_size ? length : b->out_size;
    struct msghdr *h = &b->out_msgs[slot].msg_hdr;
    h->msg_name = &b->peers[i];
    h->msg_namelen = b->in_msgs[i].msg_hdr.msg_namelen;
    h->msg_iov = &b->out_iov[slot];
    h->msg_iovlen = 1;
    h->msg_control = NULL;
    h->msg_controllen = 0;
    h->msg_flags = 0;
}

int meridian_udp_batch_send(meridian_udp_batch *b, int fd, unsigned n) {
    unsigned done = 0;
    int sent = 0;
    while (done < n) {
        int r = sendmmsg(fd, b->out_msgs + done, n - done, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            done++; /* this datagram cannot go (an unreachable peer): skip it */
            continue;
        }
        if (r == 0) break;
        done += (unsigned)r;
        sent += r;
    }
    return sent;
}

void meridian_set_thread_name(const char *name) {
    char short_name[16];
    strncpy(short_name, name, sizeof short_name - 1);
    short_name[sizeof short_name - 1] = 0;
    pthread_setname_np(pthread_self(), short_name);
}
