// The convolution GEMM (see cgemm.h): weights packed once, B panels built straight from the
// image, bias / residual / ReLU in the microkernel's last store.
//
// Blocking (per thread; A is packed at bind time, so only B is packed here):
//   for ic in M step MC:                     rows of A (an MC x kc block of packed A: L2)
//     for jc in N step NC:                   columns
//       for pc in K step KC:                 depth slices
//         pack B[pc.., jc..] into NR-wide panels           (kc x NC, L2)
//         for each B panel (kc x NR, L1):
//           for each A panel (MR x kc): microkernel     C[MR x NR] (+)= Apanel x Bpanel
// The first depth slice stores into the output, later ones add to it, the last one also adds
// bias and residual and applies ReLU. Panels are zero-padded to full MR / NR, so only the stores
// of edge tiles are masked. KC is sized so that a B panel and an A panel stay in L1 (Zen 4:
// 32 KiB, Zen 5: 48 KiB), MC and NC so that the blocks stay in L2, from CPUID's cache sizes.
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE  // syscall(2), for the AMX permission request
#include "cgemm.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

#if defined(__x86_64__)

#define MR CGEMM_MR
#define NR CGEMM_NR
#define TARGET __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))
#define TARGET_BF16 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,fma")))
#define TARGET_AMX __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,fma,amx-tile,amx-bf16")))

static long min_l(long a, long b) { return a < b ? a : b; }
static long max_l(long a, long b) { return a > b ? a : b; }
static long round_up(long a, long b) { return (a + b - 1) / b * b; }

int cgemm_available(void) {
    static int cached = -1;
    if (cached >= 0) return cached;
    __builtin_cpu_init();
    // __builtin_cpu_supports checks that the OS saves the AVX-512 state too.
    cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
    return cached;
}

int cgemm_bf16_available(void) {
    static int cached = -1;
    if (cached >= 0) return cached;
    unsigned a = 0, b = 0, c = 0, d = 0;
    // CPUID.(EAX=7, ECX=1):EAX bit 5 is AVX512_BF16.
    cached = cgemm_available() && __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 5) & 1);
    return cached;
}

// MARK: - AMX

static int amxReady = 0;
static pthread_once_t amxOnce = PTHREAD_ONCE_INIT;

static void detect_amx(void) {
    unsigned a, b, c, d;
    if (!cgemm_bf16_available()) return;
    // CPUID.(EAX=7, ECX=0):EDX bit 22 is AMX-BF16, bit 24 AMX-TILE.
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 22) & 1) || !((d >> 24) & 1)) return;
    const char *env = getenv("BLCONVERT_AMX");
    if (env && (strcmp(env, "off") == 0 || strcmp(env, "0") == 0)) return;
#if defined(SYS_arch_prctl)
    // Linux enables the 8 KiB tile state only for processes that ask (ARCH_REQ_XCOMP_PERM for
    // XTILEDATA, feature 18); without it the first tile instruction faults.
    if (syscall(SYS_arch_prctl, 0x1023, 18) == 0) amxReady = 1;
#endif
}

int cgemm_amx_available(void) {
    pthread_once(&amxOnce, detect_amx);
    return amxReady;
}

// MARK: - Cache sizes and blocking

/// Data or unified cache size of `level` from the deterministic cache parameters leaf (AMD
/// 0x8000001D, Intel 4); 0 when the leaf is absent.
static long cpuid_cache_bytes(unsigned leaf, int level) {
    for (unsigned sub = 0; sub < 16; sub++) {
        unsigned a = 0, b = 0, c = 0, d = 0;
        if (!__get_cpuid_count(leaf, sub, &a, &b, &c, &d)) return 0;
        unsigned type = a & 31;
        if (type == 0) return 0;
        if ((int)((a >> 5) & 7) != level || (type != 1 && type != 3)) continue;
        long ways = ((b >> 22) & 1023) + 1, parts = ((b >> 12) & 1023) + 1, line = (b & 4095) + 1;
        return ways * parts * line * ((long)c + 1);
    }
    return 0;
}

static long cache_bytes(int level) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    long bytes = 0;
    __get_cpuid(0x80000000u, &a, &b, &c, &d);
    unsigned maxExt = a;
    __get_cpuid(0, &a, &b, &c, &d);
    int amd = b == 0x68747541u;  // "Auth"enticAMD
    if (amd && maxExt >= 0x8000001Du) {
        __get_cpuid(0x80000001u, &a, &b, &c, &d);
        if ((c >> 22) & 1) bytes = cpuid_cache_bytes(0x8000001Du, level);  // topology extensions
    }
    if (bytes == 0) {
        __get_cpuid(0, &a, &b, &c, &d);
        if (a >= 4) bytes = cpuid_cache_bytes(4, level);
    }
#ifdef _SC_LEVEL1_DCACHE_SIZE
    if (bytes <= 0) bytes = sysconf(level == 1 ? _SC_LEVEL1_DCACHE_SIZE : _SC_LEVEL2_CACHE_SIZE);
#endif
    if (bytes <= 0) bytes = level == 1 ? 32768 : 1048576;
    return bytes;
}

static cgemm_blocking blocking;
static long prefetchChannels;
static int directB = 1;
static pthread_once_t blockingOnce = PTHREAD_ONCE_INIT;

static void set_blocking(long kc, long kc_bf16, long mc, long nc) {
    blocking.kc = max_l(16, kc / 16 * 16);
    blocking.kc_bf16 = max_l(16, kc_bf16 / 16 * 16);
    blocking.mc = max_l(MR, mc / MR * MR);
    blocking.nc = max_l(NR, nc / NR * NR);
}

static void detect_blocking(void) {
    // Whether `pack_b_conv` prefetches the sources of the panels ahead.
    prefetchChannels = 1;
    blocking.l1d_bytes = cache_bytes(1);
    blocking.l2_bytes = cache_bytes(2);
    // Depth slice from L1: kc = L1 / 128 (Zen 4, 32 KiB: 256; Zen 5, 48 KiB: 384). An A panel
    // (MR x kc) and the current rows of the B panel stay in L1 while the B panel streams from
    // L2 (3 loads per 24 FMAs); measured on Zen 4, 256 beat 80..192 (the L1-resident sizes) by
    // 2-8% through fewer reloads of the output tile, and equalled 320.
    long kc = min_l(512, max_l(128, blocking.l1d_bytes / 128));
    // bfloat16 panels are half the bytes per depth step.
    long kcb = kc * 2;
    // MC x kc of A in about half of L2, kc x NC of B in about half.
    long half = blocking.l2_bytes / 2;
    long mc = min_l(512, max_l(64, half / (kc * 4)));
    long nc = min_l(1536, max_l(NR * 4, half / (kc * 4)));
    set_blocking(kc, kcb, mc, nc);
}

static void ensure_blocking(void) { pthread_once(&blockingOnce, detect_blocking); }

cgemm_blocking cgemm_get_blocking(void) {
    ensure_blocking();
    return blocking;
}

void cgemm_set_blocking(long kc, long kc_bf16, long mc, long nc) {
    ensure_blocking();
    set_blocking(kc, kc_bf16, mc, nc);
}

void cgemm_set_direct(int on) { directB = on; }

void cgemm_set_prefetch(long channels) {
    ensure_blocking();
    prefetchChannels = channels < 0 ? 0 : channels;
}

// MARK: - Per-thread pack buffers

// 64-byte aligned, grown on demand and freed when the thread exits (worker threads come and go,
// so plain thread-locals would leak).
typedef struct {
    float *a, *b, *phases;
    uint16_t *bh, *ae;
    void *steps;
    size_t capA, capB, capBH, capAE, capPhases, capSteps;
} PackBuffers;

static pthread_key_t packKey;
static pthread_once_t packOnce = PTHREAD_ONCE_INIT;
static int packKeyOK = 0;

static void pack_free(void *p) {
    PackBuffers *bufs = p;
    free(bufs->a);
    free(bufs->b);
    free(bufs->bh);
    free(bufs->ae);
    free(bufs->phases);
    free(bufs->steps);
    free(bufs);
}

static void pack_key_init(void) { packKeyOK = pthread_key_create(&packKey, pack_free) == 0; }

static PackBuffers *pack_buffers(void) {
    pthread_once(&packOnce, pack_key_init);
    if (!packKeyOK) return 0;
    PackBuffers *bufs = pthread_getspecific(packKey);
    if (bufs) return bufs;
    bufs = calloc(1, sizeof(PackBuffers));
    if (bufs && pthread_setspecific(packKey, bufs) != 0) {
        free(bufs);
        return 0;
    }
    return bufs;
}

static void *ensure(void **buf, size_t *cap, size_t bytes) {
    if (*cap >= bytes) return *buf;
    free(*buf);
    size_t rounded = (bytes + 63) / 64 * 64;
    *buf = aligned_alloc(64, rounded ? rounded : 64);
    *cap = *buf ? bytes : 0;
    return *buf;
}

static inline __mmask16 lanes(long n) {
    if (n >= 16) return (__mmask16)0xFFFF;
    if (n <= 0) return 0;
    return (__mmask16)((1u << n) - 1);
}

// MARK: - Packing A (weights, once)

long cgemm_packed_a_floats(long M, long K) { return round_up(M, MR) * K; }

long cgemm_packed_a_bf16_count(long M, long K, long kc) {
    long total = 0;
    for (long k0 = 0; k0 < K; k0 += kc) total += round_up(min_l(kc, K - k0), 2);
    return round_up(M, MR) * total;
}

