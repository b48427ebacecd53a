#ifndef BLCONVERT_CGEMM_H
#define BLCONVERT_CGEMM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// The convolution GEMM of blconvert (x86-64 with AVX-512; every entry point reports "not
// available" elsewhere, and the callers then use BLAS):
//
//     out[m, n] = act(sum_k A[m, k] * B[k, n] + bias[m] + residual[m, n])
//
// A (the weights) is packed once into panels of CGEMM_MR rows by depth slices of `kc`
// (`cgemm_pack_a`); B is read straight from an NCHW image through a convolution geometry
// (`cgemm_src`: an implicit im2col, no column buffer) or given already packed, and packed into
// CGEMM_NR-wide panels per call; the result goes straight to an NCHW output (`cgemm_dst`) with
// bias, residual and ReLU applied in the microkernel's last store. bf16 variants use
// AVX512_BF16 `vdpbf16ps`: A and B rounded to bfloat16 (round to nearest even), float32 sums.

enum { CGEMM_MR = 8, CGEMM_NR = 48 };

/// 1 when this CPU runs the float32 kernels (AVX-512 F, VL, BW, DQ), 0 otherwise.
int cgemm_available(void);
/// 1 when this CPU also runs the bfloat16 kernels (AVX512_BF16), 0 otherwise.
int cgemm_bf16_available(void);
/// 1 when the bfloat16 GEMM runs on AMX tiles (`tdpbf16ps`): the CPU has AMX-TILE and AMX-BF16,
/// the kernel granted the tile state, and `BLCONVERT_AMX` is not `off` (read once). Fixed for
/// the process: `cgemm_pack_a_bf16` packs A in the layout the kernels it selects read.
int cgemm_amx_available(void);

/// Cache-derived blocking, chosen once (CPUID leaf 0x8000001D / 4; sysconf otherwise).
typedef struct {
    long l1d_bytes, l2_bytes;
    /// Depth slice of the float32 kernels and of the bfloat16 kernels (even).
    long kc, kc_bf16;
    /// Rows of A and columns of B per block (multiples of MR / NR).
    long mc, nc;
} cgemm_blocking;

/// The blocking in use (detected on first call).
cgemm_blocking cgemm_get_blocking(void);
/// Replaces the blocking (benchmarks and tests; values are rounded to valid ones). Weights
/// packed before keep their own `kc`.
void cgemm_set_blocking(long kc, long kc_bf16, long mc, long nc);

/// Whether B packing prefetches the sources of the panels ahead (benchmarks; 0 turns it off).
void cgemm_set_prefetch(long channels);

/// Whether 1x1 convolutions of one frame read B in place instead of packing it (benchmarks).
void cgemm_set_direct(int on);

/// Which convolutions read B from zero-padded copies of the input's rows (split into phases for
/// stride 2) instead of packing it (see gemm.c, "Direct convolution"): 0 none, 1 those
/// few-channel layers where it pays (the default), 2 every one it can (tests and benchmarks).
/// Pointwise convolutions have their own in-place path.
void cgemm_set_direct_conv(int mode);

/// Floats of a packed float32 A [M, K] (`M` padded to MR).
long cgemm_packed_a_floats(long M, long K);
/// 16-bit values of a packed bfloat16 A [M, K] (`M` padded to MR, each depth slice to even).
long cgemm_packed_a_bf16_count(long M, long K, long kc);
/// Packs A [M, K] (row stride lda) with depth slice kc: slice s (k0 = s*kc, kcs = min(kc, K-k0))
/// starts at k0 * Mpad; within it, panel p holds rows p*MR.. as [kcs][MR]; rows >= M are zero.
void cgemm_pack_a(long M, long K, const float *A, long lda, long kc, float *Ap);
/// The same in bfloat16 pairs: slice s starts at Mpad * (sum of the earlier slices' even
/// depths); panel p holds [ceil(kcs/2)][MR][2]; odd tails and rows >= M are zero.
void cgemm_pack_a_bf16(long M, long K, const float *A, long lda, long kc, uint16_t *Ap);

/// Where B comes from: columns n of a tile of a convolution,
///     fi = n / (rows*OW), p = n % (rows*OW), y = r0 + p / OW, xo = p % OW,
/// rows k = (c*kh + i)*kw + j:
///     B[k, n] = x[((f0 + fi)*C + c)*H*W + (y*sh - ph + i)*W + xo*sw - pw + j]  (0 outside the image)
/// A row-major matrix [K, N] with leading dimension ld is C = K, H = 1, W = ld, OW = N,
/// rows = 1, fcount = 1, a 1x1 kernel with stride 1 and no padding.
typedef struct {
    const float *x;
    long C, H, W;
    long kh, kw, sh, sw, ph, pw;
    long OW;
    long f0, fcount;
    long r0, rows;
} cgemm_src;

/// Where results go: column n (fi, p as above) of row m is
///     y[(f0 + fi)*fstride + m*mstride + col0 + p],
/// likewise residual (same strides) when not null; bias[m] when not null; ReLU when relu.
/// A row-major matrix C with leading dimension ldc: fstride 0, mstride ldc, col0 0.
typedef struct {
    float *y;
    const float *residual;
    const float *bias;
    long fstride, mstride, col0;
    int relu;
} cgemm_dst;

/// Output rows m0..<m1 (m0 a multiple of MR) of a tile, single-threaded, with A packed by
/// `cgemm_pack_a` (M padded rows `Mpad`, depth slice `kc`). Returns 0, or -1 when the kernel is
/// unavailable or a pack buffer cannot be allocated (nothing written then).
int cgemm_conv(long m0, long m1, long K, const float *Ap, long Mpad, long kc,
               const cgemm_src *src, const cgemm_dst *dst);
