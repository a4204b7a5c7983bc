#!/usr/bin/env bash
# Rebuilds the carried archives of .gpucarry/ from this checkout (run here, on the Debian 12 x86-64 dev box,
# after `npm run build`). app.tar.xz must be redone whenever dist/ or build/kernels/ change; node.xz and
# x.tar.xz only when Node or the X/Mesa set changes (pass --all; takes ~4 min of xz).
set -euo pipefail
cd "$(dirname "$0")/.."; C=$PWD/.gpucarry; T=$(mktemp -d)
mkdir -p "$T/app/node_modules/gl/build/Release" "$T/app/build"
cp -a dist "$T/app/" && cp -a build/kernels "$T/app/build/"
for p in gpu.js zod glsl-tokenizer acorn bindings file-uri-to-path bit-twiddle gpu-mock.js; do cp -a node_modules/$p "$T/app/node_modules/"; done
cp -a node_modules/gl/{package.json,index.js,src,LICENSES} "$T/app/node_modules/gl/" && cp -a node_modules/gl/build/Release/webgl.node "$T/app/node_modules/gl/build/Release/"
(cd "$T/app" && tar -cf - .) | xz -T0 -9 > "$C/app.tar.xz"
if [ "${1:-}" = "--all" ]; then
  xz -T0 -c --x86 --lzma2=preset=9e,dict=128MiB "$(command -v node)" > "$C/node.xz"
  mkdir -p "$T/debs" "$T/lists/partial" "$T/px"; o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$T/lists"
  apt-get $o update -qq
  (cd "$T/debs" && apt-get $o download xvfb x11-xkb-utils xkb-data mesa-utils libgl1-mesa-dri libglx-mesa0 libllvm15 libglvnd0 libgl1 libglx0 libegl1 libopengl0 libglapi-mesa libbrotli1 libbsd0 libdrm-amdgpu1 libdrm-intel1 libdrm-nouveau2 libdrm-radeon1 libdrm2 libdrm-common libedit2 libelf1 libffi8 libfontenc1 libfreetype6 libgcrypt20 libgpg-error0 liblz4-1 libmd0 libpciaccess0 libpcre2-8-0 libpixman-1-0 libpng16-16 libsensors5 libsensors-config libsystemd0 libunwind8 libx11-6 libx11-data libx11-xcb1 libxau6 libxcb-dri2-0 libxcb-dri3-0 libxcb-glx0 libxcb-present0 libxcb-randr0 libxcb-shm0 libxcb-sync1 libxcb-xfixes0 libxcb1 libxdmcp6 libxext6 libxfixes3 libxfont2 libxkbfile1 libxshmfence1 libxxf86vm1 libzstd1 libxi6 libxmuu1 libxrender1 libtinfo6 libaudit1 libcap-ng0 libcap2 libbz2-1.0 liblzma5 libselinux1 libgmp10 libmpfr6 libsigsegv2 libreadline8 libxkbcommon0 libexpat1)
  for f in "$T"/debs/*.deb; do dpkg-deb -x "$f" "$T/px"; done
  cd "$T/px"; rm -rf usr/share/{doc,man,locale,lintian,bug,bash-completion,drirc.d,mesa-demos,pkgconfig,doc-base} usr/share/X11/locale etc/init.d
  find usr/bin -type f ! -name Xvfb ! -name xkbcomp ! -name glxinfo.x86_64-linux-gnu -delete; find usr/bin -type l -delete; ln -s glxinfo.x86_64-linux-gnu usr/bin/glxinfo
  find usr/lib/x86_64-linux-gnu/dri -type f ! -name swrast_dri.so -delete
  # libLLVM-15 links libxml2 (-> libicu72, 7 MiB) and libz3 (7 MiB) for features llvmpipe never uses: never-called stubs instead.
  gcc -O2 -shared -fPIC -o usr/lib/x86_64-linux-gnu/libz3.so.4 -Wl,-soname,libz3.so.4 "$C/src/z3.c"
  gcc -O2 -shared -fPIC -fno-builtin -o usr/lib/x86_64-linux-gnu/libxml2.so.2 -Wl,-soname,libxml2.so.2 -Wl,--version-script="$C/src/xml.map" "$C/src/xml.c"
  tar -cf - . | xz -T1 -c --x86 --lzma2=preset=9e,dict=192MiB > "$C/x.tar.xz"; cd - >/dev/null
fi
rm -rf "$T"; ls -l "$C"
echo "travelling total (tree + .gpucarry): $(( $(git ls-files -co --exclude-standard -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -cb "$C" | tail -1 | cut -f1) )) bytes (limit 64 MiB = 67108864)"
