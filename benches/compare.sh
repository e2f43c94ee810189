#!/usr/bin/env bash
# Compares two builds on a shared, noisy machine (see RESULTS.md: the same binary drifts by ±15%
# within minutes here, so figures taken minutes apart don't compare).
#
#   benches/compare.sh core   A B [RUNS]                   # A and B are profile_core binaries
#   benches/compare.sh replay A B [RUNS] STREAM ROSTER     # A and B are leadguard binaries
#
# core:   both builds run `profile_core 3` at the same time, one pinned to each core (taskset),
#         swapping cores every run, so both see the same host; prints events/s per run and the
#         difference. Needs 2 cores.
# replay: a replay needs both cores, so the builds take turns (A, B, A, B, ...) replaying STREAM
#         with the shipped rules; prints every run's lines/s and the medians.
#
# Make the stream and roster with
#   leadguard gen --seed 2026 --customers 100000 --reps 1000 --events 1000000 --days 90 \
#     -o big.jsonl --roster-out big.yaml
# and build each side with `cargo build --release --example profile_core --bin leadguard`,
# copying target/release/examples/profile_core and target/release/leadguard aside.
set -euo pipefail

mode=${1:?"usage: benches/compare.sh core|replay A B [RUNS] [STREAM ROSTER]"}
# Paths as given, from where the script was called; then the repository root (for rules/).
a=$(realpath "${2:?"binary A"}")
b=$(realpath "${3:?"binary B"}")
runs=${4:-5}
cd "$(dirname "$0")/.."
rate() { grep -o '[0-9]* \(events\|lines\)/s' | cut -d' ' -f1; }

case "$mode" in
core)
  la=$(mktemp) lb=$(mktemp)
  trap 'rm -f "$la" "$lb"' EXIT
  for i in $(seq "$runs"); do
    if ((i % 2)); then ca=0 cb=1; else ca=1 cb=0; fi
    taskset -c "$ca" "$a" 3 >"$la" 2>&1 &
    pa=$!
    taskset -c "$cb" "$b" 3 >"$lb" 2>&1 &
    pb=$!
    wait "$pa" "$pb"
    ra=$(rate <"$la") rb=$(rate <"$lb")
    echo "run $i: A $ra events/s, B $rb events/s, B/A $(awk "BEGIN { printf \"%+.1f%%\", ($rb / $ra - 1) * 100 }")"
  done
  ;;
replay)
  stream=$(cd "$OLDPWD" && realpath "${5:?"STREAM (JSON lines)"}")
  roster=$(cd "$OLDPWD" && realpath "${6:?"ROSTER (YAML)"}")
  out=$(mktemp)
  trap 'rm -f "$out"' EXIT
  declare -A all
  for _ in $(seq "$runs"); do
    for bin in "$a" "$b"; do
      r=$("$bin" replay --rules rules --roster "$roster" --input "$stream" -o "$out" \
        --dead-letters /dev/null 2>&1 | rate)
      all[$bin]="${all[$bin]:-} $r"
    done
  done
  for bin in "$a" "$b"; do
    sorted=$(tr ' ' '\n' <<<"${all[$bin]}" | grep . | sort -n)
    median=$(sed -n "$(((runs + 1) / 2))p" <<<"$sorted")
    echo "$bin: $(tr '\n' ' ' <<<"$sorted")median $median lines/s"
  done
  ;;
*)
  echo "unknown mode $mode: core or replay" >&2
  exit 2
  ;;
esac
