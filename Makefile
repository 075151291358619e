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

SRCS      := $(wildcard src/*.c)
OBJS      := $(patsubst src/%.c,build/%.o,$(SRCS)) build/lua_scripts.o
LIB_OBJS  := $(filter-out build/main.o,$(OBJS))
LUA       := $(sort $(wildcard lua/*.lua))
UNIT_SRCS := $(wildcard test/unit/test_*.c)

.PHONY: all deps run test unit e2e asan clean format bench

all: dtmd

dtmd: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

build/%.o: src/%.c | build
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Isrc -c -o $@ $<

# The Lua scripts are the single source of truth; they are compiled into the
# binary so dtmd never reads the source tree at run time.
build/lua_scripts.c: $(LUA) src/gen_lua.sh | build
	sh src/gen_lua.sh $(LUA) > $@

build/lua_scripts.o: build/lua_scripts.c
	$(CC) $(CFLAGS) -Isrc -c -o $@ $<

build:
	mkdir -p build

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
	$(MAKE) clean-objs
	$(MAKE) CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" dtmd
	mv dtmd dtmd-asan
	$(MAKE) clean-objs

clean-objs:
	rm -rf build

clean: clean-objs
	rm -f dtmd dtmd-asan

format:
	clang-format -i src/*.c src/*.h test/unit/*.c test/unit/*.h

bench: deps all
	sh bench/run.sh

-include $(wildcard build/*.d)
