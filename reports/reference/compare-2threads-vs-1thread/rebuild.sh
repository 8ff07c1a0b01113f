#!/usr/bin/env bash
# Rebuild this cross-machine comparison from committed runs (reading only, no TensorFlow):
#   A = reports/reference/cpu-2core-tf2.21            (the cpu preset, TensorFlow's default threads)
#   B = reports/reference/cpu-2core-tf2.21-1thread-b128 (the cpu preset's b128-t28 shape, 1 thread)
# B is measured on a quiet machine first (about 4-5 minutes; nothing else running):
#   PYTHONPATH=. python3 -m bench.cli run --preset cpu --threads 1 -k '*b128-t28*' \
#       --out reports/reference/cpu-2core-tf2.21-1thread-b128
# Until it exists, B falls back to the 7-case 1-thread run cpu-2core-tf2.21-1thread-rowmnist.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ref="$(dirname "$here")"
repo="$(cd "$here/../../.." && pwd)"  # this checkout's code, not whatever rnnbench is installed
b="$ref/cpu-2core-tf2.21-1thread-b128"
[ -f "$b/results.json" ] || b="$ref/cpu-2core-tf2.21-1thread-rowmnist"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" python3 -m bench.cli compare \
    "$ref/cpu-2core-tf2.21" "$b" --cross-machine --out "$tmp/out" >/dev/null
rm -rf "$here/figures" "$here/compare.md" "$here/compare.csv" "$here/report.html"
cp -r "$tmp/out/." "$here/"
echo "rebuilt $here (B = $(basename "$b"))"
