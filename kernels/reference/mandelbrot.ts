// mandelbrot: escape-time counts for a tile. Layout: kernels/assembly/examples/mandelbrot.ts.
//   input  f64 x0, f64 y0, f64 dx, f64 dy, u32 width, u32 height, u32 maxIter, u32 0
//   output u32 counts[width*height]
// size = image width = height in pixels (default 512) over [-2, 1] × [-1.5, 1.5], maxIter 256;
// the job is split into horizontal strips. float64 without FMA: counts match exactly.
import type { ExampleKernel } from "./types.js";
import { asBytes, compareExact, fmtInt, positiveInt, splitRange, u32, view } from "./util.js";

export const MANDELBROT_HEADER_BYTES = 48;
export const MANDELBROT_MAX_ITER = 256;

export interface MandelbrotTile {
  x0: number;
  y0: number;
  dx: number;
  dy: number;
  width: number;
  height: number;
  maxIter: number;
}

export function mandelbrotInput(t: MandelbrotTile): Uint8Array {
  const bytes = new Uint8Array(MANDELBROT_HEADER_BYTES);
  const d = view(bytes);
  d.setFloat64(0, t.x0, true);
  d.setFloat64(8, t.y0, true);
  d.setFloat64(16, t.dx, true);
  d.setFloat64(24, t.dy, true);
  d.setUint32(32, t.width, true);
  d.setUint32(36, t.height, true);
  d.setUint32(40, t.maxIter, true);
  return bytes;
}

function parse(input: Uint8Array): MandelbrotTile {
  if (input.byteLength < MANDELBROT_HEADER_BYTES) throw new RangeError("mandelbrot input shorter than its 48-byte header");
  const d = view(input);
  return {
    x0: d.getFloat64(0, true),
    y0: d.getFloat64(8, true),
    dx: d.getFloat64(16, true),
    dy: d.getFloat64(24, true),
    width: d.getUint32(32, true),
    height: d.getUint32(36, true),
    maxIter: d.getUint32(40, true),
  };
}

export const mandelbrot: ExampleKernel = {
  name: "mandelbrot",
  description: "Mandelbrot escape-time counts for image tiles (float64, f64x2 SIMD); split into horizontal strips",
  sizeHelp: "image width and height in pixels (default 512) over [-2,1]×[-1.5,1.5], maxIter 256; tasks are strips of rows",
  defaultSize: 512,
  makeTasks({ tasks, size }) {
    const px = positiveInt(size, this.defaultSize, "size");
    const dx = 3 / px;
    const dy = 3 / px;
    return splitRange(px, tasks).map(([r0, r1]) =>
      mandelbrotInput({ x0: -2, y0: -1.5 + r0 * dy, dx, dy, width: px, height: r1 - r0, maxIter: MANDELBROT_MAX_ITER }),
    );
  },
  reference(input) {
    const { x0, y0, dx, dy, width, height, maxIter } = parse(input);
    const out = new Uint32Array(width * height);
    for (let row = 0; row < height; row++) {
      const cy = y0 + row * dy;
      for (let col = 0; col < width; col++) {
        const cx = x0 + col * dx;
        let x = 0;
        let y = 0;
        let i = 0;
        while (i < maxIter) {
          const x2 = x * x;
          const y2 = y * y;
          if (x2 + y2 > 4) break;
          y = 2 * x * y + cy;
          x = x2 - y2 + cx;
          i++;
        }
        out[row * width + col] = i;
      }
    }
    return asBytes(out);
  },
  check(input, output) {
    return compareExact(output, this.reference(input), "u32");
  },
  summarize(inputs, outputs) {
    let pixels = 0;
    let inSet = 0;
    let iters = 0;
    let width = 0;
    let height = 0;
    let maxIter = 0;
    for (let t = 0; t < inputs.length; t++) {
      const tile = parse(inputs[t]!);
      width = tile.width;
      height += tile.height;
      maxIter = tile.maxIter;
      const out = outputs[t];
      if (!out) continue;
      const c = u32(out, 0, out.byteLength / 4);
      pixels += c.length;
      for (let i = 0; i < c.length; i++) {
        iters += c[i]!;
        if (c[i] === maxIter) inSet++;
      }
    }
    const pct = pixels ? ((100 * inSet) / pixels).toFixed(2) : "0";
    return `mandelbrot ${width}×${height} in ${inputs.length} strips at maxIter ${maxIter}: ${pct}% of ${fmtInt(pixels)} pixels in the set, ${fmtInt(iters)} iterations (mean ${(iters / Math.max(1, pixels)).toFixed(1)})`;
  },
  /** Approximate: 8 floating-point operations per completed iteration (the escape test not counted). */
  flops(_input, output) {
    const c = u32(output, 0, output.byteLength / 4);
    let iters = 0;
    for (let i = 0; i < c.length; i++) iters += c[i]!;
    return 8 * iters;
  },
};
