#ifndef BLCONVERT_CFFMPEG_SHIM_H
#define BLCONVERT_CFFMPEG_SHIM_H
/*
 * FFmpeg 5.1 (libavformat 59, libavcodec 59, libswscale 6, libavutil 57) for Swift.
 *
 * Swift does not see function-like macros (AVERROR, FFERRTAG), macros built from casts or
 * compound literals (AV_NOPTS_VALUE, AV_TIME_BASE_Q, av_err2str) nor fixed-size arrays as
 * anything but tuples (AVFrame.data), so those are wrapped here as static inline functions.
 * Also here: reading an already opened file descriptor as an AVIOContext (no protocol layer,
 * so no file name is ever interpreted as a URL), a deadline for libavformat's interrupt
 * callback, and capture of libav*'s last error message per thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libswscale/swscale.h>
#include <libavutil/avutil.h>
#include <libavutil/display.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/imgutils.h>
#include <libavutil/mathematics.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>

/* ------------------------------------------------------------ constants behind macros */

static inline int64_t blv_nopts(void) { return AV_NOPTS_VALUE; }
static inline int blv_time_base(void) { return AV_TIME_BASE; }
static inline AVRational blv_time_base_q(void) { AVRational q = { 1, AV_TIME_BASE }; return q; }
static inline int blv_averror(int posix_errno) { return AVERROR(posix_errno); }
static inline int blv_error_eof(void) { return AVERROR_EOF; }
static inline int blv_error_invalid_data(void) { return AVERROR_INVALIDDATA; }
static inline int blv_error_exit(void) { return AVERROR_EXIT; }
static inline int blv_error_decoder_not_found(void) { return AVERROR_DECODER_NOT_FOUND; }
static inline int blv_error_patch_welcome(void) { return AVERROR_PATCHWELCOME; }
static inline int blv_codec_flag_qscale(void) { return AV_CODEC_FLAG_QSCALE; }
static inline int blv_qp2lambda(void) { return FF_QP2LAMBDA; }
static inline int blv_sws_param_default(void) { return SWS_PARAM_DEFAULT; }

/* av_err2str without the compound literal. */
static inline void blv_err2str(int err, char *buf, size_t size) {
    if (av_strerror(err, buf, size) < 0) snprintf(buf, size, "error %d", err);
}

/* ------------------------------------------------------------ fixed arrays as accessors */

static inline uint8_t *blv_frame_data(const AVFrame *f, int i) { return f->data[i]; }
static inline int blv_frame_linesize(const AVFrame *f, int i) { return f->linesize[i]; }
static inline int blv_pixdesc_step(const AVPixFmtDescriptor *d, int c) { return d->comp[c].step; }
static inline int blv_pixdesc_plane(const AVPixFmtDescriptor *d, int c) { return d->comp[c].plane; }
static inline int blv_pixdesc_depth(const AVPixFmtDescriptor *d, int c) { return d->comp[c].depth; }

/* The display matrix of a frame, else of its stream (nine int32, or NULL). */
static inline const int32_t *blv_frame_display_matrix(const AVFrame *f) {
    AVFrameSideData *sd = av_frame_get_side_data(f, AV_FRAME_DATA_DISPLAYMATRIX);
    return sd && sd->size >= (int)(9 * sizeof(int32_t)) ? (const int32_t *)sd->data : NULL;
}
static inline const int32_t *blv_stream_display_matrix(const AVStream *st) {
    size_t size = 0;
    const uint8_t *p = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
    return p && size >= 9 * sizeof(int32_t) ? (const int32_t *)p : NULL;
}

/* ------------------------------------------------------------ messages */

/* libav* messages are not printed. The last error-level message of a demuxer or decoder is kept
   with it (through the context's `opaque` field, which libavformat and libavcodec leave to the
   application) so that a failure can be reported in the library's own words ("moov atom not
   found"), and demuxers' errors are counted: a demuxer that meets a damaged or truncated file
   often logs and carries on, giving fewer packets. (No static storage here: a header's static
   variables are not one object once Swift imports them.) */
typedef struct {
    int errors;
    char message[256];
} blv_messages;

