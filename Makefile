# blconvert: the two commands a fresh machine needs are `make demo` and `make test`.
SWIFT ?= swift
RELEASE := -c release
BIN := .build/release/blconvert
DEMO_DIR := out
MINI := Fixtures/mini-a2b4-f4x2

.PHONY: deps build demo test examples docs sanitize fuzz slurm-test ci clean

deps:
	@bash scripts/deps.sh

# The Swift runtime and Foundation linked statically: a command starts in 10-17 ms instead of 20-35
# (no symbol binding across 20 shared libraries at every start).
build: deps
	$(SWIFT) build $(RELEASE) --static-swift-stdlib --product blconvert
	$(SWIFT) build $(RELEASE) --static-swift-stdlib --product blconvert-hdf5-reader

# Import the bundled mini checkpoint, verify it against its reference clips, predict one clip.
demo: build
	@mkdir -p $(DEMO_DIR)
	$(BIN) inspect $(MINI)/model.pth.tar --summary
	$(BIN) import $(MINI)/model.pth.tar -o $(DEMO_DIR)/mini.blc --frames 8 --force
	$(BIN) graph $(DEMO_DIR)/mini.blc --input 64x64 | tail -n 4
	$(BIN) verify $(DEMO_DIR)/mini.blc $(MINI)/clip0.safetensors $(MINI)/clip1.safetensors $(MINI)/clip2.safetensors
	$(BIN) run $(DEMO_DIR)/mini.blc $(MINI)/clip1.safetensors --top 3

# The whole test suite, optimized (numeric tests are 10-100x slower in debug builds).
test: deps
	$(SWIFT) test $(RELEASE) -Xswiftc -enable-testing

# Examples/: a package using only the public API of the BLConvert library.
examples: deps
	scripts/ci-stages.sh examples

# DocC documentation of the BLConvert library (.build/plugins/Swift-DocC/outputs/BLConvert.doccarchive).
docs: deps
	scripts/ci-stages.sh docs

# The AddressSanitizer and ThreadSanitizer stages of CI.
sanitize: deps
	scripts/ci-stages.sh asan
	scripts/ci-stages.sh tsan

# Coverage-guided fuzzing of every reader of untrusted bytes (libFuzzer), FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 600
fuzz: deps
	$(SWIFT) build $(RELEASE) --product blconvert
	scripts/fuzz.sh $(FUZZ_SECONDS)

# Everything CI runs.
ci:
	.ci/run

# The Slurm job-array script against a single-node Slurm on this machine (needs root and
# `apt-get install slurm-wlm munge`): 4 array tasks, merged, equal to one unsharded run.
slurm-test: deps
	bash tools/slurm/test_array.sh

clean:
	rm -rf .build .build-asan .build-tsan .build-fuzz Examples/.build $(DEMO_DIR)
