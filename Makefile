# mlreg — one plain Makefile. `make` leaves the binary at build/mlreg.
# SAN=1 builds with AddressSanitizer + UndefinedBehaviorSanitizer into build/san/.

CC      ?= cc
PKGS    := lmdb libsodium libmicrohttpd jansson libcurl libcrypto
PREFIX  ?= /usr/local

ifeq ($(SAN),1)
BUILD   ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
OPT     := -O1 -g
else
BUILD   ?= build
SANFLAGS :=
OPT     := -O2 -g
endif

WARN    := -Wall -Wextra -Werror -pedantic -Wshadow -Wmissing-prototypes \
           -Wstrict-prototypes -Wformat=2 -Wvla
CFLAGS  += -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(OPT) $(WARN) $(SANFLAGS) \
           -MMD -MP -Iinclude $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS += $(SANFLAGS)
LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

LIB_SRC  := $(wildcard storage/*.c signing/*.c registry/*.c)
CLI_SRC  := $(wildcard cli/*.c)
UNIT_SRC := $(wildcard tests/unit/check_*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Standalone helpers of the integration tests (not linked with libmlreg).
TOOL_BIN := $(BUILD)/tests/tools/audit_tamper

.PHONY: all test test-unit test-integration test-large bench deps run lint clean install

all: $(BUILD)/mlreg

$(BUILD)/libmlreg.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BUILD)/mlreg: $(CLI_OBJ) $(BUILD)/libmlreg.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libmlreg.a $(LIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/check_%: tests/unit/check_%.c $(BUILD)/libmlreg.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmlreg.a $(LIBS) $(CHECK_LIBS)

# Unit suites of CLI code link the CLI objects (all but main.o) and see cli/.
CLI_TEST_OBJ := $(filter-out $(BUILD)/cli/main.o,$(CLI_OBJ))
CLI_TEST_BIN := $(BUILD)/tests/check_audit_verify
$(CLI_TEST_BIN): $(BUILD)/tests/check_%: tests/unit/check_%.c $(CLI_TEST_OBJ) $(BUILD)/libmlreg.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Icli $(LDFLAGS) -o $@ $< $(CLI_TEST_OBJ) $(BUILD)/libmlreg.a $(LIBS) $(CHECK_LIBS)

# audit_tamper edits the LMDB file directly, as an attacker would: liblmdb only.
$(BUILD)/tests/tools/%: tests/tools/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -llmdb

# Benchmark helpers (tests/bench/*.c) link libmlreg like the unit suites.
BENCH_BIN := $(BUILD)/tests/bench/audit_append
$(BUILD)/tests/bench/%: tests/bench/%.c $(BUILD)/libmlreg.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmlreg.a $(LIBS)

deps:
	@sh scripts/deps.sh

# Unit suites, integration tests against the real server and clients, then
# the S3 tests against a throw-away Ceph RGW on loopback (tests/s3/rgw.sh).
# The runner prints "N passed, N failed" and fails when anything failed.
test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN) $(TOOL_BIN)
	@BUILD=$(BUILD) sh tests/run.sh unit integration s3

test-large: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh tests/run.sh large s3large

bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@BUILD=$(BUILD) sh tests/bench/run.sh

run: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/mlreg serve --listen 127.0.0.1:5080 --data ./mlreg-data

lint:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')
	cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability \
	    --suppress=missingIncludeSystem -Iinclude storage signing registry cli

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/mlreg $(DESTDIR)$(PREFIX)/bin/mlreg

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
