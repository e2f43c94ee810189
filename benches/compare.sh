#!/usr/bin/env bash
# Compares two builds on a shared, noisy machine (see RESULTS.md: the same binary drifts by ±15%
# within minutes here, so figures taken minutes apart don't compare).
#
#   benches/compare.sh core   A B [RUNS]                   # A and B are profile_core binaries
#   benches/compare.sh replay A B [RUNS] STREAM ROSTER     # A and B are leadguard binaries
#   benches/compare.sh counts A B [RUNS]                   # A and B are profile_core binaries
#
# core:   both builds run `profile_core 3` at the same time, one pinned to each core (taskset),
#         swapping cores every run, so both see the same host; prints events/s per run and the
#         difference. Needs 2 cores.
# counts: instructions, cycles and cache misses per round of the core (`perf stat`, user space;
#         `cache-misses` is the processor's own choice: L2 misses on AMD Zen, last-level cache
#         misses on Intel), from `profile_core 3` minus `profile_core 0` (which generates and
#         parses the stream but runs no round), divided by 3, both builds in turn on core 1.
#         Instructions vary by less than 0.1% between runs of one build, so they show changes of
#         a few tenths of a percent that the clock on this machine can't; whether fewer
#         instructions also take less time is for `core` to say.
#         Needs `perf` (Debian: linux-perf).
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
counts)
  # "cycles instructions misses" of one run, user space only.
  count() {
    perf stat -x, -e cycles:u,instructions:u,cache-misses:u taskset -c 1 "$1" "$2" 2>&1 >/dev/null |
      grep -E ',(cycles|instructions|cache-misses):u' | cut -d, -f1 | paste -sd' '
  }
  for i in $(seq "$runs"); do
    for bin in "$a" "$b"; do
      read -r c0 i0 m0 <<<"$(count "$bin" 0)"
      read -r c3 i3 m3 <<<"$(count "$bin" 3)"
      awk -v run="$i" -v bin="$bin" -v c="$((c3 - c0))" -v n="$((i3 - i0))" -v m="$((m3 - m0))" \
        'BEGIN { printf "run %d: %s: %.3f G instructions, %.3f G cycles, %.1f M cache misses per round\n", run, bin, n / 3e9, c / 3e9, m / 3e6 }'
    done
  done
  ;;
*)
  echo "unknown mode $mode: core, counts or replay" >&2
  exit 2
  ;;
esac
