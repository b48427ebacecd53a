#ifndef BLCONVERT_COPENBLAS_SHIM_H
#define BLCONVERT_COPENBLAS_SHIM_H
#include <cblas.h>

/* OpenBLAS's pthread server (not declared by cblas.h). Its worker threads start with the library
 * and, whenever they have no job, spin on sched_yield for 2^28 TSC cycles (about 0.1 s) before
 * sleeping: CPU time taken from a process that runs its own threads around single-threaded
 * calls. Weak, so an OpenBLAS built without the server (OpenMP or serial) still links. */
extern int blas_thread_shutdown_(void) __attribute__((weak));
extern int blas_thread_init(void) __attribute__((weak));
extern int blas_server_avail __attribute__((weak));  /* 1 while the threads run */

/* Joins the server's threads; 1 when there were threads to stop, 0 otherwise. */
static inline int blconvert_openblas_stop_server(void) {
    if (!blas_thread_shutdown_ || !&blas_server_avail || !blas_server_avail) return 0;
    blas_thread_shutdown_();
    return 1;
}

/* Starts the server again after blconvert_openblas_stop_server (before raising the thread count:
 * openblas_set_num_threads on a stopped server would start some threads twice). */
static inline void blconvert_openblas_start_server(void) {
    if (blas_thread_init && &blas_server_avail && !blas_server_avail) blas_thread_init();
}

/* -1 without the server (not this OpenBLAS build), else whether its threads are running. */
static inline int blconvert_openblas_server_running(void) {
    if (!blas_thread_shutdown_ || !&blas_server_avail) return -1;
    return blas_server_avail != 0;
}
#endif
