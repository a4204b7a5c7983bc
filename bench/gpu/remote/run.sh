#!/usr/bin/env bash
# One-shot GPU bench on a bare remote GPU host (no Node, no X, no internet), from the repo root:
#   bash .gpucarry/run.sh            (full bench; falls back to --quick if the full one runs long)
#   bash .gpucarry/run.sh --quick
# Carried in .gpucarry/ (git-ignored; made by .gpucarry/make.sh):
#   node.xz     Node 20 binary (xz, x86 BCJ)
#   app.tar.xz  dist/, build/kernels/, minimal node_modules (gl with build/Release/webgl.node, gpu.js, zod, ...)
#   x.tar.xz    Debian 12 Xvfb + xkbcomp + xkb-data + glxinfo + libglvnd (libGL/libGLX) + Mesa swrast_dri/libLLVM-15
#               + X/xcb/drm libs, pre-extracted from the .debs; libxml2.so.2/libz3.so.4 are never-called stubs
#               (LLVM links them; llvmpipe never calls them) to save ~15 MiB.
# Everything unpacks under /opt/x (plus dist/ build/ node_modules/ in the repo root, all git-ignored);
# the only change to / is a /usr/bin/xkbcomp symlink when the host has none (Xvfb's path is compiled in).
# Results -> $OUT: run.log, glprobe.txt, xvfb.log, gpu.json, gpu.md (+ gpu-mesa.json/.md when the main run was NVIDIA).
set -u
T0=$(date +%s)
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
OUT=${OUT:-$PWD/.gpucarry-out}; mkdir -p "$OUT"
X=${GPUCARRY_PREFIX:-/opt/x}
QUICK=""; [ "${1:-}" = "--quick" ] && QUICK="--quick"
exec > >(tee -a "$OUT/run.log") 2>&1
say() { echo "[$(( $(date +%s) - T0 ))s] $*"; }

dexz() { # decompress an .xz file to stdout: xz if present, else python3's lzma
  if command -v xz >/dev/null; then xz -dc "$1"; else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer, 1<<20)' "$1"; fi
}

say "host: $(uname -srm); $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-?}"); glibc $(ldd --version 2>/dev/null | head -1 | awk '{print $NF}'); xz: $(command -v xz || echo 'none (python lzma)')"
say "nvidia-smi:"; nvidia-smi 2>&1 | head -20
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1

say "unpacking into $X and the repo root"
mkdir -p "$X"
dexz "$here/node.xz" > "$X/node" && chmod +x "$X/node" || { say "FATAL: cannot unpack node"; exit 2; }
dexz "$here/x.tar.xz" | tar -x -C "$X" || { say "FATAL: cannot unpack x.tar.xz"; exit 2; }
dexz "$here/app.tar.xz" | tar -x -C . || { say "FATAL: cannot unpack app.tar.xz"; exit 2; }
NODE="$X/node"
say "node $("$NODE" -v 2>&1)"; [ -f dist/bench/gpu/run.js ] && [ -f node_modules/gl/build/Release/webgl.node ] || { say "FATAL: app tree incomplete"; exit 2; }

XLIB="$X/usr/lib/x86_64-linux-gnu:$X/lib/x86_64-linux-gnu"
export LIBGL_DRIVERS_PATH="$X/usr/lib/x86_64-linux-gnu/dri"
[ -x /usr/bin/xkbcomp ] || { ln -sf "$X/usr/bin/xkbcomp" /usr/bin/xkbcomp && say "linked /usr/bin/xkbcomp -> $X/usr/bin/xkbcomp"; }

# NVIDIA's GLX vendor library (glvnd loads libGLX_<vendor>.so.0 by name).
NVDIR=""
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do
  [ -e "$d/libGLX_nvidia.so.0" ] && { NVDIR=$d; break; }
