/* The example kernels in C, for the kernel bench (bench/kernels/run.ts).
 *
 * Same algorithms as kernels/assembly/examples/NAME.ts, written with GCC vector extensions where
 * the AssemblyScript uses v128 (so the ratio measures the WASM toolchain + V8, not a different
 * algorithm), on the same data: the inputs are generated with the same mulberry32 PRNG as
 * kernels/reference (makeTasks({ tasks: 1, size, seed: 1 })), and each kernel prints a checksum
 * the bench compares with the WASM result.
 *
 * Reads no files. Usage: kernels SAXPY_N GEMM_N MANDEL_PX MC_SAMPLES HIST_N MIN_REPS MIN_MS [ONLY]
 * (ONLY: run just the kernel of that name.)
 * Prints one JSON object: { "kernels": { name: { "times_ms": [...], "checksum": x } } }.
 * Build: gcc -O2 -o kernels kernels.c   (the bench compiles it into a temp dir).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef float v4f __attribute__((vector_size(16)));
typedef double v2d __attribute__((vector_size(16)));
typedef int64_t v2i __attribute__((vector_size(16)));
typedef uint32_t v4u __attribute__((vector_size(16)));

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* mulberry32, identical to kernels/reference/util.ts */
static uint32_t mb_state;
static uint32_t mb_next(void) {
  uint32_t a = (mb_state += 0x6D2B79F5u);
  uint32_t t = (a ^ (a >> 15)) * (1u | a);
  t = (t + ((t ^ (t >> 7)) * (61u | t))) ^ t;
  return t ^ (t >> 14);
}
static void fill_uniform(float *out, size_t n, uint32_t seed) {
  mb_state = seed;
  for (size_t i = 0; i < n; i++) out[i] = (float)(((double)mb_next() / 4294967296.0) * 2.0 - 1.0);
}

static void *xalloc(size_t bytes) {
  void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
  if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
  memset(p, 0, bytes);
  return p;
}

static inline v4f load4(const float *p) { v4f v; memcpy(&v, p, 16); return v; }
static inline void store4(float *p, v4f v) { memcpy(p, &v, 16); }

/* ---------------- saxpy ---------------- */
static void saxpy(float a, int n, const float *x, const float *y, float *out) {
  v4f va = {a, a, a, a};
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    store4(out + i, va * load4(x + i) + load4(y + i));
    store4(out + i + 4, va * load4(x + i + 4) + load4(y + i + 4));
    store4(out + i + 8, va * load4(x + i + 8) + load4(y + i + 8));
    store4(out + i + 12, va * load4(x + i + 12) + load4(y + i + 12));
  }
  for (; i < n; i++) out[i] = a * x[i] + y[i];
}

/* ---------------- gemm (GotoBLAS-style, 4x8 micro-kernel, as gemm.ts) ---------------- */
#define MR 4
#define NR 8
#define MC 64
#define KC 256

static inline void micro(const float *a, const float *b, int kc, float *c, int ldc, int rows, int cols) {
  v4f c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
  for (int p = 0; p < kc; p++, a += 4, b += 8) {
    v4f b0 = load4(b), b1 = load4(b + 4);
    v4f av = {a[0], a[0], a[0], a[0]};
    c00 += av * b0; c01 += av * b1;
    av = (v4f){a[1], a[1], a[1], a[1]};
    c10 += av * b0; c11 += av * b1;
    av = (v4f){a[2], a[2], a[2], a[2]};
    c20 += av * b0; c21 += av * b1;
    av = (v4f){a[3], a[3], a[3], a[3]};
    c30 += av * b0; c31 += av * b1;
  }
  if (rows == MR && cols == NR) {
    float *p = c;
    store4(p, load4(p) + c00); store4(p + 4, load4(p + 4) + c01); p += ldc;
    store4(p, load4(p) + c10); store4(p + 4, load4(p + 4) + c11); p += ldc;
    store4(p, load4(p) + c20); store4(p + 4, load4(p + 4) + c21); p += ldc;
    store4(p, load4(p) + c30); store4(p + 4, load4(p + 4) + c31);
  } else {
    float edge[MR * NR];
    store4(edge, c00); store4(edge + 4, c01); store4(edge + 8, c10); store4(edge + 12, c11);
    store4(edge + 16, c20); store4(edge + 20, c21); store4(edge + 24, c30); store4(edge + 28, c31);
    for (int r = 0; r < rows; r++)
      for (int j = 0; j < cols; j++) c[r * ldc + j] += edge[r * NR + j];
  }
}

