#define _GNU_SOURCE
#include "tcpprobe.h"
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    uint64_t id;
    int64_t deadline; /* ms, monotonic */
    int heap_index;   /* position in the deadline heap, -1 when free */
} slot;

struct meridian_tcp_prober {
    int ep, wake;
    volatile int stopping;
    pthread_mutex_t lock;
    meridian_tcp_request *queue;
    int queued, queue_cap;
    slot *slots;
    int slot_cap, *free_slots, free_count;
    int *heap, heap_count; /* slot indices ordered by deadline */
    meridian_tcp_result *results;
    int result_count, result_cap;
    /* Source addresses by family (length 0: the kernel picks). */
    struct sockaddr_storage source4, source6;
    socklen_t source4_len, source6_len;
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

meridian_tcp_prober *meridian_tcp_prober_new(void) {
    meridian_tcp_prober *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->ep = epoll_create1(EPOLL_CLOEXEC);
    p->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->ep < 0 || p->wake < 0) { meridian_tcp_prober_free(p); return NULL; }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    epoll_ctl(p->ep, EPOLL_CTL_ADD, p->wake, &ev);
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

void meridian_tcp_prober_free(meridian_tcp_prober *p) {
    if (!p) return;
    if (p->ep >= 0) close(p->ep);
    if (p->wake >= 0) close(p->wake);
    free(p->queue); free(p->slots); free(p->free_slots); free(p->heap); free(p->results);
    free(p);
}

void meridian_tcp_request_set(meridian_tcp_request *r, uint64_t id, int family, const unsigned char address[16], int port, int timeout_ms) {
    memset(r, 0, sizeof *r);
    r->id = id;
    r->timeout_ms = timeout_ms;
    if (family == 6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&r->address;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        memcpy(&a->sin6_addr, address, 16);
        r->length = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&r->address;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        memcpy(&a->sin_addr, address, 4);
        r->length = sizeof *a;
    }
}

int meridian_tcp_prober_submit(meridian_tcp_prober *p, const meridian_tcp_request *requests, int count) {
    if (count <= 0) return 0;
    pthread_mutex_lock(&p->lock);
    if (p->queued + count > p->queue_cap) {
        int cap = (p->queued + count) * 2;
        meridian_tcp_request *q = realloc(p->queue, (size_t)cap * sizeof *q);
        if (!q) { pthread_mutex_unlock(&p->lock); return -1; }
        p->queue = q;
        p->queue_cap = cap;
    }
    memcpy(p->queue + p->queued, requests, (size_t)count * sizeof *requests);
    p->queued += count;
    pthread_mutex_unlock(&p->lock);
    uint64_t one = 1;
    ssize_t w = write(p->wake, &one, sizeof one);
    (void)w;
    return 0;
}

void meridian_tcp_prober_stop(meridian_tcp_prober *p) {
    p->stopping = 1;
    uint64_t one = 1;
    ssize_t w = write(p->wake, &one, sizeof one);
    (void)w;
}

/* ---- the deadline heap ---- */
static void heap_swap(meridian_tcp_prober *p, int i, int j) {
    int a = p->heap[i], b = p->heap[j];
    p->heap[i] = b; p->heap[j] = a;
    p->slots[b].heap_index = i; p->slots[a].heap_index = j;
}
static void heap_up(meridian_tcp_prober *p, int i) {
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (p->slots[p->heap[parent]].deadline <= p->slots[p->heap[i]].deadline) break;
        heap_swap(p, i, parent);
        i = parent;
    }
}
static void heap_down(meridian_tcp_prober *p, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < p->heap_count && p->slots[p->heap[l]].deadline < p->slots[p->heap[m]].deadline) m = l;
        if (r < p->heap_count && p->slots[p->heap[r]].deadline < p->slots[p->heap[m]].deadline) m = r;
        if (m == i) return;
        heap_swap(p, i, m);
        i = m;
    }
}
static void heap_remove(meridian_tcp_prober *p, int s) {
    int i = p->slots[s].heap_index;
    if (i < 0) return;
    int last = p->heap_count - 1;
    if (i != last) heap_swap(p, i, last);
    p->heap_count--;
    p->slots[s].heap_index = -1;
    if (i < p->heap_count) { heap_up(p, i); heap_down(p, i); }
}

static int grow_slots(meridian_tcp_prober *p) {
    int cap = p->slot_cap ? p->slot_cap * 2 : 1024;
    slot *s = realloc(p->slots, (size_t)cap * sizeof *s);
    if (!s) return -1;
    p->slots = s;
    int *f = realloc(p->free_slots, (size_t)cap * sizeof *f);
    if (!f) return -1;
    p->free_slots = f;
    int *h = realloc(p->heap, (size_t)cap * sizeof *h);
    if (!h) return -1;
    p->heap = h;
    for (int i = cap - 1; i >= p->slot_cap; i--) {
        p->slots[i].heap_index = -1;
        p->slots[i].fd = -1;
        p->free_slots[p->free_count++] = i;
    }
    p->slot_cap = cap;
    return 0;
}