static inline void blv_log_callback(void *avcl, int level, const char *fmt, va_list vl) {
    if (level > AV_LOG_ERROR || !avcl) return;
    const AVClass *avc = *(const AVClass **)avcl;
    blv_messages *m = NULL;
    if (avc == avformat_get_class()) m = (blv_messages *)((AVFormatContext *)avcl)->opaque;
    else if (avc == avcodec_get_class()) m = (blv_messages *)((AVCodecContext *)avcl)->opaque;
    if (!m) return;
    char line[256];
    int print_prefix = 0;
    av_log_format_line2(avcl, level, fmt, vl, line, (int)sizeof line, &print_prefix);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = 0;
    if (n > 0) memcpy(m->message, line, n + 1);
    m->errors += 1;
}

static inline void blv_install_log_capture(void) { av_log_set_callback(blv_log_callback); }

/* ------------------------------------------------------------ input from a file descriptor */

/* Opens `path` for reading without blocking on a FIFO or device, and keeps it only when it is
   a regular file. Returns the descriptor, or -1 with *err set to errno, or to -1 when the path
   exists but is not a regular file (*mode then holds its st_mode). */
static inline int blv_open_regular(const char *path, int *err, unsigned *mode, int64_t *size) {
    *err = 0;
    *mode = 0;
    *size = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) { *err = errno; return -1; }
    struct stat st;
    if (fstat(fd, &st) != 0) { *err = errno; close(fd); return -1; }
    *mode = (unsigned)st.st_mode;
    if (!S_ISREG(st.st_mode)) { *err = -1; close(fd); return -1; }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    *size = (int64_t)st.st_size;
    return fd;
}

typedef struct {
    int fd;
    int64_t size;
    /* CLOCK_MONOTONIC seconds after which reading and libavformat's loops are interrupted;
       0 means no deadline. */
    double deadline;
    int timed_out;
} blv_input;

static inline double blv_monotonic_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int blv_input_expired(blv_input *in) {
    if (in->deadline > 0 && blv_monotonic_seconds() > in->deadline) in->timed_out = 1;
    return in->timed_out;
}

static inline int blv_input_read(void *opaque, uint8_t *buf, int size) {
    blv_input *in = (blv_input *)opaque;
    if (blv_input_expired(in)) return AVERROR_EXIT;
    for (;;) {
        ssize_t n = read(in->fd, buf, (size_t)size);
        if (n > 0) return (int)n;
        if (n == 0) return AVERROR_EOF;
        if (errno == EINTR) continue;
        return AVERROR(errno);
    }
}

static inline int64_t blv_input_seek(void *opaque, int64_t offset, int whence) {
    blv_input *in = (blv_input *)opaque;
    if (whence & AVSEEK_SIZE) return in->size;
    whence &= ~AVSEEK_FORCE;
    off_t r = lseek(in->fd, (off_t)offset, whence);
    return r < 0 ? AVERROR(errno) : (int64_t)r;
}

static inline int blv_input_interrupt(void *opaque) {
    return blv_input_expired((blv_input *)opaque);
}

/* An AVIOContext reading `in` (seekable, 32 KiB buffer as libavformat's file protocol uses),
   or NULL. Release with blv_io_free. */
static inline AVIOContext *blv_io_alloc(blv_input *in) {
    const int size = 32768;
    unsigned char *buffer = (unsigned char *)av_malloc(size);
    if (!buffer) return NULL;
    AVIOContext *pb = avio_alloc_context(buffer, size, 0, in, blv_input_read, NULL, blv_input_seek);
    if (!pb) av_free(buffer);
    return pb;
}

static inline void blv_io_free(AVIOContext **pb) {
    if (*pb) av_freep(&(*pb)->buffer);
    avio_context_free(pb);
}

/* The deadline as libavformat's interrupt callback, and `m` as the demuxer's message record. */
static inline void blv_attach_input(AVFormatContext *ctx, blv_input *in, blv_messages *m) {
    ctx->interrupt_callback.callback = blv_input_interrupt;
    ctx->interrupt_callback.opaque = in;
    ctx->opaque = m;
}

#endif
