#ifndef CSHA256_H
#define CSHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when this CPU has the x86 SHA extensions (with SSSE3 and SSE4.1), so that
/// csha256_blocks_shani may be called; 0 otherwise (and on other architectures).
int csha256_has_shani(void);

/// The 64 round constants K0..K63 of FIPS 180-4, 4.2.2 (shared with the portable Swift path).
const uint32_t *csha256_round_constants(void);

/// SHA-256 compression (FIPS 180-4, 6.2.2) of `blocks` consecutive 64-byte blocks at `data` into
/// `state` (H0..H7, native integers), with the SHA extensions. Call only when csha256_has_shani()
/// returns 1; otherwise it leaves `state` unchanged.
void csha256_blocks_shani(uint32_t state[8], const uint8_t *data, size_t blocks);

#ifdef __cplusplus
}
#endif

#endif