done
[ -n "$NVDIR" ] || NVDIR=$(dirname "$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia\.so\.0/{print $NF; exit}')" 2>/dev/null)
[ -n "$NVDIR" ] && [ -e "$NVDIR/libGLX_nvidia.so.0" ] || NVDIR=$(dirname "$(timeout 15 find / -xdev \( -path /proc -o -path /sys \) -prune -o -name 'libGLX_nvidia.so.0' -print -quit 2>/dev/null)" 2>/dev/null)
if [ -n "$NVDIR" ] && [ -e "$NVDIR/libGLX_nvidia.so.0" ]; then say "NVIDIA GLX vendor lib: $NVDIR/libGLX_nvidia.so.0 ($(ls "$NVDIR" | grep -c nvidia) nvidia libs there)"; else NVDIR=""; say "WARNING: no libGLX_nvidia.so.0 on this host: GL can only be Mesa software"; fi

# Xvfb with GLX (server side is Mesa swrast, as on any Xvfb).
n=99; while [ -e /tmp/.X$n-lock ] || [ -e /tmp/.X11-unix/X$n ]; do n=$((n+1)); done
export DISPLAY=:$n
say "starting Xvfb on $DISPLAY"
LD_LIBRARY_PATH="$XLIB" "$X/usr/bin/Xvfb" "$DISPLAY" -screen 0 1280x1024x24 +extension GLX +render -ac -noreset -nolisten tcp \
  -xkbdir "$X/usr/share/X11/xkb" >"$OUT/xvfb.log" 2>&1 &
XPID=$!
trap 'kill $XPID 2>/dev/null' EXIT
for i in $(seq 1 100); do [ -e /tmp/.X11-unix/X$n ] && break; kill -0 $XPID 2>/dev/null || break; sleep 0.1; done
if ! kill -0 $XPID 2>/dev/null || [ ! -e /tmp/.X11-unix/X$n ]; then say "FATAL: Xvfb did not start:"; cat "$OUT/xvfb.log"; exit 3; fi
say "Xvfb pid $XPID up (ldd check: $(LD_LIBRARY_PATH="$XLIB" ldd "$X/usr/bin/Xvfb" | grep -c "$X") libs from $X, missing: $(LD_LIBRARY_PATH="$XLIB" ldd "$X/usr/bin/Xvfb" | grep -c 'not found'))"

# GL modes: nvidia = glvnd told to use NVIDIA's GLX client lib; mesa = glvnd's default for Xvfb (Mesa llvmpipe).
ENV_nvidia=(env LD_LIBRARY_PATH="$XLIB${NVDIR:+:$NVDIR}" __GLX_VENDOR_LIBRARY_NAME=nvidia)
ENV_mesa=(env -u __GLX_VENDOR_LIBRARY_NAME LD_LIBRARY_PATH="$XLIB${NVDIR:+:$NVDIR}")
E() { local -n a="ENV_$1"; E_=("${a[@]}"); }
probe() { # $1 = mode
  E "$1"
  echo "===== mode $1: glxinfo -B"; timeout -k 3 20 "${E_[@]}" "$X/usr/bin/glxinfo" -B 2>&1 | head -40
  echo "===== mode $1: headless-gl probe"; timeout -k 3 40 "${E_[@]}" "$NODE" "$here/glprobe.cjs" "$PWD" 2>&1 | tail -20
}
: > "$OUT/glprobe.txt"
for m in nvidia mesa; do say "probing GL, mode $m"; probe $m | tee -a "$OUT/glprobe.txt" | grep -E 'GLPROBE result|OpenGL (vendor|renderer|version) string|rror|direct rendering'; done
NV_OK=0
grep -A40 '===== mode nvidia: headless-gl' "$OUT/glprobe.txt" | grep -q 'GLPROBE result=ok driver=NVIDIA' && NV_OK=1

