// Winograd convolution F(m x m, 3 x 3), stride 1, padding 1 (m = 2, 4 or 6; alpha = m + 2).
//
// The output is cut into m x m tiles (the last row and column of tiles may stick out). Per tile
// and channel the alpha x alpha input patch d becomes V = B^T d B; per output channel the
// kernel g (transformed once, at bind) is U = G g G^T; then for each of the alpha^2 positions
// xi, M_xi[K, tiles] = U_xi[K, C] x V_xi[C, tiles] is one GEMM on the packed microkernel of
// gemm.c, and each tile's output is Y = A^T M A (+ bias, + residual, ReLU). A block of tiles is
// transformed 16 at a time (one tile per lane: masked gathers of the patches, masked scatters
// of the results), its V written straight in the GEMM's packed panel layout.
#include "cgemm.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define TARGET __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))

int cgemm_packed(long m0, long m1, long N, long K, const float *Ap, long Mpad, long kc, const float *Bp,
                 const cgemm_dst *dst);

static long round_up(long a, long b) { return (a + b - 1) / b * b; }
static long min_l(long a, long b) { return a < b ? a : b; }

// MARK: - The transforms (Lavin & Gray; points 0, +-1, +-2, +-1/2, infinity)

static const double BT2[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double AT2[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};

static const double BT4[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                 {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
static const double G4[6][3] = {{1.0 / 4, 0, 0},
                                {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                {0, 0, 1}};
static const double AT4[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};

static const double BT6[8][8] = {{1, 0, -21.0 / 4, 0, 21.0 / 4, 0, -1, 0},
                                 {0, 1, 1, -17.0 / 4, -17.0 / 4, 1, 1, 0},
                                 {0, -1, 1, 17.0 / 4, -17.0 / 4, -1, 1, 0},
                                 {0, 0.5, 0.25, -2.5, -1.25, 2, 1, 0},
                                 {0, -0.5, 0.25, 2.5, -1.25, -2, 1, 0},
                                 {0, 2, 4, -2.5, -5, 0.5, 1, 0},
                                 {0, -2, 4, 2.5, -5, -0.5, 1, 0},
                                 {0, -1, 0, 21.0 / 4, 0, -21.0 / 4, 0, 1}};
static const double G6[8][3] = {{1, 0, 0},
                                {-2.0 / 9, -2.0 / 9, -2.0 / 9},
                                {-2.0 / 9, 2.0 / 9, -2.0 / 9},
                                {1.0 / 90, 1.0 / 45, 2.0 / 45},
                                {1.0 / 90, -1.0 / 45, 2.0 / 45},
                                {32.0 / 45, 16.0 / 45, 8.0 / 45},
                                {32.0 / 45, -16.0 / 45, 8.0 / 45},
                                {0, 0, 1}};
static const double AT6[6][8] = {{1, 1, 1, 1, 1, 1, 1, 0},
                                 {0, 1, -1, 2, -2, 0.5, -0.5, 0},
                                 {0, 1, 1, 4, 4, 0.25, 0.25, 0},
                                 {0, 1, -1, 8, -8, 0.125, -0.125, 0},
                                 {0, 1, 1, 16, 16, 1.0 / 16, 1.0 / 16, 0},
                                 {0, 1, -1, 32, -32, 1.0 / 32, -1.0 / 32, 1}};

static int valid_m(int m) { return m == 2 || m == 4 || m == 6; }

/// The matrices of F(m, 3) as doubles: BT [alpha][alpha], G [alpha][3], AT [m][alpha].
int cgemm_wino_matrices(int m, double *bt, double *g, double *at) {
    if (!valid_m(m)) return -1;
    int a = m + 2;
    const double *B = m == 2 ? &BT2[0][0] : m == 4 ? &BT4[0][0] : &BT6[0][0];
    const double *Gm = m == 2 ? &G2[0][0] : m == 4 ? &G4[0][0] : &G6[0][0];
    const double *A = m == 2 ? &AT2[0][0] : m == 4 ? &AT4[0][0] : &AT6[0][0];
    if (bt) memcpy(bt, B, sizeof(double) * a * a);
    if (g) memcpy(g, Gm, sizeof(double) * a * 3);
    if (at) memcpy(at, A, sizeof(double) * m * a);
    return 0;
}

// MARK: - Weights (once, at bind)

long cgemm_wino_packed_u_floats(int m, long K, long C) {
    long a = m + 2;
    return a * a * round_up(K, CGEMM_MR) * C;
}

/// cgemm_wino_pack_u for one panel of 8 rows at a time: lane r is row i + r, its 9 taps gathered
/// (rows past K masked, their U stored as +0), the same double products and sums in the
/// same order as the scalar loop below (explicit multiplies and adds, no fused ones: the results
/// are bit-identical), each position's 8 rows stored as the panel's 8 contiguous floats.
TARGET static void wino_pack_u_avx(int m, long K, long C, const float *w, long kc, float *Up) {
    int a = m + 2;
    double Gm[8][3];
    cgemm_wino_matrices(m, 0, &Gm[0][0], 0);
    long Mpad = round_up(K, CGEMM_MR), plane = Mpad * C;
    __m256i rows = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)(C * 9)));
    for (long c0 = 0; c0 < C; c0 += kc) {
        long kcs = C - c0 < kc ? C - c0 : kc;
        for (long i = 0; i < Mpad; i += CGEMM_MR) {
            float *panel = Up + c0 * Mpad + i * kcs;
            __mmask8 valid = (__mmask8)(K - i >= 8 ? 0xff : (1u << (K - i)) - 1);
            for (long c = c0; c < c0 + kcs; c++) {
                const float *g = w + (i * C + c) * 9;
                __m512d gv[9], t[8][3];
                for (int j = 0; j < 9; j++)
                    gv[j] = _mm512_cvtps_pd(_mm256_mmask_i32gather_ps(_mm256_setzero_ps(), valid, rows, g + j, 4));
                for (int y = 0; y < a; y++)
                    for (int j = 0; j < 3; j++)
                        t[y][j] = _mm512_add_pd(_mm512_add_pd(_mm512_mul_pd(_mm512_set1_pd(Gm[y][0]), gv[j]),
                                                              _mm512_mul_pd(_mm512_set1_pd(Gm[y][1]), gv[3 + j])),
                                                _mm512_mul_pd(_mm512_set1_pd(Gm[y][2]), gv[6 + j]));
                float *dst = panel + (c - c0) * CGEMM_MR;
                for (int y = 0; y < a; y++)
                    for (int x = 0; x < a; x++) {
                        __m512d u = _mm512_add_pd(_mm512_add_pd(_mm512_mul_pd(t[y][0], _mm512_set1_pd(Gm[x][0])),
                                                                _mm512_mul_pd(t[y][1], _mm512_set1_pd(Gm[x][1]))),
                                                  _mm512_mul_pd(t[y][2], _mm512_set1_pd(Gm[x][2])));
                        // Rows past K: +0 as cgemm_pack_a pads (their products may give -0).
                        _mm256_storeu_ps(dst + (y * a + x) * plane, _mm512_cvtpd_ps(_mm512_maskz_mov_pd(valid, u)));
                    }
            }
        }
    }
}

int cgemm_wino_pack_u(int m, long K, long C, const float *w, long kc, float *Up) {
    if (!valid_m(m) || K <= 0 || C <= 0 || kc <= 0) return -1;
    // The gather's offsets (7 rows of C * 9 floats) must fit int32.
    if (CGEMM_MR == 8 && C <= (1L << 24) && cgemm_available()) {
        wino_pack_u_avx(m, K, C, w, kc, Up);
        return 0;
    }
    int a = m + 2;
    double Gm[8][3];
    cgemm_wino_matrices(m, 0, &Gm[0][0], 0);
    long Mpad = round_up(K, CGEMM_MR), plane = Mpad * C;
    // Up + xi * plane is U at position xi ([K][C]) in cgemm_pack_a's layout, written in place: per
    // depth slice c0 (kc wide), per panel of MR rows, kcs x MR floats; rows past K are zero. Per
    // (slice, panel) the 9-float weights of MR rows are read in order and each position's panel is
    // written front to back (no [alpha^2][K][C] intermediate: 16 MB and its page faults per
    // 512 x 512 layer).
    for (long c0 = 0; c0 < C; c0 += kc) {
        long kcs = C - c0 < kc ? C - c0 : kc;
        for (long i = 0; i < Mpad; i += CGEMM_MR) {
            float *panel = Up + c0 * Mpad + i * kcs;
            for (long c = c0; c < c0 + kcs; c++) {
                for (long r = 0; r < CGEMM_MR; r++) {
                    long k = i + r, at = (c - c0) * CGEMM_MR + r;
                    if (k >= K) {
                        for (int xi = 0; xi < a * a; xi++) panel[xi * plane + at] = 0.0f;
                        continue;
                    }
                    const float *g = w + (k * C + c) * 9;
                    double t[8][3];  // G g
                    for (int y = 0; y < a; y++)
                        for (int j = 0; j < 3; j++) t[y][j] = Gm[y][0] * g[0 * 3 + j] + Gm[y][1] * g[1 * 3 + j] + Gm[y][2] * g[2 * 3 + j];
                    for (int y = 0; y < a; y++)
                        for (int x = 0; x < a; x++)
                            panel[(y * a + x) * plane + at] = (float)(t[y][0] * Gm[x][0] + t[y][1] * Gm[x][1] + t[y][2] * Gm[x][2]);
                }
            }
        }
    }
    return 0;
}

// MARK: - Convolution

long cgemm_wino_scratch_floats(int m, long K, long C, long tiles) {
    long a = m + 2, tp = round_up(tiles, CGEMM_NR);
    return a * a * (C * tp + round_up(K, CGEMM_MR) * tp);
}

/// Per lane of a group of 16 tiles: its input offset (patch corner, channel 0), output offset
/// (tile corner, channel 0), and which patch rows/columns and output rows/columns are inside.
typedef struct {
    __m512i in, out;
    __mmask16 rowIn[8], colIn[8], rowOut[6], colOut[6];
} Group;

TARGET static void make_group(int m, long t0, long n, long H, long W, long C, long K, long TH, long TW, Group *g) {
    int a = m + 2;
    int in[16] __attribute__((aligned(64))), out[16] __attribute__((aligned(64)));
    for (int i = 0; i < 8; i++) g->rowIn[i] = g->colIn[i] = 0;
    for (int i = 0; i < 6; i++) g->rowOut[i] = g->colOut[i] = 0;
    long OH = H, OW = W;  // stride 1, padding 1
    for (int l = 0; l < 16; l++) {
        in[l] = out[l] = 0;
        if (l >= n) continue;
        long t = t0 + l, f = t / (TH * TW), r = t % (TH * TW), ty = r / TW, tx = r % TW;
        long y0 = ty * m - 1, x0 = tx * m - 1;
        in[l] = (int)(f * C * H * W + y0 * W + x0);
        out[l] = (int)(f * K * OH * OW + ty * m * OW + tx * m);
        for (int i = 0; i < a; i++) {
            if (y0 + i >= 0 && y0 + i < H) g->rowIn[i] |= (__mmask16)(1u << l);
            if (x0 + i >= 0 && x0 + i < W) g->colIn[i] |= (__mmask16)(1u << l);
        }
        for (int i = 0; i < m; i++) {
            if (ty * m + i < OH) g->rowOut[i] |= (__mmask16)(1u << l);
            if (tx * m + i < OW) g->colOut[i] |= (__mmask16)(1u << l);
        }
    }
    g->in = _mm512_load_si512(in);
    g->out = _mm512_load_si512(out);
}

/// r[i][j] = sum_k X[i][k] * Mt[k][j] over vectors, Mt constant (zero terms skipped, the
/// compiler folds ones). X is rows x n, Mt n x cols.
#define MATMUL_RIGHT(X, Mt, rows, n, cols, R)                                                    \
    for (int i_ = 0; i_ < (rows); i_++)                                                          \
        for (int j_ = 0; j_ < (cols); j_++) {                                                    \
            __m512 acc_ = _mm512_setzero_ps();                                                   \
            for (int k_ = 0; k_ < (n); k_++) {                                                   \
                float c_ = (float)(Mt)[k_][j_];                                                  \
                if (c_ == 0.0f) continue;                                                        \
                if (c_ == 1.0f) acc_ = _mm512_add_ps(acc_, (X)[i_][k_]);                         \
                else if (c_ == -1.0f) acc_ = _mm512_sub_ps(acc_, (X)[i_][k_]);                   \
                else acc_ = _mm512_fmadd_ps(_mm512_set1_ps(c_), (X)[i_][k_], acc_);              \
            }                                                                                    \
            (R)[i_][j_] = acc_;                                                                  \
        }

/// r[i][j] = sum_k Ml[i][k] * X[k][j], Ml constant.
#define MATMUL_LEFT(Ml, X, rows, n, cols, R)                                                     \
    for (int i_ = 0; i_ < (rows); i_++)                                                          \
        for (int j_ = 0; j_ < (cols); j_++) {                                                    \
            __m512 acc_ = _mm512_setzero_ps();                                                   \
            for (int k_ = 0; k_ < (n); k_++) {                                                   \
                float c_ = (float)(Ml)[i_][k_];                                                  \
                if (c_ == 0.0f) continue;                                                        \
                if (c_ == 1.0f) acc_ = _mm512_add_ps(acc_, (X)[k_][j_]);                         \
                else if (c_ == -1.0f) acc_ = _mm512_sub_ps(acc_, (X)[k_][j_]);                   \
                else acc_ = _mm512_fmadd_ps(_mm512_set1_ps(c_), (X)[k_][j_], acc_);              \
            }                                                                                    \
            (R)[i_][j_] = acc_;                                                                  \
        }

#define OUTPUT_TRANSFORM(NAME, M_, ALPHA, ATM)                                                   \
TARGET static void NAME(const float *Mbuf, long mstrideXi, long tp, long q, long k0, long k1,     \
                        const Group *g, long ohw, long OW, const float *bias, const float *res,   \
                        int relu, float *out) {                                                  \
    for (long k = k0; k < k1; k++) {                                                             \
        __m512 mm[ALPHA][ALPHA], t[M_][ALPHA], y[M_][M_];                                         \
        const float *src = Mbuf + k * tp + q;                                                    \
        for (int i = 0; i < ALPHA; i++)                                                          \
            for (int j = 0; j < ALPHA; j++) mm[i][j] = _mm512_loadu_ps(src + (i * ALPHA + j) * mstrideXi); \
        MATMUL_LEFT(ATM, mm, M_, ALPHA, ALPHA, t);                                               \
        for (int i = 0; i < M_; i++)                                                             \
            for (int j = 0; j < M_; j++) {                                                       \
                __m512 acc_ = _mm512_setzero_ps();                                               \
                for (int k_ = 0; k_ < ALPHA; k_++) {                                             \
                    float c_ = (float)ATM[j][k_];                                                \
                    if (c_ == 0.0f) continue;                                                    \
                    if (c_ == 1.0f) acc_ = _mm512_add_ps(acc_, t[i][k_]);                        \
                    else if (c_ == -1.0f) acc_ = _mm512_sub_ps(acc_, t[i][k_]);                  \
                    else acc_ = _mm512_fmadd_ps(_mm512_set1_ps(c_), t[i][k_], acc_);             \
                }                                                                                \
                y[i][j] = acc_;                                                                  \
            }                                                                                    \
        __m512i base = _mm512_add_epi32(g->out, _mm512_set1_epi32((int)(k * ohw)));              \
        __m512 b = _mm512_set1_ps(bias ? bias[k] : 0.0f);                                        \
        for (int i = 0; i < M_; i++)                                                             \
            for (int j = 0; j < M_; j++) {                                                       \
                __mmask16 ok = g->rowOut[i] & g->colOut[j];                                      \
                __m512i idx = _mm512_add_epi32(base, _mm512_set1_epi32((int)(i * OW + j)));      \
                __m512 v = y[i][j];                                                              \
                if (bias) v = _mm512_add_ps(v, b);                                               \
                if (res) v = _mm512_add_ps(v, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), ok, idx, res, 4)); \
                if (relu) v = _mm512_max_ps(v, _mm512_setzero_ps());                             \
                _mm512_mask_i32scatter_ps(out, ok, idx, v, 4);                                   \
            }                                                                                    \
    }                                                                                            \
}

