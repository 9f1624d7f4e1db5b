#define _GNU_SOURCE
#include "privileges.h"
#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t target_uid, target_gid, handler_result, handler_done;

/* Runs on the parked main thread: only raw, async-signal-safe system calls. */
static void switch_this_thread(int sig) {
    (void)sig;
    long r = syscall(SYS_setgroups, 0, NULL);
    if (r == 0) r = syscall(SYS_setresgid, (gid_t)target_gid, (gid_t)target_gid, (gid_t)target_gid);
    if (r == 0) r = syscall(SYS_setresuid, (uid_t)target_uid, (uid_t)target_uid, (uid_t)target_uid);
    handler_result = r == 0 ? 0 : errno;
    handler_done = 1;
}

int meridian_thread_has_uid(pid_t tid, uid_t uid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f) return 1; /* the thread is gone */
    char line[256];
    unsigned a, b, c, d;
    int ok = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "Uid: %u %u %u %u", &a, &b, &c, &d) == 4) { ok = a == uid && b == uid && c == uid && d == uid; break; }
    }
    fclose(f);
    return ok;
}

int meridian_drop_privileges(uid_t uid, gid_t gid) {
    if (setgroups(0, NULL) != 0) return errno;
    if (setresgid(gid, gid, gid) != 0) return errno;
    /* Before the uid changes: signalling the main thread needs the same uid or root. */
    pid_t main_tid = getpid();
    int main_needs = (pid_t)syscall(SYS_gettid) != main_tid && !meridian_thread_has_uid(main_tid, uid);
    if (main_needs) {
        struct sigaction sa, old;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = switch_this_thread;
        sigemptyset(&sa.sa_mask);
        int sig = SIGRTMIN + 3;
        if (sigaction(sig, &sa, &old) != 0) return errno;
        target_uid = (sig_atomic_t)uid;
        target_gid = (sig_atomic_t)gid;
        handler_done = 0;
        if (syscall(SYS_tgkill, main_tid, main_tid, sig) != 0) return errno;
        for (int i = 0; i < 2000 && !handler_done; i++) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        sigaction(sig, &old, NULL);
        if (!handler_done) return ETIMEDOUT;
        if (handler_result != 0) return (int)handler_result;
    }
    if (setresuid(uid, uid, uid) != 0) return errno;
    return 0;
}

int meridian_release_free_memory(void) { return malloc_trim(0); }
