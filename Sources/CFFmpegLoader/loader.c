// Run-time loading of FFmpeg's libraries (see include/ffmpeg_loader.h).
#define _GNU_SOURCE
#include "ffmpeg_loader.h"

// The C library first, with its usual visibility; then FFmpeg's declarations hidden, so that the
// trampolines defined below stay inside the executable (a loaded FFmpeg library never binds to them).
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#pragma GCC visibility push(hidden)
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/display.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>
#include <libavutil/mathematics.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#ifdef __APPLE__
#define FF_SONAME(lib, major) "lib" lib "." AV_STRINGIFY(major) ".dylib"
#else
#define FF_SONAME(lib, major) "lib" lib ".so." AV_STRINGIFY(major)
#endif

// Dependencies first: each library finds the ones it needs already loaded under their sonames.
static const char *const sonames[4] = {
    FF_SONAME("avutil", LIBAVUTIL_VERSION_MAJOR), FF_SONAME("swscale", LIBSWSCALE_VERSION_MAJOR),
    FF_SONAME("avcodec", LIBAVCODEC_VERSION_MAJOR), FF_SONAME("avformat", LIBAVFORMAT_VERSION_MAJOR)};
static void *handles[4];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_int loaded;  // 1 once every pointer below is set (release / acquire)
static char failure[1024];

// One pointer per function, filled by load().
#define FF_FUNCTION(ret, name, params, args) static __typeof__(&name) p_##name;
#define FF_VOID_FUNCTION(name, params, args) static __typeof__(&name) p_##name;
#include "loader_functions.h"
#undef FF_FUNCTION
#undef FF_VOID_FUNCTION

static void *find(const char *name) {
    for (int i = 3; i >= 0; i--) {
        void *p = dlsym(handles[i], name);
        if (p) return p;
    }
    return NULL;
}

static void load(void) {
    const char *dir = getenv("BLCONVERT_FFMPEG_DIR");
    for (int i = 0; i < 4; i++) {
        char path[4096];
        if (dir && *dir) snprintf(path, sizeof path, "%s/%s", dir, sonames[i]);
        else snprintf(path, sizeof path, "%s", sonames[i]);
        handles[i] = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!handles[i]) {
            const char *why = dlerror();
            snprintf(failure, sizeof failure,
                     "video input needs FFmpeg's shared libraries %s, %s, %s and %s (FFmpeg 5.1), which did not "
                     "load: %s. Install them (Debian 12: apt-get install libavformat59 libavcodec59 libswscale6 "
                     "libavutil57) or set BLCONVERT_FFMPEG_DIR to the directory that holds them",
                     sonames[3], sonames[2], sonames[1], sonames[0], why ? why : path);
            return;
        }
    }
#define FF_FUNCTION(ret, name, params, args)                                                         \
    if (!(p_##name = (__typeof__(&name))find(#name))) {                                              \
        snprintf(failure, sizeof failure, "FFmpeg's libraries (%s ...) lack the function %s", sonames[3], #name); \
        return;                                                                                       \
    }
#define FF_VOID_FUNCTION(name, params, args) FF_FUNCTION(void, name, params, args)
#include "loader_functions.h"
#undef FF_FUNCTION
#undef FF_VOID_FUNCTION
    atomic_store_explicit(&loaded, 1, memory_order_release);
}

int blv_ffmpeg_load(void) {
    pthread_once(&once, load);
    return atomic_load_explicit(&loaded, memory_order_acquire) ? 0 : -1;
}

const char *blv_ffmpeg_load_error(void) {
    return blv_ffmpeg_load() == 0 ? "" : failure;
}

// A call before a successful blv_ffmpeg_load() is a bug in the caller (every entry point of
// BLVideo loads first and throws on failure): say so and stop, rather than jump to NULL.
static void require(const char *name) {
    if (blv_ffmpeg_load() == 0) return;
    fprintf(stderr, "blconvert: %s called without FFmpeg's libraries: %s\n", name, failure);
    abort();
}

// The trampolines, with the prototypes of FFmpeg's headers.
#define FF_FUNCTION(ret, name, params, args) \
    ret name params {                        \
        if (!atomic_load_explicit(&loaded, memory_order_acquire)) require(#name); \
        return p_##name args;                \
    }
#define FF_VOID_FUNCTION(name, params, args) \
    void name params {                       \
        if (!atomic_load_explicit(&loaded, memory_order_acquire)) require(#name); \
        p_##name args;                       \
    }
#include "loader_functions.h"
#pragma GCC visibility pop
