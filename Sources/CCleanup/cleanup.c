#define _GNU_SOURCE
#include "ccleanup.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#else
#include <dirent.h>
#endif

enum { BLC_CLEANUP_SLOTS = 256, BLC_CLEANUP_DEPTH = 4 };

static const char *volatile slots[BLC_CLEANUP_SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int installed = 0;
static const int handled[] = { SIGINT, SIGTERM, SIGHUP };

/* Removes the entries of the directory open as `fd`, then nothing else (the caller removes it). */
static void remove_inside(int fd, int depth) {
#if defined(__linux__)
    char buf[4096] __attribute__((aligned(8)));
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0) return;
        int removed = 0;
        for (long off = 0; off < n;) {
            /* struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, char name[] */
            unsigned short reclen;
            memcpy(&reclen, buf + off + 16, sizeof reclen);
            unsigned char type = (unsigned char)buf[off + 18];
            const char *name = buf + off + 19;
            off += reclen;
            if (reclen == 0) return;
            if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
            if (type == 4 /* DT_DIR */) {
                if (depth < BLC_CLEANUP_DEPTH) {
                    int sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                    if (sub >= 0) { remove_inside(sub, depth + 1); close(sub); }
                }
                if (unlinkat(fd, name, AT_REMOVEDIR) == 0) removed = 1;
            } else if (unlinkat(fd, name, 0) == 0) {
                removed = 1;
            }
        }
        /* Entries were removed: read the directory again from the start. */
        if (removed) lseek(fd, 0, SEEK_SET);
    }
#else
    DIR *d = fdopendir(dup(fd));
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0))) continue;
        int sub = depth < BLC_CLEANUP_DEPTH ? openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
        if (sub >= 0) { remove_inside(sub, depth + 1); close(sub); unlinkat(fd, e->d_name, AT_REMOVEDIR); }
        else unlinkat(fd, e->d_name, 0);
    }
    closedir(d);
#endif
}

static void remove_path(const char *path) {
    if (unlink(path) == 0) return;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    remove_inside(fd, 0);
    close(fd);
    rmdir(path);
}

/// Removes the registered paths starting with `prefix` (every one when it is null).
static void run_matching(const char *prefix) {
    size_t n = prefix ? strlen(prefix) : 0;
    for (int i = 0; i < BLC_CLEANUP_SLOTS; i++) {
        const char *p = slots[i];
        if (p && (!prefix || strncmp(p, prefix, n) == 0)) remove_path(p);
    }
}

void blc_cleanup_run(void) { run_matching(NULL); }

void blc_cleanup_run_under(const char *prefix) { run_matching(prefix); }

static void on_signal(int sig) {
    blc_cleanup_run();
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
}

static void install(void) {
    for (unsigned i = 0; i < sizeof handled / sizeof handled[0]; i++) {
        struct sigaction old;
        if (sigaction(handled[i], NULL, &old) != 0) continue;
        if (old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO)) continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        for (unsigned j = 0; j < sizeof handled / sizeof handled[0]; j++) sigaddset(&sa.sa_mask, handled[j]);
        sa.sa_flags = SA_RESETHAND;
        sigaction(handled[i], &sa, NULL);
    }
}

int blc_cleanup_register(const char *path) {
    char *copy = strdup(path);
    if (!copy) return -1;
    pthread_mutex_lock(&lock);
    if (!installed) { install(); installed = 1; }
    int rc = -1;
    for (int i = 0; i < BLC_CLEANUP_SLOTS; i++) {
        if (!slots[i]) { slots[i] = copy; rc = 0; break; }
    }
    pthread_mutex_unlock(&lock);
    if (rc != 0) free(copy);
    return rc;
}

void blc_cleanup_unregister(const char *path) {
    pthread_mutex_lock(&lock);
    for (int i = 0; i < BLC_CLEANUP_SLOTS; i++) {
        const char *p = slots[i];
        if (p && strcmp(p, path) == 0) { slots[i] = NULL; break; }  /* the copy is kept: see the header */
    }
    pthread_mutex_unlock(&lock);
}
