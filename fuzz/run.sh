#!/usr/bin/env bash
# Runs every cargo-fuzz target for FUZZ_SECONDS (default 30 s) each and prints a summary table.
# Stable Rust: cargo-fuzz's nightly flags are enabled with RUSTC_BOOTSTRAP=1. New inputs go to
# fuzz/work/<target> (ignored); the committed seeds in fuzz/corpus/<target> are only read.
# Inputs in fuzz/regressions/<target> (known findings) are replayed first: each must pass.
#
#   fuzz/run.sh                      # or: make fuzz
#   FUZZ_SECONDS=300 FUZZ_TARGETS="ws_frames query" fuzz/run.sh
#   FUZZ_SANITIZER=none fuzz/run.sh  # fallback when the ASan runtime is unavailable
set -uo pipefail
cd "$(dirname "$0")"
SECS="${FUZZ_SECONDS:-30}"
SANITIZER="${FUZZ_SANITIZER:-address}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)" >&2
  cargo install cargo-fuzz --locked || { echo "fuzz: cargo-fuzz is required" >&2; exit 1; }
fi
TARGETS="${FUZZ_TARGETS:-$(cargo fuzz list)}"
cargo fuzz build --sanitizer "$SANITIZER" || exit 1

failed=0
summary=()
for t in $TARGETS; do
  mkdir -p "work/$t" "artifacts/$t"
  log="work/$t.log"
  : >"$log"
  # 1. Known findings: every committed reproducer must pass once fixed.
  regress="-"
  if compgen -G "regressions/$t/*" >/dev/null; then
    bad=0
    for f in regressions/"$t"/*; do
      cargo fuzz run --sanitizer "$SANITIZER" "$t" "$f" >>"$log" 2>&1 || bad=$((bad + 1))
    done
    n=$(ls "regressions/$t" | wc -l)
    if [ "$bad" -eq 0 ]; then regress="$n/$n pass"; else regress="$bad/$n FAIL"; failed=1; fi
  fi
  # 2. Time-bounded fuzzing that keeps going past crashes (each one lands in artifacts/).
  before=$(ls "artifacts/$t" | wc -l)
  cargo fuzz run --sanitizer "$SANITIZER" "$t" "work/$t" "corpus/$t" -- \
    -max_total_time="$SECS" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -timeout=10 -rss_limit_mb=4096 -max_len=65536 >>"$log" 2>&1
  rc=$?
  after=$(ls "artifacts/$t" | wc -l)
  execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
  corpus=$(ls "work/$t" | wc -l)
  new=$((after - before))
  if [ "$rc" -eq 0 ] && [ "$new" -eq 0 ]; then
    verdict="ok"
  else
    verdict="FAILED: $new new artifact(s) in fuzz/artifacts/$t (log fuzz/$log)"
    failed=1
  fi
  summary+=("$(printf '%-15s %11s execs  cov %5s  corpus %5s  regressions %-9s %s' \
    "$t" "${execs:-?}" "${cov:-?}" "$corpus" "$regress" "$verdict")")
  echo "${summary[-1]}"
done
echo
echo "fuzz summary (${SECS}s per target, sanitizer $SANITIZER):"
printf '%s\n' "${summary[@]}"
exit "$failed"
