#!/usr/bin/env bash
# tour_without_io_uring.sh NO_IO_URING COIL_BENCH: runs the tour (short steps,
# a 1 MiB file) with io_uring blocked by seccomp. It must say it skips the
# raw-ring baselines, and finish with status 0.
set -uo pipefail
no_io_uring=$1 bench=$2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$no_io_uring" "$bench" tour --seconds 0.2 --size 1M >"$out" 2>&1
rc=$?
cat "$out"
grep -q "raw io_uring unavailable (io_uring_queue_init: Operation not permitted)" "$out" ||
  { echo "tour_without_io_uring: no note about the skipped baselines"; exit 1; }
[[ $rc == 0 ]] || { echo "tour_without_io_uring: the tour exited with $rc"; exit 1; }
