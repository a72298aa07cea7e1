# Convenience wrapper around CMake. `make run` and `make test` work on a fresh
# Debian 12 machine: missing packages are installed with apt-get first.

BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
STATE_DIR ?= ./var/impulse
# `make run LISTEN=0.0.0.0:7070 HTTP=0.0.0.0:8080` (defaults: loopback).
LISTEN ?=
HTTP ?=
CMAKE_FLAGS ?=
# `make install`: binaries, headers, libimpulse and impulse.pc under
# $(DESTDIR)$(PREFIX).
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all deps build run wait test test-asan bench bench-http bench-events install clean format lint
.PHONY: fuzz
.PHONY: soak
.PHONY: test-tsan

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DIMPULSE_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/impulse serve --state-dir $(STATE_DIR) \
	  --ready-file $(STATE_DIR)/ready \
	  $(if $(LISTEN),--listen $(LISTEN)) $(if $(HTTP),--http $(HTTP))

# Waits until the server of `make run` is ready (in another shell, or after
# `make run &`); builds nothing itself.
wait:
	@scripts/wait-ready.sh $(STATE_DIR)/ready

test: build
	cd $(BUILD) && ctest --output-on-failure --timeout 600

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DIMPULSE_WERROR=ON -DIMPULSE_ASAN=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure --timeout 900

bench: build
	$(BUILD)/bench/impulse-bench --impulse $(BUILD)/impulse --functions $(BUILD)/functions

# HTTP front end against a minimal libuv HTTP responder, both under wrk
# (apt-get install wrk; not a test dependency).
bench-http: build
	$(BUILD)/bench/impulse-bench-http --impulse $(BUILD)/impulse --functions $(BUILD)/functions

# Events through a trigger against a raw librdkafka consumer (rounds of
# throughput, then publish-to-handled latency against publish-to-consumed).
bench-events: build
	$(BUILD)/bench/impulse-bench-events --impulse $(BUILD)/impulse --functions $(BUILD)/functions

# Every fuzz target of tests/fuzz for FUZZ_SECONDS each (clang, libFuzzer,
# ASan + UBSan; build-fuzz/). FUZZ_TARGETS picks some.
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

# The project's own C sources (not generated code): `make format` rewrites
# them with .clang-format, `make lint` fails when one differs from it or when
# an #include goes against the layers (scripts/check-layers.py).
format:
	clang-format -i $$(git ls-files --cached --others --exclude-standard '*.c' '*.h')

lint: deps
	scripts/check-format.sh
	scripts/check-layers.py

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) build-fuzz

# A long run of a real server under mixed load and chaos, checked at the
# end (tests/soak/soak.c, docs/testing.md): SOAK_MINUTES, default 30. Not
# part of `make test`.
SOAK_MINUTES ?= 30
soak: build
	SOAK_MINUTES=$(SOAK_MINUTES) $(BUILD)/tests/impulse-soak

# The race check (docs/testing.md, "Race check"): the tests labelled
# `threads` built with ThreadSanitizer. A report fails the test: the
# process halts with status 66, and the harness fails a server whose log
# (its workers' reports included) holds one. tests/tsan.supp lists only
# third-party internals.
TSAN_OPTIONS_RUN = halt_on_error=1 exitcode=66 second_deadlock_stack=1 \
  suppressions=$(CURDIR)/tests/tsan.supp
test-tsan: deps
	cmake -S . -B $(TSAN_BUILD) -DIMPULSE_WERROR=ON -DIMPULSE_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	cd $(TSAN_BUILD) && TSAN_OPTIONS="$(TSAN_OPTIONS_RUN)" ctest -L threads --output-on-failure --timeout 900