/* Bp: panels*k*NR floats, Ap: MC*KC floats (allocated by the caller, reused across runs). */
static void gemm(int m, int n, int k, const float *A, const float *B, float *C, float *Bp, float *Ap) {
  memset(C, 0, (size_t)m * n * sizeof(float));
  int panels = (n + NR - 1) / NR;
  for (int jp = 0; jp < panels; jp++) {
    int col0 = jp * NR;
    float *dst = Bp + (size_t)jp * k * NR;
    if (col0 + NR <= n) {
      for (int kk = 0; kk < k; kk++) {
        const float *src = B + (size_t)kk * n + col0;
        store4(dst + kk * 8, load4(src));
        store4(dst + kk * 8 + 4, load4(src + 4));
      }
    } else {
      for (int kk = 0; kk < k; kk++)
        for (int j = 0; j < NR; j++) dst[kk * 8 + j] = col0 + j < n ? B[(size_t)kk * n + col0 + j] : 0.0f;
    }
  }
  for (int pc = 0; pc < k; pc += KC) {
    int kc = k - pc < KC ? k - pc : KC;
    for (int ic = 0; ic < m; ic += MC) {
      int mc = m - ic < MC ? m - ic : MC;
      int slivers = (mc + MR - 1) / MR;
      for (int ir = 0; ir < slivers; ir++) {
        float *dst = Ap + (size_t)ir * kc * MR;
        for (int r = 0; r < MR; r++) {
          int row = ic + ir * MR + r;
          if (row < m) {
            const float *src = A + (size_t)row * k + pc;
            for (int kk = 0; kk < kc; kk++) dst[kk * MR + r] = src[kk];
          } else {
            for (int kk = 0; kk < kc; kk++) dst[kk * MR + r] = 0.0f;
          }
        }
      }
      for (int jp = 0; jp < panels; jp++) {
        const float *bp = Bp + (size_t)jp * k * NR + (size_t)pc * NR;
        int cols = n - jp * NR < NR ? n - jp * NR : NR;
        for (int ir = 0; ir < slivers; ir++) {
          int row0 = ic + ir * MR;
          int rows = m - row0 < MR ? m - row0 : MR;
          micro(Ap + (size_t)ir * kc * MR, bp, kc, C + (size_t)row0 * n + jp * NR, n, rows, cols);
        }
      }
    }
  }
}

/* ---------------- mandelbrot (f64x2, two vectors in flight, as mandelbrot.ts) ---------------- */
static void mandelbrot(double x0, double y0, double dx, double dy, int width, int height, int maxIter, uint32_t *out) {
  const v2d four = {4.0, 4.0}, two = {2.0, 2.0};
  for (int row = 0; row < height; row++) {
    double cys = y0 + (double)row * dy;
    v2d cy = {cys, cys};
    uint32_t *line = out + (size_t)row * width;
    int col = 0;
    for (; col + 4 <= width; col += 4) {
      v2d cxa = {x0 + (double)col * dx, x0 + (double)(col + 1) * dx};
      v2d cxb = {x0 + (double)(col + 2) * dx, x0 + (double)(col + 3) * dx};
      v2d xa = {0, 0}, ya = {0, 0}, xb = {0, 0}, yb = {0, 0};
      v2i ma = {-1, -1}, mb = {-1, -1}, na = {0, 0}, nb = {0, 0};
      for (int i = 0; i < maxIter; i++) {
        v2d xa2 = xa * xa, ya2 = ya * ya, xb2 = xb * xb, yb2 = yb * yb;
        ma &= (v2i)(xa2 + ya2 <= four);
        mb &= (v2i)(xb2 + yb2 <= four);
        v2i any = ma | mb;
        if (!(any[0] | any[1])) break;
        na -= ma;
        nb -= mb;
        ya = two * xa * ya + cy;
        xa = xa2 - ya2 + cxa;
        yb = two * xb * yb + cy;
        xb = xb2 - yb2 + cxb;
      }
      line[col] = (uint32_t)na[0]; line[col + 1] = (uint32_t)na[1];
      line[col + 2] = (uint32_t)nb[0]; line[col + 3] = (uint32_t)nb[1];
    }
    for (; col < width; col++) {
      double cx = x0 + (double)col * dx, x = 0, y = 0;
      int i = 0;
      while (i < maxIter) {
        double x2 = x * x, y2 = y * y;
        if (x2 + y2 > 4.0) break;
        y = 2.0 * x * y + cys;
        x = x2 - y2 + cx;
        i++;
      }
      line[col] = (uint32_t)i;
    }
  }
}

