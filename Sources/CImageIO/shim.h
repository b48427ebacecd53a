#ifndef BLCONVERT_CIMAGEIO_SHIM_H
#define BLCONVERT_CIMAGEIO_SHIM_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <png.h>
#include <jpeglib.h>
#include <jerror.h>

/*
 * Whole-image decoders to interleaved 8-bit RGB, as Pillow's `Image.open(...).convert("RGB")` gives.
 *
 * libpng and libjpeg report fatal errors through callbacks that must not return; here they longjmp
 * back into the C function that called setjmp, so no Swift frame is ever unwound by longjmp.
 * Every function returns one of the BLC_IMAGE_* codes and, on failure, a message in `out->message`.
 */

enum {
    BLC_IMAGE_OK = 0,
    BLC_IMAGE_CORRUPT = 1,      /* the bytes do not form a valid image */
    BLC_IMAGE_UNSUPPORTED = 2,  /* valid, but not a layout the reference pipeline can use */
    BLC_IMAGE_TOO_LARGE = 3,    /* dimensions above the caller's pixel limit */
    BLC_IMAGE_NO_MEMORY = 4
};

typedef struct {
    int width;
    int height;
    unsigned char *rgb; /* malloc'd, width * height * 3 bytes, row-major; release with blc_image_release */
    char message[256];
} blc_image;

static inline void blc_image_release(blc_image *img) {
    if (img->rgb) { free(img->rgb); img->rgb = NULL; }
}

/* ---------------------------------------------------------------- PNG */

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t pos;
    char *message; /* points into blc_image.message */
} blc_png_source;

static inline void blc_png_error(png_structp png, png_const_charp msg) {
    blc_png_source *src = (blc_png_source *)png_get_error_ptr(png);
    if (src && src->message) {
        snprintf(src->message, 256, "%s", msg ? msg : "PNG error");
    }
    png_longjmp(png, 1);
}

static inline void blc_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* ancillary problems (bad CRC in text chunks, ...) are ignored, as Pillow does */
}

static inline void blc_png_read(png_structp png, png_bytep dst, size_t n) {
    blc_png_source *src = (blc_png_source *)png_get_io_ptr(png);
    if (n > src->size - src->pos) {
        png_error(png, "unexpected end of PNG data (file truncated)");
    }
    memcpy(dst, src->data + src->pos, n);
    src->pos += n;
}

/*
 * 8-bit RGB from any PNG, matching Pillow's open + convert("RGB"):
 * palette -> its RGB entries; gray (1/2/4/8 bit) -> scaled to 8 bits and replicated;
 * alpha and tRNS are dropped (no compositing); 16-bit RGB/RGBA/gray+alpha keep the high byte
 * (Pillow's "RGB;16B"-style unpacking); 16-bit gray without alpha is clipped to 255
 * (Pillow opens it as mode I/I;16 and clips when converting). Gamma and colour profiles are ignored.
 */
