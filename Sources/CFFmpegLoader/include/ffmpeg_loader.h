#ifndef BLCONVERT_FFMPEG_LOADER_H
#define BLCONVERT_FFMPEG_LOADER_H
/*
 * FFmpeg's libraries (libavformat, libavcodec, libswscale, libavutil) loaded at run time, on the
 * first video, instead of linked: a process that never reads a video does not map them and their
 * ~130 dependencies (about 40 ms of start-up on this project's machine). The FFmpeg functions
 * blconvert calls are defined here as trampolines (hidden, so never seen by the libraries) that
 * forward to the loaded ones.
 */

/* Loads the libraries once (thread-safe): 0 when they are loaded, -1 when not (then
 * blv_ffmpeg_load_error() says why). The directory in BLCONVERT_FFMPEG_DIR, when set, is where
 * they are looked for; otherwise the dynamic loader's search path. */
int blv_ffmpeg_load(void);
/* Why the load failed, or "" after a successful one. */
const char *blv_ffmpeg_load_error(void);
#endif
