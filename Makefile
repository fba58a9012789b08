# mlreg — one plain Makefile. `make` leaves the binary at build/mlreg.
# SAN=1 builds with AddressSanitizer + UndefinedBehaviorSanitizer into build/san/.

CC      ?= cc
PKGS    := lmdb libsodium libmicrohttpd jansson libcurl libcrypto gnutls
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

LIB_SRC  := $(wildcard core/*.c storage/*.c signing/*.c registry/*.c)
CLI_SRC  := $(wildcard cli/*.c)
UNIT_SRC := $(wildcard tests/unit/check_*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Standalone helpers of the integration tests (not linked with libmlreg).
TOOL_BIN := $(BUILD)/tests/tools/audit_tamper $(BUILD)/tests/tools/forge_key

.PHONY: all test test-unit test-integration test-cluster test-large bench bench-cluster bench-scrub bench-gc bench-tls bench-backup deps run lint clean install fuzz

all: $(BUILD)/mlreg

$(BUILD)/libmlreg.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BUILD)/mlreg: $(CLI_OBJ) $(BUILD)/libmlreg.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libmlreg.a $(LIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

# The version (VERSION) and the commit (git) go into one generated header,
# included by core/version.c alone. The header is remade at every make but
# rewritten only when its text changes, so a new commit or a tree turning
# dirty rebuilds version.o and relinks, nothing else; outside a git
# checkout the commit is "unknown". Packagers may set both:
# `make MLREG_VERSION=1.2.3 MLREG_COMMIT=abcdef123456`.
MLREG_VERSION ?=
MLREG_COMMIT  ?=
BUILD_INFO := $(BUILD)/gen/build_info.h
$(BUILD_INFO): FORCE
	@sh scripts/build_info.sh $@ $(CURDIR) "$(MLREG_VERSION)" "$(MLREG_COMMIT)"
$(BUILD)/core/version.o: $(BUILD_INFO)
$(BUILD)/core/version.o: CFLAGS += -I$(BUILD)/gen
FORCE:

# The dashboard's files (web/) go into one generated header of C arrays,
# included by registry/server_dashboard.c alone (scripts/embed_web.sh, od
# and awk). Like the build info it is remade at every make and rewritten
# only when a file of web/ changed.
WEB_ASSETS := $(BUILD)/gen/web_assets.h
# web/README.md describes the folder and is not served.
WEB_FILES  := web/*.html web/*.js web/*.css web/*.svg web/*.png web/*.ico
$(WEB_ASSETS): FORCE
	@sh scripts/embed_web.sh $@ $(sort $(wildcard $(WEB_FILES)))
$(BUILD)/registry/server_dashboard.o: $(WEB_ASSETS)
$(BUILD)/registry/server_dashboard.o: CFLAGS += -I$(BUILD)/gen

# Every suite links the shared fixtures of tests/unit/helpers.c (kept, not
# deleted as an intermediate file).
.SECONDARY: $(BUILD)/tests/unit/helpers.o
$(BUILD)/tests/check_%: tests/unit/check_%.c $(BUILD)/tests/unit/helpers.o $(BUILD)/libmlreg.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/tests/unit/helpers.o $(BUILD)/libmlreg.a \
	    $(LIBS) $(CHECK_LIBS)

# check_push_cache tests a module of cli/ (push_cache.c, with files.c).
$(BUILD)/tests/check_push_cache: tests/unit/check_push_cache.c $(BUILD)/cli/push_cache.o \
    $(BUILD)/cli/files.o $(BUILD)/tests/unit/helpers.o $(BUILD)/libmlreg.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(filter %.o,$^) $(BUILD)/libmlreg.a $(LIBS) $(CHECK_LIBS)

# check_push_reader tests a module of cli/ (push_reader.c).
$(BUILD)/tests/check_push_reader: tests/unit/check_push_reader.c $(BUILD)/cli/push_reader.o \
    $(BUILD)/tests/unit/helpers.o $(BUILD)/libmlreg.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(filter %.o,$^) $(BUILD)/libmlreg.a $(LIBS) $(CHECK_LIBS)

# check_metric_filter tests a module of cli/ (metric_filter.c).
$(BUILD)/tests/check_metric_filter: tests/unit/check_metric_filter.c $(BUILD)/cli/metric_filter.o \
    $(BUILD)/tests/unit/helpers.o $(BUILD)/libmlreg.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(filter %.o,$^) $(BUILD)/libmlreg.a $(LIBS) $(CHECK_LIBS)

# check_progress tests a module of cli/ (progress.c).
$(BUILD)/tests/check_progress: tests/unit/check_progress.c $(BUILD)/cli/progress.o \
    $(BUILD)/tests/unit/helpers.o $(BUILD)/libmlreg.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(filter %.o,$^) $(BUILD)/libmlreg.a $(LIBS) $(CHECK_LIBS)

# check_cli_ref tests the client's reference grammar (cli/ref.c), which
# talks to the registry through the rest of cli/: every client object but main.o.
$(BUILD)/tests/check_cli_ref: tests/unit/check_cli_ref.c $(filter-out $(BUILD)/cli/main.o,$(CLI_OBJ)) \
    $(BUILD)/tests/unit/helpers.o $(BUILD)/libmlreg.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(filter %.o,$^) $(BUILD)/libmlreg.a $(LIBS) $(CHECK_LIBS)

# check_push_dir tests a module of cli/ (push_dir.c, with files.c and safepath.c).
$(BUILD)/tests/check_push_dir: tests/unit/check_push_dir.c $(BUILD)/cli/push_dir.o \
    $(BUILD)/cli/files.o $(BUILD)/cli/safepath.o $(BUILD)/tests/unit/helpers.o $(BUILD)/libmlreg.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(filter %.o,$^) $(BUILD)/libmlreg.a $(LIBS) $(CHECK_LIBS)

# check_safepath tests a module of cli/ (safepath.c).
$(BUILD)/tests/check_safepath: tests/unit/check_safepath.c $(BUILD)/cli/safepath.o \
    $(BUILD)/tests/unit/helpers.o $(BUILD)/libmlreg.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(filter %.o,$^) $(BUILD)/libmlreg.a $(LIBS) $(CHECK_LIBS)

# audit_tamper edits the LMDB file directly, as an attacker would: liblmdb only.
$(BUILD)/tests/tools/%: tests/tools/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -llmdb

# forge_key makes a key pair that carries another key's id: libsodium only.
$(BUILD)/tests/tools/forge_key: tests/tools/forge_key.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lsodium

# Benchmark helpers (tests/bench/*.c) link libmlreg like the unit suites.
BENCH_BIN := $(BUILD)/tests/bench/audit_append
$(BUILD)/tests/bench/%: tests/bench/%.c $(BUILD)/libmlreg.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmlreg.a $(LIBS)

# Fuzz targets (tests/fuzz/fuzz_<name>.c). `make test` replays their seed
# corpora (tests/fuzz/corpus/<name>/) through tests/fuzz/replay.c, built
# like the unit suites; `make fuzz` builds them with clang and libFuzzer.
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
REPLAY_BIN := $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz/replay_%)
$(BUILD)/tests/fuzz/replay_%: tests/fuzz/replay.c tests/fuzz/fuzz_%.c $(BUILD)/libmlreg.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ tests/fuzz/replay.c tests/fuzz/fuzz_$*.c \
	    $(BUILD)/libmlreg.a $(LIBS)

# `make fuzz` runs every target for FUZZ_SECONDS from a fresh copy of its
# seed corpus and fails on the first crash, leak, timeout or failed
# property (the input lands in $(BUILD)/fuzz/artifacts/). The library is
# rebuilt with clang and the sanitizers into its own object tree,
# $(BUILD)/fuzz/obj/, never mixed with the objects of $(CC).
FUZZ_SECONDS ?= 60
FUZZ_CC      := clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -O1 -g $(WARN) -MMD -MP \
                -Iinclude $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_BIN     := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c -o $@ $<
$(FUZZ_DIR)/obj/core/version.o: $(BUILD_INFO)
$(FUZZ_DIR)/obj/core/version.o: FUZZ_CFLAGS += -I$(BUILD)/gen
$(FUZZ_DIR)/obj/registry/server_dashboard.o: $(WEB_ASSETS)
$(FUZZ_DIR)/obj/registry/server_dashboard.o: FUZZ_CFLAGS += -I$(BUILD)/gen

$(FUZZ_DIR)/libmlreg.a: $(FUZZ_LIB_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libmlreg.a
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_DIR)/libmlreg.a $(LIBS)

fuzz:
	@sh scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	@set -e; for n in $(FUZZ_NAMES); do \
	    rm -rf $(FUZZ_DIR)/corpus/$$n; mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/artifacts; \
	    cp -R tests/fuzz/corpus/$$n $(FUZZ_DIR)/corpus/$$n; \
	    echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	    $(FUZZ_DIR)/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -timeout=25 -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_DIR)/artifacts/$$n- $(FUZZ_DIR)/corpus/$$n \
	        >$(FUZZ_DIR)/$$n.log 2>&1 || { tail -n 60 $(FUZZ_DIR)/$$n.log; \
	        echo "fuzz: $$n FAILED (log $(FUZZ_DIR)/$$n.log)"; exit 1; }; \
	    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' $(FUZZ_DIR)/$$n.log; \
	done

deps:
	@sh scripts/deps.sh

# Unit suites, the fuzz corpora replayed, integration tests against the
# real server and clients, then the S3 tests against a throw-away Ceph RGW on loopback (tests/s3/rgw.sh),
# then the cluster tests (several nodes on one bucket prefix) against the same RGW.
# The runner prints "N passed, N failed" and fails when anything failed.
# The build inside the test targets uses every core (JOBS, default nproc):
# on the 2-core CI machine a serial build is a minute of `make test`.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# The scripts run two at a time (tests/run.sh, SCRIPT_JOBS): most of a
# script's time is spent waiting on servers, and one at a time `make test`
# took 15 minutes here. The sanitizer build, three times slower, keeps one
# lane so that its timing-window checks keep their margins.
ifeq ($(SAN),1)
SCRIPT_JOBS ?= 1
else
SCRIPT_JOBS ?= 2
endif

test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all $(UNIT_BIN) $(TOOL_BIN) $(REPLAY_BIN)
	@BUILD=$(BUILD) SCRIPT_JOBS=$(SCRIPT_JOBS) sh tests/run.sh unit fuzz-replay integration s3 cluster

# One part of `make test`: the unit suites and fuzz corpora, or the
# integration and S3 scripts. ONLY=WORD keeps the suites and scripts whose
# name contains WORD (`make test-unit ONLY=registry`).
test-unit: deps
	@$(MAKE) --no-print-directory -j$(JOBS) $(UNIT_BIN) $(REPLAY_BIN)
	@BUILD=$(BUILD) ONLY=$(ONLY) sh tests/run.sh unit fuzz-replay

test-integration: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all $(filter $(BUILD)/tests/check_s3_%,$(UNIT_BIN)) $(TOOL_BIN)
	@BUILD=$(BUILD) ONLY=$(ONLY) SCRIPT_JOBS=$(SCRIPT_JOBS) sh tests/run.sh integration s3

# The cluster part alone: tests/cluster/test_*.sh against a throw-away RGW.
test-cluster: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) ONLY=$(ONLY) sh tests/run.sh cluster

test-large: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh tests/run.sh large s3large

# Issue 15's nine targets as one table and build/bench/results.json, then the
# audit and cluster parts (tests/bench/run.sh; docs/performance.md). Sizes:
# BENCH_SIZE_MIB, BENCH_REPS, BENCH_BIG_MIB; parts: BENCH_PARTS.
bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@BUILD=$(BUILD) sh tests/bench/run.sh

# Scrub throughput against sha256sum of the same files (tests/bench/scrub.sh).
bench-scrub: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh tests/bench/scrub.sh

# A garbage collection of 100,000 small orphans on fs: time, report size and
# the server's peak RSS (tests/bench/gc.sh).
bench-gc: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh tests/bench/gc.sh

# mlreg backup against cp -a + sha256sum of the same data directory
# (tests/bench/backup.sh).
bench-backup: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh tests/bench/backup.sh

# Manifest GETs per second over HTTPS against plain HTTP (tests/bench/tls.sh).
bench-tls: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh tests/bench/tls.sh

# The cluster part of the benchmarks alone (tests/bench/cluster.sh).
bench-cluster: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh tests/bench/cluster.sh

run: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/mlreg serve --listen 127.0.0.1:5080 --data ./mlreg-data

# Formatting, the project prefix on every shared symbol, include cycles and
# layers (scripts/include_cycles.sh), cppcheck.
lint:
	@sh scripts/deps.sh lint
	@$(MAKE) --no-print-directory $(BUILD)/libmlreg.a
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')
	sh scripts/check_symbols.sh $(BUILD)/libmlreg.a
	sh scripts/include_cycles.sh
	cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability \
	    --suppress=missingIncludeSystem -Iinclude core storage signing registry cli
	sh scripts/check_unit.sh

# The systemd unit goes where units of PREFIX go (/usr/local/lib/systemd/system
# for the default PREFIX), naming the installed binary.
UNITDIR ?= $(PREFIX)/lib/systemd/system

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BUILD)/mlreg $(DESTDIR)$(PREFIX)/bin/mlreg
	sed 's|@BINDIR@|$(PREFIX)/bin|' conf/mlreg.service >$(DESTDIR)$(UNITDIR)/mlreg.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/mlreg.service

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
