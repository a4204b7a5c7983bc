/* montecarlo_pi in C: points of the unit square inside the quarter circle (same layout and PRNG
 * as kernels/assembly/examples/montecarlo_pi.ts). Input: u64 seed, u32 samples, u32 0.
 * Output: u64 hits. xorshift128+ whose two state words are the first two splitmix64 outputs of
 * `seed`; each sample takes one 64-bit output r: x = r >> 40, y = (r >> 16) & 0xFFFFFF, a hit
 * when x*x + y*y < 2^48. Integer arithmetic only (unsigned, so wrapping is defined), no host
 * randomness: the count depends on the input alone and matches the JS reference exactly. */
#include "distx.h"

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

DISTX_EXPORT(distx_run) int32_t distx_run(uint8_t *input, int32_t len) {
  if (len < 16) distx_abort();
  uint64_t sm;
  uint32_t samples;
  __builtin_memcpy(&sm, input, 8);
  __builtin_memcpy(&samples, input + 8, 4);
  uint64_t s0 = splitmix64(&sm);
  uint64_t s1 = splitmix64(&sm);
  uint64_t hits = 0;
  const uint64_t limit = (uint64_t)1 << 48;
  for (uint32_t i = 0; i < samples; i++) {
    uint64_t a = s0;
    const uint64_t b = s1;
    const uint64_t r = a + b;
    s0 = b;
    a ^= a << 23;
    s1 = a ^ b ^ (a >> 18) ^ (b >> 5);
    const uint64_t x = r >> 40, y = (r >> 16) & 0xFFFFFF;
    hits += x * x + y * y < limit;
  }
  uint8_t *out = (uint8_t *)distx_output(8);
  __builtin_memcpy(out, &hits, 8);
  return 8;
}
