// C = A·B in float32 on the GPU (gpu.js). Same task input/output layout as the WASM gemm
// (kernels/reference/gemm.ts): u32 m, n, k, 0 | f32 A[m*k] | f32 B[k*n]  →  f32 C[m*n].
// One GPU thread per element of C: thread.x is the column (0..n), thread.y the row (0..m).
export default {
  header: [
    { name: "m", type: "u32" },
    { name: "n", type: "u32" },
    { name: "k", type: "u32" },
    { name: "pad", type: "u32" },
  ],
  args: [
    { kind: "array", name: "a", type: "f32", shape: ["m", "k"] },
    { kind: "array", name: "b", type: "f32", shape: ["k", "n"] },
  ],
  // A constant loop bound: GLSL ES 1.0 loops need one (changing k recompiles the kernel).
  constants: { k: "k" },
  output: ["n", "m"],
  result: "f32",
  settings: { loopMaxIterations: 16384 },
  kernel: function (a, b) {
    let sum = 0;
    for (let p = 0; p < this.constants.k; p++) {
      sum += a[this.thread.y][p] * b[p][this.thread.x];
    }
    return sum;
  },
};
