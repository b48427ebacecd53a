#!/usr/bin/env bash
# Compare blconvert's CPU engine with onnxruntime, PyTorch eager and torch.compile on one clip,
# alternating the engines (ort, blconvert, ort, blconvert, ...) so that all see the same machine load.
# Prints one table: per-clip median/min seconds, GFLOP/s, ratio to onnxruntime, peak RSS, and the
# whole-process figures (load + one clip) from /usr/bin/time -v. Nothing is downloaded.
#
# usage: tools/compare_peers.sh --venv DIR --ref DIR --checkpoint FILE --clip FILE [options]
#   --venv DIR        Python environment with torch, onnxruntime, numpy, safetensors (DIR/bin/python)
#   --ref DIR         the reference bLVNet-TAM code (IBM/bLVNet-TAM checkout)
#   --checkpoint F    the checkpoint (default: the r50 fixture)
#   --clip F          a clip file (safetensors with `input` [1, T*3, H, W], optionally `logits_f64`)
#   --onnx F          exported ONNX model (exported from --checkpoint with --ref when missing)
#   --package DIR     blconvert package (imported from --checkpoint when missing; default /tmp/compare_peers.blc)
#   --blconvert BIN   blconvert executable (default .build/release/blconvert)
#   --rounds N        alternations of ort and blconvert (default 5)
#   --runs N --warmup N   timed / warm-up runs per measurement (default 10 / 2)
#   --threads N       threads for every engine (default 2)
#   --no-eager --no-compile   skip those peers (torch.compile compiles for ~100 s the first time)
#   --blas-core NAME  also time blconvert with OPENBLAS_CORETYPE=NAME (e.g. SKYLAKEX), in the same rounds
#   --model-args "..."        peer model options (default: bLVNet-TAM-50 a2 b4 f8x2, 174 classes; see
#                             tools/peers/peer_bench.py)
# Environment: BLVNET_REF, PEER_VENV may replace --ref / --venv.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
VENV=${PEER_VENV:-}
REF=${BLVNET_REF:-}
CKPT=$root/../shared/fixtures/r50-a2b4-f8x2-ssv2/model.pth.tar
CLIP=$root/../shared/fixtures/r50-a2b4-f8x2-ssv2/clip0.safetensors
ONNX=""
PKG=/tmp/compare_peers.blc
BLC=$root/.build/release/blconvert
ROUNDS=5 RUNS=10 WARMUP=2 THREADS=2 EAGER=1 COMPILE=1 MODEL_ARGS="" CORE2=""
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) VENV=$2; shift ;;
    --ref) REF=$2; shift ;;
    --checkpoint) CKPT=$2; shift ;;
    --clip) CLIP=$2; shift ;;
    --onnx) ONNX=$2; shift ;;
    --package) PKG=$2; shift ;;
    --blconvert) BLC=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --no-eager) EAGER=0 ;;
    --no-compile) COMPILE=0 ;;
    --model-args) MODEL_ARGS=$2; shift ;;
    --blas-core) CORE2=$2; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "compare_peers: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$VENV" ] && [ -x "$VENV/bin/python" ] || { echo "compare_peers: --venv DIR with bin/python is needed" >&2; exit 2; }
[ -n "$REF" ] && [ -d "$REF" ] || { echo "compare_peers: --ref DIR (reference bLVNet-TAM code) is needed" >&2; exit 2; }
[ -x "$BLC" ] || { echo "compare_peers: no blconvert at $BLC (swift build -c release --product blconvert)" >&2; exit 2; }
PY=$VENV/bin/python
PB=$here/peers/peer_bench.py
export PYTHONWARNINGS=ignore
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# shellcheck disable=SC2086
peer() { "$PY" "$PB" "$@" --ref "$REF" --checkpoint "$CKPT" --clip "$CLIP" --threads "$THREADS" $MODEL_ARGS; }

echo "== $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}" >&2
if [ ! -d "$PKG" ]; then "$BLC" import "$CKPT" -o "$PKG" --frames "${FRAMES:-16}" >/dev/null; fi
if [ -z "$ONNX" ]; then ONNX=$out/model.onnx; fi
if [ ! -f "$ONNX" ]; then echo "exporting ONNX to $ONNX" >&2; peer export --onnx "$ONNX" >&2; fi

for r in $(seq 1 "$ROUNDS"); do
  echo "round $r of $ROUNDS" >&2
  peer time ort --onnx "$ONNX" --runs "$RUNS" --warmup "$WARMUP" > "$out/ort.$r.json"
  "$BLC" bench "$PKG" --threads "$THREADS" --runs "$RUNS" --warmup "$WARMUP" --json 2>/dev/null > "$out/blc.$r.json"
  if [ -n "$CORE2" ]; then
    OPENBLAS_CORETYPE=$CORE2 "$BLC" bench "$PKG" --threads "$THREADS" --runs "$RUNS" --warmup "$WARMUP" --json 2>/dev/null > "$out/blc2.$r.json"
  fi
done
if [ "$EAGER" = 1 ]; then peer time eager --runs "$RUNS" --warmup "$WARMUP" > "$out/eager.json"; fi
if [ "$COMPILE" = 1 ]; then timeout 900 "$PY" "$PB" time compile --ref "$REF" --checkpoint "$CKPT" --clip "$CLIP" \
  --threads "$THREADS" --runs "$RUNS" --warmup "$WARMUP" $MODEL_ARGS > "$out/compile.json" || true; fi

