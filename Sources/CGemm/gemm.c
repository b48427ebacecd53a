// Row-major SGEMM with an AVX-512F register-blocked microkernel.
//
// Blocking (per thread, single-threaded):
//   for pc in K step KC:                     A and B slices of depth kc
//     for jc in N step NC:                   pack B[pc.., jc..] into NR-wide panels   (kc x NC, L2)
//       for ic in M step MC:                 pack A[ic.., pc..] into MR-tall panels   (MC x kc, L2)
//         for each B panel (kc x NR, L1):
//           for each A panel: microkernel    C[MR x NR] (+)= Apanel x Bpanel
// The first depth slice stores into C, later ones add to it. Panels are zero-padded to full
// MR / NR, so only the stores of edge tiles are masked.
#include "cgemm.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#endif

int cgemm_available(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    // The kernels are compiled for AVX-512 F and VL (the compiler may pick VL encodings).
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") ? 1 : 0;
#else
    return 0;
#endif
}

#if defined(__x86_64__)

enum { MR = 8, NR = 48, KC = 192, NC = 576, MC = 256 };

// Per-thread pack buffers (64-byte aligned), grown on demand and freed when the thread exits
// (worker threads come and go, so plain thread-locals would leak).
typedef struct {
    float *a, *b;
    size_t capA, capB;
} PackBuffers;

static pthread_key_t packKey;
static pthread_once_t packOnce = PTHREAD_ONCE_INIT;
static int packKeyOK = 0;