annotate() { # $1 dir with gpu.json/gpu.md, $2 mode; adds the probed GL driver (headless-gl itself only says "ANGLE")
  local line; line=$(grep -A40 "===== mode $2: headless-gl" "$OUT/glprobe.txt" | grep -m1 'GLPROBE result' | sed 's/^GLPROBE //')
  local glx; glx=$(grep -A40 "===== mode $2: glxinfo" "$OUT/glprobe.txt" | grep -m1 'OpenGL renderer string' | sed 's/.*string: //')
  GLMODE="$2" GLPROBE="$line" GLXR="$glx" "$NODE" -e '
    const fs=require("fs"), d=process.argv[1]; const j=JSON.parse(fs.readFileSync(d+"/gpu.json","utf8"));
    const gpuDriver=/driver=NVIDIA/.test(process.env.GLPROBE)?"NVIDIA GPU":"SOFTWARE (Mesa llvmpipe) - NOT GPU FIGURES";
    j.host.glDriverProbe={mode:process.env.GLMODE, headlessGl:process.env.GLPROBE, glxinfoRenderer:process.env.GLXR, verdict:gpuDriver};
    fs.writeFileSync(d+"/gpu.json", JSON.stringify(j,null,2)+"\n");
    const md=fs.readFileSync(d+"/gpu.md","utf8").split("\n");
    md.splice(1,0,"",`**GL driver actually behind headless-gl/ANGLE (probed by .gpucarry/run.sh, mode ${process.env.GLMODE}): ${gpuDriver}** — glxinfo renderer: "${process.env.GLXR}"; probe: ${process.env.GLPROBE}`);
    fs.writeFileSync(d+"/gpu.md", md.join("\n"));' "$1"
}
bench() { # $1 mode, $2 out dir, $3 timeout, rest: args
  local m=$1 dir=$2 t=$3; shift 3; E "$m"
  say "bench: mode $m, out $dir, timeout ${t}s, args: $*"
  timeout -k 5 "$t" "${E_[@]}" "$NODE" dist/bench/gpu/run.js --out "$dir" "$@"
}

if [ $NV_OK = 1 ]; then MAIN=nvidia; else MAIN=mesa; fi
say "main run uses mode $MAIN ($([ $NV_OK = 1 ] && echo 'NVIDIA GLX works under Xvfb' || echo 'NVIDIA GLX did NOT work: SOFTWARE GL, not GPU figures'))"
rm -rf bench/results/gpu.json bench/results/gpu.md
if [ -n "$QUICK" ]; then bench $MAIN bench/results 150 --quick; rc=$?
else
  bench $MAIN bench/results 150; rc=$?
  if [ $rc != 0 ]; then say "full bench failed/timed out (rc $rc); rerunning --quick"; bench $MAIN bench/results 70 --quick; rc=$?; fi
fi
if [ -f bench/results/gpu.json ]; then annotate bench/results $MAIN; cp bench/results/gpu.json bench/results/gpu.md "$OUT/"; else say "no bench/results/gpu.json (rc $rc)"; fi
if [ $MAIN = nvidia ] && [ $(( $(date +%s) - T0 )) -lt 250 ]; then
  if bench mesa /tmp/gpu-mesa 60 --quick; then annotate /tmp/gpu-mesa mesa; cp /tmp/gpu-mesa/gpu.json "$OUT/gpu-mesa.json"; cp /tmp/gpu-mesa/gpu.md "$OUT/gpu-mesa.md"; fi
fi

say "==================== SUMMARY ===================="
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/GPU: /'
grep -E 'GLPROBE result|OpenGL renderer string|===== mode' "$OUT/glprobe.txt"
if [ -f "$OUT/gpu.json" ]; then
  "$NODE" -e 'const r=require(process.argv[1]); const p=r.host.glDriverProbe||{}; console.log(`MAIN RUN: mode ${p.mode}; GL = ${p.verdict}; glxinfo renderer "${p.glxinfoRenderer}"; gpu.js backend ${r.host.glBackend}; rows ${r.rows.length}, mismatches ${r.rows.filter(x=>!x.ok).length}`)' "$OUT/gpu.json"
  [ $MAIN = nvidia ] || echo "!!! WARNING: the GL figures in gpu.json/gpu.md are Mesa SOFTWARE rendering, NOT the NVIDIA GPU !!!"
fi
say "done (rc $rc)"
sleep 1; exit $rc
