#!/usr/bin/env bash
# Installs what headless-gl (`gl`, gpu.js's optional dependency) needs to build and run, then
# builds it. Idempotent: packages already present are skipped, and a working gl is kept.
# Needs root (or sudo) for apt-get. A machine without these still installs and runs everything
# else: GPU kernels then run in gpu.js cpu mode only.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(build-essential python3 pkg-config libx11-dev libxi-dev libxext-dev libgl-dev xvfb xauth)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if node -e 'require("gl")' 2>/dev/null; then
  echo "gl already built: $(node -p 'require("gl/package.json").version')"
elif [ ! -d node_modules/gl ]; then
  # npm drops an optional dependency whose build failed (e.g. npm ci ran before the X/GL headers
  # were installed): install the locked version again, now that they are.
  GL_VERSION="$(node -p 'require("./package-lock.json").packages["node_modules/gl"].version')"
  JOBS="${JOBS:-$(nproc)}" npm install --no-save --no-audit --no-fund --foreground-scripts "gl@$GL_VERSION"
  node -e 'require("gl")' && echo "gl built"
else
  # npm 11 blocks install scripts unless approved; rebuild runs gl's (prebuild-install || node-gyp, ~5 min on 2 cores).
  JOBS="${JOBS:-$(nproc)}" npm rebuild gl
  node -e 'require("gl")' && echo "gl built"
fi
# A real check: open a GL context under a virtual X server.
xvfb-run -a node -e 'const c=require("gl")(1,1); if(!c) process.exit(1); console.log("GL context ok:", c.getParameter(c.VERSION))'