static void pack_free(void *p) {
    PackBuffers *bufs = p;
    free(bufs->a);
    free(bufs->b);
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

static float *ensure(float **buf, size_t *cap, size_t count) {
    if (*cap >= count) return *buf;
    free(*buf);
    size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
    *buf = aligned_alloc(64, bytes);
    *cap = *buf ? count : 0;
    return *buf;
}

static inline __mmask16 lanes(long n) {
    if (n >= 16) return (__mmask16)0xFFFF;
    if (n <= 0) return 0;
    return (__mmask16)((1u << n) - 1);
}

// Bp[panel][k][0..NR) = B[k, j0 + panel*NR + 0..NR), zero beyond n.
__attribute__((target("avx512f,avx512vl,fma")))
static void pack_b(long kc, long n, const float *B, long ldb, float *Bp) {
    for (long j = 0; j < n; j += NR) {
        long w = n - j < NR ? n - j : NR;
        const float *src = B + j;
        float *dst = Bp + j * kc;
        if (w == NR) {
            for (long k = 0; k < kc; k++) {
                const float *s = src + k * ldb;
                _mm512_store_ps(dst, _mm512_loadu_ps(s));
                _mm512_store_ps(dst + 16, _mm512_loadu_ps(s + 16));
                _mm512_store_ps(dst + 32, _mm512_loadu_ps(s + 32));
                dst += NR;
            }
        } else {
            __mmask16 m0 = lanes(w), m1 = lanes(w - 16), m2 = lanes(w - 32);
            for (long k = 0; k < kc; k++) {
                const float *s = src + k * ldb;
                _mm512_store_ps(dst, _mm512_maskz_loadu_ps(m0, s));
                _mm512_store_ps(dst + 16, _mm512_maskz_loadu_ps(m1, s + 16));
                _mm512_store_ps(dst + 32, _mm512_maskz_loadu_ps(m2, s + 32));
                dst += NR;
            }
        }
    }
}

// dst[k*8 + r] = rows[r][k] for k < 8: an 8x8 transpose through 256-bit registers.
__attribute__((target("avx512f,avx512vl,fma")))
static inline void transpose8x8(const float *const rows[8], long k, float *dst) {
    __m256 r0 = _mm256_loadu_ps(rows[0] + k), r1 = _mm256_loadu_ps(rows[1] + k);
    __m256 r2 = _mm256_loadu_ps(rows[2] + k), r3 = _mm256_loadu_ps(rows[3] + k);
    __m256 r4 = _mm256_loadu_ps(rows[4] + k), r5 = _mm256_loadu_ps(rows[5] + k);
    __m256 r6 = _mm256_loadu_ps(rows[6] + k), r7 = _mm256_loadu_ps(rows[7] + k);
    // Pairs of rows interleaved, then quadruples, then 128-bit halves exchanged.
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_store_ps(dst + 0, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_store_ps(dst + 8, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_store_ps(dst + 16, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_store_ps(dst + 24, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_store_ps(dst + 32, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_store_ps(dst + 40, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_store_ps(dst + 48, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_store_ps(dst + 56, _mm256_permute2f128_ps(s3, s7, 0x31));
}

// Ap[panel][k][0..MR) = A[i0 + panel*MR + 0..MR, k], zero beyond m.
__attribute__((target("avx512f,avx512vl,fma")))
static void pack_a(long kc, long m, const float *A, long lda, float *Ap) {
    for (long i = 0; i < m; i += MR) {
        long h = m - i < MR ? m - i : MR;
        float *dst = Ap + i * kc;
        if (h == MR) {
            const float *r0 = A + (i + 0) * lda, *r1 = A + (i + 1) * lda, *r2 = A + (i + 2) * lda,
                        *r3 = A + (i + 3) * lda, *r4 = A + (i + 4) * lda, *r5 = A + (i + 5) * lda,
                        *r6 = A + (i + 6) * lda, *r7 = A + (i + 7) * lda;
            const float *const rows[8] = {r0, r1, r2, r3, r4, r5, r6, r7};
            long k = 0;
            for (; k + 8 <= kc; k += 8) {
                transpose8x8(rows, k, dst);
                dst += 8 * MR;
            }
            for (; k < kc; k++) {
                dst[0] = r0[k]; dst[1] = r1[k]; dst[2] = r2[k]; dst[3] = r3[k];
                dst[4] = r4[k]; dst[5] = r5[k]; dst[6] = r6[k]; dst[7] = r7[k];
                dst += MR;
            }
        } else {
            for (long k = 0; k < kc; k++) {
                for (long r = 0; r < MR; r++) dst[r] = r < h ? A[(i + r) * lda + k] : 0.0f;
                dst += MR;
            }
        }
    }
}

#define ROW_FMA(r)                                                     \
    do {                                                               \
        __m512 a_ = _mm512_set1_ps(a[r]);                              \
        c##r##0 = _mm512_fmadd_ps(a_, b0, c##r##0);                    \
        if (NV > 1) c##r##1 = _mm512_fmadd_ps(a_, b1, c##r##1);        \
        if (NV > 2) c##r##2 = _mm512_fmadd_ps(a_, b2, c##r##2);        \
    } while (0)

#define ROW_STORE(r)                                                                                  \
    do {                                                                                              \
        if (r < mr) {                                                                                 \
            float *d_ = C + (r) * ldc;                                                                \
            if (add) {                                                                                \
                c##r##0 = _mm512_add_ps(c##r##0, _mm512_maskz_loadu_ps(m0, d_));                      \
                if (NV > 1) c##r##1 = _mm512_add_ps(c##r##1, _mm512_maskz_loadu_ps(m1, d_ + 16));     \
                if (NV > 2) c##r##2 = _mm512_add_ps(c##r##2, _mm512_maskz_loadu_ps(m2, d_ + 32));     \
            }                                                                                         \
            _mm512_mask_storeu_ps(d_, m0, c##r##0);                                                   \
            if (NV > 1) _mm512_mask_storeu_ps(d_ + 16, m1, c##r##1);                                  \
            if (NV > 2) _mm512_mask_storeu_ps(d_ + 32, m2, c##r##2);                                  \
        }                                                                                             \
    } while (0)

// C[mr x nr] (+)= Ap[kc x MR]^T x Bp[kc x NR] for nr <= 16*NV: 8*NV zmm accumulators, NV B
// vectors and one broadcast per step (NV = 3: 24 accumulators; 1 and 2 for narrow edge panels).
#define MICRO(NAME, NVEC)                                                                           \
__attribute__((target("avx512f,avx512vl,fma")))                                                   \
static void NAME(long kc, const float *restrict a, const float *restrict b, float *C, long ldc,   \
                 long mr, long nr, int add) {                                                     \
    const int NV = NVEC;                                                                          \
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;      \
    __m512 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;                      \
    __m512 c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00;                      \
    __m512 c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;                      \
    for (long k = 0; k < kc; k++) {                                                               \
        __m512 b0 = _mm512_load_ps(b), b1 = c00, b2 = c00;                                        \
        if (NVEC > 1) b1 = _mm512_load_ps(b + 16);                                                \
        if (NVEC > 2) b2 = _mm512_load_ps(b + 32);                                                \
        _mm_prefetch((const char *)(b + 8 * NR), _MM_HINT_T0);                                    \
        ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3);                                           \
        ROW_FMA(4); ROW_FMA(5); ROW_FMA(6); ROW_FMA(7);                                           \
        a += MR;                                                                                  \
        b += NR;                                                                                  \
    }                                                                                             \
    __mmask16 m0 = lanes(nr), m1 = lanes(nr - 16), m2 = lanes(nr - 32);                           \
    (void)m1; (void)m2; (void)b;                                                                  \
    ROW_STORE(0); ROW_STORE(1); ROW_STORE(2); ROW_STORE(3);                                       \
    ROW_STORE(4); ROW_STORE(5); ROW_STORE(6); ROW_STORE(7);                                       \
}

MICRO(micro_8x48, 3)
MICRO(micro_8x32, 2)
MICRO(micro_8x16, 1)

__attribute__((target("avx512f,avx512vl,fma")))
static int sgemm_avx512(long M, long N, long K, const float *A, long lda, const float *B, long ldb,
                        float *C, long ldc) {
    long nc0 = N < NC ? N : NC, mc0 = M < MC ? M : MC;
    long kc0 = K < KC ? K : KC;
    PackBuffers *bufs = pack_buffers();
    if (!bufs) return -1;
    float *Bp = ensure(&bufs->b, &bufs->capB, (size_t)kc0 * ((nc0 + NR - 1) / NR * NR));
    float *Ap = ensure(&bufs->a, &bufs->capA, (size_t)kc0 * ((mc0 + MR - 1) / MR * MR));
    if (!Bp || !Ap) return -1;
    if (K == 0) {
        for (long i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(float));
        return 0;
    }
    for (long pc = 0; pc < K; pc += KC) {
        long kc = K - pc < KC ? K - pc : KC;
        int add = pc > 0;
        for (long jc = 0; jc < N; jc += NC) {
            long nc = N - jc < NC ? N - jc : NC;
            pack_b(kc, nc, B + pc * ldb + jc, ldb, Bp);
            for (long ic = 0; ic < M; ic += MC) {
                long mc = M - ic < MC ? M - ic : MC;
                pack_a(kc, mc, A + ic * lda + pc, lda, Ap);
                for (long jr = 0; jr < nc; jr += NR) {
                    long nr = nc - jr < NR ? nc - jr : NR;
                    const float *bp = Bp + jr * kc;
                    void (*micro)(long, const float *, const float *, float *, long, long, long, int) =
                        nr > 32 ? micro_8x48 : nr > 16 ? micro_8x32 : micro_8x16;
                    for (long ir = 0; ir < mc; ir += MR) {
                        long mr = mc - ir < MR ? mc - ir : MR;
                        micro(kc, Ap + ir * kc, bp, C + (ic + ir) * ldc + jc + jr, ldc, mr, nr, add);
                    }
                }
            }
        }
    }
    return 0;
}

int cgemm_sgemm(long M, long N, long K, const float *A, long lda, const float *B, long ldb,
                float *C, long ldc) {
    static int available = -1;
    if (available < 0) available = cgemm_available();
    if (!available || M < 0 || N < 0 || K < 0) return -1;
    if (M == 0 || N == 0) return 0;
    return sgemm_avx512(M, N, K, A, lda, B, ldb, C, ldc);
}

#else

int cgemm_sgemm(long M, long N, long K, const float *A, long lda, const float *B, long ldb,
                float *C, long ldc) {
    (void)M; (void)N; (void)K; (void)A; (void)lda; (void)B; (void)ldb; (void)C; (void)ldc;
    return -1;
}

#endif
