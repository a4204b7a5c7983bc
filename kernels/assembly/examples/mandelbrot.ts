// mandelbrot: escape-time iteration counts for one rectangular tile of the complex plane.
//
// Input (little-endian, packed, 48 bytes):
//   f64 x0, f64 y0     coordinates of pixel (0,0)  (c = x0 + col*dx  +  i*(y0 + row*dy))
//   f64 dx, f64 dy     step per column / per row
//   u32 width, u32 height, u32 maxIter, u32 reserved (0)
// Output:
//   u32 counts[width*height], row-major: for each pixel the number of iterations of
//   z <- z^2 + c (from z = 0) completed while |z|^2 <= 4, capped at maxIter
//   (maxIter means "in the set").
//
// A job is split into horizontal strips: each task is the same header with y0 moved down and
// a smaller height. All arithmetic is float64 with no fused multiply-add, in the same order as
// the JS reference, so the counts match it exactly.
//
// Method: f64x2 SIMD, two vectors (four pixels) in flight per loop for instruction-level
// parallelism; a lane stops counting once it escapes; the loop ends when all four escaped.
export { distx_abi_version, distx_alloc, distx_output_ptr } from "distributex/kernel";
import { output } from "distributex/kernel";

export function distx_run(input: usize, len: i32): i32 {
  if (len < 48) abort("mandelbrot: input shorter than its 48-byte header");
  const x0 = load<f64>(input);
  const y0 = load<f64>(input, 8);
  const dx = load<f64>(input, 16);
  const dy = load<f64>(input, 24);
  const width = <i32>load<u32>(input, 32);
  const height = <i32>load<u32>(input, 36);
  const maxIter = <i32>load<u32>(input, 40);
  if (<u64>width * <u64>height > 0x10000000) abort("mandelbrot: tile larger than 2^28 pixels");
  const out = output(width * height * 4);
  const four = f64x2.splat(4.0);
  const two = f64x2.splat(2.0);
  for (let row = 0; row < height; row++) {
    const cy = f64x2.splat(y0 + <f64>row * dy);
    const line = out + ((<usize>row * <usize>width) << 2);
    let col = 0;
    for (; col + 4 <= width; col += 4) {
      const cxa = f64x2.replace_lane(f64x2.splat(x0 + <f64>col * dx), 1, x0 + <f64>(col + 1) * dx);
      const cxb = f64x2.replace_lane(f64x2.splat(x0 + <f64>(col + 2) * dx), 1, x0 + <f64>(col + 3) * dx);
      let xa = f64x2.splat(0), ya = f64x2.splat(0), xb = f64x2.splat(0), yb = f64x2.splat(0);
      let ma = i64x2.splat(-1), mb = i64x2.splat(-1);
      let na = i64x2.splat(0), nb = i64x2.splat(0);
      for (let i = 0; i < maxIter; i++) {
        const xa2 = f64x2.mul(xa, xa), ya2 = f64x2.mul(ya, ya);
        const xb2 = f64x2.mul(xb, xb), yb2 = f64x2.mul(yb, yb);
        ma = v128.and(ma, f64x2.le(f64x2.add(xa2, ya2), four));
        mb = v128.and(mb, f64x2.le(f64x2.add(xb2, yb2), four));
        if (!v128.any_true(v128.or(ma, mb))) break;
        na = i64x2.sub(na, ma);
        nb = i64x2.sub(nb, mb);
        ya = f64x2.add(f64x2.mul(f64x2.mul(two, xa), ya), cy);
        xa = f64x2.add(f64x2.sub(xa2, ya2), cxa);
        yb = f64x2.add(f64x2.mul(f64x2.mul(two, xb), yb), cy);
        xb = f64x2.add(f64x2.sub(xb2, yb2), cxb);
      }
      const p = line + (<usize>col << 2);
      store<u32>(p, <u32>i64x2.extract_lane(na, 0));
      store<u32>(p, <u32>i64x2.extract_lane(na, 1), 4);
      store<u32>(p, <u32>i64x2.extract_lane(nb, 0), 8);
      store<u32>(p, <u32>i64x2.extract_lane(nb, 1), 12);
    }
    for (; col < width; col++) {
      const cx = x0 + <f64>col * dx;
      const cys = y0 + <f64>row * dy;
      let x = 0.0, y = 0.0;
      let i = 0;
      while (i < maxIter) {
        const x2 = x * x, y2 = y * y;
        if (x2 + y2 > 4.0) break;
        y = 2.0 * x * y + cys;
        x = x2 - y2 + cx;
        i++;
      }
      store<u32>(line + (<usize>col << 2), <u32>i);
    }
  }
  return width * height * 4;
}
