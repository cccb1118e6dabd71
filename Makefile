# churn_warning — PGXS build
EXTENSION  = churn_warning
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = $(EXTENSION)
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script is assembled from sql/install/*.sql in name order, so each
# subsystem keeps its SQL next to the others without one huge file.
EXT_SQL = sql/$(EXTENSION)--$(EXTVERSION).sql

# Released versions: their install scripts are frozen in sql/released/, and
# each upgrade script is assembled from the parts added since that version
# (parts of an earlier version are never edited after its release).
UPGRADE_SQL   = sql/$(EXTENSION)--0.1.0--$(EXTVERSION).sql
UPGRADE_PARTS = sql/install/900_pipeline.sql

DATA_built     = $(EXT_SQL) $(UPGRADE_SQL)
DATA           = $(wildcard sql/released/$(EXTENSION)--*.sql)
EXTRA_CLEAN    = $(EXT_SQL) $(UPGRADE_SQL) results regression.diffs regression.out tmp_check log

# pg_regress tests: every sql/*.sql except the generated scripts.
# Run a subset with: make installcheck REGRESS="history features"
REGRESS      = $(sort $(patsubst sql/%.sql,%,$(filter-out $(EXT_SQL) $(UPGRADE_SQL),$(wildcard sql/*.sql))))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION) --dbname=churn_regress

PG_CPPFLAGS = -I$(srcdir)/src
# -Wextra minus the two warnings PostgreSQL's own headers trip (unused
# parameters in ilist.h inlines, a signed/unsigned ?: in ARR_DATA_OFFSET).
# No fast-math: results must match the references to the last digit.
PG_CFLAGS   = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXT_SQL): $(sort $(wildcard sql/install/*.sql)) $(EXTENSION).control
	{ printf '%s\n' '-- generated from sql/install/*.sql by make; edit those files, not this one' \
	    '\echo Use "CREATE EXTENSION $(EXTENSION)" to load this file. \quit'; \
	  for f in $(sort $(wildcard sql/install/*.sql)); do printf '\n-- ==== %s\n' "$$f"; cat "$$f"; done; } > $@

$(UPGRADE_SQL): $(UPGRADE_PARTS) $(EXTENSION).control
	{ printf '%s\n' '-- generated from $(UPGRADE_PARTS) by make; edit those files, not this one' \
	    '\echo Use "ALTER EXTENSION $(EXTENSION) UPDATE" to load this file. \quit'; \
	  for f in $(UPGRADE_PARTS); do printf '\n-- ==== %s\n' "$$f"; cat "$$f"; done; } > $@

.PHONY: demo test
demo:
	scripts/demo.sh
test:
	scripts/test.sh
