# samplellm: SampleLLM tabular data synthesis inside PostgreSQL
EXTENSION = samplellm
EXTVERSION = 0.2.0
MODULE_big = samplellm

# In pipeline order, one prefix per step (src/*.h: one header each):
# settings; shared pieces; the table and its seeds; stage 1 (exemplars,
# prompt, condition, groups, validation, the pool, the LLM and built-in
# providers, and the LLM transport); stage 2; one run; its record; the SQL
# functions; evaluation.
OBJS = \
	src/samplellm.o \
	src/util_random.o \
	src/util_compare.o \
	src/util_limits.o \
	src/table_catalog.o \
	src/table_keys.o \
	src/table_rowset.o \
	src/table_seeds.o \
	src/table_encode.o \
	src/stage1_exemplars.o \
	src/stage1_prompt.o \
	src/stage1_condition.o \
	src/stage1_synth.o \
	src/stage1_refs.o \
	src/stage1_groups.o \
	src/stage1_validate.o \
	src/stage1_pool.o \
	src/stage1_llm.o \
	src/stage1_builtin.o \
	src/builtin_copula.o \
	src/llm_capacity.o \
	src/llm_stream.o \
	src/llm_http.o \
	src/llm_parse.o \
	src/llm_cache.o \
	src/stage2_fields.o \
	src/stage2_model.o \
	src/stage2_attribution.o \
	src/stage2_clusters.o \
	src/stage2_weights.o \
	src/stage2_backoff.o \
	src/stage2_novelty.o \
	src/stage2_draw.o \
	src/stage2.o \
	src/run_options.o \
	src/run.o \
	src/run_record.o \
	src/run_progress.o \
	src/ledger_table.o \
	src/ledger_journal.o \
	src/sql_generate.o \
	src/sql_insert.o \
	src/sql_related.o \
	src/sql_estimate.o \
	src/sql_interactions.o \
	src/evaluate.o \
	src/evaluate_common.o \
	src/evaluate_metrics.o \
	src/evaluate_dcr.o \
	src/evaluate_keys.o \
	src/evaluate_utility.o

# Install and upgrade scripts at the top, as contrib keeps them; sql/ and
# expected/ hold the regression tests.
DATA = samplellm--0.1.0.sql samplellm--0.2.0.sql samplellm--0.1.0--0.2.0.sql
PGFILEDESC = "samplellm - LLM tabular data synthesis (SampleLLM)"

REGRESS = setup errors types generate stage1 stage2 builtin evaluate cache augment faults transport security hardening keys firsthour servers
REGRESS_OPTS = --inputdir=. --load-extension=samplellm
# setup (the simulator's endpoint, the shared tables) comes first, also when
# one test is picked: `make installcheck REGRESS=builtin` runs setup, builtin.
override REGRESS := setup $(filter-out setup,$(REGRESS))

# Our own code is -Werror clean; third-party headers come in through
# src/*_prelude.h with their warnings suppressed.
PG_CFLAGS = -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare

# OpenBLAS: headers from pkg-config; the library is the serial build where
# the system has one (Debian's libopenblas0-serial), because the pthread
# build starts a thread in every backend.  Set OPENBLAS_CFLAGS and
# OPENBLAS_LIBS for other layouts.
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
OPENBLAS_SERIAL_DIR ?= $(firstword $(wildcard /usr/lib/$(MULTIARCH)/openblas-serial /usr/lib64/openblas-serial))
OPENBLAS_CFLAGS ?= $(shell pkg-config --cflags openblas 2>/dev/null)
ifneq ($(OPENBLAS_SERIAL_DIR),)
OPENBLAS_LIBS ?= -L$(OPENBLAS_SERIAL_DIR) -l:libopenblas.so.0 -Wl,-rpath,$(OPENBLAS_SERIAL_DIR)
else
OPENBLAS_LIBS ?= $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
endif
PG_CPPFLAGS = $(OPENBLAS_CFLAGS)
SHLIB_LINK = -lcurl -lcjson $(OPENBLAS_LIBS) -lm

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The DNN's per-row loops (bias, ReLU, dropout, the layer-0 table sums) are
# written to vectorize; -O2 alone leaves them scalar on gcc 12, where they
# took most of stage 2's time.  PostgreSQL does the same for its checksums.
src/stage2_model.o: CFLAGS += $(CFLAGS_VECTORIZE)

# PGXS tracks no header dependencies: rebuild every object when a header changes.
$(OBJS): $(wildcard src/*.h)

# `make installcheck` works against any running server with the extension
# installed: the regression tests talk to the project's LLM simulator, which
# test/with_sim.sh starts (and stops) around pg_regress unless test/run.sh
# already runs one.
pg_regress_installcheck := $(patsubst %/pg_regress,$(CURDIR)/test/with_sim.sh %/pg_regress,$(pg_regress_installcheck))

# The PGXN source distribution: the committed HEAD as
# samplellm-<version>.zip, after checking that every file states the same
# version (test/check_release.py).  See docs/packaging.md.
DISTNAME = $(EXTENSION)-$(EXTVERSION)
dist:
	python3 test/check_release.py
	git archive --format=zip --prefix=$(DISTNAME)/ --output=$(DISTNAME).zip HEAD
	@echo "$(DISTNAME).zip: the committed HEAD (uncommitted changes are not in it)"
.PHONY: dist
