# samplellm: SampleLLM tabular data synthesis inside PostgreSQL
EXTENSION = samplellm
EXTVERSION = 0.2.0
MODULE_big = samplellm

# In pipeline order: settings and shared pieces; the table and its seeds;
# stage 1 (exemplars, prompt, HTTP, parse, validate, the built-in
# generator); stage 2; one run (conditions, quotas, cache, ledger); the
# SQL functions; evaluation.
OBJS = \
	src/samplellm.o \
	src/random.o \
	src/limits.o \
	src/compare.o \
	src/rowset.o \
	src/catalog.o \
	src/seeds.o \
	src/encode.o \
	src/exemplars.o \
	src/prompt.o \
	src/http.o \
	src/parse.o \
	src/validate.o \
	src/cache.o \
	src/stage1.o \
	src/provider_builtin.o \
	src/stage1_builtin.o \
	src/stage2_fields.o \
	src/stage2_model.o \
	src/stage2_attribution.o \
	src/stage2_clusters.o \
	src/stage2_weights.o \
	src/stage2_draw.o \
	src/stage2.o \
	src/condition.o \
	src/quota.o \
	src/ledger.o \
	src/journal.o \
	src/run.o \
	src/estimate.o \
	src/generate.o \
	src/interactions.o \
	src/evaluate.o \
	src/evaluate_metrics.o \
	src/evaluate_utility.o

DATA = sql/samplellm--0.1.0.sql sql/samplellm--0.2.0.sql sql/samplellm--0.1.0--0.2.0.sql
PGFILEDESC = "samplellm - LLM tabular data synthesis (SampleLLM)"

REGRESS = setup errors types generate stage1 stage2 builtin evaluate cache augment faults security hardening
REGRESS_OPTS = --inputdir=. --load-extension=samplellm

OPENBLAS_DIR = /usr/lib/x86_64-linux-gnu/openblas-serial
# Our own code is -Werror clean; third-party headers come in through
# src/prelude_*.h with their warnings suppressed.
PG_CFLAGS = -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare
PG_CPPFLAGS = -I/usr/include/x86_64-linux-gnu/openblas-pthread
# The serial OpenBLAS build: the pthread build starts a thread in every
# backend (environment.md).
SHLIB_LINK = -lcurl -lcjson -L$(OPENBLAS_DIR) -l:libopenblas.so.0 \
	-Wl,-rpath,$(OPENBLAS_DIR) -lm

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: rebuild every object when a header changes.
$(OBJS): $(wildcard src/*.h)
