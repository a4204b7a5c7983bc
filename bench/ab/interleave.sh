#!/bin/bash
# Interleaved before/after of the pool and queue (memory no-op) benches, for a regression check of
# a change: BEFORE and AFTER are built checkouts (git worktree add + npm run build). Rounds alternate
# the order (before-after, after-before, ...). The pool bench rewrites each side's bench/results/pool.md.
# Summarise with: node bench/ab/table.mjs $OUT
OUT=${OUT:-/tmp/distx-ab}; mkdir -p "$OUT"
BEFORE=${BEFORE:?a built worktree of the before commit}; AFTER=${AFTER:?a built worktree of the after commit}
TASKS=${TASKS:-100000}
ROUNDS=${ROUNDS:-6}
run_side() { # side dir round
  local side=$1 dir=$2 r=$3
  cd $dir
  echo "== $side round $r load $(cut -d' ' -f1 /proc/loadavg)" >> $OUT/log
  BENCH_TASKS=$TASKS BENCH_ROUNDS=1 node dist/bench/pool/run.js > $OUT/pool-$side-$r.txt 2>&1
  BENCH_ONLY=memory-no-op,no-baseline BENCH_TASKS=$TASKS BENCH_ROUNDS=1 node dist/bench/queue/run.js > $OUT/queue-$side-$r.txt 2>&1
}
for r in $(seq 1 $ROUNDS); do
  if (( r % 2 )); then run_side before $BEFORE $r; run_side after $AFTER $r
  else run_side after $AFTER $r; run_side before $BEFORE $r; fi
done
echo DONE >> $OUT/log
