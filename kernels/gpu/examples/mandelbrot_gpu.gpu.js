// Mandelbrot escape-time counts in float32 on the GPU (gpu.js). Same task input/output layout
// as the WASM mandelbrot (kernels/reference/mandelbrot.ts):
//   f64 x0, y0, dx, dy | u32 width, height, maxIter, 0  →  u32 counts[width*height]
// The f64 header values arrive as float32 scalars; the iteration runs in float32, so counts
// near the set's boundary can differ from the float64 WASM kernel (see kernels/README.md).
export default {
  header: [
    { name: "x0", type: "f64" },
    { name: "y0", type: "f64" },
    { name: "dx", type: "f64" },
    { name: "dy", type: "f64" },
    { name: "width", type: "u32" },
    { name: "height", type: "u32" },
    { name: "maxIter", type: "u32" },
    { name: "pad", type: "u32" },
  ],
  args: [
    { kind: "scalar", name: "x0", from: "x0" },
    { kind: "scalar", name: "y0", from: "y0" },
    { kind: "scalar", name: "dx", from: "dx" },
    { kind: "scalar", name: "dy", from: "dy" },
  ],
  constants: { maxIter: "maxIter" },
  output: ["width", "height"],
  result: "u32",
  settings: { loopMaxIterations: 100000 },
  kernel: function (x0, y0, dx, dy) {
    const cx = x0 + this.thread.x * dx;
    const cy = y0 + this.thread.y * dy;
    let x = 0.0;
    let y = 0.0;
    let n = 0.0;
    for (let i = 0; i < this.constants.maxIter; i++) {
      const x2 = x * x;
      const y2 = y * y;
      if (x2 + y2 > 4.0) break;
      y = 2.0 * x * y + cy;
      x = x2 - y2 + cx;
      n = n + 1.0;
    }
    return n;
  },
};
