#!/bin/bash
# Videos per second of `blconvert eval` against the reference test.py pipeline (PyTorch DataLoader
# with workers, CPU) on the same list and settings, alternating the two engines for a few rounds
# on a shared machine. Needs a virtual environment with torch, torchvision, numpy, pillow and tqdm,
# and a checkout of the reference code.
#
#   tools/bench_eval.sh --venv VENV --ref BLVNET_TAM_CHECKOUT [--rounds 3] [--times 10] [-- eval options]
#
# The list is ../shared/fixtures/eval-mini's six videos repeated --times times; the model is the
# bundled mini checkpoint (T = 8). Both sides use 2 threads and 2 loader workers.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV= REF= ROUNDS=3 TIMES=10
while [ $# -gt 0 ]; do
    case "$1" in
    --venv) VENV=$2; shift 2 ;;
    --ref) REF=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --times) TIMES=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$VENV" ] && [ -n "$REF" ] || { echo "usage: $0 --venv VENV --ref CHECKOUT [--rounds N] [--times N] [-- options]" >&2; exit 2; }
SHARED=${BLCONVERT_SHARED_FIXTURES:-$ROOT/../shared/fixtures}
MINI=$SHARED/eval-mini
MODEL=$ROOT/Fixtures/mini-a2b4-f4x2/model.pth.tar
BIN=$ROOT/.build/release/blconvert
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for _ in $(seq "$TIMES"); do cat "$MINI/val_list.txt"; done > "$TMP/list.txt"
N=$(wc -l < "$TMP/list.txt")
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; list: $N videos; options: $*"
for r in $(seq "$ROUNDS"); do
    echo "round $r: load $(cut -d' ' -f1-3 /proc/loadavg)"
    t0=$(date +%s.%N)
    "$BIN" eval "$MODEL" --frames 8 --list "$TMP/list.txt" --root "$MINI/frames" --threads 2 --workers 2 "$@" > "$TMP/ours.txt" 2>/dev/null
    t1=$(date +%s.%N)
    echo "  blconvert eval: $(echo "$N / ($t1 - $t0)" | bc -l | cut -c1-5) videos/s ($(echo "$t1 - $t0" | bc | cut -c1-5) s, whole process)"
    t0=$(date +%s.%N)
    ref=$("$VENV/bin/python" "$ROOT/tools/eval_reference.py" --reference-code "$REF" --list "$TMP/list.txt" \
          --root "$MINI/frames" --checkpoint "$MODEL" --frames 8 --workers 2 --threads 2 "$@" 2>/dev/null)
    t1=$(date +%s.%N)
    echo "  reference test.py pipeline: $(echo "$ref" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.2f videos/s (%.2f s in the loop)" % (d["videos_per_second"], d["seconds"]))'), $(echo "$t1 - $t0" | bc | cut -c1-5) s whole process"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