/// 1 when `cgemm_conv` with these arguments (any rows of A packed with `Mpad` rows and depth
/// slice `kc`) runs the direct kernel (B not packed, see `cgemm_set_direct_conv`), 0 when it
/// packs B.
int cgemm_conv_is_direct(long Mpad, long kc, const cgemm_src *src);
/// The same with bfloat16 operands (A packed by `cgemm_pack_a_bf16`).
int cgemm_conv_bf16(long m0, long m1, long K, const uint16_t *Ap, long Mpad, long kc,
                    const cgemm_src *src, const cgemm_dst *dst);

/// bfloat16 weights for `cgemm_conv_bf16_direct`: A [M, C*kh*kw] (row-major, taps (c, i, j))
/// with its depth reordered to channel pairs, ((q*kh + i)*kw + j)*2 + h = channel 2q + h at tap
/// (i, j) (a channel past C zero), then packed by `cgemm_pack_a_bf16` with depth slice kc (even).
/// Returns 0, or -1 when unavailable or out of memory.
long cgemm_packed_a_bf16_pairs_count(long M, long C, long kh, long kw, long kc);
int cgemm_pack_a_bf16_pairs(long M, long C, long kh, long kw, const float *A, long kc, uint16_t *Ap);
/// 1 when `cgemm_conv_bf16_direct` should run this geometry (the float32 direct kernel's
/// conditions, see `cgemm_set_direct_conv`), 0 when the bf16 GEMM packs B.
int cgemm_conv_bf16_is_direct(long Mpad, long kc, const cgemm_src *src);
/// `cgemm_conv_bf16` by the direct kernel: B read from bfloat16 channel pairs of the input's
/// zero-padded phase rows (see gemm.c, "Direct convolution"), A from `cgemm_pack_a_bf16_pairs`.
/// Takes any geometry with stride 1 or 2 across, kw <= 16, not pointwise; -1 otherwise.
int cgemm_conv_bf16_direct(long m0, long m1, const uint16_t *Ap, long Mpad, long kc, const cgemm_src *src,
                           const cgemm_dst *dst);

/// `cgemm_conv` with B already packed: for each depth slice s (as A's), for each NR-wide
/// panel p of the N columns (Npad = N rounded up to NR): Bp[s*kc*Npad + p*kcs*NR + k*NR + lane].
int cgemm_packed(long m0, long m1, long N, long K, const float *Ap, long Mpad, long kc,
                 const float *Bp, const cgemm_dst *dst);

/// Row-major SGEMM, beta = 0 (packs A per call into a per-thread buffer):
///     C[m, n] = sum_k A[m*lda + k] * B[k*ldb + n]
/// Returns 0, or -1 when unavailable or out of memory (C untouched).
int cgemm_sgemm(long M, long N, long K, const float *A, long lda, const float *B, long ldb,
                float *C, long ldc);

/// Winograd F(m x m, 3 x 3), stride 1, padding 1, m = 2, 4 or 6 (see winograd.c).
/// The transform matrices as doubles: B^T [m+2][m+2], G [m+2][3], A^T [m][m+2] (any may be null).
int cgemm_wino_matrices(int m, double *bt, double *g, double *at);
/// Floats of the transformed, packed weights: (m+2)^2 matrices U_xi [K, C], each packed as A.
long cgemm_wino_packed_u_floats(int m, long K, long C);
/// Transforms w [K, C, 3, 3] (U = G g G^T in double, rounded once) and packs each U_xi with depth
/// slice kc, as cgemm_pack_a would pack it, straight into Up (no intermediate).
int cgemm_wino_pack_u(int m, long K, long C, const float *w, long kc, float *Up);
/// Floats of scratch for a block of `tiles` tiles: V [(m+2)^2][C][tiles'] and M [(m+2)^2][K'][tiles'].
long cgemm_wino_scratch_floats(int m, long K, long C, long tiles);
/// Tiles t0..<t0+tcount (tile t: frame t / (TH*TW), row (t / TW) % TH, column t % TW, with
/// TH = ceil(H/m), TW = ceil(W/m)) of the convolution of x [frames, C, H, W] into out
/// [frames, K, H, W], with bias [K], residual (as out) and ReLU when given. Single-threaded.
/// Returns 0, or -1 when unavailable (nothing written then).
int cgemm_wino_conv(int m, const float *Up, long K, long C, long kc, const float *x, long H, long W,
                    long t0, long tcount, float *out, const float *bias, const float *residual, int relu,
                    float *scratch);

/// The three phases of `cgemm_wino_conv` (same block, same scratch), for running one block on
/// several threads: the input transform of channels c0..<c1; the GEMMs of positions
/// xi0..<xi1 for output rows m0..<m1 (m0 a multiple of MR); the output transform of output
/// channels k0..<k1. Each phase needs the previous one finished for the whole block.
int cgemm_wino_input(int m, long K, long C, long kc, const float *x, long H, long W, long t0, long tcount,
                     long c0, long c1, float *scratch);
int cgemm_wino_gemm(int m, const float *Up, long K, long C, long kc, long H, long W, long t0, long tcount,
                    long xi0, long xi1, long m0, long m1, float *scratch);
int cgemm_wino_output(int m, long K, long C, long H, long W, long t0, long tcount, long k0, long k1,
                      const float *scratch, float *out, const float *bias, const float *residual, int relu);

/// Measured peak of one core: GFLOP/s of independent FMA chains (float32, 16 lanes), and of
/// `vdpbf16ps` chains (0 without AVX512_BF16), best of rounds over about `seconds` of thread CPU
/// time; `*flops` (when not null) gets the floating-point operations done.
double cgemm_peak_fma_gflops(double seconds, double *flops);
double cgemm_peak_bf16_gflops(double seconds, double *flops);

#ifdef __cplusplus
}
#endif

#endif
