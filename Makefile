# Thin wrapper for the README's two commands; the build itself is meson.
.PHONY: all demo test fuzz bench docs clean
FUZZ_SECONDS ?= 60

all:
	@scripts/install-deps.sh build
	@[ -f build/build.ninja ] || meson setup build
	@ninja -C build

demo: all
	@scripts/demo.sh

test:
	@scripts/run-tests.sh

# Each libFuzzer target for FUZZ_SECONDS (clang, ASan+UBSan; see tests/fuzz/README).
fuzz:
	@scripts/install-deps.sh test
	@scripts/fuzz.sh $(FUZZ_SECONDS)

bench: all
	@scripts/install-deps.sh bench
	@bash bench/ring.sh
	@bash bench/blk.sh
	@bash bench/net.sh
	@bash bench/scale.sh

docs: all
	@scripts/install-deps.sh docs
	@ninja -C build docs

clean:
	rm -rf build build-test build-test-san build-test-tsan build-fuzz
