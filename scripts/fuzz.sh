#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through swiftc -sanitize=fuzzer,address) of every reader of
# untrusted bytes: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
#   targets: pickle zip legacy safetensors json npy image package (all when none is named)
#   seeds:   built from Fixtures/ (parser files, the mini case, frames of a test video, a package
#            imported from the mini checkpoint) into .build-fuzz/seeds/<target>
#   corpus:  .build-fuzz/corpus/<target> (kept between runs); crashes: .build-fuzz/crashes/<target>
#   limits:  -rss_limit_mb=2048 and -timeout=10: the readers promise bounded memory (budgets
#            relative to the file) and no hang, so exceeding either is a finding like a crash.
# Exit status 1 when any target found something; the reproducer's path is printed. Make a found
# input a regression test: Fixtures/fuzz-regressions/<target>/<name> (run by the test suite).
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
SECONDS_PER_TARGET=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(pickle zip legacy safetensors json npy image package)
OUT=.build-fuzz
RSS_MB=${FUZZ_RSS_MB:-2048}
TIMEOUT=${FUZZ_TIMEOUT:-10}

echo "building blconvert-fuzz with -sanitize=fuzzer,address ($(date -u +%H:%M:%S))"
$SWIFT build -c release --product blconvert-fuzz --scratch-path "$OUT/build" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DBLCONVERT_FUZZING 2>&1 | grep -v "Cannot export local symbol" | tail -1
BIN="$OUT/build/release/blconvert-fuzz"

seeds() {
    local t=$1 d="$OUT/seeds/$1"
    [ -d "$d" ] && return 0
    mkdir -p "$d"
    case $t in
        pickle)  cp Fixtures/parsers/*.pkl "$d/" ;;
        zip)     cp Fixtures/parsers/*_zip.pth Fixtures/parsers/train_zip.pth.tar "$d/" ;;
        legacy)  cp Fixtures/parsers/*_legacy.pth Fixtures/parsers/train_legacy.pth.tar "$d/" ;;
        safetensors) cp Fixtures/mini-a2b4-f4x2/clip2.safetensors "$d/"
                 head -c 4096 Fixtures/mini-a2b4-f4x2/clip0.safetensors > "$d/clip0-head.safetensors" ;;
        json)    cp Fixtures/parsers/expected.json "$d/parsers.json"; cp Fixtures/mini-a2b4-f4x2/manifest.json "$d/manifest.json"
                 cp Fixtures/video/expected.json "$d/video.json" ;;
        npy)     cp Fixtures/media/*.npy "$d/" ;;
        image)   local tmp; tmp=$(mktemp -d)
                 "$BLCONVERT" frames Fixtures/video/odd.webm -o "$tmp/j" >/dev/null
                 "$BLCONVERT" frames Fixtures/video/odd444.mp4 --png -o "$tmp/p" >/dev/null
                 for f in $(ls "$tmp"/j/*/*.jpg | head -3) $(ls "$tmp"/p/*/*.png | head -3); do
                     cp "$f" "$d/$(basename "$(dirname "$f")")-$(basename "$f")"
                 done
                 rm -rf "$tmp" ;;
        package) local tmp; tmp=$(mktemp -d)
                 "$BLCONVERT" import Fixtures/mini-a2b4-f4x2/model.pth.tar -o "$tmp/m.blc" --frames 8 >/dev/null
                 "$BLCONVERT" import Fixtures/mini-a2b4-f4x2/model.pth.tar -o "$tmp/n.blc" --frames 8 --no-optimize >/dev/null
                 for m in m n; do { cat "$tmp/$m.blc/graph.json"; printf '\0'; cat "$tmp/$m.blc/metadata.json"; } > "$d/$m.pkg"; done
                 rm -rf "$tmp" ;;
    esac
}

BLCONVERT=.build/release/blconvert
if [ ! -x "$BLCONVERT" ]; then $SWIFT build -c release --product blconvert 2>&1 | tail -1; fi

found=0
for t in "${TARGETS[@]}"; do
    seeds "$t"
    mkdir -p "$OUT/corpus/$t" "$OUT/crashes/$t"
    echo "=== fuzz $t for ${SECONDS_PER_TARGET}s ($(date -u +%H:%M:%S))"
    log="$OUT/$t.log"
    set +e
    BLCONVERT_FUZZ_TARGET=$t ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 "$BIN" \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb="$RSS_MB" -timeout="$TIMEOUT" -max_len=1048576 \
        -print_final_stats=1 -artifact_prefix="$OUT/crashes/$t/" "$OUT/corpus/$t" "$OUT/seeds/$t" >"$log" 2>&1
    rc=$?
    set -e
    grep -E "^#[0-9]+.*(DONE|pulse)" "$log" | tail -1 || true
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$log" || true
    if [ $rc -ne 0 ]; then
        found=1
        echo "FOUND in $t (exit $rc):"; grep -E "ERROR|==.*==|Test unit written|SUMMARY" "$log" | head -8
    fi
done
exit $found
