# Sourced by scripts/test.sh. Toolchains for C and Rust kernels (kernels/c, kernels/rust;
# `distx kernel build x.c` / `distx kernel build <cargo project>`): Debian's clang + lld for
# --target=wasm32, and Debian's rustc/cargo with the wasm32 standard library. Debian's rustc
# is used by path (/usr/bin/rustc, /usr/bin/cargo): a rustup toolchain earlier on PATH
# (e.g. /root/.cargo/bin) has no wasm32 target and rustup cannot fetch one offline.
# In CI this must succeed; elsewhere the C/Rust kernel tests skip when a tool is missing.
_distx_kernel_langs() {
  local pkgs="clang lld llvm rustc cargo libstd-rust-dev-wasm32"
  local missing=""
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  fi
}
if [ "${CI:-}" = "true" ]; then
  _distx_kernel_langs
  export DISTX_KERNEL_LANG_TESTS=require
else
  _distx_kernel_langs || echo "test.sh: clang/lld/rustc for wasm32 unavailable; C and Rust kernel tests will skip"
fi
unset -f _distx_kernel_langs
