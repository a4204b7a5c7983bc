#!/usr/bin/env bash
# Runs the GPU bench (bench/gpu/run.ts) on a machine with an NVIDIA GPU and records the figures
# with the GPU named (bench/results/gpu.json + gpu.md; nvidia-smi output is included).
#
# What the host needs — this script checks each and says what is missing:
#   * Node.js 20 (node on PATH, or NODE=/path/to/node). No internet is needed if you carry:
#   * this repository, BUILT (`npm run build` done elsewhere: dist/, build/kernels/, node_modules/
#     including node_modules/gl/build/Release/webgl.node compiled for the same OS/arch/glibc);
#   * a GL path for headless-gl: an X server with the NVIDIA GLX driver (DISPLAY set; e.g.
#     `nvidia-xconfig --virtual=1920x1080` + Xorg), or Xvfb + Mesa (then GL is the software
#     renderer, NOT the GPU — the script warns when the renderer is not NVIDIA);
#   * runtime libs of gl: libX11, libXi, libXext, libGL (libglvnd / NVIDIA or Mesa GLX).
# headless-gl 8 renders through ANGLE on GLX; it has no EGL/headless-NVIDIA path, so with no X
# server on the NVIDIA driver the GPU cannot be used by gpu.js headlessgl at all.
# Usage: bench/gpu/run-on-gpu-host.sh [--quick]
set -uo pipefail
cd "$(dirname "$0")/../.."
NODE="${NODE:-node}"
fail=0
need() { echo "MISSING: $*" >&2; fail=1; }
command -v "$NODE" >/dev/null || need "Node.js 20 (set NODE=/path/to/node)"
if command -v "$NODE" >/dev/null; then
  v=$("$NODE" -p 'process.versions.node.split(".")[0]'); [ "$v" -ge 20 ] || need "Node.js >= 20 (found $("$NODE" -v))"
fi
[ -f dist/bench/gpu/run.js ] || need "the built tree (dist/): run npm run build where npm works and copy the repo"
[ -f build/kernels/gemm_gpu.gpu.json ] && [ -f build/kernels/gemm.wasm ] || need "built kernels (build/kernels/)"
[ -f node_modules/gl/build/Release/webgl.node ] || need "node_modules/gl built (scripts/install-gpu-deps.sh, or copy a built node_modules)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "note: nvidia-smi not found; figures will not name a GPU" >&2
[ "$fail" = 0 ] || exit 2
run=("$NODE" dist/bench/gpu/run.js "$@")
if [ -z "${DISPLAY:-}" ]; then
  if command -v xvfb-run >/dev/null; then
    echo "warning: no DISPLAY; using xvfb-run, so GL is Mesa's software renderer, not the NVIDIA GPU" >&2
    run=(xvfb-run -a "${run[@]}")
  else
    need "an X display (DISPLAY) on the NVIDIA driver, or xvfb-run for a software-GL run"; exit 2
  fi
fi
"${run[@]}" || exit 1
"$NODE" -e 'const r=require("./bench/results/gpu.json"); console.log("GL renderer:", r.host.glRenderer, "| backend:", r.host.glBackend); if(!/nvidia|geforce|tesla|quadro|rtx|h100|a100/i.test(r.host.glRenderer)) console.error("warning: the GL renderer is not an NVIDIA GPU; these are not GPU figures")'