#define INPUT_ARGS const float *x, long plane, long W, long C, const Group *g, long c0, long c1, float *V, long vstrideXi, long kc, long tp, long q
// V = B^T d B for channels c0..<c1 of a group: t = B^T d, then v = t B (B[k][j] = BT[j][k]);
// stored in the packed layout of V_xi: slice c / kc, panel q / NR, row c % kc.
#define INPUT_TRANSFORM(NAME, ALPHA, BTM)                                                        \
TARGET static void NAME(INPUT_ARGS) {                                                            \
    for (long c = c0; c < c1; c++) {                                                             \
        __m512 d[ALPHA][ALPHA], t[ALPHA][ALPHA], v[ALPHA][ALPHA];                                \
        __m512i base = _mm512_add_epi32(g->in, _mm512_set1_epi32((int)(c * plane)));             \
        for (int i = 0; i < ALPHA; i++)                                                          \
            for (int j = 0; j < ALPHA; j++) {                                                    \
                __mmask16 ok = g->rowIn[i] & g->colIn[j];                                        \
                __m512i idx = _mm512_add_epi32(base, _mm512_set1_epi32((int)(i * W + j)));       \
                d[i][j] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), ok, idx, x, 4);          \
            }                                                                                    \
        MATMUL_LEFT(BTM, d, ALPHA, ALPHA, ALPHA, t);                                             \
        for (int i = 0; i < ALPHA; i++)                                                          \
            for (int j = 0; j < ALPHA; j++) {                                                    \
                __m512 acc_ = _mm512_setzero_ps();                                               \
                for (int k_ = 0; k_ < ALPHA; k_++) {                                             \
                    float c_ = (float)BTM[j][k_];                                                \
                    if (c_ == 0.0f) continue;                                                    \
                    if (c_ == 1.0f) acc_ = _mm512_add_ps(acc_, t[i][k_]);                        \
                    else if (c_ == -1.0f) acc_ = _mm512_sub_ps(acc_, t[i][k_]);                  \
                    else acc_ = _mm512_fmadd_ps(_mm512_set1_ps(c_), t[i][k_], acc_);             \
                }                                                                                \
                v[i][j] = acc_;                                                                  \
            }                                                                                    \
        long s = c / kc, kcs = min_l(kc, C - s * kc);                                            \
        float *dst = V + s * kc * tp + (q / CGEMM_NR) * kcs * CGEMM_NR + (c - s * kc) * CGEMM_NR + q % CGEMM_NR; \
        for (int i = 0; i < ALPHA; i++)                                                          \
            for (int j = 0; j < ALPHA; j++) _mm512_storeu_ps(dst + (i * ALPHA + j) * vstrideXi, v[i][j]); \
    }                                                                                            \
}

