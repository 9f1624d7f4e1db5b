#ifndef MERIDIAN_PRIVILEGES_H
#define MERIDIAN_PRIVILEGES_H
#include <sys/types.h>

/// Switches every thread of the process to `uid`/`gid` with no supplementary groups.
/// glibc's set*id calls reach every live thread, but not the main thread once libdispatch has
/// parked it (Swift's async main ends the main thread in dispatch_main, where it only forwards
/// signals); that thread is switched from a signal handler making the raw system calls.
/// Returns 0, or an errno value.
int meridian_drop_privileges(uid_t uid, gid_t gid);

/// The real, effective and saved user ids of thread `tid` of this process agree with `uid`.
int meridian_thread_has_uid(pid_t tid, uid_t uid);
/// Returns the heap's free memory to the system (glibc malloc_trim): after a reload has freed
/// the previous configuration, which malloc would otherwise keep. Returns 1 if memory was released.
int meridian_release_free_memory(void);
#endif
