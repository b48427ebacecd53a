#ifndef BLCONVERT_CZLIB_SHIM_H
#define BLCONVERT_CZLIB_SHIM_H
#include <zlib.h>

/* inflateInit2 is a macro; raw deflate streams (zip method 8) need windowBits = -MAX_WBITS. */
static inline int blc_inflate_init_raw(z_streamp strm) {
    return inflateInit2(strm, -MAX_WBITS);
}
#endif