// dst[k*8 + r] = rows[r][k] for k < 8: an 8x8 transpose through 256-bit registers.
TARGET static inline void transpose8x8(const float *const rows[8], long k, float *dst) {
    __m256 r0 = _mm256_loadu_ps(rows[0] + k), r1 = _mm256_loadu_ps(rows[1] + k);
    __m256 r2 = _mm256_loadu_ps(rows[2] + k), r3 = _mm256_loadu_ps(rows[3] + k);
    __m256 r4 = _mm256_loadu_ps(rows[4] + k), r5 = _mm256_loadu_ps(rows[5] + k);
    __m256 r6 = _mm256_loadu_ps(rows[6] + k), r7 = _mm256_loadu_ps(rows[7] + k);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(dst + 8, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(dst + 16, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(dst + 24, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(dst + 32, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(dst + 40, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(dst + 48, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(dst + 56, _mm256_permute2f128_ps(s3, s7, 0x31));
}

TARGET static void pack_a_avx(long M, long K, const float *A, long lda, long kc, float *Ap) {
    long Mpad = round_up(M, MR);
    for (long k0 = 0; k0 < K; k0 += kc) {
        long kcs = min_l(kc, K - k0);
        float *slice = Ap + k0 * Mpad;
        for (long i = 0; i < Mpad; i += MR) {
            float *dst = slice + i * kcs;
            if (i + MR <= M) {
                const float *rows[8];
                for (int r = 0; r < MR; r++) rows[r] = A + (i + r) * lda + k0;
                long k = 0;
                for (; k + 8 <= kcs; k += 8) transpose8x8(rows, k, dst + k * MR);
                for (; k < kcs; k++)
                    for (int r = 0; r < MR; r++) dst[k * MR + r] = rows[r][k];
            } else {
                for (long k = 0; k < kcs; k++)
                    for (long r = 0; r < MR; r++) dst[k * MR + r] = i + r < M ? A[(i + r) * lda + k0 + k] : 0.0f;
            }
        }
    }
}

void cgemm_pack_a(long M, long K, const float *A, long lda, long kc, float *Ap) {
    if (cgemm_available()) {
        pack_a_avx(M, K, A, lda, kc, Ap);
        return;
    }
    long Mpad = round_up(M, MR);
    for (long k0 = 0; k0 < K; k0 += kc) {
        long kcs = min_l(kc, K - k0);
        for (long i = 0; i < Mpad; i += MR)
            for (long k = 0; k < kcs; k++)
                for (long r = 0; r < MR; r++)
                    Ap[k0 * Mpad + i * kcs + k * MR + r] = i + r < M ? A[(i + r) * lda + k0 + k] : 0.0f;
    }
}

/// float32 -> bfloat16, round to nearest even (NaN stays NaN).
static inline uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/// The `vdpbf16ps` layout: per depth slice, MR-row panels [kp/2][MR][2] (kp = the slice's depth
/// rounded up to even).
static void pack_a_bf16_panels(long M, long K, const float *A, long lda, long kc, uint16_t *Ap) {
    long Mpad = round_up(M, MR);
    uint16_t *slice = Ap;
    for (long k0 = 0; k0 < K; k0 += kc) {
        long kcs = min_l(kc, K - k0), kp = round_up(kcs, 2);
        for (long i = 0; i < Mpad; i += MR) {
            uint16_t *dst = slice + i * kp;
            for (long k = 0; k < kp; k++)
                for (long r = 0; r < MR; r++) {
                    float v = i + r < M && k < kcs ? A[(i + r) * lda + k0 + k] : 0.0f;
                    dst[(k / 2) * MR * 2 + r * 2 + (k & 1)] = to_bf16(v);
                }
        }
        slice += Mpad * kp;
    }
}

/// The AMX layout: per depth slice, the Mpad rows row-major, kp bfloat16 each (the slice's depth
/// rounded up to even, zeros past it and in the rows past M): a tile of A is 16 rows of 32 at
/// stride kp. The same count as the panel layout, so `cgemm_packed_a_bf16_count` holds for both.
static void pack_a_bf16_rows(long M, long K, const float *A, long lda, long kc, uint16_t *Ap) {
    long Mpad = round_up(M, MR);
    uint16_t *slice = Ap;
    for (long k0 = 0; k0 < K; k0 += kc) {
        long kcs = min_l(kc, K - k0), kp = round_up(kcs, 2);
        for (long r = 0; r < Mpad; r++)
            for (long k = 0; k < kp; k++)
                slice[r * kp + k] = to_bf16(r < M && k < kcs ? A[r * lda + k0 + k] : 0.0f);
        slice += Mpad * kp;
    }
}

void cgemm_pack_a_bf16(long M, long K, const float *A, long lda, long kc, uint16_t *Ap) {
    if (cgemm_amx_available()) pack_a_bf16_rows(M, K, A, lda, kc, Ap);
    else pack_a_bf16_panels(M, K, A, lda, kc, Ap);
}

// MARK: - Packing B from a convolution geometry

/// Copies `n` floats (element stride 1 or 2, any other stride scalar) to d. With `whole` (a
/// constant at each call, so the branch folds), strides 1 and 2 store whole vectors: up to 15
/// floats past d + n are written (which the caller then overwrites, or has room for), sparing
/// the masked stores.
TARGET static inline void copy_run_to(float *d, const float *src, long n, long stride, int whole) {
    static const int evenIdx[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
    if (stride == 1) {
        long t = 0;
        if (!whole)
            for (; t + 16 <= n; t += 16) _mm512_storeu_ps(d + t, _mm512_loadu_ps(src + t));
        for (; t < n; t += 16) {
            __mmask16 m = lanes(n - t);
            __m512 v = _mm512_maskz_loadu_ps(m, src + t);
            if (whole) _mm512_storeu_ps(d + t, v);
            else _mm512_mask_storeu_ps(d + t, m, v);
        }
    } else if (stride == 2) {
        __m512i idx = _mm512_loadu_si512(evenIdx);
        for (long t = 0; t < n; t += 16) {
            long c = min_l(16, n - t), span = 2 * c - 1;  // read only elements 0..2(c-1)
            __m512 lo = _mm512_maskz_loadu_ps(lanes(span), src + 2 * t);
            __m512 hi = _mm512_maskz_loadu_ps(lanes(span - 16), src + 2 * t + 16);
            __m512 v = _mm512_permutex2var_ps(lo, idx, hi);
            if (whole) _mm512_storeu_ps(d + t, v);
            else _mm512_mask_storeu_ps(d + t, lanes(c), v);
        }
    } else {
        for (long t = 0; t < n; t++) d[t] = src[t * stride];
    }
}

TARGET static inline void copy_run(float *d, const float *src, long n, long stride) { copy_run_to(d, src, n, stride, 0); }

/// Zeros `n` floats at d; with `whole`, as whole vectors (up to 15 floats past d + n).
TARGET static inline void zero_run_to(float *d, long n, int whole) {
    for (long t = 0; t < n; t += 16) {
        if (whole) _mm512_storeu_ps(d + t, _mm512_setzero_ps());
        else _mm512_mask_storeu_ps(d + t, lanes(n - t), _mm512_setzero_ps());
    }
}

TARGET static inline void zero_run(float *d, long n) { zero_run_to(d, n, 0); }

/// Prefetches the cache lines of `n` floats from p (a panel row's source, one line per 16).
TARGET static inline void prefetch_run(const float *p, long n) {
    for (long t = 0; t < n; t += 16) _mm_prefetch((const char *)(p + t), _MM_HINT_T0);
}

/// Whether `s` is a pointwise geometry: 1x1, stride 1, no padding, whole rows (OW == W), so that
/// B's rows are the input's channel planes.
static inline int is_pointwise(const cgemm_src *s) {
    return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->ph == 0 && s->pw == 0 && s->OW == s->W;
}

/// A run of panel columns within one output row (or, for pointwise convolutions, one frame).
typedef struct {
    long lane, len;
    /// Input offset of the frame (channel 0), output row and column.
    long frame, y, xo;
} Segment;

enum { MAX_KW = 16 };

/// One segment's part of a packed row for one tap: `za` zeros, `n` values read from the channel
/// plane at `src` (stride sw), `zb` zeros, from panel lane `lane`.
typedef struct {
    int lane, za, n, zb;
    long src;
} CopyOp;

/// Taps x segments tabulated per panel (3x3 taps for up to 56 segments; 24 bytes each).
enum { MAX_COPY_OPS = 512 };

/// Floats past the end of every buffer `pack_b_conv` writes: its tabled copies store whole
/// vectors, up to 15 floats beyond the last segment of a row (the following row, written after,
/// overwrites them; past the last row they land here).
enum { B_SLACK = 16 };

/// The copies of tap t = i*kw + j for a panel's `count` segments (not pointwise): per segment,
/// zeros for the output columns whose input row or column lies outside the image, the input run
/// xo*sw + j - pw for the others (relative to the channel plane).
static void tap_copies(const cgemm_src *s, const Segment *seg, long count, long t, CopyOp *op) {
    long i = t / s->kw, j = t % s->kw, off = j - s->pw, sw = s->sw, W = s->W;
    // Valid output columns for kernel column j: xo*sw + off in [0, W).
    long ja = off >= 0 ? 0 : (-off + sw - 1) / sw;
    long jb = W - 1 - off >= 0 ? (W - 1 - off) / sw + 1 : 0;
    for (long g = 0; g < count; g++, op++) {
        const Segment *e = &seg[g];
        long iy = e->y * s->sh - s->ph + i;
        op->lane = (int)e->lane;
        op->src = 0;
        if (iy < 0 || iy >= s->H) {
            op->za = (int)e->len;
            op->n = op->zb = 0;
            continue;
        }
        long x0 = e->xo, x1 = e->xo + e->len;
        long xa = min_l(max_l(ja, x0), x1), xb = min_l(max_l(jb, xa), x1);
        op->za = (int)(xa - x0);
        op->n = (int)(xb - xa);
        op->zb = (int)(x1 - xb);
        op->src = e->frame + iy * W + xa * sw + off;
    }
}

TARGET_BF16 static void panels_to_bf16(const float *Bp, long kcs, long panels, uint16_t *Bh);

/// Rows of float32 staged in L1 before they are converted, when packing straight to bfloat16.
enum { BF16_STAGE_ROWS = 32 };

/// Packs B[k0..<k0+kcs, n0..<n0+nc] of the tile `s` into NR-wide panels at Bp, zeroing the
/// lanes past nc of the last panel. Panel by panel: its column segments, and for each tap the
/// part of each segment that reads inside the image (`tap_copies`), are found once; then its
/// kcs rows are written in order (whole vectors: the buffer needs `B_SLACK` floats behind it), and the sources of the panels ahead are prefetched (the
/// input is usually cold: written by the previous layer and larger than the caches).
///
/// With `Bh`, the panels are bfloat16 pair panels instead (as `panels_to_bf16` writes them, each
/// `round_up(kcs, 2) x NR`): rows are staged `BF16_STAGE_ROWS` at a time in `Bp`, which then
/// needs only `BF16_STAGE_ROWS x NR` floats and stays in L1, and converted from there, so the
/// float32 panel never makes the round trip through L2.
TARGET static void pack_b_conv(const cgemm_src *s, long k0, long kcs, long n0, long nc, float *Bp, uint16_t *Bh) {
    long npf = s->rows * s->OW, plane = s->H * s->W, W = s->W;
    long sw = s->sw, kw = s->kw, khw = s->kh * s->kw;
    long ahead = prefetchChannels > 0 ? 2 * NR : 0;
    int pointwise = is_pointwise(s);
    Segment seg[NR];
    CopyOp tab[MAX_COPY_OPS];
    for (long q0 = 0; q0 < nc; q0 += NR) {
        long width = min_l(NR, nc - q0), count = 0;
        for (long q = 0; q < width;) {
            long n = n0 + q0 + q, fi = n / npf, p = n % npf;
            Segment g;
            g.lane = q;
            g.frame = (s->f0 + fi) * s->C * plane;
            if (pointwise) {
                g.len = min_l(width - q, npf - p);
                g.y = 0;
                g.xo = s->r0 * W + p;
            } else {
                g.y = s->r0 + p / s->OW;
                g.xo = p % s->OW;
                g.len = min_l(width - q, s->OW - g.xo);
            }
            seg[count++] = g;
            q += g.len;
        }
        // Convolutions: each tap's copies for the panel's segments (they do not depend on the
        // channel), tabulated once per panel when every tap fits the table, else per row for
        // the row's own tap (a tap's `count` <= NR copies always fit).
        int allTaps = !pointwise && khw * count <= MAX_COPY_OPS;
        for (long t = 0; allTaps && t < khw; t++) tap_copies(s, seg, count, t, tab + t * count);
        float *d = Bh ? Bp : Bp + (q0 / NR) * kcs * NR;
        uint16_t *dh = Bh ? Bh + (q0 / NR) * round_up(kcs, 2) * NR : 0;
        long c = k0 / khw, rem = k0 % khw, i = rem / kw, j = rem % kw;
        for (long kk = 0; kk < kcs; kk++, d += NR) {
            if (Bh && kk > 0 && kk % BF16_STAGE_ROWS == 0) {
                panels_to_bf16(Bp, BF16_STAGE_ROWS, 1, dh);
                dh += BF16_STAGE_ROWS * NR;
                d = Bp;
            }
            const float *pl = s->x + c * plane;
            if (pointwise) {
                for (long g = 0; g < count; g++) {
                    const Segment *e = &seg[g];
                    const float *src = pl + e->frame + e->xo;
                    if (ahead) prefetch_run(src + ahead, e->len);
                    copy_run(d + e->lane, src, e->len, 1);
                }
            } else {
                const CopyOp *op = tab + (i * kw + j) * count;
                if (!allTaps) {
                    tap_copies(s, seg, count, i * kw + j, tab);
                    op = tab;
                }
                for (long g = 0; g < count; g++, op++) {
                    float *dd = d + op->lane;
                    if (op->za) zero_run_to(dd, op->za, 1);
                    if (op->n) {
                        const float *src = pl + op->src;
                        if (ahead) prefetch_run(src + ahead * sw, op->n * sw);
                        copy_run_to(dd + op->za, src, op->n, sw, 1);
                    }
                    if (op->zb) zero_run_to(dd + op->za + op->n, op->zb, 1);
                }
            }
            // After the copies, which may have written past `width` (see copy_run_to).
            if (width < NR) zero_run(d + width, NR - width);
            if (++j == kw) {
                j = 0;
                if (++i == s->kh) {
                    i = 0;
                    c++;
                }
            }
        }
        if (Bh) {
            long staged = kcs - (kcs - 1) / BF16_STAGE_ROWS * BF16_STAGE_ROWS;
            panels_to_bf16(Bp, staged, 1, dh);
        }
    }
}

/// float32 panels (kcs x NR each, `panels` of them) to bfloat16 pair panels ([kcs/2][NR][2],
/// an odd last row paired with zeros).
TARGET_BF16 static void panels_to_bf16(const float *Bp, long kcs, long panels, uint16_t *Bh) {
    static const short inter[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                    8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    __m512i idx = _mm512_loadu_si512(inter);
    long kp = round_up(kcs, 2);
    for (long p = 0; p < panels; p++) {
        const float *src = Bp + p * kcs * NR;
        uint16_t *dst = Bh + p * kp * NR;
        for (long k = 0; k < kcs; k += 2) {
            const float *r0 = src + k * NR, *r1 = src + (k + 1) * NR;
            int pair = k + 1 < kcs;
            for (int v = 0; v < 3; v++) {
                __m512 a = _mm512_loadu_ps(r0 + 16 * v);
                __m512 b = pair ? _mm512_loadu_ps(r1 + 16 * v) : _mm512_setzero_ps();
                // lanes 0..15: a, 16..31: b; then interleaved to (a0, b0, a1, b1, ...).
                __m512i ab = (__m512i)_mm512_cvtne2ps_pbh(b, a);
                _mm512_storeu_si512(dst + (k / 2) * NR * 2 + 32 * v, _mm512_permutexvar_epi16(idx, ab));
            }
        }
    }
}

/// `pack_b_conv` into bfloat16 pair panels for pointwise geometries (1x1, stride 1, no padding,
/// whole rows), without staging: per pair of depth rows (channels c, c+1) and 16 columns, two
/// loads, one `vcvtne2ps2bf16` and one interleaving permute, stored as 16 (c, c+1) pairs.
TARGET_BF16 static void pack_b_pointwise_bf16(const cgemm_src *s, long k0, long kcs, long n0, long nc, uint16_t *Bh) {
    static const short inter[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                    8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    __m512i idx = _mm512_loadu_si512(inter);
    long npf = s->rows * s->OW, plane = s->H * s->W, kp = round_up(kcs, 2);
    for (long q0 = 0; q0 < nc; q0 += NR) {
        long width = min_l(NR, nc - q0);
        uint16_t *panel = Bh + (q0 / NR) * kp * NR;
        for (long q = 0; q < width;) {
            long n = n0 + q0 + q, p = n % npf;
            long len = min_l(width - q, npf - p);
            const float *src = s->x + ((s->f0 + n / npf) * s->C + k0) * plane + s->r0 * s->W + p;
            for (long kk = 0; kk < kcs; kk += 2, src += 2 * plane) {
                uint16_t *d = panel + kk * NR + 2 * q;
                int pair = kk + 1 < kcs;
                _mm_prefetch((const char *)(src + 2 * NR), _MM_HINT_T0);
                for (long t = 0; t < len; t += 16) {
                    __mmask16 m = lanes(len - t);
                    __m512 a = _mm512_maskz_loadu_ps(m, src + t);
                    __m512 b = pair ? _mm512_maskz_loadu_ps(m, src + plane + t) : _mm512_setzero_ps();
                    __m512i ab = _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(b, a));
                    __mmask32 m2 = len - t >= 16 ? 0xFFFFFFFFu : (__mmask32)((1ull << (2 * (len - t))) - 1);
                    _mm512_mask_storeu_epi16(d + 2 * t, m2, ab);
                }
            }
            q += len;
        }
        if (width < NR)
            for (long kk = 0; kk < kp; kk += 2) memset(panel + kk * NR + 2 * width, 0, (size_t)(NR - width) * 4);
    }
}

// MARK: - Microkernels

/// How a microkernel stores its MR x NR tile.
typedef struct {
    /// Row 0 of the tile in the output, and the row stride; null: spill to `spill` instead.
    float *c;
    const float *res;
    long ldc;
    const float *bias;
    /// 0: store, 1: add to the stored partial sums, 2: last slice (add when `!first`, then bias,
    /// residual, ReLU).
    int mode, first, relu;
    long mr, nr;
    float *spill;
} TileOut;

#define ROW_STORE(r)                                                                               \
    do {                                                                                           \
        if (r < t->mr) {                                                                           \
            float *d_ = t->c + (r) * t->ldc;                                                       \
            if (t->mode == 1 || (t->mode == 2 && !t->first)) {                                     \
                c##r##0 = _mm512_add_ps(c##r##0, _mm512_maskz_loadu_ps(m0, d_));                  \
                if (NV > 1) c##r##1 = _mm512_add_ps(c##r##1, _mm512_maskz_loadu_ps(m1, d_ + 16));  \
                if (NV > 2) c##r##2 = _mm512_add_ps(c##r##2, _mm512_maskz_loadu_ps(m2, d_ + 32));  \
            }                                                                                      \
            if (t->mode == 2) {                                                                    \
                if (t->bias) {                                                                     \
                    __m512 b_ = _mm512_set1_ps(t->bias[r]);                                        \
                    c##r##0 = _mm512_add_ps(c##r##0, b_);                                          \
                    if (NV > 1) c##r##1 = _mm512_add_ps(c##r##1, b_);                              \
                    if (NV > 2) c##r##2 = _mm512_add_ps(c##r##2, b_);                              \
                }                                                                                  \
                if (t->res) {                                                                      \
                    const float *q_ = t->res + (r) * t->ldc;                                       \
                    c##r##0 = _mm512_add_ps(c##r##0, _mm512_maskz_loadu_ps(m0, q_));               \
                    if (NV > 1) c##r##1 = _mm512_add_ps(c##r##1, _mm512_maskz_loadu_ps(m1, q_ + 16)); \
                    if (NV > 2) c##r##2 = _mm512_add_ps(c##r##2, _mm512_maskz_loadu_ps(m2, q_ + 32)); \
                }                                                                                  \
                if (t->relu) {                                                                     \
                    __m512 z_ = _mm512_setzero_ps();                                               \
                    c##r##0 = _mm512_max_ps(c##r##0, z_);                                          \
                    if (NV > 1) c##r##1 = _mm512_max_ps(c##r##1, z_);                              \
                    if (NV > 2) c##r##2 = _mm512_max_ps(c##r##2, z_);                              \
                }                                                                                  \
            }                                                                                      \
            _mm512_mask_storeu_ps(d_, m0, c##r##0);                                                \
            if (NV > 1) _mm512_mask_storeu_ps(d_ + 16, m1, c##r##1);                               \
            if (NV > 2) _mm512_mask_storeu_ps(d_ + 32, m2, c##r##2);                               \
        }                                                                                          \
    } while (0)

#define ROW_SPILL(r)                                                                               \
    do {                                                                                           \
        _mm512_storeu_ps(t->spill + (r) * NR, c##r##0);                                            \
        if (NV > 1) _mm512_storeu_ps(t->spill + (r) * NR + 16, c##r##1);                           \
        if (NV > 2) _mm512_storeu_ps(t->spill + (r) * NR + 32, c##r##2);                           \
    } while (0)

#define DECLARE_ACCUMULATORS                                                                       \
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;       \
    __m512 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;                       \
    __m512 c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00;                       \
    __m512 c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00

#define STORE_TILE                                                                                 \
    if (!t->c) {                                                                                   \
        ROW_SPILL(0); ROW_SPILL(1); ROW_SPILL(2); ROW_SPILL(3);                                    \
        ROW_SPILL(4); ROW_SPILL(5); ROW_SPILL(6); ROW_SPILL(7);                                    \
        return;                                                                                    \
    }                                                                                              \
    __mmask16 m0 = lanes(t->nr), m1 = lanes(t->nr - 16), m2 = lanes(t->nr - 32);                   \
    (void)m1; (void)m2;                                                                            \
    ROW_STORE(0); ROW_STORE(1); ROW_STORE(2); ROW_STORE(3);                                        \
    ROW_STORE(4); ROW_STORE(5); ROW_STORE(6); ROW_STORE(7)

// Before the depth loop: the cache lines the final store will read (the residual, in the last
// slice) and write (the output tile) are requested, so that their misses (the previous layer's
// output is usually out of L2) overlap the FMAs instead of stalling the store.
#define PREFETCH_TILE                                                                              \
    if (t->c) {                                                                                    \
        for (long r_ = 0; r_ < t->mr; r_++) {                                                      \
            const float *c_ = t->c + r_ * t->ldc;                                                  \
            for (long q_ = 0; q_ < t->nr; q_ += 16) __builtin_prefetch(c_ + q_, 1, 3);              \
            if (t->res && t->mode == 2) {                                                          \
                const float *s_ = t->res + r_ * t->ldc;                                            \
                for (long q_ = 0; q_ < t->nr; q_ += 16) __builtin_prefetch(s_ + q_, 0, 3);          \
            }                                                                                      \
        }                                                                                          \
    }

#define ROW_FMA(r)                                                                                 \
    do {                                                                                           \
        __m512 a_ = _mm512_set1_ps(a[r]);                                                          \
        c##r##0 = _mm512_fmadd_ps(a_, b0, c##r##0);                                                \
        if (NV > 1) c##r##1 = _mm512_fmadd_ps(a_, b1, c##r##1);                                    \
        if (NV > 2) c##r##2 = _mm512_fmadd_ps(a_, b2, c##r##2);                                    \
    } while (0)

// C[mr x nr] (+)= Ap[kc x MR]^T x Bp[kc x NR] for nr <= 16*NV: 8*NV zmm accumulators, NV B
// vectors and one broadcast per step (NV = 3: 24 accumulators; 1 and 2 for narrow edge panels).
#define MICRO(NAME, NVEC)                                                                          \
TARGET static void NAME(long kc, const float *restrict a, const float *restrict b, const TileOut *t) { \
    const int NV = NVEC;                                                                           \
    DECLARE_ACCUMULATORS;                                                                          \
    PREFETCH_TILE;                                                                                 \
    for (long k = 0; k < kc; k++) {                                                                \
        __m512 b0 = _mm512_loadu_ps(b), b1 = c00, b2 = c00;                                         \
        if (NVEC > 1) b1 = _mm512_loadu_ps(b + 16);                                                 \
        if (NVEC > 2) b2 = _mm512_loadu_ps(b + 32);                                                 \
        _mm_prefetch((const char *)(b + 8 * NR), _MM_HINT_T0);                                     \
        ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3);                                            \
        ROW_FMA(4); ROW_FMA(5); ROW_FMA(6); ROW_FMA(7);                                            \
        a += MR;                                                                                   \
        b += NR;                                                                                   \
    }                                                                                              \
    STORE_TILE;                                                                                    \
}

MICRO(micro_8x48, 3)
MICRO(micro_8x32, 2)
MICRO(micro_8x16, 1)

// The microkernel on B in place (rows `ldb` floats apart, nr <= 16*NV columns read with masks):
// for 1x1 convolutions, whose B is the input itself. With `pf`, the rows of the panel two ahead
// are prefetched (the first A panel of each B panel brings it in; the others find it in L1).
#define MICRO_DIRECT(NAME, NVEC)                                                                   \
TARGET static void NAME(long kc, const float *restrict a, const float *restrict b, long ldb, int pf, \
                        const TileOut *t) {                                                        \
    const int NV = NVEC;                                                                           \
    DECLARE_ACCUMULATORS;                                                                          \
    PREFETCH_TILE;                                                                                 \
    __mmask16 l0 = lanes(t->nr), l1 = lanes(t->nr - 16), l2 = lanes(t->nr - 32);                   \
    (void)l1; (void)l2;                                                                            \
    for (long k = 0; k < kc; k++) {                                                                \
        __m512 b0 = _mm512_maskz_loadu_ps(l0, b), b1 = c00, b2 = c00;                              \
        if (NVEC > 1) b1 = _mm512_maskz_loadu_ps(l1, b + 16);                                      \
        if (NVEC > 2) b2 = _mm512_maskz_loadu_ps(l2, b + 32);                                      \
        if (pf) {                                                                                  \
            _mm_prefetch((const char *)(b + 2 * NR), _MM_HINT_T0);                                 \
            _mm_prefetch((const char *)(b + 2 * NR + 16), _MM_HINT_T0);                            \
            _mm_prefetch((const char *)(b + 2 * NR + 32), _MM_HINT_T0);                            \
        }                                                                                          \
        ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3);                                            \
        ROW_FMA(4); ROW_FMA(5); ROW_FMA(6); ROW_FMA(7);                                            \
        a += MR;                                                                                   \
        b += ldb;                                                                                  \
    }                                                                                              \
    STORE_TILE;                                                                                    \
}

MICRO_DIRECT(micro_direct_8x48, 3)
MICRO_DIRECT(micro_direct_8x32, 2)
MICRO_DIRECT(micro_direct_8x16, 1)

typedef void (*MicroDirect)(long, const float *, const float *, long, int, const TileOut *);

#define ROW_DP(r)                                                                                  \
    do {                                                                                           \
        __m512bh a_ = (__m512bh)_mm512_set1_epi32((int)a[r]);                                      \
        c##r##0 = _mm512_dpbf16_ps(c##r##0, a_, b0);                                               \
        if (NV > 1) c##r##1 = _mm512_dpbf16_ps(c##r##1, a_, b1);                                   \
        if (NV > 2) c##r##2 = _mm512_dpbf16_ps(c##r##2, a_, b2);                                   \
    } while (0)

// The bfloat16 microkernel: per pair of depth steps, NV B vectors of 16 columns x 2 and one
// 32-bit broadcast (two A values) per row.
#define MICRO_BF16(NAME, NVEC)                                                                     \
TARGET_BF16 static void NAME(long kp, const uint32_t *restrict a, const uint16_t *restrict b,     \
                             const TileOut *t) {                                                   \
    const int NV = NVEC;                                                                           \
    DECLARE_ACCUMULATORS;                                                                          \
    PREFETCH_TILE;                                                                                 \
    for (long k = 0; k < kp; k++) {                                                                \
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = b0, b2 = b0;                            \
        if (NVEC > 1) b1 = (__m512bh)_mm512_loadu_si512(b + 32);                                    \
        if (NVEC > 2) b2 = (__m512bh)_mm512_loadu_si512(b + 64);                                    \
        _mm_prefetch((const char *)(b + 8 * 2 * NR), _MM_HINT_T0);                                 \
        ROW_DP(0); ROW_DP(1); ROW_DP(2); ROW_DP(3);                                                \
        ROW_DP(4); ROW_DP(5); ROW_DP(6); ROW_DP(7);                                                \
        a += MR;                                                                                   \
        b += 2 * NR;                                                                               \
    }                                                                                              \
    STORE_TILE;                                                                                    \
}

MICRO_BF16(micro_bf16_8x48, 3)
MICRO_BF16(micro_bf16_8x32, 2)
MICRO_BF16(micro_bf16_8x16, 1)

// MARK: - Drivers

/// The output side of one GEMM call: dst plus the column -> frame mapping.
typedef struct {
    const cgemm_dst *dst;
    long npf;  // columns per frame (all N for a plain matrix)
    long f0;
} OutMap;

/// Stores a spilled MR x NR tile (rows ir.., columns nb..) whose columns cross frames, segment
/// by segment, with the tile's mode.
TARGET static void store_spilled(const OutMap *o, const TileOut *t, long ir, long nb) {
    const cgemm_dst *d = o->dst;
    long q = 0;
    while (q < t->nr) {
        long n = nb + q, fi = n / o->npf, p = n % o->npf;
        long len = min_l(t->nr - q, o->npf - p);
        long base = (o->f0 + fi) * d->fstride + d->col0 + p;
        for (long r = 0; r < t->mr; r++) {
            float *y = d->y + base + (ir + r) * d->mstride;
            const float *res = d->residual ? d->residual + base + (ir + r) * d->mstride : 0;
            const float *s = t->spill + r * NR + q;
            __m512 bias = _mm512_set1_ps(d->bias ? d->bias[ir + r] : 0.0f);
            for (long u = 0; u < len; u += 16) {
                __mmask16 m = lanes(len - u);
                __m512 v = _mm512_maskz_loadu_ps(m, s + u);
                if (t->mode == 1 || (t->mode == 2 && !t->first)) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, y + u));
                if (t->mode == 2) {
                    if (d->bias) v = _mm512_add_ps(v, bias);
                    if (res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, res + u));
                    if (d->relu) v = _mm512_max_ps(v, _mm512_setzero_ps());
                }
                _mm512_mask_storeu_ps(y + u, m, v);
            }
        }
        q += len;
    }
}

/// Fills `t` for the tile at rows ir.., columns nb.. (direct when its columns lie in one frame).
static void tile_out(const OutMap *o, long ir, long nb, long mr, long nr, int mode, int first, float *spill,
                     TileOut *t) {
    const cgemm_dst *d = o->dst;
    long p = nb % o->npf;
    t->mode = mode;
    t->first = first;
    t->relu = d->relu;
    t->mr = mr;
    t->nr = nr;
    t->ldc = d->mstride;
    t->bias = d->bias ? d->bias + ir : 0;
    t->spill = spill;
    if (p + nr <= o->npf) {
        long base = (o->f0 + nb / o->npf) * d->fstride + d->col0 + p + ir * d->mstride;
        t->c = d->y + base;
        t->res = d->residual ? d->residual + base : 0;
    } else {
        t->c = 0;
        t->res = 0;
    }
}

typedef void (*MicroF32)(long, const float *, const float *, const TileOut *);
typedef void (*MicroBF16)(long, const uint32_t *, const uint16_t *, const TileOut *);

/// B packed whole for a tile (all depth slices) when its rows span several MC blocks, up to
/// this many floats (2 MiB: e.g. 1024 channels x 4 frames of 7x7).
enum { WHOLE_B_FLOATS = 1 << 19 };

/// Float32 driver: B from `src` (packed here) or prepacked in `Bpre` (N columns).
TARGET static int driver_f32(long m0, long m1, long N, long K, const float *Ap, long Mpad, long kc,
                             const cgemm_src *src, const float *Bpre, const OutMap *o) {
    ensure_blocking();
    long MC = blocking.mc, NC = blocking.nc;
    long Npad = round_up(N, NR);
    int direct = directB && src && src->fcount == 1 && is_pointwise(src);
    float *Bp = 0;
    if (!Bpre) {
        PackBuffers *bufs = pack_buffers();
        if (!bufs) return -1;
        if (!direct && m1 - m0 > MC && N <= NC && K * Npad <= WHOLE_B_FLOATS) {
            // Rows in more than one block of MC: B packed whole, once, instead of once per block.
            Bp = ensure((void **)&bufs->b, &bufs->capB, (size_t)(K * Npad + B_SLACK) * sizeof(float));
            if (!Bp) return -1;
            for (long pc = 0; pc < K; pc += kc) pack_b_conv(src, pc, min_l(kc, K - pc), 0, N, Bp + pc * Npad, 0);
            Bpre = Bp;
        } else {
            Bp = ensure((void **)&bufs->b, &bufs->capB, (size_t)(kc * min_l(NC, Npad) + B_SLACK) * sizeof(float));
            if (!Bp) return -1;
        }
    }
    float spill[MR * NR] __attribute__((aligned(64)));
    long plane = src ? src->H * src->W : 0;
    for (long ic = m0; ic < m1; ic += MC) {
        long mc = min_l(MC, m1 - ic);
        for (long jc = 0; jc < N; jc += NC) {
            long nc = min_l(NC, N - jc);
            for (long pc = 0; pc < K; pc += kc) {
                long kcs = min_l(kc, K - pc);
                int first = pc == 0, last = pc + kcs == K;
                int mode = last ? 2 : first ? 0 : 1;
                if (direct) {
                    // 1x1 stride 1, one frame: B is the input's rows pc.. from column jc.
                    const float *b0 = src->x + (src->f0 * src->C + pc) * plane + src->r0 * src->W + jc;
                    for (long jr = 0; jr < nc; jr += NR) {
                        long nr = min_l(NR, nc - jr);
                        MicroDirect micro_direct = nr > 32 ? micro_direct_8x48 : nr > 16 ? micro_direct_8x32 : micro_direct_8x16;
                        for (long ir = ic; ir < ic + mc; ir += MR) {
                            TileOut t;
                            tile_out(o, ir, jc + jr, min_l(MR, ic + mc - ir), nr, mode, first, spill, &t);
                            micro_direct(kcs, Ap + pc * Mpad + ir * kcs, b0 + jr, plane, ir == ic && prefetchChannels, &t);
                        }
                    }
                    continue;
                }
                const float *B;
                if (Bpre) {
                    B = Bpre + pc * Npad + jc * kcs;
                } else {
                    pack_b_conv(src, pc, kcs, jc, nc, Bp, 0);
                    B = Bp;
                }
                for (long jr = 0; jr < nc; jr += NR) {
                    long nr = min_l(NR, nc - jr);
                    MicroF32 micro = nr > 32 ? micro_8x48 : nr > 16 ? micro_8x32 : micro_8x16;
                    const float *bp = B + jr * kcs;
                    for (long ir = ic; ir < ic + mc; ir += MR) {
                        TileOut t;
                        tile_out(o, ir, jc + jr, min_l(MR, ic + mc - ir), nr, mode, first, spill, &t);
                        micro(kcs, Ap + pc * Mpad + ir * kcs, bp, &t);
                        if (!t.c) store_spilled(o, &t, ir, jc + jr);
                    }
                }
            }
        }
    }
    return 0;
}

// MARK: - AMX

// With AMX (`cgemm_amx_available`), A is packed row-major per slice (`pack_a_bf16_rows`) and
// the bfloat16 GEMM runs on tiles: `tdpbf16ps` multiplies a 16 x 32 tile of A by a 32 x 16
// tile of B (16 rows of 16 (k, k+1) pairs: exactly 16 columns of a bfloat16 pair panel, read at
// the panel's row stride) into a 16 x 16 float32 tile. One microkernel call covers 16 rows x
// one 48-column panel: tiles 0-2 hold C, 3 the A tile, 4-6 the panel's three B tiles.

typedef struct __attribute__((packed)) {
    uint8_t palette, start;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} TileConfig;

/// out[16 x NR] = A[16 x 32*chunks (+ tail)] x Bpanel: A rows `lda` bfloat16 apart, B the pair
/// panel; with `ta`, one more 32 of depth from zero-padded copies (ta: 16 x 32, tb: 16 pair
/// rows x NR) for a slice whose depth is not a multiple of 32.
/// C tiles 0-2 += one 32 of depth: the A tile (16 rows `lda` bytes apart) times the panel's
/// three B tiles (16 pair rows, NR * 4 bytes apart).
#define AMX_STEP(a, lda, b)                                                                        \
    do {                                                                                           \
        _tile_loadd(3, (a), (lda));                                                                \
        _tile_loadd(4, (b), NR * 4);                                                               \
        _tile_loadd(5, (b) + 32, NR * 4);                                                          \
        _tile_loadd(6, (b) + 64, NR * 4);                                                          \
        _tile_dpbf16ps(0, 3, 4);                                                                   \
        _tile_dpbf16ps(1, 3, 5);                                                                   \
        _tile_dpbf16ps(2, 3, 6);                                                                   \
    } while (0)

TARGET_AMX static void micro_amx_16x48(long chunks, const uint16_t *a, long lda, const uint16_t *b,
                                       const uint16_t *ta, const uint16_t *tb, float *out) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    for (long q = 0; q < chunks; q++) AMX_STEP(a + q * 32, lda * 2, b + q * 32 * NR);  // 16 pair rows of NR pairs
    if (ta) AMX_STEP(ta, 64, tb);
    _tile_stored(0, out, NR * 4);
    _tile_stored(1, out + 16, NR * 4);
    _tile_stored(2, out + 32, NR * 4);
}

/// Tiles 0-6 as `micro_amx_16x48` uses them (16 rows of 64 bytes each), for this thread.
TARGET_AMX static void amx_begin(void) {
    TileConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 7; i++) {
        cfg.colsb[i] = 64;
        cfg.rows[i] = 16;
    }
    _tile_loadconfig(&cfg);
}

TARGET_AMX static void amx_end(void) { _tile_release(); }

/// One depth slice of `driver_bf16` on AMX tiles (after `amx_begin`): rows ic..<ic+mc of the
/// row-major slice (kp bfloat16 per row, `pack_a_bf16_rows`) times the nc columns of pair panels
/// at Bh, 16 rows x one panel per microkernel call. Each 16 x 48 result goes through
/// `store_spilled` (mode, bias, residual, ReLU, frame crossings) as two MR-row halves. `Ae`
/// holds 16 x kp bfloat16 for the last block when Mpad is not a multiple of 16 (its rows past
/// Mpad zero); depth past a multiple of 32 runs from zero-padded copies.
TARGET_AMX static void amx_slice(long ic, long mc, long jc, long nc, long kp, const uint16_t *slice, long Mpad,
                                 const uint16_t *Bh, uint16_t *Ae, int mode, int first, const OutMap *o) {
    long full = kp / 32, rem = kp % 32;
    uint16_t ta[16 * 32] __attribute__((aligned(64)));
    uint16_t tb[16 * 2 * NR] __attribute__((aligned(64)));
    float out[16 * NR] __attribute__((aligned(64)));
    long edge = -1;
    for (long ir = ic; ir < ic + mc; ir += 16)
        if (ir + 16 > Mpad) edge = ir;
    if (edge >= 0) {
        memset(Ae, 0, (size_t)16 * kp * sizeof(uint16_t));
        memcpy(Ae, slice + edge * kp, (size_t)(Mpad - edge) * kp * sizeof(uint16_t));
    }
    for (long jr = 0; jr < nc; jr += NR) {
        long nr = min_l(NR, nc - jr);
        const uint16_t *bp = Bh + jr * kp;
        if (rem) {
            memset(tb, 0, sizeof tb);
            memcpy(tb, bp + full * 32 * NR, (size_t)(rem / 2) * NR * 4);
        }
        for (long ir = ic; ir < ic + mc; ir += 16) {
            long mr = min_l(16, ic + mc - ir);
            const uint16_t *a = ir == edge ? Ae : slice + ir * kp;
            if (rem) {
                memset(ta, 0, sizeof ta);
                for (int r = 0; r < 16; r++) memcpy(ta + r * 32, a + r * kp + full * 32, (size_t)rem * 2);
            }
            micro_amx_16x48(full, a, kp, bp, rem ? ta : 0, tb, out);
            for (long h = 0; h < mr; h += MR) {
                TileOut t;
                tile_out(o, ir + h, jc + jr, min_l(MR, mr - h), nr, mode, first, out + h * NR, &t);
                store_spilled(o, &t, ir + h, jc + jr);
            }
        }
    }
}

TARGET_BF16 static int driver_bf16(long m0, long m1, long N, long K, const uint16_t *Ap, long Mpad, long kc,
                                   const cgemm_src *src, const OutMap *o) {
    ensure_blocking();
    long MC = blocking.mc, NC = blocking.nc;
    PackBuffers *bufs = pack_buffers();
    if (!bufs) return -1;
    long ncap = min_l(NC, round_up(N, NR));
    float stage[BF16_STAGE_ROWS * NR + B_SLACK] __attribute__((aligned(64)));
    int pointwise = is_pointwise(src);
    uint16_t *Bh = ensure((void **)&bufs->bh, &bufs->capBH, (size_t)round_up(kc, 2) * ncap * sizeof(uint16_t));
    if (!Bh) return -1;
    int amx = cgemm_amx_available();
    uint16_t *Ae = amx ? ensure((void **)&bufs->ae, &bufs->capAE, (size_t)16 * round_up(kc, 2) * sizeof(uint16_t)) : 0;
    if (amx && !Ae) return -1;
    if (amx) amx_begin();
    float spill[MR * NR] __attribute__((aligned(64)));
    for (long ic = m0; ic < m1; ic += MC) {
        long mc = min_l(MC, m1 - ic);
        for (long jc = 0; jc < N; jc += NC) {
            long nc = min_l(NC, N - jc);
            const uint16_t *slice = Ap;
            for (long pc = 0; pc < K; pc += kc) {
                long kcs = min_l(kc, K - pc), kp = round_up(kcs, 2);
                if (pointwise) pack_b_pointwise_bf16(src, pc, kcs, jc, nc, Bh);
                else pack_b_conv(src, pc, kcs, jc, nc, stage, Bh);
                int first = pc == 0, last = pc + kcs == K;
                int mode = last ? 2 : first ? 0 : 1;
                if (amx) {
                    amx_slice(ic, mc, jc, nc, kp, slice, Mpad, Bh, Ae, mode, first, o);
                    slice += Mpad * kp;
                    continue;
                }
                for (long jr = 0; jr < nc; jr += NR) {
                    long nr = min_l(NR, nc - jr);
                    MicroBF16 micro = nr > 32 ? micro_bf16_8x48 : nr > 16 ? micro_bf16_8x32 : micro_bf16_8x16;
                    const uint16_t *bp = Bh + jr * kp;
                    for (long ir = ic; ir < ic + mc; ir += MR) {
                        TileOut t;
                        tile_out(o, ir, jc + jr, min_l(MR, ic + mc - ir), nr, mode, first, spill, &t);
                        micro(kp / 2, (const uint32_t *)(slice + ir * kp), bp, &t);
                        if (!t.c) store_spilled(o, &t, ir, jc + jr);
                    }
                }
                slice += Mpad * kp;
            }
        }
    }
    if (amx) amx_end();
    return 0;
}

// MARK: - Direct convolution (no B packing)

// For convolutions whose B packing costs more than the GEMM saves (few output channels, so each
// packed element feeds few FMAs: e.g. 64 -> 32 channels, 3x3, at 112x112; the 3 -> 64 7x7 stride-2
// stem), the microkernel reads B from a copy of the input's rows instead of from packed panels.
// The copy splits the input into its sh x sw phases (one for stride 1),
//     P_ab[c][u][v] = x[c][sh*u + a][sw*v + b]   (zero outside the image),
// each row zero-padded on both sides, a chunk of output rows at a time into a per-thread buffer
// that stays in L2. Tap (c, i, j) of output (y, x) then reads P_ab[c][y + di][x + dj] with
// a = (i - ph) mod sh, di = floor((i - ph) / sh) (b, dj likewise from j, pw, sw): per depth step
// k = (c, i, j) the NV vectors are one padded row from column x0 + dj, contiguous, read without
// masks. Steps whose row lies outside the image contribute nothing and are left out of the step
// list. A is the GEMM's packed A, unchanged. (Reading the image in place instead needs masked
// loads at the row edges, 12-25% slower on Zen 4, and for stride 2 two loads and a permute per
// vector, which did not beat packing.)

enum { DIRECT_MAX_KC = 512 };

static int directConv = 1;  // read and written atomically (set by benchmarks while kernels may run)

void cgemm_set_direct_conv(int mode) { __atomic_store_n(&directConv, mode < 0 ? 0 : mode > 2 ? 2 : mode, __ATOMIC_RELAXED); }

/// Whether `driver_conv_phases` takes this geometry (and, in the automatic mode, should): stride
/// 1 or 2 across, any stride down, not pointwise, kw <= MAX_KW, a depth slice it can tabulate;
/// automatically for layers of at most 64 output channels (whose B panels would feed too few
/// microkernel calls to repay packing) and rows of at least 28 columns (measured on Zen 4
/// against packing: 32 -> 32 at 56x56 and 64 -> 64 at 28x28 25% less time, 64 -> 32 at 112x112
/// 40% less, the 7x7 stride-2 stem 18% less, 64 -> 64 3x3 stride 2 at 112x112 about 10% less).
/// Whether `driver_conv_phases` can run this geometry with depth slices of `kc` units.
static int direct_conv_possible(long kc, const cgemm_src *s) {
    return !is_pointwise(s) && s->kw <= MAX_KW && kc <= DIRECT_MAX_KC && s->sw >= 1 && s->sw <= 2 && s->sh >= 1;
}

static int direct_conv_applies(long Mpad, long kc, const cgemm_src *s) {
    int mode = __atomic_load_n(&directConv, __ATOMIC_RELAXED);
    if (!mode || !direct_conv_possible(kc, s)) return 0;
    if (mode == 2) return 1;
    return Mpad <= 64 && s->OW >= 28;
}

int cgemm_conv_is_direct(long Mpad, long kc, const cgemm_src *src) {
    return cgemm_available() && direct_conv_applies(Mpad, kc, src);
}

/// One step of the step list: A row `k` of the slice, and the offset `off` of its B vectors from
/// the segment's column in the phase buffer (phase, channel, row and kernel column folded in).
typedef struct {
    long off;
    int32_t k;
} DirectStep;

// C[mr x nr] (+)= sum over the steps of A[k] x B_step, B_step the NV vectors at col + off: rows
// of the zero-padded phase buffers (see "Direct convolution"), so every step's vectors lie
// inside its row's padding and are read without masks; lanes past nr are computed, not stored.
#define MICRO_PADDED(NAME, NVEC)                                                                   \
TARGET static void NAME(long count, const DirectStep *st, const float *restrict ap,                \
                        const float *restrict col, const TileOut *t) {                             \
    const int NV = NVEC;                                                                           \
    DECLARE_ACCUMULATORS;                                                                          \
    PREFETCH_TILE;                                                                                 \
    for (long e = 0; e < count; e++) {                                                             \
        const float *a = ap + (long)st[e].k * MR;                                                  \
        const float *p = col + st[e].off;                                                          \
        __m512 b0 = _mm512_loadu_ps(p), b1 = c00, b2 = c00;                                        \
        if (NVEC > 1) b1 = _mm512_loadu_ps(p + 16);                                                \
        if (NVEC > 2) b2 = _mm512_loadu_ps(p + 32);                                                \
        ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3);                                            \
        ROW_FMA(4); ROW_FMA(5); ROW_FMA(6); ROW_FMA(7);                                            \
    }                                                                                              \
    STORE_TILE;                                                                                    \
}

MICRO_PADDED(micro_padded_8x48, 3)
MICRO_PADDED(micro_padded_8x32, 2)
MICRO_PADDED(micro_padded_8x16, 1)

typedef void (*MicroPadded)(long, const DirectStep *, const float *, const float *, const TileOut *);

// The bfloat16 form: B is 32-bit (channel 2q, channel 2q + 1) pairs of the pair phase buffers,
// A the bfloat16 pair panels, each step one pair of depth (see `driver_conv_phases`).
#define MICRO_PADDED_BF16(NAME, NVEC)                                                              \
TARGET_BF16 static void NAME(long count, const DirectStep *st, const uint32_t *restrict ap,       \
                             const uint32_t *restrict col, const TileOut *t) {                     \
    const int NV = NVEC;                                                                           \
    DECLARE_ACCUMULATORS;                                                                          \
    PREFETCH_TILE;                                                                                 \
    for (long e = 0; e < count; e++) {                                                             \
        const uint32_t *a = ap + (long)st[e].k * MR;                                               \
        const uint32_t *p = col + st[e].off;                                                       \
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(p), b1 = b0, b2 = b0;                           \
        if (NVEC > 1) b1 = (__m512bh)_mm512_loadu_si512(p + 16);                                   \
        if (NVEC > 2) b2 = (__m512bh)_mm512_loadu_si512(p + 32);                                   \
        ROW_DP(0); ROW_DP(1); ROW_DP(2); ROW_DP(3);                                                \
        ROW_DP(4); ROW_DP(5); ROW_DP(6); ROW_DP(7);                                                \
    }                                                                                              \
    STORE_TILE;                                                                                    \
}

MICRO_PADDED_BF16(micro_padded_bf16_8x48, 3)
MICRO_PADDED_BF16(micro_padded_bf16_8x32, 2)
MICRO_PADDED_BF16(micro_padded_bf16_8x16, 1)

typedef void (*MicroPaddedBF16)(long, const DirectStep *, const uint32_t *, const uint32_t *, const TileOut *);

/// floor(a / s) for s >= 1 and any sign of a.
static inline long floor_div(long a, long s) { return a >= 0 ? a / s : -((s - 1 - a) / s); }

/// Floats of phase rows per chunk (see `driver_conv_phases`): 1 MiB, in L2 on Zen 4 and 5.
enum { PHASE_CHUNK_FLOATS = 1 << 18 };

/// Rows u0..<u0+urows of the sh x sw phases of one frame x [C, H, W] (sw = 1 or 2) into buf
/// [C][a < sh][b < sw][urows][Wb], each row L zeros, then Wp values, then zeros to Wb:
///     buf[((c*sh + a)*sw + b)*urows + r][L + v] = x[c][sh(u0+r) + a][sw v + b], zero outside the image.
TARGET static void split_phases(const float *x, long C, long H, long W, long sh, long sw, long u0, long urows,
                                long Wp, long L, long Wb, float *buf) {
    static const int evenIdx[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
    static const int oddIdx[16] = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
    __m512i ie = _mm512_loadu_si512(evenIdx), io = _mm512_loadu_si512(oddIdx);
    for (long c = 0; c < C; c++)
        for (long a = 0; a < sh; a++)
            for (long r = 0; r < urows; r++) {
                float *d[2];
                for (long b = 0; b < sw; b++) {
                    d[b] = buf + (((c * sh + a) * sw + b) * urows + r) * Wb;
                    zero_run(d[b], L);
                    zero_run(d[b] + L + Wp, Wb - L - Wp);
                    d[b] += L;
                }
                long iy = sh * (u0 + r) + a;
                if (iy < 0 || iy >= H) {
                    for (long b = 0; b < sw; b++) zero_run(d[b], Wp);
                    continue;
                }
                const float *row = x + (c * H + iy) * W;
                if (sw == 1) {
                    copy_run(d[0], row, W, 1);
                    continue;
                }
                for (long v = 0; v < Wp; v += 16) {
                    long n = W - 2 * v;  // source elements left from column 2v
                    __m512 lo = _mm512_maskz_loadu_ps(lanes(n), row + 2 * v);
                    __m512 hi = _mm512_maskz_loadu_ps(lanes(n - 16), row + 2 * v + 16);
                    __mmask16 m = lanes(Wp - v);
                    _mm512_mask_storeu_ps(d[0] + v, m, _mm512_permutex2var_ps(lo, ie, hi));
                    _mm512_mask_storeu_ps(d[1] + v, m, _mm512_permutex2var_ps(lo, io, hi));
                }
            }
}

/// 16 values from column v of phase b of an input row of W floats (stride sw = 1 or 2 across),
/// zero past the row.
TARGET static inline __m512 phase16(const float *row, long W, long sw, long b, long v, __m512i ie, __m512i io) {
    if (sw == 1) return _mm512_maskz_loadu_ps(lanes(W - v), row + v);
    long n = W - 2 * v;
    __m512 lo = _mm512_maskz_loadu_ps(lanes(n), row + 2 * v);
    __m512 hi = _mm512_maskz_loadu_ps(lanes(n - 16), row + 2 * v + 16);
    return _mm512_permutex2var_ps(lo, b ? io : ie, hi);
}

/// `split_phases` in bfloat16 channel pairs: buf holds 32-bit elements
///     buf[((q*sh + a)*sw + b)*urows + r][L + v] = (bf16 P_ab[2q][u0+r][v], bf16 P_ab[2q+1][u0+r][v])
/// (low half the even channel; a channel past C reads as zero), rounded to nearest even, for
/// q < ceil(C/2), padded with zeros as there.
TARGET_BF16 static void split_phases_bf16(const float *x, long C, long H, long W, long sh, long sw, long u0,
                                          long urows, long Wp, long L, long Wb, uint32_t *buf) {
    static const int evenIdx[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
    static const int oddIdx[16] = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
    static const short inter[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                    8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    __m512i ie = _mm512_loadu_si512(evenIdx), io = _mm512_loadu_si512(oddIdx), ip = _mm512_loadu_si512(inter);
    long Cq = (C + 1) / 2;
    for (long q = 0; q < Cq; q++)
        for (long a = 0; a < sh; a++)
            for (long r = 0; r < urows; r++) {
                long iy = sh * (u0 + r) + a;
                int inside = iy >= 0 && iy < H;
                const float *r0 = inside ? x + (2 * q * H + iy) * W : 0;
                const float *r1 = inside && 2 * q + 1 < C ? x + ((2 * q + 1) * H + iy) * W : 0;
                for (long b = 0; b < sw; b++) {
                    uint32_t *d = buf + (((q * sh + a) * sw + b) * urows + r) * Wb;
                    zero_run((float *)d, L);
                    zero_run((float *)d + L + Wp, Wb - L - Wp);
                    d += L;
                    if (!r0) {
                        zero_run((float *)d, Wp);
                        continue;
                    }
                    for (long v = 0; v < Wp; v += 16) {
                        __m512 lo = phase16(r0, W, sw, b, v, ie, io);
                        __m512 hi = r1 ? phase16(r1, W, sw, b, v, ie, io) : _mm512_setzero_ps();
                        __m512i pair = _mm512_permutexvar_epi16(ip, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
                        _mm512_mask_storeu_epi32(d + v, lanes(Wp - v), pair);
                    }
                }
            }
}

/// Where one chunk's phase rows lie in the buffer (see `driver_conv_phases`).
typedef struct {
    const cgemm_src *s;
    long sh, sw, Wb, L;
    /// Phase rows u0..<u1 are in the buffer, urows of them per (channel unit, phase).
    long u0, u1, urows;
    /// Per kernel column j: its column offset and its phase across.
    const long *dj, *bj;
} PhaseRows;

/// The steps of output row y for depth units g0..<g0+n (unit g = (c, i, j), c a channel or a
/// channel pair): the offset of each unit's B vectors in the buffer and its A row relative to g0;
/// units whose phase row lies outside the image are left out. Returns how many were written.
static long row_steps(const PhaseRows *g, long y, long g0, long n, DirectStep *out) {
    const cgemm_src *s = g->s;
    long khw = s->kh * s->kw, c = g0 / khw, rem = g0 % khw, i = rem / s->kw, j = rem % s->kw, count = 0;
    for (long kk = 0; kk < n; kk++) {
        long di = floor_div(i - s->ph, g->sh), u = y + di;
        if (u >= g->u0 && u < g->u1) {
            long a = (i - s->ph) - g->sh * di;
            out[count].off = (((c * g->sh + a) * g->sw + g->bj[j]) * g->urows + (u - g->u0)) * g->Wb + g->L + g->dj[j];
            out[count].k = (int32_t)kk;
            count++;
        }
        if (++j == s->kw) {
            j = 0;
            if (++i == s->kh) {
                i = 0;
                c++;
            }
        }
    }
    return count;
}

/// Output rows m0..<m1 of the tile `s` (stride 1 or 2 across) by the direct microkernels on
/// the input's phases (see "Direct convolution"): per frame, chunks of output rows whose phase
/// rows fit PHASE_CHUNK_FLOATS are split into the per-thread buffer, then each output row runs
/// its step list. Returns -1 when the buffers cannot be allocated.
///
/// With `pairs` (bfloat16), the buffer holds channel pairs (`split_phases_bf16`), A is packed by
/// `cgemm_pack_a_bf16_pairs` and a depth unit (a step, and `kc` / 2 per slice) is a pair of
/// channels at one tap; `Ap` then points at the bfloat16 panels.
TARGET static int driver_conv_phases(long m0, long m1, const void *Ap, long Mpad, long kcDepth, int pairs,
                                     const cgemm_src *s, const OutMap *o) {
    DirectStep steps[DIRECT_MAX_KC];
    float spill[MR * NR] __attribute__((aligned(64)));
    long sh = s->sh, sw = s->sw;
    long plane = s->H * s->W, khw = s->kh * s->kw;
    // Depth in units of one 32-bit A element per row: taps (float32) or channel pairs at a tap.
    long Cb = pairs ? (s->C + 1) / 2 : s->C, K = Cb * khw, kc = pairs ? kcDepth / 2 : kcDepth;
    const uint32_t *A = Ap;
    long Hp = (s->H + sh - 1) / sh, Wp = (s->W + sw - 1) / sw;
    long diLo = floor_div(-s->ph, sh), diHi = floor_div(s->kh - 1 - s->ph, sh), halo = diHi - diLo;
    long dj[MAX_KW], bj[MAX_KW], djLo = 0, djHi = 0;
    for (long j = 0; j < s->kw; j++) {
        dj[j] = floor_div(j - s->pw, sw);
        bj[j] = (j - s->pw) - sw * dj[j];
        djLo = min_l(djLo, dj[j]);
        djHi = max_l(djHi, dj[j]);
    }
    // Phase rows padded with zeros: L columns before (the lanes left of the image), enough after
    // for every stored lane (x < OW); the buffer's tail covers the last row's unstored lanes.
    long L = -djLo, Wb = L + max_l(Wp, s->OW + djHi), tail = NR + 16;
    long rowFloats = Cb * sh * sw * Wb;
    long chunk = max_l(1, PHASE_CHUNK_FLOATS / max_l(1, rowFloats) - halo);
    chunk = min_l(chunk, s->rows);
    PackBuffers *bufs = pack_buffers();
    if (!bufs) return -1;
    size_t need = ((size_t)rowFloats * (size_t)(chunk + halo) + (size_t)tail) * sizeof(float);
    float *buf = ensure((void **)&bufs->phases, &bufs->capPhases, need);
    if (!buf) return -1;
    // Rows whose taps all read inside the image share one step list over the whole depth (the
    // slice of depth pc.. is entries pc.., its k relative to the slice), built for the chunk's
    // first such row and shifted by whole buffer rows for the others.
    DirectStep *full = ensure(&bufs->steps, &bufs->capSteps, (size_t)K * sizeof(DirectStep));
    if (!full) return -1;
    for (long fi = 0; fi < s->fcount; fi++) {
        const float *frame = s->x + (s->f0 + fi) * s->C * plane;
        for (long yc = s->r0; yc < s->r0 + s->rows; yc += chunk) {
            long ny = min_l(chunk, s->r0 + s->rows - yc);
            long u0 = max_l(0, yc + diLo), u1 = min_l(Hp, yc + ny - 1 + diHi + 1);
            long urows = max_l(0, u1 - u0), yfull = -1;
            PhaseRows g = {s, sh, sw, Wb, L, u0, u1, urows, dj, bj};
            if (pairs) split_phases_bf16(frame, s->C, s->H, s->W, sh, sw, u0, urows, Wp, L, Wb, (uint32_t *)buf);
            else split_phases(frame, s->C, s->H, s->W, sh, sw, u0, urows, Wp, L, Wb, buf);
            zero_run(buf + rowFloats * urows, tail);
            for (long y = yc; y < yc + ny; y++) {
                long rowColumn = fi * s->rows * s->OW + (y - s->r0) * s->OW;
                int isFull = y + diLo >= u0 && y + diHi < u1;
                if (isFull && yfull < 0) {
                    yfull = y;
                    for (long pc = 0; pc < K; pc += kc) row_steps(&g, y, pc, min_l(kc, K - pc), full + pc);
                }
                for (long pc = 0; pc < K; pc += kc) {
                    long kcs = min_l(kc, K - pc), count = 0;
                    int first = pc == 0, last = pc + kcs == K;
                    int mode = last ? 2 : first ? 0 : 1;
                    const DirectStep *st = steps;
                    long shift = 0;
                    if (isFull) {
                        st = full + pc;
                        count = kcs;
                        shift = (y - yfull) * Wb;
                    } else {
                        count = row_steps(&g, y, pc, kcs, steps);
                    }
                    for (long x0 = 0; x0 < s->OW; x0 += NR) {
                        long nr = min_l(NR, s->OW - x0);
                        MicroPadded micro = nr > 32 ? micro_padded_8x48 : nr > 16 ? micro_padded_8x32 : micro_padded_8x16;
                        MicroPaddedBF16 microBF16 = nr > 32 ? micro_padded_bf16_8x48
                                                  : nr > 16 ? micro_padded_bf16_8x32 : micro_padded_bf16_8x16;
                        for (long ir = m0; ir < m1; ir += MR) {
                            TileOut t;
                            tile_out(o, ir, rowColumn + x0, min_l(MR, m1 - ir), nr, mode, first, spill, &t);
                            // Slice pc.. of A starts at pc * Mpad units, its panel ir at ir * kcs.
                            const uint32_t *ap = A + pc * Mpad + ir * kcs;
                            if (pairs) microBF16(count, st, ap, (const uint32_t *)buf + shift + x0, &t);
                            else micro(count, st, (const float *)ap, buf + shift + x0, &t);
                            if (!t.c) store_spilled(o, &t, ir, rowColumn + x0);
                        }
                    }
                }
            }
        }
    }
    return 0;
}

static int valid_rows(long m0, long m1, long Mpad) { return m0 >= 0 && m0 % MR == 0 && m1 >= m0 && m1 <= Mpad; }

int cgemm_conv(long m0, long m1, long K, const float *Ap, long Mpad, long kc, const cgemm_src *src,
               const cgemm_dst *dst) {
    if (!cgemm_available() || !valid_rows(m0, m1, Mpad) || K <= 0 || kc <= 0) return -1;
    long N = src->fcount * src->rows * src->OW;
    if (N <= 0 || m1 == m0) return 0;
    OutMap o = {dst, src->rows * src->OW, src->f0};
    if (direct_conv_applies(Mpad, kc, src))
        return driver_conv_phases(m0, m1, Ap, Mpad, kc, 0, src, &o);
    return driver_f32(m0, m1, N, K, Ap, Mpad, kc, src, 0, &o);
}

int cgemm_conv_bf16(long m0, long m1, long K, const uint16_t *Ap, long Mpad, long kc, const cgemm_src *src,
                    const cgemm_dst *dst) {
    if (!cgemm_bf16_available() || !valid_rows(m0, m1, Mpad) || K <= 0 || kc <= 0 || kc % 2) return -1;
    long N = src->fcount * src->rows * src->OW;
    if (N <= 0 || m1 == m0) return 0;
    OutMap o = {dst, src->rows * src->OW, src->f0};
    return driver_bf16(m0, m1, N, K, Ap, Mpad, kc, src, &o);
}

long cgemm_packed_a_bf16_pairs_count(long M, long C, long kh, long kw, long kc) {
    return cgemm_packed_a_bf16_count(M, (C + 1) / 2 * 2 * kh * kw, kc);
}

int cgemm_pack_a_bf16_pairs(long M, long C, long kh, long kw, const float *A, long kc, uint16_t *Ap) {
    if (M <= 0 || C <= 0 || kh <= 0 || kw <= 0 || kc <= 0 || kc % 2) return -1;
    long khw = kh * kw, K = C * khw, Kp = (C + 1) / 2 * 2 * khw;
    float *w = malloc((size_t)M * (size_t)Kp * sizeof(float));
    if (!w) return -1;
    // depth' ((q*kh + i)*kw + j)*2 + h holds channel 2q + h at tap (i, j).
    for (long m = 0; m < M; m++)
        for (long q = 0; q < (C + 1) / 2; q++)
            for (long t = 0; t < khw; t++)
                for (long h = 0; h < 2; h++) {
                    long c = 2 * q + h;
                    w[m * Kp + (q * khw + t) * 2 + h] = c < C ? A[m * K + c * khw + t] : 0.0f;
                }
    pack_a_bf16_panels(M, Kp, w, Kp, kc, Ap);
    free(w);
    return 0;
}

int cgemm_conv_bf16_is_direct(long Mpad, long kc, const cgemm_src *src) {
    // With AMX the packed GEMM wins for these layers too (a whole bLVNet-TAM-50 clip at 2
    // threads: 0.29-0.31 s with the direct vdpbf16ps kernel, 0.22-0.24 s without it, on a Xeon
    // of family 6 model 167).
    if (cgemm_amx_available()) return 0;
    return cgemm_bf16_available() && kc > 0 && kc % 2 == 0 && direct_conv_applies(Mpad, kc / 2, src);
}

int cgemm_conv_bf16_direct(long m0, long m1, const uint16_t *Ap, long Mpad, long kc, const cgemm_src *src,
                           const cgemm_dst *dst) {
    if (!cgemm_bf16_available() || !valid_rows(m0, m1, Mpad) || kc <= 0 || kc % 2) return -1;
    if (!direct_conv_possible(kc / 2, src)) return -1;
    long N = src->fcount * src->rows * src->OW;
    if (N <= 0 || m1 == m0) return 0;
    OutMap o = {dst, src->rows * src->OW, src->f0};
    return driver_conv_phases(m0, m1, Ap, Mpad, kc, 1, src, &o);
}

int cgemm_packed(long m0, long m1, long N, long K, const float *Ap, long Mpad, long kc, const float *Bp,
                 const cgemm_dst *dst) {
    if (!cgemm_available() || !valid_rows(m0, m1, Mpad) || K <= 0 || kc <= 0) return -1;
    if (N <= 0 || m1 == m0) return 0;
    OutMap o = {dst, N, 0};
    return driver_f32(m0, m1, N, K, Ap, Mpad, kc, 0, Bp, &o);
}

int cgemm_sgemm(long M, long N, long K, const float *A, long lda, const float *B, long ldb, float *C,
                long ldc) {
    if (!cgemm_available() || M < 0 || N < 0 || K < 0) return -1;
    if (M == 0 || N == 0) return 0;
    if (K == 0) {
        for (long i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(float));
        return 0;
    }
    ensure_blocking();
    long kc = blocking.kc, Mpad = round_up(M, MR);
    PackBuffers *bufs = pack_buffers();
    if (!bufs) return -1;
    float *Ap = ensure((void **)&bufs->a, &bufs->capA, (size_t)Mpad * K * sizeof(float));
    if (!Ap) return -1;
    pack_a_avx(M, K, A, lda, kc, Ap);
    cgemm_src s = {B, K, 1, ldb, 1, 1, 1, 1, 0, 0, N, 0, 1, 0, 1};
    cgemm_dst d = {C, 0, 0, 0, ldc, 0, 0};
    OutMap o = {&d, N, 0};
    return driver_f32(0, M, N, K, Ap, Mpad, kc, &s, 0, &o);
}

// MARK: - Peak

static double thread_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// Twelve independent chains with different start values (the compiler cannot merge them; the
// empty asm keeps them in registers). STEP(a) advances one chain.
#define PEAK_CHAINS(ATTR, NAME, SETUP, STEP)                                                                   \
    ATTR __attribute__((noinline)) static float NAME(long n, float s) {                                       \
        __m512 a0 = _mm512_set1_ps(s), a1 = _mm512_set1_ps(s + 1), a2 = _mm512_set1_ps(s + 2);                \
        __m512 a3 = _mm512_set1_ps(s + 3), a4 = _mm512_set1_ps(s + 4), a5 = _mm512_set1_ps(s + 5);            \
        __m512 a6 = _mm512_set1_ps(s + 6), a7 = _mm512_set1_ps(s + 7), a8 = _mm512_set1_ps(s + 8);            \
        __m512 a9 = _mm512_set1_ps(s + 9), a10 = _mm512_set1_ps(s + 10), a11 = _mm512_set1_ps(s + 11);        \
        SETUP;                                                                                                 \
        for (long i = 0; i < n; i++) {                                                                         \
            a0 = STEP(a0); a1 = STEP(a1); a2 = STEP(a2); a3 = STEP(a3); a4 = STEP(a4); a5 = STEP(a5);          \
            a6 = STEP(a6); a7 = STEP(a7); a8 = STEP(a8); a9 = STEP(a9); a10 = STEP(a10); a11 = STEP(a11);      \
            __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6),        \
                             "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));                              \
        }                                                                                                      \
        __m512 r = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),                 \
                                 _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));                \
        r = _mm512_add_ps(r, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));                  \
        return _mm512_reduce_add_ps(r);                                                                        \
    }

#define FMA_STEP(a) _mm512_fmadd_ps(a, m, c)
#define DP_STEP(a) _mm512_dpbf16_ps(a, x, y)
PEAK_CHAINS(TARGET, fma_chains, __m512 m = _mm512_set1_ps(0.999f); __m512 c = _mm512_set1_ps(1e-3f), FMA_STEP)
PEAK_CHAINS(TARGET_BF16, dp_chains,
            __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80); __m512bh y = (__m512bh)_mm512_set1_epi16(0x3a80), DP_STEP)

static volatile float peakSink;

/// GFLOP/s of `flopsPerStep` per step of `chains`, best of short rounds over about `seconds` of
/// this thread's CPU time; the floating-point operations done go to `*done`.
static double peak(float (*chains)(long, float), double flopsPerStep, double seconds, double *done) {
    long n = 1 << 20;
    double best = 0, spent = 0, total = 0;
    while (spent < seconds) {
        double t0 = thread_seconds();
        peakSink = chains(n, 1.0f);
        double t = thread_seconds() - t0;
        spent += t;
        total += n * flopsPerStep;
        if (t > 0 && n * flopsPerStep / t / 1e9 > best) best = n * flopsPerStep / t / 1e9;
        if (t < 0.01) n *= 2;
    }
    if (done) *done = total;
    return best;
}

double cgemm_peak_fma_gflops(double seconds, double *flops) {
    if (flops) *flops = 0;
    if (!cgemm_available()) return 0;
    return peak(fma_chains, 12.0 * 32, seconds, flops);
}

double cgemm_peak_bf16_gflops(double seconds, double *flops) {
    if (flops) *flops = 0;
    if (!cgemm_bf16_available()) return 0;
    return peak(dp_chains, 12.0 * 64, seconds, flops);
}

#else  // not x86-64: no kernels; callers use BLAS.

int cgemm_available(void) { return 0; }
int cgemm_bf16_available(void) { return 0; }
int cgemm_amx_available(void) { return 0; }

cgemm_blocking cgemm_get_blocking(void) {
    cgemm_blocking b = {32768, 1048576, 96, 192, 256, 384};
    return b;
}

void cgemm_set_blocking(long kc, long kc_bf16, long mc, long nc) {
    (void)kc; (void)kc_bf16; (void)mc; (void)nc;
}

void cgemm_set_prefetch(long channels) { (void)channels; }

void cgemm_set_direct(int on) { (void)on; }

void cgemm_set_direct_conv(int mode) { (void)mode; }

int cgemm_conv_is_direct(long Mpad, long kc, const cgemm_src *src) {
    (void)Mpad; (void)kc; (void)src;
    return 0;
}

static long round_up_portable(long a, long b) { return (a + b - 1) / b * b; }

long cgemm_packed_a_floats(long M, long K) { return round_up_portable(M, CGEMM_MR) * K; }

long cgemm_packed_a_bf16_count(long M, long K, long kc) {
    long total = 0;
    for (long k0 = 0; k0 < K; k0 += kc) total += round_up_portable(K - k0 < kc ? K - k0 : kc, 2);
    return round_up_portable(M, CGEMM_MR) * total;
}

void cgemm_pack_a(long M, long K, const float *A, long lda, long kc, float *Ap) {
    long Mpad = round_up_portable(M, CGEMM_MR);
    for (long k0 = 0; k0 < K; k0 += kc) {
        long kcs = K - k0 < kc ? K - k0 : kc;
        for (long i = 0; i < Mpad; i += CGEMM_MR)
            for (long k = 0; k < kcs; k++)
                for (long r = 0; r < CGEMM_MR; r++)
                    Ap[k0 * Mpad + i * kcs + k * CGEMM_MR + r] = i + r < M ? A[(i + r) * lda + k0 + k] : 0.0f;
    }
}

void cgemm_pack_a_bf16(long M, long K, const float *A, long lda, long kc, uint16_t *Ap) {
    (void)M; (void)K; (void)A; (void)lda; (void)kc; (void)Ap;
}

int cgemm_conv(long m0, long m1, long K, const float *Ap, long Mpad, long kc, const cgemm_src *src,
               const cgemm_dst *dst) {
    (void)m0; (void)m1; (void)K; (void)Ap; (void)Mpad; (void)kc; (void)src; (void)dst;
    return -1;
}

int cgemm_conv_bf16(long m0, long m1, long K, const uint16_t *Ap, long Mpad, long kc, const cgemm_src *src,
                    const cgemm_dst *dst) {
    (void)m0; (void)m1; (void)K; (void)Ap; (void)Mpad; (void)kc; (void)src; (void)dst;
    return -1;
}

long cgemm_packed_a_bf16_pairs_count(long M, long C, long kh, long kw, long kc) {
    return cgemm_packed_a_bf16_count(M, (C + 1) / 2 * 2 * kh * kw, kc);
}

int cgemm_pack_a_bf16_pairs(long M, long C, long kh, long kw, const float *A, long kc, uint16_t *Ap) {
    (void)M; (void)C; (void)kh; (void)kw; (void)A; (void)kc; (void)Ap;
    return -1;
}

int cgemm_conv_bf16_is_direct(long Mpad, long kc, const cgemm_src *src) {
    (void)Mpad; (void)kc; (void)src;
    return 0;
}

int cgemm_conv_bf16_direct(long m0, long m1, const uint16_t *Ap, long Mpad, long kc, const cgemm_src *src,
                           const cgemm_dst *dst) {
    (void)m0; (void)m1; (void)Ap; (void)Mpad; (void)kc; (void)src; (void)dst;
    return -1;
}

int cgemm_packed(long m0, long m1, long N, long K, const float *Ap, long Mpad, long kc, const float *Bp,
                 const cgemm_dst *dst) {
    (void)m0; (void)m1; (void)N; (void)K; (void)Ap; (void)Mpad; (void)kc; (void)Bp; (void)dst;
    return -1;
}

int cgemm_sgemm(long M, long N, long K, const float *A, long lda, const float *B, long ldb, float *C,
                long ldc) {
    (void)M; (void)N; (void)K; (void)A; (void)lda; (void)B; (void)ldb; (void)C; (void)ldc;
    return -1;
}

double cgemm_peak_fma_gflops(double seconds, double *flops) {
    (void)seconds;
    if (flops) *flops = 0;
    return 0;
}

double cgemm_peak_bf16_gflops(double seconds, double *flops) {
    (void)seconds;
    if (flops) *flops = 0;
    return 0;
}

#endif
