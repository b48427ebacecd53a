#ifndef BLC_SPAWN_H
#define BLC_SPAWN_H
#include <sys/types.h>

/* A pipe whose two ends are close-on-exec from the start (pipe2 on Linux; pipe + fcntl
   elsewhere, where a concurrent spawn could briefly inherit them). Returns 0 or -1 (errno). */
int blc_pipe_cloexec(int fds[2]);

/* Starts `path` with `argv` (NULL-terminated) and the caller's environment: stdin and stderr on
   /dev/null, stdout on `stdout_fd`, no other descriptor of the caller (closefrom 3 on Linux;
   elsewhere descriptors are expected to be close-on-exec). Returns 0 and sets *pid, or an errno. */
int blc_spawn_quiet(const char *path, char *const argv[], int stdout_fd, pid_t *pid);

#endif
