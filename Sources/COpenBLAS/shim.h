#ifndef BLCONVERT_COPENBLAS_SHIM_H
#define BLCONVERT_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
