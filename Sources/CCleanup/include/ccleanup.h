#ifndef BLC_CLEANUP_H
#define BLC_CLEANUP_H

/*
 * Removal of in-flight temporary outputs when the process is interrupted.
 *
 * BLCore's AtomicFile / AtomicDirectory register each temporary path while it exists. The first
 * registration installs handlers for SIGINT, SIGTERM and SIGHUP (only where the disposition is
 * still the default: an ignored SIGHUP under nohup stays ignored, a host program's own handler is
 * kept). The handler removes every registered path (a directory with what is inside it), restores
 * the default action and raises the signal again, so the process ends as the signal would have
 * ended it (exit status 128 + signal number in a shell).
 *
 * The handler uses only async-signal-safe calls (unlink, unlinkat, open, getdents64, close,
 * sigaction, raise). Registered strings are never freed (a few bytes per output), so the handler
 * cannot read freed memory whatever thread it interrupts.
 */

/* Registers `path` (copied); returns 0, or -1 when the table is full (the path is then simply
   not cleaned up on a signal). */
int blc_cleanup_register(const char *path);

/* Forgets `path` (renamed into place, or removed). */
void blc_cleanup_unregister(const char *path);

/* Removes every registered path now, as the signal handler does (for tests). */
void blc_cleanup_run(void);

/* The same for the registered paths that start with `prefix` only: a test's own temporaries,
   leaving those of whatever else the process is writing meanwhile. */
void blc_cleanup_run_under(const char *prefix);

#endif
