#ifndef BLCONVERT_CIMAGEIO_SHIM_H
#define BLCONVERT_CIMAGEIO_SHIM_H
#include <stdio.h>
#include <png.h>
#include <jpeglib.h>
#endif
