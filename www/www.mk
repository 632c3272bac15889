# www/www.mk -- the dashboard's files that the binaries embed, for the
# Makefile and tests/fuzz/fuzz.mk alike: the NAME=FILE pairs that
# tools/embed.c turns into a C source (http/ts_www_data.h), and the rules
# that build the generator and run it into a build directory.
#
#   $(eval $(call WWW_RULES,DIR))  makes DIR/host/embed and
#                                  DIR/gen/ts_www_data.c

ifndef WWW_MK_INCLUDED
WWW_MK_INCLUDED := 1
# the rule below must not become the includer's default goal
WWW_SAVED_GOAL := $(.DEFAULT_GOAL)

CHARTJS   ?= /usr/share/javascript/chart.js/chart.min.js
WWW_FILES  = index.html=www/index.html assets/app.js=www/app.js \
             assets/common.js=www/common.js assets/tracker.js=www/tracker.js \
             assets/node.js=www/node.js \
             assets/style.css=www/style.css assets/icon.svg=www/icon.svg \
             assets/chart.min.js=$(CHARTJS)
WWW_DEPS   = $(foreach f,$(WWW_FILES),$(lastword $(subst =, ,$(f))))
HOSTCC    ?= cc

define WWW_RULES
$(1)/host/embed: tools/embed.c
	@mkdir -p $$(dir $$@)
	$$(HOSTCC) -std=gnu11 -Wall -Wextra -Werror -O2 -o $$@ $$<

$(1)/gen/ts_www_data.c: $(1)/host/embed $$(WWW_DEPS) www/www.mk
	@mkdir -p $$(dir $$@)
	$(1)/host/embed $$@ $$(WWW_FILES)
endef

$(CHARTJS):
	@echo "missing $@: run 'make deps' (Debian package libjs-chart.js)" >&2
	@exit 1

.DEFAULT_GOAL := $(WWW_SAVED_GOAL)
endif
