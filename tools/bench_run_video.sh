#!/bin/bash
# One video to top-5, whole processes: `blconvert run MODEL VIDEO` against the reference workflow
# (the reference's ffmpeg extraction to JPEG files, then a Python process running the reference
# test.py pipeline on the folder: VideoDataSet, test.py's transforms, the model, eval_a_batch).
# Rounds alternate the two; each prints wall seconds, CPU seconds and peak RSS (/usr/bin/time -v),
# with the load average before the round.
#
#   tools/bench_run_video.sh --venv VENV --ref BLVNET_TAM_CHECKOUT [--rounds 3] [--video FILE] [--r50]
#
# Default video: a 10 s 427x240 25 fps VP9 file made with the ffmpeg program (250 frames); default
# model: the bundled mini checkpoint (T = 8); --r50: the R50 f8x2 fixture (T = 16, 174 classes).
# Both sides run 2 threads. Needs: ffmpeg, and a venv with torch, torchvision, numpy, pillow, tqdm.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV= REF= ROUNDS=3 VIDEO= R50=0
while [ $# -gt 0 ]; do
    case "$1" in
    --venv) VENV=$2; shift 2 ;;
    --ref) REF=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --video) VIDEO=$2; shift 2 ;;
    --r50) R50=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$VENV" ] && [ -n "$REF" ] || { echo "usage: $0 --venv VENV --ref CHECKOUT [--rounds N] [--video FILE] [--r50]" >&2; exit 2; }
SHARED=${BLCONVERT_SHARED_FIXTURES:-$ROOT/../shared/fixtures}
BIN=$ROOT/.build/release/blconvert
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [ $R50 = 1 ]; then
    MODEL=$SHARED/r50-a2b4-f8x2-ssv2/model.pth.tar FRAMES=16
    PYMODEL=(--blocks 3,4,6,3 --depth 50 --num-classes 174)
else
    MODEL=$ROOT/Fixtures/mini-a2b4-f4x2/model.pth.tar FRAMES=8
    PYMODEL=(--blocks 2,2,2,1 --num-classes 10)
fi
if [ -z "$VIDEO" ]; then
    VIDEO=$TMP/bench.webm
    ffmpeg -v error -f lavfi -i "testsrc2=size=427x240:rate=25:duration=10" -c:v libvpx-vp9 -b:v 400k -pix_fmt yuv420p "$VIDEO"
fi
"$BIN" import "$MODEL" -o "$TMP/model.blc" --frames $FRAMES >/dev/null
measure() {  # name command...: one line of figures
    local name=$1; shift
    /usr/bin/time -v "$@" > "$TMP/out.txt" 2> "$TMP/time.txt" || { cat "$TMP/time.txt" >&2; exit 1; }
    awk -v n="$name" -F': ' '
        /Elapsed \(wall clock\)/ { split($2, t, ":"); wall = (length(t) == 3 ? t[1] * 3600 + t[2] * 60 + t[3] : t[1] * 60 + t[2]) }
        /User time/ { user = $2 } /System time/ { sys = $2 } /Maximum resident/ { rss = $2 / 1024 }
        END { printf "  %-34s wall %6.2f s  cpu %6.2f s  peak RSS %6.0f MiB\n", n, wall, user + sys, rss }' "$TMP/time.txt"
}
reference() {  # the reference workflow, as one shell: extraction, then the Python pipeline
    rm -rf "$TMP/frames" && mkdir -p "$TMP/frames/v"
    ffmpeg -v error -i "$VIDEO" -vf "scale=-1:256" -threads 1 -qmin 1 -qmax 1 -q:v 0 "$TMP/frames/v/%05d.jpg"
    local n; n=$(ls "$TMP/frames/v" | wc -l)
    echo "v 1 $n 0" > "$TMP/list.txt"
    # blconvert run scales the shorter side to 224 (--scale 224), as test.py with --disable_scaleup.
    "$VENV/bin/python" "$ROOT/tools/eval_reference.py" --reference-code "$REF" --list "$TMP/list.txt" --root "$TMP/frames" \
        --checkpoint "$MODEL" "${PYMODEL[@]}" --frames $FRAMES --disable-scaleup --workers 0 --threads 2 >/dev/null
}
export -f reference
export TMP VIDEO VENV ROOT REF MODEL FRAMES
export PYMODEL_ARGS="${PYMODEL[*]}"
echo "video: $VIDEO; model: $MODEL (T = $FRAMES); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for r in $(seq 1 "$ROUNDS"); do
    echo "round $r (load average $(cut -d' ' -f1 /proc/loadavg))"
    measure "blconvert run (decode + model)" "$BIN" run "$TMP/model.blc" "$VIDEO" --threads 2
    measure "ffmpeg extraction + Python test.py" bash -c "$(declare -f reference); PYMODEL=($PYMODEL_ARGS); reference"
done