INPUT_TRANSFORM(input_f2, 4, BT2)
INPUT_TRANSFORM(input_f4, 6, BT4)
INPUT_TRANSFORM(input_f6, 8, BT6)
OUTPUT_TRANSFORM(output_f2, 2, 4, AT2)
OUTPUT_TRANSFORM(output_f4, 4, 6, AT4)
OUTPUT_TRANSFORM(output_f6, 6, 8, AT6)

/// The tile geometry of a call.
typedef struct {
    long a, aa, tp, Mpad, TH, TW, plane, vstride, mstride;
} Geometry;

static int geometry(int m, long K, long C, long H, long W, long t0, long tcount, Geometry *g) {
    if (!cgemm_available() || !valid_m(m) || K <= 0 || C <= 0 || H <= 0 || W <= 0 || t0 < 0 || tcount <= 0) return -1;
    g->a = m + 2;
    g->aa = g->a * g->a;
    g->tp = round_up(tcount, CGEMM_NR);
    g->Mpad = round_up(K, CGEMM_MR);
    g->TH = (H + m - 1) / m;
    g->TW = (W + m - 1) / m;
    g->plane = H * W;
    g->vstride = C * g->tp;
    g->mstride = g->Mpad * g->tp;
    // Offsets are 32-bit: frames up to the last tile of the block.
    long lastFrame = (t0 + tcount - 1) / (g->TH * g->TW);
    return (lastFrame + 1) * (C > K ? C : K) * g->plane < 2147483647L ? 0 : -1;
}

