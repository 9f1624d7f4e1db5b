/*
 * check-floor: the least CPU a TCP connect check can cost on this machine, for comparison
 * with Meridian's engine in Tools/bench-checks.py. Not part of Meridian (whose sockets are all
 * SwiftNIO); a measuring stick, like the reference servers.
 *
 *   check-floor serve HOST PORT           accept and close, as fast as possible, until killed
 *   check-floor check HOST PORT RATE SECS  RATE connects a second (nonblocking, epoll, close
 *                                          with a reset as Meridian does), then print
 *                                          "checks ok failed cpu_seconds"
 *
 * Built by bench-checks.py with `cc -O2`.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int serve(struct sockaddr_in *a) {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (struct sockaddr *)a, sizeof *a) < 0 || listen(l, 4096) < 0) { perror("bind/listen"); return 1; }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    for (;;) {
        struct epoll_event out[8];
        if (epoll_wait(ep, out, 8, -1) < 0 && errno != EINTR) return 1;
        int c;
        while ((c = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) close(c);
    }
}

static int check(struct sockaddr_in *a, int rate, double secs) {
    int ep = epoll_create1(0);
    long ok = 0, failed = 0, started = 0;
    double t0 = now(), end = t0 + secs;
    struct linger nolinger = {1, 0};
    while (now() < end) {
        /* Start every connect that is due (evenly spread), then wait up to 1 ms for completions. */
        long due = (long)((now() - t0) * rate);
        for (; started < due; started++) {
            int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (s < 0) { failed++; continue; }
            if (connect(s, (struct sockaddr *)a, sizeof *a) == 0) {
                ok++;
                setsockopt(s, SOL_SOCKET, SO_LINGER, &nolinger, sizeof nolinger);
                close(s);
                continue;
            }
            if (errno != EINPROGRESS) { failed++; close(s); continue; }
            struct epoll_event ev = {.events = EPOLLOUT, .data.fd = s};
            epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
        }
        struct epoll_event out[256];
        int n = epoll_wait(ep, out, 256, 1);
        for (int i = 0; i < n; i++) {
            int s = out[i].data.fd, err = 0;
            socklen_t len = sizeof err;
            getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err == 0) ok++; else failed++;
            setsockopt(s, SOL_SOCKET, SO_LINGER, &nolinger, sizeof nolinger);
            close(s); /* also leaves the epoll set */
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    printf("%ld %ld %ld %.3f\n", started, ok, failed, cpu);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: check-floor serve HOST PORT | check HOST PORT RATE SECS\n"); return 2; }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
    if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) { fprintf(stderr, "bad address\n"); return 2; }
    if (!strcmp(argv[1], "serve")) return serve(&a);
    if (!strcmp(argv[1], "check") && argc == 6) return check(&a, atoi(argv[4]), atof(argv[5]));
    fprintf(stderr, "usage: check-floor serve HOST PORT | check HOST PORT RATE SECS\n");
    return 2;
}
