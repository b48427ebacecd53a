#!/usr/bin/env bash
# Compare blconvert's CPU engine with onnxruntime, OpenVINO (f32 forced, and its default: bf16 on
# CPUs with AVX512_BF16) and PyTorch eager on one clip. Each round runs every engine once, in an
# order rotated from round to round, so that all see the same machine; every round records the
# load average and the machine's FMA peak measured in it (`blconvert bench --peak`), and a round
# is marked "busy" when its threads together delivered under 80% of threads x the best per-core
# peak of the run by the wall clock (other work shared the cores). Medians are over the quiet
# rounds, and over all rounds too when some were busy. Prints, per thread count, the medians over rounds of each engine's
# median wall and CPU seconds per clip (CPU = all threads), GFLOP/s, blconvert's ratio to each
# peer in wall and CPU time, the error against the clip's logits_f64 and the top-5, then the
# whole-process figures (start, load, one clip, top-5) from /usr/bin/time -v: blconvert `run` and a
# Python process running onnxruntime, alternated --whole-runs times, medians and the ratio. Nothing
# is downloaded.
#
# usage: tools/compare_peers.sh --venv DIR --ref DIR [options]
#   --venv DIR        Python environment with torch, onnxruntime, openvino, numpy, safetensors
#   --ref DIR         the reference bLVNet-TAM code (IBM/bLVNet-TAM checkout)
#   --checkpoint F    the checkpoint (default: the r50 fixture)
#   --clip F          a clip file (safetensors with `input` [1, T*3, H, W], optionally `logits_f64`)
#   --onnx F          exported ONNX model (exported from --checkpoint with --ref when missing)
#   --package DIR     blconvert package (imported from --checkpoint when missing; default /tmp/compare_peers.blc)
#   --blconvert BIN   blconvert executable (default .build/release/blconvert)
#   --engines "..."   any of: blc blc-bf16 ort ov-f32 ov-default eager compile
#                     (default: blc blc-bf16 ort ov-f32 ov-default eager; blc-bf16 only with AVX512_BF16)
#   --rounds N        rounds (default 6)
#   --runs N --warmup N   timed / warm-up runs per measurement (default 8 / 2)
#   --threads "N ..." thread counts, each a full set of rounds (default "2 1")
#   --no-whole        skip the whole-process comparison
#   --whole-runs N    whole-process runs of each, alternated (default 5)
#   --keep DIR        keep every measurement's JSON in DIR (default: a temporary directory, removed)
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
ROUNDS=6 RUNS=8 WARMUP=2 THREADS="2 1" WHOLE=1 WHOLE_RUNS=5 MODEL_ARGS="" KEEP=""
ENGINES="blc blc-bf16 ort ov-f32 ov-default eager"
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) VENV=$2; shift ;;
    --ref) REF=$2; shift ;;
    --checkpoint) CKPT=$2; shift ;;
    --clip) CLIP=$2; shift ;;
    --onnx) ONNX=$2; shift ;;
    --package) PKG=$2; shift ;;
    --blconvert) BLC=$2; shift ;;
    --engines) ENGINES=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --no-whole) WHOLE=0 ;;
    --whole-runs) WHOLE_RUNS=$2; shift ;;
    --keep) KEEP=$2; shift ;;
    --model-args) MODEL_ARGS=$2; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "compare_peers: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$VENV" ] && [ -x "$VENV/bin/python" ] || { echo "compare_peers: --venv DIR with bin/python is needed" >&2; exit 2; }
[ -n "$REF" ] && [ -d "$REF" ] || { echo "compare_peers: --ref DIR (reference bLVNet-TAM code) is needed" >&2; exit 2; }
[ -x "$BLC" ] || { echo "compare_peers: no blconvert at $BLC (swift build -c release --product blconvert)" >&2; exit 2; }
if ! grep -qw avx512_bf16 /proc/cpuinfo; then ENGINES=$(echo " $ENGINES " | sed 's/ blc-bf16 / /'); fi
PY=$VENV/bin/python
PB=$here/peers/peer_bench.py
export PYTHONWARNINGS=ignore
if [ -n "$KEEP" ]; then mkdir -p "$KEEP"; out=$KEEP; else out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; fi
# shellcheck disable=SC2086
peer() { "$PY" "$PB" "$@" --ref "$REF" --checkpoint "$CKPT" --clip "$CLIP" $MODEL_ARGS; }

cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), family $(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo | head -1) model $(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "== $(date -u +%FT%TZ), $cpu, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
if [ ! -d "$PKG" ]; then "$BLC" import "$CKPT" -o "$PKG" --frames "${FRAMES:-16}" >/dev/null; fi
if [ -z "$ONNX" ]; then ONNX=$out/model.onnx; fi
if [ ! -f "$ONNX" ]; then echo "exporting ONNX to $ONNX" >&2; peer export --onnx "$ONNX" --threads 2 >&2; fi

measure() {  # engine threads round -> $out/<engine>.<threads>.<round>.json
  local e=$1 t=$2 r=$3 f="$out/$1.$2.$3.json"
  case "$e" in
    blc) "$BLC" bench "$PKG" --clip "$CLIP" --threads "$t" --runs "$RUNS" --warmup "$WARMUP" --peak --json 2>/dev/null > "$f" || true ;;
    blc-bf16) "$BLC" bench "$PKG" --clip "$CLIP" --threads "$t" --runs "$RUNS" --warmup "$WARMUP" --compute bf16 --json 2>/dev/null > "$f" || true ;;
    compile) timeout 900 "$PY" "$PB" time compile --ref "$REF" --checkpoint "$CKPT" --clip "$CLIP" --threads "$t" \
               --runs "$RUNS" --warmup "$WARMUP" $MODEL_ARGS > "$f" 2>/dev/null || true ;;
    *) peer time "$e" --onnx "$ONNX" --threads "$t" --runs "$RUNS" --warmup "$WARMUP" > "$f" 2>/dev/null || true ;;
  esac
}

read -r -a engines <<< "$ENGINES"
n=${#engines[@]}
for t in $THREADS; do
  for r in $(seq 1 "$ROUNDS"); do
    cut -d' ' -f1-3 /proc/loadavg > "$out/load.$t.$r"
    order=()
    for i in $(seq 0 $((n - 1))); do order+=("${engines[$(((i + r - 1) % n))]}"); done
    echo "threads $t round $r of $ROUNDS (load $(cat "$out/load.$t.$r")): ${order[*]}" >&2
    for e in "${order[@]}"; do measure "$e" "$t" "$r"; done
  done
done

# Whole process: start, load the model, run the clip once, print the top-5; one line per run.
whole() {  # name, run, command...
  local name=$1 r=$2; shift 2
  /usr/bin/time -v "$@" > /dev/null 2> "$out/time.$name.$r" || true
  local wall rss
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$out/time.$name.$r")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$out/time.$name.$r")
  echo "{\"engine\": \"$name\", \"wall\": \"$wall\", \"rss_kib\": ${rss:-0}}" >> "$out/whole.$name.json"
}
t1=${THREADS%% *}
if [ "$WHOLE" = 1 ]; then
  echo "whole process: $WHOLE_RUNS runs each, alternated (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  rm -f "$out/whole.blconvert.json" "$out/whole.ort.json"
  for r in $(seq 1 "$WHOLE_RUNS"); do
    whole blconvert "$r" "$BLC" run "$PKG" "$CLIP" --threads "$t1"
    whole ort "$r" "$PY" "$PB" once ort --onnx "$ONNX" --clip "$CLIP" --threads "$t1"
  done
fi

python3 - "$out" "$ROUNDS" "$THREADS" "$ENGINES" "$cpu" <<'PYEOF'
import json, statistics, sys
d, rounds, threads, engines, cpu = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split(), sys.argv[5]
def load(p):
    try:
        with open(p) as f: return json.load(f)
    except Exception: return None
def secs(w):  # m:ss.ss or h:mm:ss
    s = 0.0
    for x in w.split(":"): s = s * 60 + float(x)
    return s
def figures(j, e):  # wall, cpu, rel error, top5, rss
    if j is None: return None
    if e.startswith("blc"):
        return (j["seconds_per_clip_median"], j["cpu_seconds_per_clip_median"], j.get("max_rel_error_vs_f64"),
                j.get("top5"), j["peak_rss_bytes"], j["convolution_gemm"] + ", compute " + j["compute"])
    return (j["median"], j["cpu"], j.get("max_rel_error_vs_f64"), j.get("top5"), j["peak_rss_bytes"], j["note"])
