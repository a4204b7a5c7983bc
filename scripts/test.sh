#!/usr/bin/env bash
# The whole test suite, as the README's second command runs it (npm test) and as CI runs it.
# It brings up what the tests need, builds, runs vitest, and prints one summary line
# "N passed, M failed" at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -d node_modules ] || npm ci --no-audit --no-fund

# Services and system packages the suites need; each script is idempotent and quiet when all is there.
for setup in scripts/setup/*.sh; do
  [ -e "$setup" ] || continue
  echo "test.sh: $setup"
  # shellcheck disable=SC1090
  source "$setup"
done

npm run build

mkdir -p test-output
status=0
# headless-gl renders through GLX: give the suite a virtual X server when one is available.
runner=()
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null; then runner=(xvfb-run -a -s "-screen 0 1280x1024x24"); fi
"${runner[@]}" npx vitest run --reporter=default --reporter=json --outputFile.json=test-output/vitest.json "$@" || status=$?

if [ -f test-output/vitest.json ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync("test-output/vitest.json", "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    // A file whose setup failed has no failed test of its own: count it as one failure.
    const brokenFiles = r.testResults.filter((f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed")).length;
    console.log(`${r.numPassedTests} passed, ${r.numFailedTests + brokenFiles} failed` + (skipped ? `, ${skipped} skipped` : ""));
  '
fi
exit "$status"