static inline int blc_png_decode(const unsigned char *data, size_t size, long long max_pixels, blc_image *out) {
    out->width = 0;
    out->height = 0;
    out->rgb = NULL;
    out->message[0] = 0;
    if (size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0) {
        snprintf(out->message, sizeof out->message, "not a PNG file (bad signature)");
        return BLC_IMAGE_CORRUPT;
    }
    blc_png_source src = { data, size, 0, out->message };
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, blc_png_error, blc_png_warning);
    if (!png) {
        snprintf(out->message, sizeof out->message, "cannot create PNG reader");
        return BLC_IMAGE_NO_MEMORY;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        snprintf(out->message, sizeof out->message, "cannot create PNG reader");
        return BLC_IMAGE_NO_MEMORY;
    }
    unsigned char *volatile rgb = NULL;
    unsigned char *volatile wide = NULL;
    png_bytep *volatile rows = NULL;
    volatile int status = BLC_IMAGE_CORRUPT;
    if (setjmp(png_jmpbuf(png))) {
        free(rgb);
        free(wide);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return status;
    }
    png_set_read_fn(png, &src, blc_png_read);
    png_set_user_limits(png, 1u << 20, 1u << 20);
    png_read_info(png, info);

    png_uint_32 w = png_get_image_width(png, info);
    png_uint_32 h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info);
    int ctype = png_get_color_type(png, info);
    if (w == 0 || h == 0 || (long long)w * (long long)h > max_pixels) {
        status = BLC_IMAGE_TOO_LARGE;
        snprintf(out->message, sizeof out->message, "PNG of %ux%u pixels exceeds the limit of %lld pixels",
                 (unsigned)w, (unsigned)h, max_pixels);
        png_longjmp(png, 1);
    }
    int gray16 = (ctype == PNG_COLOR_TYPE_GRAY && depth == 16);
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16 && !gray16) png_set_strip_16(png);
    if (ctype & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_strip_alpha(png); /* alpha made from tRNS */
    if ((ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA) && !gray16) png_set_gray_to_rgb(png);
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);

    size_t rowbytes = png_get_rowbytes(png, info);
    size_t expected = gray16 ? (size_t)w * 2 : (size_t)w * 3;
    if (rowbytes != expected) {
        status = BLC_IMAGE_UNSUPPORTED;
        snprintf(out->message, sizeof out->message,
                 "PNG layout not handled (colour type %d, bit depth %d: %zu bytes per row after conversion)",
                 ctype, depth, rowbytes);
        png_longjmp(png, 1);
    }
    status = BLC_IMAGE_NO_MEMORY;
    rgb = (unsigned char *)malloc((size_t)w * h * 3);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * h);
    if (gray16) wide = (unsigned char *)malloc((size_t)w * h * 2);
    if (!rgb || !rows || (gray16 && !wide)) {
        snprintf(out->message, sizeof out->message, "out of memory for a %ux%u image", (unsigned)w, (unsigned)h);
        png_longjmp(png, 1);
    }
    status = BLC_IMAGE_CORRUPT;
    unsigned char *base = gray16 ? wide : rgb;
    for (png_uint_32 y = 0; y < h; y++) rows[y] = base + (size_t)y * expected;
    png_read_image(png, rows);
    if (gray16) {
        size_t n = (size_t)w * h;
        for (size_t i = 0; i < n; i++) {
            unsigned v = ((unsigned)wide[2 * i] << 8) | wide[2 * i + 1];
            unsigned char c = v > 255 ? 255 : (unsigned char)v;
            rgb[3 * i] = c;
            rgb[3 * i + 1] = c;
            rgb[3 * i + 2] = c;
        }
    }
    /* Trailing chunks (after IDAT) are not needed for the pixels; Pillow does not read them either. */
    free(rows);
    free(wide);
    png_destroy_read_struct(&png, &info, NULL);
    out->width = (int)w;
    out->height = (int)h;
    out->rgb = rgb;
    return BLC_IMAGE_OK;
}

/* ---------------------------------------------------------------- JPEG */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char *message;
    int truncated;
} blc_jpeg_error;

/*
 * Limits on damaged or hostile JPEGs. libjpeg recovers from corrupt data with a warning and goes
 * on, and a progressive file may hold any number of scans, each a full pass over the coefficients:
 * a few kilobytes of repeated scans take seconds per frame. Past BLC_JPEG_MAX_WARNINGS warnings
 * the file is corrupt (a real frame has none; a few are still decoded as libjpeg recovers them),
 * and a file with more than BLC_JPEG_MAX_SCANS scans is refused (encoders write at most a few
 * dozen).
 */
enum { BLC_JPEG_MAX_WARNINGS = 16, BLC_JPEG_MAX_SCANS = 100 };

typedef struct {
    struct jpeg_progress_mgr pub;
    blc_jpeg_error *err;
} blc_jpeg_progress;

static inline void blc_jpeg_progress_monitor(j_common_ptr cinfo) {
    blc_jpeg_progress *p = (blc_jpeg_progress *)cinfo->progress;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > BLC_JPEG_MAX_SCANS) {
        snprintf(p->err->message, 256, "JPEG has more than %d scans (progressive scans repeated beyond any encoder's)",
                 BLC_JPEG_MAX_SCANS);
        longjmp(p->err->jump, 1);
    }
}

static inline void blc_jpeg_error_exit(j_common_ptr cinfo) {
    blc_jpeg_error *err = (blc_jpeg_error *)cinfo->err;
    char buffer[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buffer);
    snprintf(err->message, 256, "%s", buffer);
    longjmp(err->jump, 1);
}

