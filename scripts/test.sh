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

# The GPU executor's sandbox drops to an unprivileged user only when its code is readable by other
# users, as an installed package under /usr/lib is (agent/gpu/sandbox.ts). A checkout in a 0700
# folder (mktemp -d, a private home) is not; as root, open the path to this checkout so the suite
# runs the executor with every wall up, as a real install would.
if [ "$(id -u)" = 0 ]; then
  d="$PWD"
  while [ "$d" != / ]; do chmod o+x "$d"; d="$(dirname "$d")"; done
  chmod -R o+rX dist node_modules package.json 2>/dev/null || true
fi

mkdir -p test-output
rm -f test-output/vitest*.json
status=0
# headless-gl renders through GLX: give the suite a virtual X server when one is available.
runner=()
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null; then runner=(xvfb-run -a -s "-screen 0 1280x1024x24"); fi
# The placement end-to-end tests measure how the scheduler reacts to CPU load, so they run on
# their own after the rest, one file at a time: other test files running beside them would be
# load they did not plan.
# So do the sharing tests (test/e2e/sharing): they put a CPU burner on one agent's core and assert
# how that agent backs off and gives its queued tasks back, and how niced work is counted. The rolling upgrade (test/e2e/upgrade/
# rolling.test.ts) runs a job of about a minute across two agent replacements: its margin is how
# much longer the job runs than starting two agents takes, which other files' load would eat.
# The short chaos run (test/chaos) also runs on its own: its own broker, Redis, two schedulers and
# three agents under a nemesis are the whole machine's work for two minutes, and its checker
# bounds how long nodes may stay DOWN.
solo=(test/e2e/placement.test.ts test/e2e/sharing/host-load.test.ts test/e2e/sharing/niced-load.test.ts test/e2e/upgrade/rolling.test.ts)
chaos=test/chaos/chaos.test.ts
# The size-limit tests (test/e2e/limits) assert the scheduler's RSS and drive hundreds of streams that
# never read against HTTP/2 flow control: other files' processes beside them change both, so
# they too run on their own after the main pass.
limits=test/e2e/limits
# The multi-host suite (test/e2e/multihost) builds its own network of namespaces, with its own broker,
# Redis, scheduler and agents, and times how fast nodes go DOWN and come back: it too runs on its
# own. It needs root (ip netns); as another user it skips itself and says why.
multihost=test/e2e/multihost
"${runner[@]}" npx vitest run "${solo[@]/#/--exclude=}" --exclude "$chaos" --exclude "$limits/**" --exclude "$multihost/**" --reporter=default --reporter=json --outputFile.json=test-output/vitest-main.json "$@" || status=$?
if [ $# -eq 0 ]; then
  # Alone on the machine, the CPU-contention cases are reliable (DISTX_E2E_CONTENTION turns them on).
  # They use no Kafka: the SASL_SSL broker (only the secure-backend tests need it) would be one
  # more JVM taking CPU from the agents whose load they measure, so it stops first.
  bash scripts/kafka-secure.sh down >/dev/null 2>&1 || true
  DISTX_E2E_CONTENTION=1 "${runner[@]}" npx vitest run "${solo[@]}" --no-file-parallelism --reporter=default --reporter=json --outputFile.json=test-output/vitest-solo.json || status=$?
  npx vitest run "$limits" --reporter=default --reporter=json --outputFile.json=test-output/vitest-limits.json || status=$?
  npx vitest run "$multihost" --reporter=default --reporter=json --outputFile.json=test-output/vitest-multihost.json || status=$?
  DISTX_CHAOS=1 npx vitest run "$chaos" --reporter=default --reporter=json --outputFile.json=test-output/vitest-chaos.json || status=$?
fi

node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const f of ["test-output/vitest-main.json", "test-output/vitest-solo.json", "test-output/vitest-limits.json", "test-output/vitest-multihost.json", "test-output/vitest-chaos.json"]) {
    if (!fs.existsSync(f)) continue;
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    // A file whose setup failed has no failed test of its own: count it as one failure.
    const brokenFiles = r.testResults.filter((t) => t.status === "failed" && !t.assertionResults.some((a) => a.status === "failed")).length;
    passed += r.numPassedTests;
    failed += r.numFailedTests + brokenFiles;
    skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
'
exit "$status"