TARGET int cgemm_wino_input(int m, long K, long C, long kc, const float *x, long H, long W, long t0, long tcount,
                            long c0, long c1, float *scratch) {
    Geometry g;
    if (geometry(m, K, C, H, W, t0, tcount, &g) != 0 || c0 < 0 || c1 > C || kc <= 0) return -1;
    for (long q = 0; q < g.tp; q += 16) {
        Group gr;
        make_group(m, t0 + q, tcount - q, H, W, C, K, g.TH, g.TW, &gr);
        if (m == 2) input_f2(x, g.plane, W, C, &gr, c0, c1, scratch, g.vstride, kc, g.tp, q);
        else if (m == 4) input_f4(x, g.plane, W, C, &gr, c0, c1, scratch, g.vstride, kc, g.tp, q);
        else input_f6(x, g.plane, W, C, &gr, c0, c1, scratch, g.vstride, kc, g.tp, q);
    }
    return 0;
}

int cgemm_wino_gemm(int m, const float *Up, long K, long C, long kc, long H, long W, long t0, long tcount,
                    long xi0, long xi1, long m0, long m1, float *scratch) {
    Geometry g;
    if (geometry(m, K, C, H, W, t0, tcount, &g) != 0 || xi0 < 0 || xi1 > g.aa) return -1;
    float *V = scratch, *Mb = scratch + g.aa * g.vstride;
    for (long xi = xi0; xi < xi1; xi++) {
        cgemm_dst d = {Mb + xi * g.mstride, 0, 0, 0, g.tp, 0, 0};
        if (cgemm_packed(m0, m1, tcount, C, Up + xi * g.Mpad * C, g.Mpad, kc, V + xi * g.vstride, &d) != 0) return -1;
    }
    return 0;
}

