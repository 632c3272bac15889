# tests/fuzz/fuzz.mk -- libFuzzer targets for every parser (included by
# the top Makefile with `include tests/fuzz/fuzz.mk`; self-contained).
#
#   make fuzz         build, then fuzz each target FUZZ_S seconds (default
#                     300), FUZZ_JOBS at a time; the grown corpora stay in
#                     build/fuzz/work/<target>/ for the next run
#   make fuzz-check   build, replay each committed corpus and fuzz each
#                     target FUZZ_CHECK_S seconds (default 20), two at a
#                     time; one line "fuzz <target>: ok (N runs)" or the
#                     crash input's path per target (tests/run.sh runs the
#                     same step inside `make check`)
#   make fuzz-build   just the binaries, build/fuzz/fuzz_<target>
#   make fuzz-corpus  regenerate the seed corpora tests/fuzz/corpus/ with
#                     the real encoders (tests/fuzz/gen_corpus.c)
#
# Everything is built with Debian's clang-14 (-fsanitize=fuzzer,address,
# undefined) into build/fuzz/, separate from the release and asan builds.
# Warnings are not errors here: clang warns about other things than gcc,
# and the -Werror gate is the gcc build's.

FUZZ_CC       ?= clang-14
FUZZ_S        ?= 300
FUZZ_CHECK_S  ?= 20
FUZZ_JOBS     ?= 2
FUZZ_OUT      := build/fuzz

FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_PKG_CFLAGS := $(shell pkg-config --cflags openssl tdb libedit jansson libmicrohttpd 2>/dev/null)
FUZZ_PKG_LIBS   := $(shell pkg-config --libs openssl tdb libedit jansson libmicrohttpd 2>/dev/null)
FUZZ_CFLAGS   := -std=gnu11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer \
                 -Wall -Wextra -Wno-unused-parameter $(FUZZ_SAN) \
                 -Icommon -Inet -Ishm -Imaster -Ihttp -Iworkers -Itracker \
                 -Iclient -Itests/fuzz $(FUZZ_PKG_CFLAGS) -pthread -MMD -MP
FUZZ_LIBS     := $(FUZZ_PKG_LIBS) -lrt -pthread

