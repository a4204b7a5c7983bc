# Sourced by scripts/test.sh. X/GL packages and a built headless-gl for the gpu.js tests.
# In CI this must succeed (the GPU tests then require the headlessgl backend); elsewhere a
# machine without it still runs every other suite, and the GL-only tests skip.
if [ "${CI:-}" = "true" ]; then
  bash scripts/install-gpu-deps.sh
  export DISTX_GPU_TESTS=require
else
  bash scripts/install-gpu-deps.sh || echo "test.sh: GL unavailable; gpu.js tests that need headlessgl will skip"
fi