name = {"blc": "blconvert", "blc-bf16": "blconvert bf16", "ort": "onnxruntime", "ov-f32": "OpenVINO f32",
        "ov-default": "OpenVINO default", "eager": "PyTorch eager", "compile": "torch.compile"}
print(f"CPU: {cpu}")
def table(title, use, per, gflop):
    print(title)
    med = {}
    for e in engines:
        xs = [per[e][i] for i in use if per[e][i]]
        if xs: med[e] = (statistics.median(x[0] for x in xs), statistics.median(x[1] for x in xs), xs[-1])
    print(f"{'engine':17s} {'wall s':>7s} {'CPU s':>7s} {'GFLOP/s':>8s} {'blc/it wall':>11s} {'blc/it CPU':>10s} {'rel err':>8s} {'RSS MiB':>8s}  top-5; note")
    base = med.get("blc")
    for e, (w, c, last) in med.items():
        rw = f"{base[0] / w:.2f}" if base else "-"
        rc = f"{base[1] / c:.2f}" if base else "-"
        err = f"{last[2]:.1e}" if last[2] is not None else "-"
        gf = (gflop or 0) / w if w else 0
        print(f"{name.get(e, e):17s} {w:7.3f} {c:7.3f} {gf:8.1f} {rw:>11s} {rc:>10s} {err:>8s} {last[4] / 2**20:8.0f}  {last[3]}; {last[5]}")
    for e in engines:
        if e == "blc" or e not in med or "blc" not in med: continue
        rs = [per["blc"][i][0] / per[e][i][0] for i in use if per["blc"][i] and per[e][i]]
        if rs: print(f"  blconvert / {name.get(e, e)} per round (wall): " + " ".join(f"{x:.2f}" for x in rs))
for t in threads:
    per = {e: [] for e in engines}
    peaks, loads, gflop = [], [], None
    print(f"\n== {t} thread(s), {rounds} rounds, engine order rotated")
    for r in range(1, rounds + 1):
        loads.append(open(f"{d}/load.{t}.{r}").read().strip())
        b = load(f"{d}/blc.{t}.{r}.json")
        peaks.append((b or {}).get("peak"))
        if b: gflop = b["gflop_per_clip"]
        for e in engines: per[e].append(figures(load(f"{d}/{e}.{t}.{r}.json"), e))
    best = max((p["fma_gflops_per_core"] for p in peaks if p), default=0)
    quiet = [bool(p) and best > 0 and p["fma_gflops_wall"] >= 0.8 * p["threads"] * best for p in peaks]
    for i in range(rounds):
        p = peaks[i]
        pk = f"peak {p['fma_gflops_per_core']:.0f}/core, {p['fma_gflops_wall']:.0f} by wall" if p else "peak -"
        cells = [f"{e} {per[e][i][0]:.3f}/{per[e][i][1]:.3f}" if per[e][i] else f"{e} -" for e in engines]
        print(f"round {i + 1}: load {loads[i]}; {pk}; {'quiet' if quiet[i] else 'BUSY'}; wall/CPU s: " + ", ".join(cells))
    q = [i for i in range(rounds) if quiet[i]]
    if q: table(f"medians over the {len(q)} quiet rounds; GFLOP per clip {gflop or 0:.2f}", q, per, gflop)
    if len(q) < rounds: table(f"medians over all {rounds} rounds (busy ones included)", list(range(rounds)), per, gflop)
def whole_runs(n):
    try:
        with open(f"{d}/whole.{n}.json") as f:
            return [j for j in (json.loads(line) for line in f if line.strip()) if j["wall"]]
    except OSError:
        return []
runs = {n: whole_runs(n) for n in ("blconvert", "ort")}
if any(runs.values()):
    print("\nwhole process (start, load, one clip, top-5), /usr/bin/time -v, runs alternated:")
    med = {}
    for n, js in runs.items():
        if not js: continue
        walls = sorted(secs(j["wall"]) for j in js)
        med[n] = statistics.median(walls)
        print(f"  {n:10s} wall median {med[n]:5.2f} s (min {walls[0]:.2f}, max {walls[-1]:.2f}, {len(js)} runs)"
              f"  max RSS {max(j['rss_kib'] for j in js) / 1024:6.0f} MiB")
    if len(med) == 2: print(f"  blconvert / ort (wall, medians): {med['blconvert'] / med['ort']:.2f}")
PYEOF