# every module but the two mains, instrumented for coverage, in three
# archives (core, tracker, client) so that a module someone is changing
# breaks only the targets that link it (run.sh builds with make -k); a
# target pulls in only the objects it references
FUZZ_CORE_SRC := $(wildcard common/*.c net/*.c shm/*.c master/*.c http/*.c)
FUZZ_TRK_SRC  := $(filter-out tracker/trk_main.c, $(wildcard tracker/*.c))
FUZZ_CLI_SRC  := $(filter-out client/cli_main.c, \
                   $(wildcard client/*.c workers/*.c))
FUZZ_LIB_CORE := $(FUZZ_OUT)/lib/core.a
FUZZ_LIB_TRK  := $(FUZZ_OUT)/lib/trk.a
FUZZ_LIB_CLI  := $(FUZZ_OUT)/lib/cli.a
FUZZ_UTIL_OBJ := $(FUZZ_OUT)/obj/tests/fuzz/fz_util.o
# the dashboard's embedded files (http/ts_www.c links them), made the
# same way as for the main build (www/www.mk)
include www/www.mk
FUZZ_WWW_OBJ  := $(FUZZ_OUT)/obj/$(FUZZ_OUT)/gen/ts_www_data.o
FUZZ_TARGETS  := $(patsubst tests/fuzz/fuzz_%.c,%, \
                   $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN      := $(FUZZ_TARGETS:%=$(FUZZ_OUT)/fuzz_%)

# what each target links besides the core (default: the core alone)
FUZZ_NEEDS_trk_ops   := $(FUZZ_LIB_TRK)
FUZZ_NEEDS_trk_sync  := $(FUZZ_LIB_TRK)
FUZZ_NEEDS_records   := $(FUZZ_LIB_TRK) $(FUZZ_LIB_CLI)
FUZZ_NEEDS_cli_reply := $(FUZZ_LIB_CLI)
FUZZ_NEEDS_peer      := $(FUZZ_LIB_CLI)
FUZZ_NEEDS_ctl       := $(FUZZ_LIB_CLI)
FUZZ_NEEDS_http_body := $(FUZZ_LIB_CLI)
FUZZ_NEEDS_gen       := $(FUZZ_LIB_TRK) $(FUZZ_LIB_CLI)

# keep the Makefile's default goal whatever the place of the include
FUZZ_SAVED_GOAL := $(.DEFAULT_GOAL)

.PHONY: fuzz fuzz-check fuzz-build fuzz-corpus fuzz-deps

fuzz-deps:
	@miss=""; \
	command -v $(FUZZ_CC) >/dev/null || miss="$$miss clang-14"; \
	ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a \
	    >/dev/null 2>&1 || miss="$$miss libclang-rt-14-dev"; \
	if [ -n "$$miss" ]; then \
	  echo "installing:$$miss"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q --no-install-recommends $$miss; \
	fi

fuzz-build: fuzz-deps
	@$(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk $(FUZZ_BIN)

fuzz: fuzz-build
	@tests/fuzz/run.sh long $(FUZZ_S) $(FUZZ_JOBS)

fuzz-check: fuzz-build
	@tests/fuzz/run.sh check $(FUZZ_CHECK_S) 2

fuzz-corpus: fuzz-deps
	@$(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk $(FUZZ_OUT)/gen_corpus
	ASAN_OPTIONS=detect_leaks=0 TMPDIR=$${TMPDIR:-/tmp} \
	    $(FUZZ_OUT)/gen_corpus tests/fuzz/corpus

$(FUZZ_OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_LIB_CORE): $(FUZZ_CORE_SRC:%.c=$(FUZZ_OUT)/obj/%.o) $(FUZZ_WWW_OBJ)
$(eval $(call WWW_RULES,$(FUZZ_OUT)))
$(FUZZ_LIB_TRK):  $(FUZZ_TRK_SRC:%.c=$(FUZZ_OUT)/obj/%.o)
$(FUZZ_LIB_CLI):  $(FUZZ_CLI_SRC:%.c=$(FUZZ_OUT)/obj/%.o)
$(FUZZ_LIB_CORE) $(FUZZ_LIB_TRK) $(FUZZ_LIB_CLI):
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

# build/fuzz/fuzz_<t>: its own object, the helpers, its archives
define FUZZ_LINK_RULE
$(FUZZ_OUT)/$(1): $(FUZZ_OUT)/obj/tests/fuzz/$(1).o $(FUZZ_UTIL_OBJ) \
                  $(2) $(FUZZ_LIB_CORE)
	$$(FUZZ_CC) $$(FUZZ_SAN) $(3) -o $$@ $$(filter %.o,$$^) \
	    -Wl,--start-group $$(filter %.a,$$^) -Wl,--end-group $$(FUZZ_LIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_LINK_RULE,fuzz_$(t),\
    $(FUZZ_NEEDS_$(t)),-fsanitize=fuzzer)))
# the corpus generator: a plain program over the same objects
$(eval $(call FUZZ_LINK_RULE,gen_corpus,$(FUZZ_NEEDS_gen),))
# with the generator's other files (one per codec family, gen_*.c)
FUZZ_GEN_OBJ  := $(patsubst %.c,$(FUZZ_OUT)/obj/%.o, \
                   $(filter-out tests/fuzz/gen_corpus.c, \
                     $(wildcard tests/fuzz/gen_*.c)))
$(FUZZ_OUT)/gen_corpus: $(FUZZ_GEN_OBJ)

.DEFAULT_GOAL := $(FUZZ_SAVED_GOAL)

# header dependencies (the top Makefile includes every build/**/*.d itself)
ifeq ($(firstword $(MAKEFILE_LIST)),tests/fuzz/fuzz.mk)
-include $(shell find $(FUZZ_OUT) -name '*.d' 2>/dev/null)
endif