TARGET int cgemm_wino_output(int m, long K, long C, long H, long W, long t0, long tcount, long k0, long k1,
                             const float *scratch, float *out, const float *bias, const float *residual, int relu) {
    Geometry g;
    if (geometry(m, K, C, H, W, t0, tcount, &g) != 0 || k0 < 0 || k1 > K) return -1;
    const float *Mb = scratch + g.aa * g.vstride;
    for (long q = 0; q < tcount; q += 16) {
        Group gr;
        make_group(m, t0 + q, tcount - q, H, W, C, K, g.TH, g.TW, &gr);
        if (m == 2) output_f2(Mb, g.mstride, g.tp, q, k0, k1, &gr, g.plane, W, bias, residual, relu, out);
        else if (m == 4) output_f4(Mb, g.mstride, g.tp, q, k0, k1, &gr, g.plane, W, bias, residual, relu, out);
        else output_f6(Mb, g.mstride, g.tp, q, k0, k1, &gr, g.plane, W, bias, residual, relu, out);
    }
    return 0;
}

int cgemm_wino_conv(int m, const float *Up, long K, long C, long kc, const float *x, long H, long W,
                    long t0, long tcount, float *out, const float *bias, const float *residual, int relu,
                    float *scratch) {
    if (tcount == 0) return 0;
    if (cgemm_wino_input(m, K, C, kc, x, H, W, t0, tcount, 0, C, scratch) != 0) return -1;
    if (cgemm_wino_gemm(m, Up, K, C, kc, H, W, t0, tcount, 0, (m + 2) * (m + 2), 0, K, scratch) != 0) return -1;
    return cgemm_wino_output(m, K, C, H, W, t0, tcount, 0, K, scratch, out, bias, residual, relu);
}

