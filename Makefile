# Tessera -- build, install, test and demo.
#
#   make            build ./tracker and ./client (-Wall -Wextra -Werror)
#   make asan       the same with ASan + UBSan, into build/asan/
#   make check      install test deps if missing, build, run every test
#   make demo       install deps if missing, build, run the loopback demo
#   make bench      benchmarks (not part of check)
#   make install    binaries, man pages, systemd units; PREFIX (default
#                   /usr/local), DESTDIR, BINDIR, MANDIR, UNITDIR honoured
#
# Missing Debian packages are installed with apt-get, only when pkg-config
# (or a probe) cannot find them; `apt-get update` runs once, first.

PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
UNITDIR  ?= $(PREFIX)/lib/systemd/system
UNITS     = tessera-tracker@.service tessera-client.service
DESTDIR  ?=
BUILD    ?= release
CC       ?= cc

# (the dashboard also needs libjs-chart.js, a file, not a pkg-config
# package: `make deps` installs it, see CHARTJS)
PKGS      = openssl tdb libedit jansson libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     = -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
CSTD     = -std=gnu11 -D_GNU_SOURCE
# The include path follows the layers (docs/ARCHITECTURE.md): a folder
# sees only itself and the folders below it, so an upward include does
# not compile.  Tests see everything.
INCS     = -Icommon -Inet -Ishm -Imaster -Ihttp -Iworkers -Itracker -Iclient
INCS_common  = -Icommon
INCS_http    = -Icommon -Ihttp
INCS_net     = -Icommon -Inet
INCS_shm     = -Icommon -Ishm
INCS_master  = -Icommon -Imaster
INCS_workers = -Icommon -Inet -Ishm -Imaster -Iworkers
INCS_tracker = -Icommon -Inet -Ishm -Imaster -Ihttp -Itracker
INCS_client  = -Icommon -Inet -Ishm -Imaster -Ihttp -Iworkers -Iclient

ifeq ($(BUILD),asan)
OPT      = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
           -fno-sanitize-recover=undefined
LDOPT    = -fsanitize=address,undefined
OUT      = build/asan
else ifeq ($(BUILD),notls)
# Benchmark-only build: every link in plaintext, fingerprints zero (the
# TLS-on/off comparison of `make bench`).  Never deploy it.
OPT      = -O2 -g -DTS_TLS_OFF
LDOPT    =
OUT      = build/notls
else
OPT      = -O2 -g
LDOPT    =
OUT      = build/release
endif
# Binaries are linked into $(OUT)/bin/.  The release build also puts them
# beside their sources, tracker/tracker and client/client, so the seed's
# invocation works from those folders (`cd tracker && ./tracker
# ../tracker_info.txt 1`); a file cannot share the repo root with the
# tracker/ and client/ folders.
BINOUT   = $(OUT)/bin

CFLAGS  += $(CSTD) $(WARN) $(OPT) $(INCS) $(PKG_CFLAGS) -pthread -MMD -MP
LDLIBS  += $(PKG_LIBS) -lrt -pthread

