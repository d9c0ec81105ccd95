# slm — plain Makefile. `make` builds ./slm; `make test` runs the suite;
# `make asan` runs the suite under ASan+UBSan; `make run` generates a model and runs it.
CC      ?= cc
SHELL   := /bin/bash
OPT     ?= -O2 -g
WARN    = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
PKGS    = libpcre2-8 libcjson libmicrohttpd libcurl yaml-0.1 sqlite3 libpq
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -pthread -Iinclude -Isrc $(shell pkg-config --cflags $(PKGS))
LDLIBS  = $(shell pkg-config --libs $(PKGS)) -lm -pthread
TEST_LIBS = $(shell pkg-config --libs criterion)

BUILD   ?= build/release
EXTRA_CFLAGS ?=
CFLAGS  = $(CFLAGS_BASE) $(OPT) $(WARN) $(EXTRA_CFLAGS)

LIB_SRC  = $(wildcard src/util/*.c src/gguf/*.c src/kernels/*.c src/model/*.c \
                      src/tokenizer/*.c src/sample/*.c src/chat/*.c src/serve/*.c src/gateway/*.c \
                      src/convert/*.c src/quant/*.c src/eval/*.c src/quality/*.c)
CLI_SRC  = $(wildcard src/cli/*.c)
TEST_SRC = $(wildcard tests/test_*.c)

# SIMD kernels (x86-64 targets only): each file is built with its own
# instruction-set flags, and dispatch.c installs them when the CPU has them.
ifneq ($(filter x86_64-%,$(shell $(CC) -dumpmachine)),)
X86_SRC  = $(wildcard src/kernels/x86/*.c)
CFLAGS_BASE += -DSLM_X86_KERNELS
endif
$(BUILD)/src/kernels/x86/avx2%: ISA_FLAGS = -mavx2 -mfma -mf16c
$(BUILD)/src/kernels/x86/avx512%: ISA_FLAGS = -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mfma -mf16c

LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o) $(X86_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_COMMON = $(BUILD)/tests/helpers.o
LIB      = $(BUILD)/libslm.a

.PHONY: all test asan run fuzz bench clean check-tests js-deps
all: slm

slm: $(BUILD)/slm
	cp $< $@

$(BUILD)/slm: $(CLI_OBJ) $(LIB)
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS) $(EXTRA_LDFLAGS)

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_FLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/helpers.o: tests/helpers.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/test_%: tests/test_%.c $(TEST_COMMON) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(TEST_COMMON) $(LIB) $(LDLIBS) $(TEST_LIBS) $(EXTRA_LDFLAGS)

# The suite: every tests/test_*.c is one Criterion binary. The CLI binary is
# built first because integration tests drive it as users do.
check-tests: $(BUILD)/slm $(TEST_BIN) js-deps
	@fail=0; passed=0; failed=0; log=$$(mktemp); \
	for t in $(TEST_BIN); do \
	  SLM_BIN=$(CURDIR)/$(BUILD)/slm $$t --jobs=$${SLM_TEST_JOBS:-2} 2>&1 | tee $$log; \
	  test $${PIPESTATUS[0]} -eq 0 || fail=$$((fail+1)); \
	  p=$$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' $$log | tail -1); \
	  f=$$(sed -n 's/.*Failing: \([0-9]*\) | Crashing: \([0-9]*\).*/\1 \2/p' $$log | tail -1); \
	  passed=$$((passed+$${p:-0})); for x in $$f; do failed=$$((failed+x)); done; \
	  if [ -z "$$p" ]; then failed=$$((failed+1)); fi; \
	done; rm -f $$log; \
	echo "suite: $$passed passed, $$failed failed"; \
	test $$fail -eq 0 -a $$failed -eq 0

# The OpenAI-client tests (tests/js, run by test_serve) need the npm
# packages of tests/js/package-lock.json; installed once when npm is here.
js-deps:
	@if command -v npm >/dev/null 2>&1 && [ ! -d tests/js/node_modules/openai ]; then \
	  npm ci --prefix tests/js --no-audit --no-fund; fi

test:
	$(MAKE) check-tests BUILD=build/release

asan:
	$(MAKE) check-tests BUILD=build/asan OPT="-O1 -g" \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined"

# A model made on the spot (random weights: its text is noise), a one-shot
# run on it, then the OpenAI-compatible server on it (Ctrl-C stops it).
RUN_MODEL = models/synth-llama-q8_0.gguf
RUN_PORT ?= 8080
$(RUN_MODEL): slm
	@mkdir -p models
	./slm synth --arch llama --preset tiny --type q8_0 -o $@

run: slm $(RUN_MODEL)
	./slm info $(RUN_MODEL)
	./slm run -m $(RUN_MODEL) -p "Once upon a time" -n 32 --seed 1
	@echo
	@echo "Serving $(RUN_MODEL) on http://127.0.0.1:$(RUN_PORT) — try, in another terminal:"
	@echo "  curl http://127.0.0.1:$(RUN_PORT)/v1/chat/completions -H 'Content-Type: application/json' \\"
	@echo "    -d '{\"model\": \"synth\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}], \"max_tokens\": 32}'"
	@echo
	./slm serve -m $(RUN_MODEL) --port $(RUN_PORT) --alias synth

# Benchmarks on synth models of real shapes (random weights, real sizes).
# Not part of `make test`: timings are measured here, never asserted.
BENCH_TYPES ?= q4_0 q8_0 q4_k
BENCH_ARGS ?= -p 512 -n 128 -t 2 -r 3
bench: slm
	@mkdir -p models
	@for t in $(BENCH_TYPES); do \
	  f=models/bench-tinyllama-1.1b-$$t.gguf; \
	  [ -f $$f ] || ./slm synth --preset tinyllama-1.1b --type $$t -o $$f || exit 1; \
	  ./slm bench -m $$f $(BENCH_ARGS) || exit 1; \
	done

FUZZ_CC ?= clang
FUZZ_FLAGS = -std=c11 -D_GNU_SOURCE -pthread -Iinclude -Isrc $(shell pkg-config --cflags $(PKGS)) \
             -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_TIME ?= 60
fuzz:
	@mkdir -p build/fuzz fuzz/out/gguf fuzz/out/tokenizer
	$(FUZZ_CC) $(FUZZ_FLAGS) -o build/fuzz/fuzz_gguf fuzz/fuzz_gguf.c $(LIB_SRC) $(LDLIBS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o build/fuzz/fuzz_tokenizer fuzz/fuzz_tokenizer.c $(LIB_SRC) $(LDLIBS)
	build/fuzz/fuzz_gguf -max_total_time=$(FUZZ_TIME) fuzz/out/gguf fuzz/corpus/gguf
	build/fuzz/fuzz_tokenizer -max_total_time=$(FUZZ_TIME) fuzz/out/tokenizer fuzz/corpus/tokenizer

clean:
	rm -rf build slm

-include $(shell find build -name '*.d' 2>/dev/null)