#else  // not x86-64: no Winograd kernels (callers use the GEMM path through BLAS).

static long round_up_portable(long a, long b) { return (a + b - 1) / b * b; }

long cgemm_wino_packed_u_floats(int m, long K, long C) {
    long a = m + 2;
    return a * a * round_up_portable(K, CGEMM_MR) * C;
}

int cgemm_wino_matrices(int m, double *bt, double *g, double *at) {
    (void)m; (void)bt; (void)g; (void)at;
    return -1;
}

int cgemm_wino_pack_u(int m, long K, long C, const float *w, long kc, float *Up) {
    (void)m; (void)K; (void)C; (void)w; (void)kc; (void)Up;
    return -1;
}

long cgemm_wino_scratch_floats(int m, long K, long C, long tiles) {
    long a = m + 2, tp = round_up_portable(tiles, CGEMM_NR);
    return a * a * (C * tp + round_up_portable(K, CGEMM_MR) * tp);
}

int cgemm_wino_input(int m, long K, long C, long kc, const float *x, long H, long W, long t0, long tcount,
                     long c0, long c1, float *scratch) {
    (void)m; (void)K; (void)C; (void)kc; (void)x; (void)H; (void)W; (void)t0; (void)tcount; (void)c0; (void)c1;
    (void)scratch;
    return -1;
}

