#!/usr/bin/env bash
# The CI stages after the README's test command (`make test`); each also runs alone:
#   scripts/ci-stages.sh examples | docs | asan | tsan | cross-arm64 | all
#
#   examples     builds and runs Examples/ (a package using only the BLConvert library's public API)
#   docs         builds the DocC documentation of BLConvert; any warning fails the stage
#   asan         debug build with AddressSanitizer; the reader, kernel and engine tests under it
#   tsan         optimized build with ThreadSanitizer; the threaded kernels, the engine, import and eval
#   cross-arm64  compiles the C targets for aarch64 with Debian's gcc-aarch64-linux-gnu (-Werror)
#   fuzz         each libFuzzer target for FUZZ_SECONDS (default 6) from the fixtures' seeds
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}

need_apt() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

stage() { echo; echo "=== $1 ($(date -u +%H:%M:%S))"; }

examples() {
    stage "examples: Examples/ through the public API"
    (cd Examples && $SWIFT build --product PredictAndVerify && .build/debug/PredictAndVerify ../Fixtures/mini-a2b4-f4x2)
}

docs() {
    stage "docs: DocC for BLConvert, warnings are errors"
    local log; log=$(mktemp)
    $SWIFT package --disable-sandbox generate-documentation --target BLConvert 2>&1 | tee "$log" | tail -3
    if grep -q "^warning:" "$log"; then
        echo "documentation warnings:" >&2; grep -A4 "^warning:" "$log" >&2; rm -f "$log"; exit 1
    fi
    rm -f "$log"
}

asan() {
    stage "asan: readers, kernels and engine under AddressSanitizer (debug)"
    $SWIFT build --build-tests --scratch-path .build-asan -Xswiftc -sanitize=address -Xcc -fsanitize=address 2>&1 | grep -v "Cannot export local symbol" | tail -2
    # Leak reports are off: Swift's lazily initialised globals live until exit by design.
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 .build-asan/debug/blconvertPackageTests.xctest --testing-library swift-testing \
        --filter "PickleTests|TorchReaderTests|SafetensorsTests|CoreTests|HostileInputTests|HDF5Tests|KernelTests|EngineTests|ConvChainTests|importLoadPredictAndVerify|errorsCarryTheirData|VideoTests|importWritesACacheThatLoadingUses"
}

tsan() {
    stage "tsan: threaded kernels, engine, import and eval under ThreadSanitizer (optimized)"
    # Optimized (-O keeps every access TSan instruments; a debug build runs the engine ~50x slower).
    $SWIFT build -c release --build-tests --scratch-path .build-tsan -Xswiftc -enable-testing \
        -Xswiftc -sanitize=thread -Xcc -fsanitize=thread 2>&1 | tail -2
    TSAN_OPTIONS=halt_on_error=1 .build-tsan/release/blconvertPackageTests.xctest --testing-library swift-testing \
        --filter "KernelTests|EngineTests|ConvChainTests|ModelPackageImportTests|importLoadPredictAndVerify|evaluateMatchesTheReference|EvalSamplingTests|prefetchingIsDeterministic|resultsDoNotDependOnWorkers|badVideosAreClearErrorsOrSkipped"
}

cross_arm64() {
    stage "cross-arm64: the C targets for aarch64"
    need_apt gcc-aarch64-linux-gnu
    for t in CGemm CSHA256 CSpawn CCleanup; do
        for f in Sources/$t/*.c; do
            aarch64-linux-gnu-gcc -std=c11 -O2 -Wall -Wextra -Werror -I "Sources/$t/include" -c "$f" -o /dev/null
            echo "  aarch64 ok: $f"
        done
    done
}

fuzz() {
    stage "fuzz: every reader of untrusted bytes under libFuzzer + AddressSanitizer, ${FUZZ_SECONDS:-6} s each"
    scripts/fuzz.sh "${FUZZ_SECONDS:-6}"
}

case "${1:-all}" in
    examples) examples ;;
    docs) docs ;;
    asan) asan ;;
    tsan) tsan ;;
    cross-arm64) cross_arm64 ;;
    fuzz) fuzz ;;
    all) cross_arm64; examples; docs; asan; tsan; fuzz ;;
    *) echo "usage: $0 examples|docs|asan|tsan|cross-arm64|fuzz|all" >&2; exit 2 ;;
esac
