# dtmd - a dtm-compatible distributed transaction manager in C.
#
#   make          build ./dtmd
#   make run      install missing packages, build, start a private redis-server and dtmd
#   make install  install under PREFIX (/usr/local) and DESTDIR: binary, unit, config, docs
#   make deb      build/dtmd_<version>_<arch>.deb (dpkg-deb)
#   make test     install missing packages, build, run every test (unit + end-to-end)
#   make asan     build ./dtmd-asan with AddressSanitizer + UBSan
#   make test-asan  unit + end-to-end tests against the ASan+UBSan build (slow, not in `make test`)
#   make test-valgrind  end-to-end tests with every dtmd under valgrind (slow, not in `make test`)
#   make fuzz     libFuzzer targets (clang, ASan+UBSan), FUZZ_SECONDS each (default 60)
#   make bench    throughput benchmark with wrk (see bench/README.md)
#   make bench-soak  memory with 10,000 transactions in flight and over a 60 s run
#   make test-model SEED=1 N=200  the model-based random test, long (test/e2e/test_model.py)

PKGS      := libevent hiredis libcurl yajl yaml-0.1
CC        ?= cc
CFLAGS    ?= -O2 -g
CFLAGS    += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -MMD -MP
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
# The allocator dtmd is linked with, first so that it serves every library's
# malloc too (libcurl, libevent, hiredis): mimalloc, as Redis ships with
# jemalloc: fewer instructions per transaction than glibc's malloc
# (docs/performance.md). `make ALLOC_LIBS=` links glibc's
# malloc instead; the sanitizer build always does (ASan brings its own).
ALLOC_LIBS ?= -lmimalloc

# Debian packages needed to build and run (`make run`), and the ones only the
# tests, benchmarks and packaging add (`make test`): dpkg-dev, fakeroot and
# lintian build and check the .deb, systemd brings systemd-analyze.
RUN_PKGS  := build-essential pkg-config libevent-dev libhiredis-dev libcurl4-openssl-dev libmimalloc-dev \
             libyajl-dev libyaml-dev redis-server
DEB_PKGS  := $(RUN_PKGS) python3-pytest python3-pytest-xdist curl valgrind wrk dpkg-dev fakeroot lintian \
             systemd
PYTHON    := /usr/bin/python3