static void result(meridian_tcp_prober *p, uint64_t id, int error) {
    if (p->result_count == p->result_cap) {
        int cap = p->result_cap ? p->result_cap * 2 : 256;
        meridian_tcp_result *r = realloc(p->results, (size_t)cap * sizeof *r);
        if (!r) return; /* out of memory: this result is lost; its check times out in the monitor */
        p->results = r;
        p->result_cap = cap;
    }
    p->results[p->result_count].id = id;
    p->results[p->result_count].error = error;
    p->result_count++;
}

static void finish(meridian_tcp_prober *p, int s, int error) {
    struct linger reset = {1, 0};
    setsockopt(p->slots[s].fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(p->slots[s].fd); /* also leaves the epoll set */
    p->slots[s].fd = -1;
    heap_remove(p, s);
    result(p, p->slots[s].id, error);
    p->free_slots[p->free_count++] = s;
}

static void start(meridian_tcp_prober *p, const meridian_tcp_request *r, int64_t now) {
    if (p->free_count == 0 && grow_slots(p) != 0) { result(p, r->id, ENOMEM); return; }
    int fd = socket(r->address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { result(p, r->id, errno); return; }
    int s = p->free_slots[--p->free_count];
    p->slots[s].fd = fd;
    p->slots[s].id = r->id;
    p->slots[s].deadline = now + (r->timeout_ms > 0 ? r->timeout_ms : 1);
    p->slots[s].heap_index = p->heap_count;
    p->heap[p->heap_count++] = s;
    heap_up(p, p->heap_count - 1);
    const struct sockaddr_storage *src = r->address.ss_family == AF_INET6 ? &p->source6 : &p->source4;
    socklen_t src_len = r->address.ss_family == AF_INET6 ? p->source6_len : p->source4_len;
    if (src_len > 0) {
        int one = 1;
        /* The port is picked at connect time, per destination: a source address does not cap checks at the ephemeral range. */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (const struct sockaddr *)src, src_len) != 0) { finish(p, s, errno); return; }
    }
    if (connect(fd, (const struct sockaddr *)&r->address, r->length) == 0) { finish(p, s, 0); return; }
    if (errno != EINPROGRESS) { finish(p, s, errno); return; }
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT, .data.u64 = (uint64_t)s};
    if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) != 0) finish(p, s, errno);
}

void meridian_tcp_prober_run(meridian_tcp_prober *p, meridian_tcp_done done, void *context) {
    meridian_tcp_request *local = NULL;
    int local_cap = 0;
    struct epoll_event events[256];
    while (!p->stopping) {
        int64_t now = now_ms();
        int timeout = -1;
        if (p->heap_count > 0) {
            int64_t d = p->slots[p->heap[0]].deadline - now;
            timeout = d < 0 ? 0 : (d > 1000 ? 1000 : (int)d);
        }
        int n = epoll_wait(p->ep, events, 256, timeout);
        now = now_ms();
        for (int i = 0; i < n; i++) {
            if (events[i].data.u64 == UINT64_MAX) {
                uint64_t v;
                ssize_t rd = read(p->wake, &v, sizeof v);
                (void)rd;
                continue;
            }
            int s = (int)events[i].data.u64;
            if (s < 0 || s >= p->slot_cap || p->slots[s].fd < 0) continue;
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(p->slots[s].fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
            finish(p, s, err);
        }
        while (p->heap_count > 0 && p->slots[p->heap[0]].deadline <= now) finish(p, p->heap[0], ETIMEDOUT);
        /* New requests, taken in one go. */
        pthread_mutex_lock(&p->lock);
        int count = p->queued;
        if (count > local_cap) {
            meridian_tcp_request *l = realloc(local, (size_t)count * sizeof *l);
            if (l) { local = l; local_cap = count; } else { count = local_cap; }
        }
        if (count > 0) {
            memcpy(local, p->queue, (size_t)count * sizeof *local);
            memmove(p->queue, p->queue + count, (size_t)(p->queued - count) * sizeof *p->queue);
            p->queued -= count;
        }
        pthread_mutex_unlock(&p->lock);
        for (int i = 0; i < count; i++) start(p, &local[i], now);
        if (p->result_count > 0) {
            done(context, p->results, p->result_count);
            p->result_count = 0;
        }
    }
    while (p->heap_count > 0) finish(p, p->heap[0], ECANCELED);
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->queued; i++) result(p, p->queue[i].id, ECANCELED);
    p->queued = 0;
    pthread_mutex_unlock(&p->lock);
    if (p->result_count > 0) done(context, p->results, p->result_count);
    p->result_count = 0;
    free(local);
}

int meridian_tcp_prober_set_source(meridian_tcp_prober *p, int family, const unsigned char address[16]) {
    if (family == 4) {
        struct sockaddr_in *a = (struct sockaddr_in *)&p->source4;
        memset(a, 0, sizeof p->source4);
        a->sin_family = AF_INET;
        memcpy(&a->sin_addr, address, 4);
        p->source4_len = sizeof *a;
        return 0;
    }
    if (family == 6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&p->source6;
        memset(a, 0, sizeof p->source6);
        a->sin6_family = AF_INET6;
        memcpy(&a->sin6_addr, address, 16);
        p->source6_len = sizeof *a;
        return 0;
    }
    return -1;
}
