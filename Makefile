# dtmd - a dtm-compatible distributed transaction manager in C.
#
#   make          build ./dtmd
#   make run      install missing packages, build, start a private redis-server and dtmd
#   make test     install missing packages, build, run every test (unit + end-to-end)
#   make asan     build ./dtmd-asan with AddressSanitizer + UBSan
#   make bench    throughput benchmark with wrk (see bench/README.md)

PKGS      := libevent hiredis libcurl yajl yaml-0.1
CC        ?= cc
CFLAGS    ?= -O2 -g
CFLAGS    += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -MMD -MP
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

# Debian packages needed to build, run and test.
DEB_PKGS  := build-essential pkg-config libevent-dev libhiredis-dev libcurl4-openssl-dev \
             libyajl-dev libyaml-dev redis-server python3-pytest curl
PYTHON    := /usr/bin/python3

# BUILD and BIN let the sanitizer build live beside the normal one.
BUILD     ?= build
BIN       ?= dtmd
SRCS      := $(wildcard src/*.c)
OBJS      := $(patsubst src/%.c,$(BUILD)/%.o,$(SRCS)) $(BUILD)/lua_scripts.o
LIB_OBJS  := $(filter-out $(BUILD)/main.o,$(OBJS))
LUA       := $(sort $(wildcard lua/*.lua))
UNIT_SRCS := $(wildcard test/unit/test_*.c)

.PHONY: all deps run test unit e2e asan clean format bench

all: $(BIN)

$(BIN): $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/%.o: src/%.c | $(BUILD)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Isrc -c -o $@ $<

# The Lua scripts are the single source of truth; they are compiled into the
# binary so dtmd never reads the source tree at run time.
$(BUILD)/lua_scripts.c: $(LUA) src/gen_lua.sh | $(BUILD)
	sh src/gen_lua.sh $(LUA) > $@

$(BUILD)/lua_scripts.o: $(BUILD)/lua_scripts.c
	$(CC) $(CFLAGS) -Isrc -c -o $@ $<

$(BUILD):
	mkdir -p $(BUILD)

build/unit_tests: $(UNIT_SRCS) test/unit/main.c test/unit/unit.h test/unit/tests.def $(LIB_OBJS)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Isrc -Itest/unit -o $@ test/unit/main.c $(UNIT_SRCS) $(LIB_OBJS) $(PKG_LIBS)

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

# A private redis-server (loopback only, data and pid under ./var) plus dtmd
# in the foreground on :36789. Ctrl-C stops dtmd; the redis-server keeps its
# data in var/ and is stopped with it.
run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p var
	@sh conf/run.sh

unit: build/unit_tests
	./build/unit_tests

e2e: dtmd
	cd test/e2e && $(PYTHON) -m pytest -q -x -p no:cacheprovider

test: deps
	@$(MAKE) --no-print-directory all build/unit_tests
	./build/unit_tests
	cd test/e2e && $(PYTHON) -m pytest -q -p no:cacheprovider

asan:
	$(MAKE) BUILD=build-asan BIN=dtmd-asan \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" dtmd-asan

clean-objs:
	rm -rf build build-asan

clean: clean-objs
	rm -f dtmd dtmd-asan

format:
	clang-format -i src/*.c src/*.h test/unit/*.c test/unit/*.h

bench: deps all
	sh bench/run.sh

-include $(wildcard $(BUILD)/*.d)