# BUILD and BIN let the sanitizer build live beside the normal one.
BUILD     ?= build
BIN       ?= dtmd
SRCS      := $(wildcard src/*.c)
OBJS      := $(patsubst src/%.c,$(BUILD)/%.o,$(SRCS)) $(BUILD)/lua_scripts.o $(BUILD)/admin_files.o \
             $(BUILD)/openapi_json.o
LIB_OBJS  := $(filter-out $(BUILD)/main.o,$(OBJS))
LUA       := $(sort $(wildcard lua/*.lua))
ADMIN     := $(sort $(wildcard admin/*.html admin/*.js admin/*.css))
UNIT_SRCS := $(wildcard test/unit/test_*.c) fuzz/fuzz_hash.c

.PHONY: all deps deps-ui run test unit e2e asan clean clean-objs format bench

all: $(BIN)

# GnuTLS asks the program whether to skip its implicit initialisation
# (src/startup_mem.c): the executable exports its answer.
EXPORT_SYMS := -Wl,--export-dynamic-symbol=_gnutls_global_init_skip

$(BIN): $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(EXPORT_SYMS) $(ALLOC_LIBS) $(PKG_LIBS)

$(BUILD)/%.o: src/%.c | $(BUILD)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Isrc -c -o $@ $<

# The Lua scripts are the single source of truth; they are compiled into the
# binary so dtmd never reads the source tree at run time.
$(BUILD)/lua_scripts.c: $(LUA) $(wildcard lua/lib/*.lua) src/gen_lua.sh | $(BUILD)
	sh src/gen_lua.sh $(LUA) > $@

$(BUILD)/lua_scripts.o: $(BUILD)/lua_scripts.c
	$(CC) $(CFLAGS) -Isrc -c -o $@ $<

# The admin UI (admin/) is compiled in the same way and served from memory.
$(BUILD)/admin_files.c: $(ADMIN) src/gen_admin.sh | $(BUILD)
	sh src/gen_admin.sh $(ADMIN) > $@

$(BUILD)/admin_files.o: $(BUILD)/admin_files.c
	$(CC) $(CFLAGS) -Isrc -c -o $@ $<

# docs/openapi.json, the API's description, is served from memory too.
$(BUILD)/openapi_json.c: docs/openapi.json src/gen_openapi.sh | $(BUILD)
	sh src/gen_openapi.sh docs/openapi.json > $@

$(BUILD)/openapi_json.o: $(BUILD)/openapi_json.c
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD):
	mkdir -p $(BUILD)

build/unit_tests: $(UNIT_SRCS) fuzz/fuzz_hash.h test/unit/main.c test/unit/unit.h test/unit/tests.def $(LIB_OBJS)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Isrc -Itest/unit -Ifuzz -o $@ test/unit/main.c $(UNIT_SRCS) $(LIB_OBJS) $(PKG_LIBS)

# Install whatever Debian packages are missing (apt-get update first).
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# The admin UI's browser test: Debian's chromium, node, and playwright-core
# from npm into test/e2e/.node (not committed). Only `make test` needs them.
UI_PKGS   := chromium nodejs
PLAYWRIGHT_CORE := playwright-core@1.65.1
deps-ui:
	@missing=""; for p in $(UI_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@[ -f test/e2e/.node/node_modules/playwright-core/package.json ] || \
	  npm install --prefix test/e2e/.node --no-audit --no-fund --silent $(PLAYWRIGHT_CORE)

# A private redis-server (loopback only, data and pid under ./var; 6379, or
# a free port when 6379 is taken) plus dtmd in the foreground on :36789, on
# the built-in defaults. `make run REDIS=host:port` uses that Redis instead.
# Ctrl-C stops dtmd and the redis-server it started (its data stays in var/).
run:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(RUN_PKGS)"
	@$(MAKE) --no-print-directory all
	@mkdir -p var
	@REDIS="$(REDIS)" sh conf/run.sh

# ---- install and package (docs/operations.md#installing) ----
# `make install` copies the binary, the unit (its paths rewritten for
# PREFIX), the sample configuration, the logrotate rules, the sysusers.d
# entry and the docs under $(DESTDIR). Installing into the live system
# (no DESTDIR, as root) also creates the dtmd user and hands the
# configuration to root:dtmd; an existing conf.yml is never overwritten.
.PHONY: install deb
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
DOCDIR     ?= $(PREFIX)/share/doc/dtmd
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
DOCS       := README.md conf/conf.sample.yml conf/grafana-dashboard.json
# docs/*.md go to $(DOCDIR)/docs, where README.md's links expect them.
DOC_PAGES  := $(wildcard docs/*.md)

install: $(BIN)
	install -d -m 755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
	  $(DESTDIR)$(DOCDIR) $(DESTDIR)$(DOCDIR)/docs $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	install -d -m 750 $(DESTDIR)$(SYSCONFDIR)/dtmd
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/dtmd
	sed -e 's|/usr/local/bin/dtmd|$(BINDIR)/dtmd|g' \
	    -e 's|/usr/local/share/doc/dtmd|$(DOCDIR)|g' \
	    -e 's|/etc/dtmd|$(SYSCONFDIR)/dtmd|g' conf/dtmd.service > $(DESTDIR)$(UNITDIR)/dtmd.service
	chmod 644 $(DESTDIR)$(UNITDIR)/dtmd.service
	install -m 644 conf/dtmd.sysusers $(DESTDIR)$(SYSUSERSDIR)/dtmd.conf
	install -m 644 conf/dtmd.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/dtmd
	install -m 644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	install -m 644 $(DOC_PAGES) $(DESTDIR)$(DOCDIR)/docs/
	[ -e $(DESTDIR)$(SYSCONFDIR)/dtmd/conf.yml ] || \
	  install -m 640 conf/conf.sample.yml $(DESTDIR)$(SYSCONFDIR)/dtmd/conf.yml
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ]; then \
	  getent passwd dtmd >/dev/null || \
	    useradd --system --user-group --no-create-home --home-dir /nonexistent \
	      --shell /usr/sbin/nologin dtmd; \
	  chown root:dtmd $(SYSCONFDIR)/dtmd $(SYSCONFDIR)/dtmd/conf.yml; \
	  echo "installed; now: systemctl daemon-reload && systemctl enable --now dtmd"; \
	fi

# A Debian package built with dpkg-deb from `make install` into a staging
# root (conf/debian/mkdeb.sh): build/dtmd_<version>_<arch>.deb.
deb: $(BIN)
	@$(MAKE) --no-print-directory deps DEB_PKGS="dpkg-dev fakeroot"
	@sh conf/debian/mkdeb.sh $(BIN)

unit: build/unit_tests
	./build/unit_tests

e2e: dtmd
	cd test/e2e && $(PYTHON) -m pytest -q -x -p no:cacheprovider

test: deps deps-ui
	@$(MAKE) --no-print-directory all build/unit_tests
	./build/unit_tests
	cd test/e2e && $(PYTHON) -m pytest -q -p no:cacheprovider

# The model-based randomized e2e test with N sequences from seed SEED (a few
# seconds each; `make test` runs a short fixed set). STEPS per sequence.
SEED  ?= 1
N     ?= 200
STEPS ?= 16
.PHONY: test-model
test-model: dtmd
	cd test/e2e && DTMD_MODEL_SEED=$(SEED) DTMD_MODEL_N=$(N) DTMD_MODEL_STEPS=$(STEPS) \
	  $(PYTHON) -m pytest -q -s -p no:cacheprovider test_model.py

asan:
	$(MAKE) BUILD=build-asan BIN=dtmd-asan CFLAGS="$(ASAN_CFLAGS)" ALLOC_LIBS= dtmd-asan

# ---- sanitizers and fuzzing (docs/testing.md#fuzzing) ----
.PHONY: test-asan asan-unit fuzz
# CFLAGS given on the command line replace the `+=` above, so the language
# flags are repeated here (without _GNU_SOURCE, memmem & co. are undeclared).
ASAN_CFLAGS := -O1 -g -std=c11 -D_GNU_SOURCE -MMD -MP -fsanitize=address,undefined \
               -fno-omit-frame-pointer

# Unit tests linked against the objects of the current BUILD (used by test-asan).
asan-unit: $(LIB_OBJS)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Isrc -Itest/unit -Ifuzz -o $(BUILD)/unit_tests test/unit/main.c $(UNIT_SRCS) $(LIB_OBJS) $(PKG_LIBS)

# The memory-checked suites run CHECK_JOBS test files at once (pytest-xdist,
# whole files per worker, so a file's fixtures are never shared): their dtmd
# processes mostly wait, so two halve the wall time on 2 cores.
CHECK_JOBS ?= 2
XDIST      := $(if $(filter-out 0 1,$(CHECK_JOBS)),-n $(CHECK_JOBS) --dist loadfile)

test-asan: deps
	$(MAKE) --no-print-directory BUILD=build-asan BIN=dtmd-asan CFLAGS="$(ASAN_CFLAGS)" ALLOC_LIBS= dtmd-asan asan-unit
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ./build-asan/unit_tests
	cd test/e2e && DTMD_BIN=$(CURDIR)/dtmd-asan $(PYTHON) -m pytest -q -p no:cacheprovider $(XDIST)

# ---- valgrind (docs/testing.md#under-valgrind) ----
# The normal -O2 -g ./dtmd, every dtmd of the e2e tests started under
# $(VALGRIND) by the harness (DTMD_WRAPPER in test/e2e/dtmtest.py), each with its
# own --log-file; a test fails at teardown when valgrind reported an error or a
# definite leak (exit status 99 on SIGTERM, or a report in the log). Harness
# waits are 4x longer; timing-sensitive tests are skipped (conftest.py
# VALGRIND_SKIP / @pytest.mark.no_valgrind). The whole e2e suite by default;
# VALGRIND_TESTS="test_saga.py test_msg.py" (files, node ids, -k ...) narrows it.
.PHONY: test-valgrind
VALGRIND       := valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
                  --errors-for-leak-kinds=definite --track-fds=no --num-callers=30 \
                  --soname-synonyms=somalloc=libmimalloc.so*
VALGRIND_TESTS ?=

test-valgrind: deps
	@$(MAKE) --no-print-directory all
	cd test/e2e && DTMD_WRAPPER="$(VALGRIND)" $(PYTHON) -m pytest -q -rs -p no:cacheprovider $(XDIST) $(VALGRIND_TESTS)

FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -O1 -g -std=c11 -D_GNU_SOURCE -MMD -MP -fsanitize=fuzzer-no-link,address,undefined \
                -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_TARGETS := fuzz_request fuzz_config fuzz_hash

# Each target runs FUZZ_SECONDS from the seed corpus in fuzz/corpus/<target>;
# new inputs go to build-fuzz/corpus-<target>, crashes to build-fuzz/.
fuzz:
	@$(MAKE) --no-print-directory deps DEB_PKGS="clang"
	@echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' | \
	  clang -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null || \
	  { echo "clang cannot link libFuzzer: install libclang-rt-<version>-dev"; exit 1; }
	$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang CFLAGS="$(FUZZ_CFLAGS)" \
	  $(patsubst %,build-fuzz/%,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus-$$t; \
	  echo "== $$t for $(FUZZ_SECONDS)s"; \
	  ./build-fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -artifact_prefix=build-fuzz/$$t- build-fuzz/corpus-$$t fuzz/corpus/$$t || exit 1; \
	done

build-fuzz/fuzz_%: fuzz/fuzz_%.c $(LIB_OBJS)
	$(CC) $(CFLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) -Isrc -o $@ $< $(LIB_OBJS) $(PKG_LIBS)

clean-objs:
	rm -rf build build-asan build-fuzz

clean: clean-objs
	rm -f dtmd dtmd-asan bench/stub bench/stub.d

format:
	clang-format -i src/*.c src/*.h test/unit/*.c test/unit/*.h

# The benchmark's business stub (libevent only).
bench/stub: bench/stub.c
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(shell pkg-config --libs libevent 2>/dev/null)

bench: deps all bench/stub
	sh bench/run.sh

# Memory: 10,000 transactions in flight, then 60 s at full load (bench/soak.sh).
.PHONY: bench-soak
bench-soak: deps all bench/stub
	sh bench/soak.sh

# Instructions per transaction under callgrind: comparable across runs and
# builds where tx/s and CPU time drift with the machine (bench/callgrind.sh).
.PHONY: bench-callgrind
bench-callgrind: deps all bench/stub
	sh bench/callgrind.sh

-include $(wildcard $(BUILD)/*.d)
