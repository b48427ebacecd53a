#!/bin/bash
# `make slurm-test`: runs tools/slurm/eval_array.sbatch as a 4-task job array on a local
# single-node Slurm, merges the shards with `blconvert eval-merge` and checks the result is
# byte for byte the unsharded `blconvert eval --json`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/.build/release/blconvert
[ -x "$BIN" ] || (cd "$ROOT" && swift build -c release --product blconvert)
SLURM=$ROOT/tools/slurm/local_cluster.sh
"$SLURM" start
trap '"$SLURM" stop' EXIT
export SLURM_CONF
SLURM_CONF=$("$SLURM" conf)

OUT=$(mktemp -d /tmp/blconvert-slurm-test.XXXXXX)
MINI=$ROOT/Fixtures/eval-mini
LIST=$OUT/list.txt
for _ in 1 2 3; do cat "$MINI/val_list.txt"; done > "$LIST"    # 12 videos
MODEL=$ROOT/Fixtures/mini-a2b4-f4x2/model.pth.tar
OPTS=(--frames 8 --root "$MINI/frames" --input-shape 112 --num-crops 3 --workers 1)

JOB=$(BLCONVERT=$BIN sbatch --parsable --array=0-3 --chdir "$OUT" "$ROOT/tools/slurm/eval_array.sbatch" \
      "$MODEL" "$LIST" "$OUT/parts" "${OPTS[@]}")
echo "slurm-test: submitted array job $JOB"
for _ in $(seq 600); do
    [ -z "$(squeue -h -j "$JOB" 2>/dev/null)" ] && break
    sleep 0.5
done
[ -z "$(squeue -h -j "$JOB" 2>/dev/null)" ] || { echo "slurm-test: FAIL: the job did not finish" >&2; exit 1; }
for k in 0 1 2 3; do
    if [ ! -f "$OUT/parts/part-$k.json" ]; then
        echo "slurm-test: FAIL: task $k wrote no part; its log:" >&2
        cat "$OUT"/blconvert-eval-*_"$k".out >&2 || true
        exit 1
    fi
    grep -q "\"count\": 4" "$OUT/parts/part-$k.json" || { echo "slurm-test: FAIL: part $k is not shard $k/4" >&2; exit 1; }
done
"$BIN" eval-merge "$OUT"/parts/part-*.json --json > "$OUT/merged.json"
"$BIN" eval "$MODEL" --list "$LIST" "${OPTS[@]}" --json > "$OUT/whole.json"
if cmp -s "$OUT/merged.json" "$OUT/whole.json"; then
    echo "slurm-test: PASS: 4 array tasks ($(grep -h 'Val@' "$OUT"/blconvert-eval-*.out | wc -l) shard summaries), merged = unsharded run byte for byte"
    grep -h "Val@" "$OUT"/blconvert-eval-*.out | sed 's/^/  /'
    rm -rf "$OUT"
else
    echo "slurm-test: FAIL: merged output differs from the unsharded run (kept in $OUT)" >&2
    diff "$OUT/merged.json" "$OUT/whole.json" | head -20 >&2
    exit 1
fi
