/* histogram in C: 256 bins of one byte of each u32 (same layout as
 * kernels/assembly/examples/histogram.ts). Input: u32 n, u32 shift, u32 values[n].
 * Output: u32 counts[256]. Four sub-histograms so consecutive increments of one bin do not
 * wait on each other's store, as the AssemblyScript version does. */
#include "distx.h"


DISTX_EXPORT(distx_run) int32_t distx_run(uint8_t *input, int32_t len) {
  if (len < 8) distx_abort();
  uint32_t n, shift;
  __builtin_memcpy(&n, input, 4);
  __builtin_memcpy(&shift, input + 4, 4);
  shift &= 31;
  if ((uint64_t)len < 8 + (uint64_t)n * 4) distx_abort();
  const uint32_t *v = (const uint32_t *)(input + 8);
  uint32_t *h = (uint32_t *)distx_alloc_bytes(4 * 256 * 4);
  __builtin_memset(h, 0, 4 * 256 * 4);
  uint32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    h[(v[i] >> shift) & 0xff]++;
    h[256 + ((v[i + 1] >> shift) & 0xff)]++;
    h[512 + ((v[i + 2] >> shift) & 0xff)]++;
    h[768 + ((v[i + 3] >> shift) & 0xff)]++;
  }
  for (; i < n; i++) h[(v[i] >> shift) & 0xff]++;
  uint32_t *out = (uint32_t *)distx_output(1024);
  for (int b = 0; b < 256; b++) out[b] = h[b] + h[256 + b] + h[512 + b] + h[768 + b];
  return 1024;
}
