#ifndef BLCONVERT_CGEMM_H
#define BLCONVERT_CGEMM_H

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when this CPU runs the AVX-512 SGEMM (`cgemm_sgemm`: AVX-512 F and VL), 0 otherwise.
int cgemm_available(void);

/// Single-threaded row-major SGEMM with AVX-512F, beta = 0:
///
///     C[m, n] = sum_k A[m*lda + k] * B[k*ldb + n]      (0 <= m < M, 0 <= n < N, 0 <= k < K)
///
/// Packs A and B into per-thread buffers (kept between calls, grown as needed, freed at thread exit).
/// Returns 0 on success, -1 when AVX-512 is absent or a pack buffer cannot be allocated
/// (C is then untouched and the caller should fall back to another GEMM).
int cgemm_sgemm(long M, long N, long K, const float *A, long lda, const float *B, long ldb,
                float *C, long ldc);

#ifdef __cplusplus
}
#endif

#endif
