# kiln — build, test, lint, serve and install.
#   make              build build/kiln
#   make test         unit tests (plain and under ASan+UBSan) and integration tests
#   make lint         clang-format check + cppcheck
#   make serve        build, then serve the bundled default model on 127.0.0.1:8000
#   make install      PREFIX=/usr/local DESTDIR=

CC      ?= cc
BUILD   ?= build
PREFIX  ?= /usr/local
OPT     ?= -O2
PKGS    := jansson libmicrohttpd libpcre2-8 libutf8proc

CFLAGS  += -std=gnu11 -D_GNU_SOURCE $(OPT) -g -pthread -Wall -Wextra -Werror -Wshadow -Wvla \
           -Wno-missing-field-initializers -Isrc $(SANITIZE) -DKILN_SOURCE_DIR='"$(CURDIR)"' \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -pthread
LDFLAGS += $(SANITIZE)

SRC      := $(shell find src -name '*.c' | sort)
LIB_SRC  := $(filter-out src/cli/%,$(SRC))
CLI_SRC  := $(filter src/cli/%,$(SRC))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(wildcard tests/unit/test_*.c)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

# Kernel variants: a file named *_avx2.c, *_avxvnni.c or *_avx512.c is compiled for that
# instruction set and only called after a run-time CPU check (src/compute/cpu/dispatch.c).
$(BUILD)/obj/%_avx2.o:   CFLAGS += -mavx2 -mfma -mf16c -mbmi2
$(BUILD)/obj/%_avxvnni.o: CFLAGS += -mavx2 -mfma -mf16c -mbmi2 -mavxvnni
$(BUILD)/obj/%_avx512.o: CFLAGS += -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni \
                                   -mavx512bf16 -mfma -mf16c -mbmi2

.PHONY: all test unit unit-sanitize integration lint format serve install clean deps bench bench-peer
all: $(BUILD)/kiln

deps:
	@tools/setup.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libkiln.a: $(LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/kiln: $(CLI_OBJ) $(BUILD)/libkiln.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c tests/unit/check.h $(BUILD)/libkiln.a
	@mkdir -p $(dir $@)
	@echo "  LD $@"
	@$(CC) $(CFLAGS) -Itests/unit $< $(BUILD)/libkiln.a $(LDFLAGS) $(LDLIBS) -o $@

$(BUILD)/bench/%: bench/%.c $(BUILD)/libkiln.a
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS) $< $(BUILD)/libkiln.a $(LDFLAGS) $(LDLIBS) -o $@

bench: $(BUILD)/kiln $(BENCH_BIN)

# llama.cpp as a peer on this machine (bench/llama_cpp_peer.mjs): node-llama-cpp's prebuilt CPU
# build from npm; the GPU builds are optional dependencies and left out.
bench-peer:
	cd bench/peer && npm install --omit=optional --ignore-scripts --no-audit --no-fund

unit: $(TEST_BIN) $(BUILD)/kiln

test:
	@tools/setup.sh --tests
	@$(MAKE) --no-print-directory unit bench
	@$(MAKE) --no-print-directory BUILD=build/sanitize OPT=-O1 \
	    SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" unit
	@tests/run.sh

lint:
	@clang-format --dry-run -Werror $$(find src tests/unit bench -name node_modules -prune -o -name '*.[ch]' -print)
	@cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --inline-suppr --suppress=missingIncludeSystem -Isrc src
	@echo "lint: ok"

format:
	clang-format -i $$(find src tests/unit bench -name node_modules -prune -o -name '*.[ch]' -print)

DEFAULT_MODEL ?= models/kiln-tiny

serve:
	@tools/setup.sh
	@$(MAKE) --no-print-directory all
	$(BUILD)/kiln serve $(DEFAULT_MODEL) --host 127.0.0.1 --port 8000

install: $(BUILD)/kiln
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/kiln/models
	install -m 755 $(BUILD)/kiln $(DESTDIR)$(PREFIX)/bin/kiln
	if [ -d models/kiln-tiny ]; then cp -r models/kiln-tiny $(DESTDIR)$(PREFIX)/share/kiln/models/; fi

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
