/* saxpy in C: y = a*x + y over float32 (same layout as kernels/assembly/examples/saxpy.ts).
 * Input: f32 a, u32 n, f32 x[n], f32 y[n] (little-endian, packed). Output: f32 y[n].
 * Plain loop: clang vectorizes it to f32x4 with -msimd128; no FMA contraction
 * (-ffp-contract=off) so each element rounds like the JS reference. */
#include "distx.h"


DISTX_EXPORT(distx_run) int32_t distx_run(uint8_t *input, int32_t len) {
  if (len < 8) distx_abort();
  float a;
  uint32_t n;
  __builtin_memcpy(&a, input, 4);
  __builtin_memcpy(&n, input + 4, 4);
  if ((uint64_t)len < 8 + (uint64_t)n * 8) distx_abort();
  const float *x = (const float *)(input + 8);
  const float *y = x + n;
  float *out = (float *)distx_output((int32_t)(n * 4));
  for (uint32_t i = 0; i < n; i++) out[i] = a * x[i] + y[i];
  return (int32_t)(n * 4);
}
