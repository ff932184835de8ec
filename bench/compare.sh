#!/usr/bin/env bash
# Repeats the coil-vs-baseline comparisons, interleaved (coil, baseline, coil,
# ...) so slow drifts in machine load hit both sides alike, and prints the
# median of each and the median ratios. One run is not enough on a machine
# shared with builds: repeat, and read the CPU-time ratio too.
#
#   bench/compare.sh [build-dir] [rounds] [seconds]   (defaults: build 5 3)
# Environment: CPU (default 0) pins every run; FILE is the randread data file.
set -euo pipefail

build=${1:-build}
rounds=${2:-5}
secs=${3:-3}
cpu=${CPU:-0}
bin="$build/bin/coil-bench"
[[ -x $bin ]] || { echo "compare.sh: $bin not found (build first)" >&2; exit 2; }
file_args=()
[[ -n ${FILE:-} ]] && file_args=(--file "$FILE")

out=$(mktemp)
trap 'rm -f "$out"' EXIT

run() {  # prints the last line (the JSON) of one pinned run
  taskset -c "$cpu" "$bin" "$@" --seconds "$secs" 2>/dev/null | tail -n 1
}

for ((i = 1; i <= rounds; i++)); do
  echo "round $i/$rounds" >&2
  run nop --tasks 128 >>"$out"
  run nop --tasks 128 --baseline uring >>"$out"
  run randread --bs 4096 --qd 32 "${file_args[@]}" >>"$out"
  run randread --bs 4096 --qd 32 --baseline uring "${file_args[@]}" >>"$out"
  run randread --bs 4096 "${file_args[@]}" --baseline pread >>"$out"
done

python3 - "$out" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def series(bench, impl, key):
    return [r[key] for r in rows if r["bench"] == bench and r["impl"] == impl]
def med(xs):
    return statistics.median(xs) if xs else float("nan")
for bench, key, base, target in [("nop", "ops_per_s", "uring", 0.5),
                                  ("randread", "iops", "uring", 0.9),
                                  ("randread", "iops", "pread", None)]:
    cpu_key = {"ops_per_s": "ops_per_cpu_s", "iops": "iops_per_cpu_s"}[key]
    c, b = series(bench, "coil", key), series(bench, base, key)
    cc, bc = series(bench, "coil", cpu_key), series(bench, base, cpu_key)
    ratios = [x / y for x, y in zip(c, b)]
    cpu_ratios = [x / y for x, y in zip(cc, bc)]
    tgt = f" (target >= {target}x)" if target else ""
    print(f"{bench:9s} coil {med(c):>12,.0f}  {base:5s} {med(b):>12,.0f}  "
          f"ratio median {med(ratios):.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]  "
          f"cpu-time ratio {med(cpu_ratios):.2f}x{tgt}")
EOF