/* ---------------- montecarlo_pi (splitmix64 -> xorshift128+, as montecarlo_pi.ts) ---------------- */
static uint64_t montecarlo(uint64_t seed, uint32_t samples) {
  uint64_t sm = seed, z;
  sm += 0x9E3779B97F4A7C15ull; z = sm;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  uint64_t s0 = z ^ (z >> 31);
  sm += 0x9E3779B97F4A7C15ull; z = sm;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  uint64_t s1 = z ^ (z >> 31);
  uint64_t hits = 0;
  const uint64_t limit = (uint64_t)1 << 48;
  for (uint32_t i = 0; i < samples; i++) {
    uint64_t a = s0;
    const uint64_t b = s1;
    const uint64_t r = a + b;
    s0 = b;
    a ^= a << 23;
    s1 = a ^ b ^ (a >> 18) ^ (b >> 5);
    uint64_t x = r >> 40, y = (r >> 16) & 0xFFFFFF;
    hits += (x * x + y * y < limit);
  }
  return hits;
}

/* ---------------- histogram (four sub-histograms, as histogram.ts) ---------------- */
static void histogram(int n, uint32_t shift, const uint32_t *values, uint32_t *out, uint32_t *sub) {
  memset(sub, 0, 4 * 256 * sizeof(uint32_t));
  uint32_t *h0 = sub, *h1 = sub + 256, *h2 = sub + 512, *h3 = sub + 768;
  int n4 = n & ~3;
  if ((shift & 7) == 0) {
    /* The bin is one whole byte of each value (little-endian): load that byte directly. */
    const uint8_t *q = (const uint8_t *)values + (shift >> 3), *qend = q + (size_t)n4 * 4;
    for (; q < qend; q += 16) {
      h0[q[0]]++;
      h1[q[4]]++;
      h2[q[8]]++;
      h3[q[12]]++;
    }
  } else {
    for (int i = 0; i < n4; i += 4) {
      h0[(values[i] >> shift) & 0xFF]++;
      h1[(values[i + 1] >> shift) & 0xFF]++;
      h2[(values[i + 2] >> shift) & 0xFF]++;
      h3[(values[i + 3] >> shift) & 0xFF]++;
    }
  }
  for (int i = n4; i < n; i++) h0[(values[i] >> shift) & 0xFF]++;
  for (int b = 0; b < 256; b++) out[b] = h0[b] + h1[b] + h2[b] + h3[b];
}

/* ---------------- timing harness ---------------- */
static int min_reps;
static double min_ms;
static volatile double sink;
/* Read through a volatile so gcc cannot hoist the pure montecarlo() call out of the timing loop. */
static volatile uint64_t mc_seed = (uint64_t)1 << 32;

#define TIME(NAME, CALL, CHECKSUM)                                                  \
  do {                                                                              \
    double times[1000];                                                             \
    int reps = 0;                                                                   \
    double total = 0;                                                               \
    CALL; /* warm-up */                                                             \
    while ((reps < min_reps || total < min_ms) && reps < 101) {                    \
      double t0 = now_ms();                                                         \
      CALL;                                                                         \
      double dt = now_ms() - t0;                                                    \
      times[reps++] = dt;                                                           \
      total += dt;                                                                  \
    }                                                                               \
    printf("%s\"%s\":{\"times_ms\":[", first ? "" : ",", NAME);                    \
    for (int r = 0; r < reps; r++) printf("%s%.6f", r ? "," : "", times[r]);       \
    printf("],\"checksum\":%.17g}", (double)(CHECKSUM));                             \
    first = 0;                                                                      \
  } while (0)