int cgemm_wino_gemm(int m, const float *Up, long K, long C, long kc, long H, long W, long t0, long tcount,
                    long xi0, long xi1, long m0, long m1, float *scratch) {
    (void)m; (void)Up; (void)K; (void)C; (void)kc; (void)H; (void)W; (void)t0; (void)tcount; (void)xi0; (void)xi1;
    (void)m0; (void)m1; (void)scratch;
    return -1;
}

int cgemm_wino_output(int m, long K, long C, long H, long W, long t0, long tcount, long k0, long k1,
                      const float *scratch, float *out, const float *bias, const float *residual, int relu) {
    (void)m; (void)K; (void)C; (void)H; (void)W; (void)t0; (void)tcount; (void)k0; (void)k1; (void)scratch;
    (void)out; (void)bias; (void)residual; (void)relu;
    return -1;
}

int cgemm_wino_conv(int m, const float *Up, long K, long C, long kc, const float *x, long H, long W,
                    long t0, long tcount, float *out, const float *bias, const float *residual, int relu,
                    float *scratch) {
    (void)m; (void)Up; (void)K; (void)C; (void)kc; (void)x; (void)H; (void)W; (void)t0; (void)tcount;
    (void)out; (void)bias; (void)residual; (void)relu; (void)scratch;
    return -1;
}

#endif