CORE_SRC    = $(wildcard common/*.c net/*.c shm/*.c master/*.c http/*.c)
TRACKER_SRC = $(wildcard tracker/*.c)
CLIENT_SRC  = $(wildcard client/*.c workers/*.c)
UNIT_SRC    = $(wildcard tests/unit/test_*.c)
TOOL_SRC    = $(wildcard tests/tools/*.c)

# the dashboard's files, embedded: tools/embed.c (built first, with the
# host compiler) writes them as C arrays into $(OUT)/gen/ts_www_data.c,
# compiled into the core like any http/ source (http/ts_www.c serves it)
include www/www.mk
WWW_OBJ     = $(OUT)/gen/ts_www_data.o
CORE_OBJ    = $(CORE_SRC:%.c=$(OUT)/%.o) $(WWW_OBJ)
TRACKER_OBJ = $(TRACKER_SRC:%.c=$(OUT)/%.o)
CLIENT_OBJ  = $(CLIENT_SRC:%.c=$(OUT)/%.o)
# tracker/ and client/ objects other than the mains may be unit-tested too
TRACKER_LIB = $(filter-out $(OUT)/tracker/trk_main.o,$(TRACKER_OBJ))
CLIENT_LIB  = $(filter-out $(OUT)/client/cli_main.o,$(CLIENT_OBJ))
UNIT_BIN    = $(UNIT_SRC:tests/unit/%.c=$(OUT)/tests/%)
TOOL_BIN    = $(TOOL_SRC:tests/tools/%.c=$(OUT)/tools/%)

.PHONY: all asan deps deps-test check check-asan demo bench soak install \
        uninstall clean unit tools

all: $(BINOUT)/tracker $(BINOUT)/client
ifeq ($(BUILD),release)
all: tracker/tracker client/client
tracker/tracker: $(BINOUT)/tracker
	cp -f $< $@
client/client: $(BINOUT)/client
	cp -f $< $@
endif

asan:
	$(MAKE) BUILD=asan all unit tools

$(BINOUT)/tracker: $(CORE_OBJ) $(TRACKER_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDOPT) -o $@ $^ $(LDLIBS)

$(BINOUT)/client: $(CORE_OBJ) $(CLIENT_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDOPT) -o $@ $^ $(LDLIBS)

$(OUT)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(eval $(call WWW_RULES,$(OUT)))

$(WWW_OBJ): $(OUT)/gen/ts_www_data.c
	$(CC) $(CFLAGS) -Icommon -Ihttp -c -o $@ $<

LAYERS = common net shm master http workers tracker client
$(foreach l,$(LAYERS),$(eval $(OUT)/$(l)/%.o: INCS = $(INCS_$(l))))

unit: $(UNIT_BIN)
tools: $(TOOL_BIN) $(OUT)/tools/drip.so

# tests/unit/test_trk_*.c link the tracker's objects, test_cli_* and
# test_node_* the client's, every other test only the core.
CMOCKA_LIBS = $$(pkg-config --libs cmocka)

$(OUT)/tests/test_trk_%: tests/unit/test_trk_%.c $(CORE_OBJ) $(TRACKER_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDOPT) -o $@ $(filter %.c %.o,$^) $(LDLIBS) $(CMOCKA_LIBS)

$(OUT)/tests/test_cli_%: tests/unit/test_cli_%.c $(CORE_OBJ) $(CLIENT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDOPT) -o $@ $(filter %.c %.o,$^) $(LDLIBS) $(CMOCKA_LIBS)

$(OUT)/tests/test_node_%: tests/unit/test_node_%.c $(CORE_OBJ) $(CLIENT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDOPT) -o $@ $(filter %.c %.o,$^) $(LDLIBS) $(CMOCKA_LIBS)

$(OUT)/tests/%: tests/unit/%.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDOPT) -o $@ $(filter %.c %.o,$^) $(LDLIBS) $(CMOCKA_LIBS)

# LD_PRELOAD shims for the system tests (tests/tools/preload/)
$(OUT)/tools/%.so: tests/tools/preload/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O2 -fPIC -shared -o $@ $< -ldl

$(OUT)/tools/%: tests/tools/%.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDOPT) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

# a tool's further sources live in tests/tools/<tool>/
$(OUT)/tools/ts_sec: $(wildcard tests/tools/ts_sec/*.c tests/tools/ts_sec/*.h)
$(OUT)/tools/wanemu: $(wildcard tests/tools/wanemu/*.c tests/tools/wanemu/*.h)

# ---- packages -----------------------------------------------------------
# deps: what building needs; deps-test: what the tests need on top.
APT_INSTALL = DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends

deps:
	@miss=""; \
	command -v pkg-config >/dev/null || miss="$$miss pkg-config"; \
	command -v cc >/dev/null || miss="$$miss gcc"; \
	[ -f /usr/include/stdio.h ] || miss="$$miss libc6-dev"; \
	pkg-config --exists openssl 2>/dev/null || miss="$$miss libssl-dev"; \
	pkg-config --exists tdb 2>/dev/null || miss="$$miss libtdb-dev"; \
	pkg-config --exists libedit 2>/dev/null || miss="$$miss libedit-dev"; \
	pkg-config --exists jansson 2>/dev/null || miss="$$miss libjansson-dev"; \
	pkg-config --exists libmicrohttpd 2>/dev/null || miss="$$miss libmicrohttpd-dev"; \
	[ -f $(CHARTJS) ] || miss="$$miss libjs-chart.js"; \
	[ -x /usr/bin/python3 ] || miss="$$miss python3"; \
	if [ -n "$$miss" ]; then \
	  echo "installing:$$miss"; \
	  apt-get update -q && $(APT_INSTALL) $$miss; \
	fi

deps-test: deps
	@miss=""; \
	pkg-config --exists cmocka 2>/dev/null || miss="$$miss libcmocka-dev"; \
	/usr/bin/python3 -c 'import pytest' 2>/dev/null || miss="$$miss python3-pytest"; \
	/usr/bin/python3 -c 'import xdist' 2>/dev/null || miss="$$miss python3-pytest-xdist"; \
	/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null || miss="$$miss python3-prometheus-client"; \
	command -v tdbtool >/dev/null || miss="$$miss tdb-tools"; \
	command -v groff >/dev/null || miss="$$miss groff-base"; \
	command -v ps >/dev/null || miss="$$miss procps"; \
	command -v ip >/dev/null || miss="$$miss iproute2"; \
	command -v openssl >/dev/null || miss="$$miss openssl"; \
	command -v clang-14 >/dev/null || miss="$$miss clang-14"; \
	command -v chromium >/dev/null || miss="$$miss chromium"; \
	command -v chromedriver >/dev/null || miss="$$miss chromium-driver"; \
	/usr/bin/python3 -c 'import selenium' 2>/dev/null || miss="$$miss python3-selenium"; \
	ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a \
	  >/dev/null 2>&1 || miss="$$miss libclang-rt-14-dev"; \
	if [ -n "$$miss" ]; then \
	  echo "installing:$$miss"; \
	  apt-get update -q && $(APT_INSTALL) $$miss; \
	fi

# ---- running ------------------------------------------------------------
check: deps-test
	$(MAKE) all unit tools
	@TESSERA_BIN=$(OUT)/bin tests/run.sh $(OUT)

check-asan: deps-test
	$(MAKE) BUILD=asan all unit tools
	@TESSERA_BIN=build/asan/bin tests/run.sh build/asan

demo: deps
	$(MAKE) all
	@tests/demo.sh

# bench: tracker requests, cluster replication, the tracker at 10^3 and
# 10^4 users (SCALE_SIZES; add 100000 for 10^5, long to build), then the
# swarm against aria2 + opentracker (installed by
# ../shared/bench/anchor_swarm.sh), then the data plane against the limit
# probe (bench/limit.sh: 1->1 and 1->4, TLS and not, interleaved; N16=1
# adds 16 leechers), then (root) the cluster on separate emulated hosts
# (bench/wan_cluster.sh: 3 trackers + WAN_NODES nodes) and, with
# WAN_ANCHOR=1, aria2 + opentracker vs Tessera on the same emulated WAN
# (bench/wan_anchor.sh, about 15 minutes).
bench: deps-test
	$(MAKE) all tools
	$(MAKE) BUILD=notls all
	@NOTLS_BIN=build/notls/bin bench/run.sh
	@bench/cluster.sh
	@bench/scale.sh $(SCALE_SIZES)
	@NOTLS_BIN=build/notls/bin HTTP_POLL=1 bench/swarm.sh $(SWARM_SIZE) $(SWARM_N) $(SWARM_RUNS)
	@NOTLS_BIN=build/notls/bin SIZE=$(SWARM_SIZE) RUNS=$(SWARM_RUNS) bench/limit.sh
	@TESSERA_BIN=$(OUT)/bin bench/wan_cluster.sh $(WAN_NODES) $(WAN_SIZE) 1
	@if [ "$(WAN_ANCHOR)" = 1 ]; then \
	    TESSERA_BIN=$(OUT)/bin bench/wan_anchor.sh $(WAN_ANCHOR_SIZE) 4 $(WAN_ANCHOR_RUNS); \
	else echo "bench: WAN anchor skipped (make bench WAN_ANCHOR=1 runs it)"; fi

SCALE_SIZES ?= 1000 10000
SWARM_SIZE ?= 1G
SWARM_N    ?= 4
SWARM_RUNS ?= 3
SOAK_S     ?= 1800
WAN_NODES  ?= 20
WAN_SIZE   ?= 64M
WAN_ANCHOR ?= 0
WAN_ANCHOR_SIZE ?= 256M
WAN_ANCHOR_RUNS ?= 3
WAN_SOAK_RUNS   ?= 3

# soak: the randomized nemesis (kills, pauses, partitions) for SOAK_S s,
# then (root) the cluster on separate emulated hosts, full size (3
# trackers + WAN_NODES nodes), WAN_SOAK_RUNS times.
soak: deps-test
	$(MAKE) all unit tools
	TESSERA_BIN=$(OUT)/bin TESSERA_NEMESIS_S=$(SOAK_S) \
	    /usr/bin/python3 -m pytest tests/system/test_nemesis.py -q -s \
	    -p no:cacheprovider
	TESSERA_BIN=$(OUT)/bin bench/wan_cluster.sh $(WAN_NODES) $(WAN_SIZE) \
	    $(WAN_SOAK_RUNS)

# install: the binaries as tessera-tracker and tessera-client, their man
# pages, and the systemd units (ExecStart= names $(BINDIR)).  UNITDIR may
# be set to /lib/systemd/system for a PREFIX of /usr/local.
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BINOUT)/tracker $(DESTDIR)$(BINDIR)/tessera-tracker
	install -m 0755 $(BINOUT)/client $(DESTDIR)$(BINDIR)/tessera-client
	install -m 0644 man/tessera-client.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/tessera-tracker.8 $(DESTDIR)$(MANDIR)/man8/
	for u in $(UNITS); do \
	    sed 's|@BINDIR@|$(BINDIR)|g' dist/$$u > $(DESTDIR)$(UNITDIR)/$$u.tmp \
	    && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp \
	    && mv -f $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u \
	    || exit 1; \
	done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/tessera-tracker $(DESTDIR)$(BINDIR)/tessera-client
	rm -f $(DESTDIR)$(MANDIR)/man1/tessera-client.1 \
	    $(DESTDIR)$(MANDIR)/man8/tessera-tracker.8
	for u in $(UNITS); do rm -f $(DESTDIR)$(UNITDIR)/$$u; done

clean:
	rm -rf build tracker/tracker client/client

# fuzz, fuzz-check: libFuzzer targets (tests/fuzz/fuzz.mk)
-include tests/fuzz/fuzz.mk

-include $(shell find build -name '*.d' 2>/dev/null)