static inline void blc_jpeg_emit_message(j_common_ptr cinfo, int level) {
    blc_jpeg_error *err = (blc_jpeg_error *)cinfo->err;
    if (level < 0) {
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) err->truncated = 1;
        cinfo->err->num_warnings++;
        if (cinfo->err->num_warnings > BLC_JPEG_MAX_WARNINGS) {
            char buffer[JMSG_LENGTH_MAX];
            (*cinfo->err->format_message)(cinfo, buffer);
            snprintf(err->message, 256, "more than %d decoder warnings, the last: %s", BLC_JPEG_MAX_WARNINGS, buffer);
            longjmp(err->jump, 1);
        }
    }
}

static inline void blc_jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

/*
 * 8-bit RGB from a baseline or progressive JPEG with libjpeg's defaults, as Pillow decodes:
 * integer slow DCT (JDCT_ISLOW), fancy (triangle) chroma upsampling, YCbCr -> RGB by libjpeg;
 * grayscale is replicated to RGB. CMYK/YCCK are refused. A file that ends before the image does
 * is an error (Pillow raises "image file is truncated").
 */
static inline int blc_jpeg_decode(const unsigned char *data, size_t size, long long max_pixels, blc_image *out) {
    out->width = 0;
    out->height = 0;
    out->rgb = NULL;
    out->message[0] = 0;
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8) {
        snprintf(out->message, sizeof out->message, "not a JPEG file (no SOI marker)");
        return BLC_IMAGE_CORRUPT;
    }
    struct jpeg_decompress_struct cinfo;
    blc_jpeg_error err;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = blc_jpeg_error_exit;
    err.pub.emit_message = blc_jpeg_emit_message;
    err.pub.output_message = blc_jpeg_output_message;
    err.message = out->message;
    unsigned char *volatile rgb = NULL;
    volatile int status = BLC_IMAGE_CORRUPT;
    if (setjmp(err.jump)) {
        free(rgb);
        jpeg_destroy_decompress(&cinfo);
        return status;
    }
    jpeg_create_decompress(&cinfo);
    blc_jpeg_progress progress;
    memset(&progress, 0, sizeof progress);
    progress.pub.progress_monitor = blc_jpeg_progress_monitor;
    progress.err = &err;
    cinfo.progress = &progress.pub;
    jpeg_mem_src(&cinfo, (const unsigned char *)data, (unsigned long)size);
    (void)jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        status = BLC_IMAGE_UNSUPPORTED;
        snprintf(out->message, sizeof out->message, "CMYK/YCCK JPEG is not supported (frames must be RGB or grayscale)");
        longjmp(err.jump, 1);
    }
    long long w = cinfo.image_width, h = cinfo.image_height;
    if (w == 0 || h == 0 || w * h > max_pixels) {
        status = BLC_IMAGE_TOO_LARGE;
        snprintf(out->message, sizeof out->message, "JPEG of %lldx%lld pixels exceeds the limit of %lld pixels",
                 w, h, max_pixels);
        longjmp(err.jump, 1);
    }
    cinfo.out_color_space = JCS_RGB;
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    cinfo.do_block_smoothing = TRUE;
    cinfo.scale_num = 1;
    cinfo.scale_denom = 1;
    (void)jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != 3 || (long long)cinfo.output_width != w || (long long)cinfo.output_height != h) {
        status = BLC_IMAGE_UNSUPPORTED;
        snprintf(out->message, sizeof out->message, "JPEG decodes to %d components, expected 3", cinfo.output_components);
        longjmp(err.jump, 1);
    }
    status = BLC_IMAGE_NO_MEMORY;
    rgb = (unsigned char *)malloc((size_t)w * (size_t)h * 3);
    if (!rgb) {
        snprintf(out->message, sizeof out->message, "out of memory for a %lldx%lld image", w, h);
        longjmp(err.jump, 1);
    }
    status = BLC_IMAGE_CORRUPT;
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = rgb + (size_t)cinfo.output_scanline * (size_t)w * 3;
        (void)jpeg_read_scanlines(&cinfo, &row, 1);
        if (err.truncated) {
            snprintf(out->message, sizeof out->message, "JPEG data ends before the image does (file truncated)");
            longjmp(err.jump, 1);
        }
    }
    (void)jpeg_finish_decompress(&cinfo);
    if (err.truncated) {
        snprintf(out->message, sizeof out->message, "JPEG data ends before the image does (file truncated)");
        longjmp(err.jump, 1);
    }
    jpeg_destroy_decompress(&cinfo);
    out->width = (int)w;
    out->height = (int)h;
    out->rgb = rgb;
    return BLC_IMAGE_OK;
}

#endif