# Whole process: load the model, run the clip once, print the top-5.
whole() {  # name, command...
  local name=$1; shift
  /usr/bin/time -v "$@" > /dev/null 2> "$out/time.$name" || true
  local wall rss
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$out/time.$name")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$out/time.$name")
  echo "{\"engine\": \"$name\", \"wall\": \"$wall\", \"rss_kib\": ${rss:-0}}" > "$out/whole.$name.json"
}
whole blconvert "$BLC" run "$PKG" "$CLIP" --threads "$THREADS"
[ -n "$CORE2" ] && whole blconvert-core2 env OPENBLAS_CORETYPE="$CORE2" "$BLC" run "$PKG" "$CLIP" --threads "$THREADS"
whole ort "$PY" "$PB" once ort --onnx "$ONNX" --clip "$CLIP" --threads "$THREADS"
[ "$EAGER" = 1 ] && whole eager "$PY" "$PB" once eager --ref "$REF" --checkpoint "$CKPT" --clip "$CLIP" --threads "$THREADS" $MODEL_ARGS

python3 - "$out" "$ROUNDS" <<'PYEOF'
import glob, json, os, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
def load(p):
    try:
        with open(p) as f: return json.load(f)
    except Exception: return None
def secs(w):  # m:ss.ss or h:mm:ss
    parts = [float(x) for x in w.split(":")]
    s = 0.0
    for x in parts: s = s * 60 + x
    return s
blc = [load(f"{d}/blc.{r}.json") for r in range(1, rounds + 1)]
ort = [load(f"{d}/ort.{r}.json") for r in range(1, rounds + 1)]
pairs = [(b, o) for b, o in zip(blc, ort) if b and o]
if not pairs: sys.exit("compare_peers: no measurement")
gflop = pairs[0][0]["gflop_per_clip"]
ratios = [b["seconds_per_clip_median"] / o["median"] for b, o in pairs]
rows = []
def row(name, med, mn, rss, note=""):
    rows.append((name, med, mn, gflop / med if med else 0, rss, note))
row("blconvert", statistics.median(b["seconds_per_clip_median"] for b, _ in pairs),
    min(b["seconds_per_clip_min"] for b, _ in pairs), max(b["peak_rss_bytes"] for b, _ in pairs),
    pairs[0][0].get("convolution_gemm", "OpenBLAS " + pairs[0][0].get("openblas_core", "?")))
blc2 = [load(f"{d}/blc2.{r}.json") for r in range(1, rounds + 1)]
trip = [(b, o) for b, o in zip(blc2, ort) if b and o]
if trip:
    row("blconvert*", statistics.median(b["seconds_per_clip_median"] for b, _ in trip),
        min(b["seconds_per_clip_min"] for b, _ in trip), max(b["peak_rss_bytes"] for b, _ in trip),
        "OpenBLAS " + trip[0][0].get("openblas_core", "?") + " (--blas-core)")
row("onnxruntime", statistics.median(o["median"] for _, o in pairs), min(o["min"] for _, o in pairs),
    max(o["peak_rss_bytes"] for _, o in pairs), pairs[0][1]["note"])
for name in ("eager", "compile"):
    j = load(f"{d}/{name}.json")
    if j: row("torch " + name, j["median"], j["min"], j["peak_rss_bytes"], j["note"])
ort_med = next(r[1] for r in rows if r[0] == "onnxruntime")
print(f"per clip ({len(pairs)} alternated rounds; medians of medians; GFLOP per clip {gflop:.2f})")
print(f"{'engine':14s} {'median s':>9s} {'min s':>7s} {'GFLOP/s':>8s} {'x ort':>6s} {'peak RSS':>9s}  note")
for name, med, mn, gf, rss, note in rows:
    print(f"{name:14s} {med:9.3f} {mn:7.3f} {gf:8.1f} {med / ort_med:6.2f} {rss / 2**20:6.0f} MiB  {note}")
print(f"blconvert / onnxruntime per round: {' '.join(f'{x:.3f}' for x in ratios)}; median {statistics.median(ratios):.3f}")
mins = [b["seconds_per_clip_min"] / o["min"] for b, o in pairs]
print(f"  same with each round's fastest runs (less sensitive to load): {' '.join(f'{x:.3f}' for x in mins)}; median {statistics.median(mins):.3f}")
if trip:
    r2 = [b["seconds_per_clip_median"] / o["median"] for b, o in trip]
    print(f"blconvert* / onnxruntime per round: {' '.join(f'{x:.3f}' for x in r2)}; median {statistics.median(r2):.3f}")
    m2 = [b["seconds_per_clip_min"] / o["min"] for b, o in trip]
    print(f"  same with each round's fastest runs: {' '.join(f'{x:.3f}' for x in m2)}; median {statistics.median(m2):.3f}")
print("whole process (load + one clip + top-5), /usr/bin/time -v:")
for name in ("blconvert", "blconvert-core2", "ort", "eager"):
    j = load(f"{d}/whole.{name}.json")
    if j and j["wall"]:
        print(f"  {name:12s} wall {secs(j['wall']):6.2f} s  max RSS {j['rss_kib'] / 1024:6.0f} MiB")
PYEOF
