// SHA-256 block compression with the x86 SHA extensions (SHA256RNDS2, SHA256MSG1, SHA256MSG2),
// written from FIPS 180-4 and Intel's instruction descriptions. The portable path lives in Swift
// (BLCore.SHA256); this file only adds the accelerated one and the CPU check.
#include "csha256.h"

// FIPS 180-4, 4.2.2.
static const uint32_t K[64] __attribute__((aligned(16))) = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

const uint32_t *csha256_round_constants(void) { return K; }

#if defined(__x86_64__) || defined(__i386__)

#include <cpuid.h>
#include <immintrin.h>

int csha256_has_shani(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    const int sha = (b >> 29) & 1;
    return ssse3 && sse41 && sha;
}

// Register layout (lane 0 first): `abef` = (F, E, B, A), `cdgh` = (H, G, D, C), as SHA256RNDS2
// expects. One SHA256RNDS2 does two rounds and returns the new (F, E, B, A); the new (H, G, D, C)
// is the old (F, E, B, A), so the two registers swap roles every call.
//
// Four rounds on message words m = (W[4i], .., W[4i+3]): the low two W+K go in the first call,
// the high two (moved down) in the second.
#define FOUR_ROUNDS(m, i)                                                               \
    do {                                                                                \
        const __m128i wk = _mm_add_epi32((m), _mm_load_si128((const __m128i *)&K[4 * (i)])); \
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);                                   \
        abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E));          \
    } while (0)

// Message schedule: from a = W[t-16..t-13], b = W[t-12..t-9], c = W[t-8..t-5], d = W[t-4..t-1],
// a becomes W[t..t+3] with W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16]:
// MSG1 gives W[t-16+j] + s0(W[t-15+j]), the byte shift of (d:c) gives W[t-7+j], MSG2 adds the s1 terms.
#define SCHEDULE(a, b, c, d) \
    (a) = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32((a), (b)), _mm_alignr_epi8((d), (c), 4)), (d))

__attribute__((target("sha,ssse3,sse4.1")))
void csha256_blocks_shani(uint32_t state[8], const uint8_t *data, size_t blocks) {
    // Byte order within each 32-bit lane reversed: the message is big-endian.
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i lo = _mm_loadu_si128((const __m128i *)&state[0]);  // (A, B, C, D)
    __m128i hi = _mm_loadu_si128((const __m128i *)&state[4]);  // (E, F, G, H)
    lo = _mm_shuffle_epi32(lo, 0xB1);                          // (B, A, D, C)
    hi = _mm_shuffle_epi32(hi, 0x1B);                          // (H, G, F, E)
    __m128i abef = _mm_alignr_epi8(lo, hi, 8);                 // (F, E, B, A)
    __m128i cdgh = _mm_blend_epi16(hi, lo, 0xF0);              // (H, G, D, C)

    for (; blocks > 0; blocks--, data += 64) {
        const __m128i abef0 = abef, cdgh0 = cdgh;
        __m128i m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 0)), bswap);
        __m128i m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16)), bswap);
        __m128i m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 32)), bswap);
        __m128i m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 48)), bswap);
        FOUR_ROUNDS(m0, 0);
        FOUR_ROUNDS(m1, 1);
        FOUR_ROUNDS(m2, 2);
        FOUR_ROUNDS(m3, 3);
        for (int i = 4; i < 16; i += 4) {
            SCHEDULE(m0, m1, m2, m3); FOUR_ROUNDS(m0, i);
            SCHEDULE(m1, m2, m3, m0); FOUR_ROUNDS(m1, i + 1);
            SCHEDULE(m2, m3, m0, m1); FOUR_ROUNDS(m2, i + 2);
            SCHEDULE(m3, m0, m1, m2); FOUR_ROUNDS(m3, i + 3);
        }
        abef = _mm_add_epi32(abef, abef0);
        cdgh = _mm_add_epi32(cdgh, cdgh0);
    }

    const __m128i ab = _mm_shuffle_epi32(abef, 0x1B);          // (A, B, E, F)
    const __m128i gh = _mm_shuffle_epi32(cdgh, 0xB1);          // (G, H, C, D)
    _mm_storeu_si128((__m128i *)&state[0], _mm_blend_epi16(ab, gh, 0xF0));  // (A, B, C, D)
    _mm_storeu_si128((__m128i *)&state[4], _mm_alignr_epi8(gh, ab, 8));     // (E, F, G, H)
}

#else

int csha256_has_shani(void) { return 0; }

void csha256_blocks_shani(uint32_t state[8], const uint8_t *data, size_t blocks) {
    (void)state; (void)data; (void)blocks;
}

#endif