int main(int argc, char **argv) {
  if (argc < 8) {
    fprintf(stderr, "usage: %s SAXPY_N GEMM_N MANDEL_PX MC_SAMPLES HIST_N MIN_REPS MIN_MS\n", argv[0]);
    return 2;
  }
  int saxpy_n = atoi(argv[1]), gemm_n = atoi(argv[2]), px = atoi(argv[3]);
  uint32_t mc_samples = (uint32_t)strtoul(argv[4], 0, 10);
  int hist_n = atoi(argv[5]);
  min_reps = atoi(argv[6]);
  min_ms = atof(argv[7]);
  const char *only = argc > 8 ? argv[8] : NULL;
#define WANT(NAME) (!only || strcmp(only, NAME) == 0)
  int first = 1;
  printf("{\"kernels\":{");

  if (WANT("saxpy")) { /* saxpy: makeTasks({tasks:1, size, seed:1}): a = 1.5, x seed 1, y seed 2 */
    /* Same layout as the WASM task input: x starts 8 bytes into a 16-byte-aligned buffer (after
       the a, n header) and y follows x, so both see the same alignment of x and y. */
    char *in = xalloc(8 + (size_t)saxpy_n * 8);
    float *x = (float *)(in + 8), *y = x + saxpy_n, *out = xalloc(saxpy_n * 4);
    fill_uniform(x, saxpy_n, 1); fill_uniform(y, saxpy_n, 2);
    double sum = 0;
    TIME("saxpy", saxpy(1.5f, saxpy_n, x, y, out), (sum = 0, ({ for (int i = 0; i < saxpy_n; i++) sum += out[i]; }), sum));
    free(in); free(out);
  }
  if (WANT("gemm")) { /* gemm: A seed 1, B seed 2, n x n x n */
    int n = gemm_n, panels = (n + NR - 1) / NR;
    float *A = xalloc((size_t)n * n * 4), *B = xalloc((size_t)n * n * 4), *C = xalloc((size_t)n * n * 4);
    float *Bp = xalloc((size_t)panels * n * NR * 4), *Ap = xalloc(MC * KC * 4);
    fill_uniform(A, (size_t)n * n, 1); fill_uniform(B, (size_t)n * n, 2);
    double sum = 0;
    TIME("gemm", gemm(n, n, n, A, B, C, Bp, Ap), (sum = 0, ({ for (size_t i = 0; i < (size_t)n * n; i++) sum += C[i]; }), sum));
    free(A); free(B); free(C); free(Bp); free(Ap);
  }
  if (WANT("mandelbrot")) { /* mandelbrot: [-2,1] x [-1.5,1.5], px x px, maxIter 256 */
    uint32_t *out = xalloc((size_t)px * px * 4);
    double d = 3.0 / px;
    double iters = 0;
    TIME("mandelbrot", mandelbrot(-2.0, -1.5, d, d, px, px, 256, out),
         (iters = 0, ({ for (size_t i = 0; i < (size_t)px * px; i++) iters += out[i]; }), iters));
    free(out);
  }
  if (WANT("montecarlo_pi")) { /* montecarlo_pi: seed (1 << 32) | 0 */
    uint64_t hits = 0;
    TIME("montecarlo_pi", hits = montecarlo(mc_seed, mc_samples), hits);
  }
  if (WANT("histogram")) { /* histogram: mulberry32(1) values, shift 24 */
    uint32_t *values = xalloc((size_t)hist_n * 4), out[256], *sub = xalloc(4 * 256 * 4);
    mb_state = 1;
    for (int i = 0; i < hist_n; i++) values[i] = mb_next();
    double weighted = 0;
    TIME("histogram", histogram(hist_n, 24, values, out, sub),
         (weighted = 0, ({ for (int b = 0; b < 256; b++) weighted += (double)b * out[b]; }), weighted));
    free(values); free(sub);
  }
  printf("}}\n");
  return (int)sink;
}
