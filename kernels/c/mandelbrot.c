/* mandelbrot in C: escape-time counts for one tile (same layout and method as
 * kernels/assembly/examples/mandelbrot.ts). Input (48 bytes): f64 x0, f64 y0, f64 dx, f64 dy,
 * u32 width, u32 height, u32 maxIter, u32 0. Output: u32 counts[width*height], row-major: the
 * iterations of z <- z^2 + c completed while |z|^2 <= 4, capped at maxIter.
 * float64 in the reference's order, no FMA contraction (-ffp-contract=off), so the counts match
 * it exactly. f64x2 intrinsics (wasm_simd128.h), two vectors (four pixels) in flight; a lane
 * stops counting once it escapes; clang cannot vectorize the early-exit loop by itself. */
#include <wasm_simd128.h>
#include "distx.h"

DISTX_EXPORT(distx_run) int32_t distx_run(uint8_t *input, int32_t len) {
  if (len < 48) distx_abort();
  double x0, y0, dx, dy;
  uint32_t width, height, max_iter;
  __builtin_memcpy(&x0, input, 8);
  __builtin_memcpy(&y0, input + 8, 8);
  __builtin_memcpy(&dx, input + 16, 8);
  __builtin_memcpy(&dy, input + 24, 8);
  __builtin_memcpy(&width, input + 32, 4);
  __builtin_memcpy(&height, input + 36, 4);
  __builtin_memcpy(&max_iter, input + 40, 4);
  if ((uint64_t)width * height > 0x10000000) distx_abort();
  uint32_t *out = (uint32_t *)distx_output((int32_t)(width * height * 4));
  const v128_t four = wasm_f64x2_splat(4.0), two = wasm_f64x2_splat(2.0);
  for (uint32_t row = 0; row < height; row++) {
    const double cys = y0 + (double)row * dy;
    const v128_t cy = wasm_f64x2_splat(cys);
    uint32_t *line = out + (size_t)row * width;
    uint32_t col = 0;
    for (; col + 4 <= width; col += 4) {
      const v128_t cxa = wasm_f64x2_make(x0 + (double)col * dx, x0 + (double)(col + 1) * dx);
      const v128_t cxb = wasm_f64x2_make(x0 + (double)(col + 2) * dx, x0 + (double)(col + 3) * dx);
      v128_t xa = wasm_f64x2_splat(0), ya = xa, xb = xa, yb = xa;
      v128_t ma = wasm_i64x2_splat(-1), mb = ma;
      v128_t na = wasm_i64x2_splat(0), nb = na;
      for (uint32_t i = 0; i < max_iter; i++) {
        const v128_t xa2 = wasm_f64x2_mul(xa, xa), ya2 = wasm_f64x2_mul(ya, ya);
        const v128_t xb2 = wasm_f64x2_mul(xb, xb), yb2 = wasm_f64x2_mul(yb, yb);
        ma = wasm_v128_and(ma, wasm_f64x2_le(wasm_f64x2_add(xa2, ya2), four));
        mb = wasm_v128_and(mb, wasm_f64x2_le(wasm_f64x2_add(xb2, yb2), four));
        if (!wasm_v128_any_true(wasm_v128_or(ma, mb))) break;
        na = wasm_i64x2_sub(na, ma);
        nb = wasm_i64x2_sub(nb, mb);
        ya = wasm_f64x2_add(wasm_f64x2_mul(wasm_f64x2_mul(two, xa), ya), cy);
        xa = wasm_f64x2_add(wasm_f64x2_sub(xa2, ya2), cxa);
        yb = wasm_f64x2_add(wasm_f64x2_mul(wasm_f64x2_mul(two, xb), yb), cy);
        xb = wasm_f64x2_add(wasm_f64x2_sub(xb2, yb2), cxb);
      }
      line[col] = (uint32_t)wasm_i64x2_extract_lane(na, 0);
      line[col + 1] = (uint32_t)wasm_i64x2_extract_lane(na, 1);
      line[col + 2] = (uint32_t)wasm_i64x2_extract_lane(nb, 0);
      line[col + 3] = (uint32_t)wasm_i64x2_extract_lane(nb, 1);
    }
    for (; col < width; col++) {
      const double cx = x0 + (double)col * dx;
      double x = 0, y = 0;
      uint32_t i = 0;
      while (i < max_iter) {
        const double x2 = x * x, y2 = y * y;
        if (x2 + y2 > 4.0) break;
        y = 2.0 * x * y + cys;
        x = x2 - y2 + cx;
        i++;
      }
      line[col] = i;
    }
  }
  return (int32_t)(width * height * 4);
}
