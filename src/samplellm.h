/*-------------------------------------------------------------------------
 *
 * samplellm.h
 *	  Types shared by every step of the samplellm pipeline.
 *
 * The data flows in one direction: seeds (SPI) -> encoding -> stage 1
 * (exemplars, prompt, HTTP, parse/validate) -> stage 2 (model, attribution,
 * weights, draw) -> tuples.  The structures below are what one step hands to
 * the next.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_H
#define SAMPLELLM_H

#include "access/attnum.h"
#include "access/tupdesc.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "nodes/pg_list.h"

#define SAMPLELLM_VERSION "0.2.0"

/* ---- settings (samplellm.c) ---- */
typedef enum SlProvider
{
	SL_PROVIDER_OPENAI = 0,
	SL_PROVIDER_BUILTIN
} SlProvider;

extern char *sl_endpoint;
extern char *sl_model;
extern char *sl_api_key;
extern char *sl_api_key_file;
extern int	sl_provider;
extern int	sl_request_timeout_ms;
extern int	sl_connect_timeout_ms;
extern int	sl_max_concurrency;
extern int	sl_max_retries;
extern int	sl_max_rows;
extern int	sl_max_calls;
extern int	sl_max_tokens_total;
extern int	sl_max_seed_rows;
extern int	sl_rows_per_call;
extern int	sl_max_tokens;
extern int	sl_max_response_kb;
extern double sl_temperature;
extern double sl_top_p;
extern int	sl_clusters;
extern int	sl_exemplars_per_cluster;
extern int	sl_summary_level;
extern double sl_oversample;
extern double sl_threshold;
extern int	sl_max_cluster_size;
extern int	sl_epochs;
extern int	sl_context_tokens;
extern bool sl_memorization_guard;
extern double sl_chars_per_token;
extern bool sl_max_completion_tokens;

/* ---- the source table, as the pipeline sees it (catalog.c) ---- */

/* How a column is treated by encodings and by stage 2. */
typedef enum SlColClass
{
	SL_CONTINUOUS,				/* ints, floats, numeric, dates, times */
	SL_CATEGORICAL				/* bool, text, enums, uuid, ... */
} SlColClass;

/* The JSON type the LLM is asked to write for a column. */
typedef enum SlJsonType
{
	SL_JSON_INTEGER,
	SL_JSON_NUMBER,
	SL_JSON_BOOLEAN,
	SL_JSON_STRING
} SlJsonType;

typedef struct SlColumn
{
	char	   *name;
	AttrNumber	attnum;			/* attribute number in the row type */
	Oid			typid;			/* declared type, possibly a domain */
	int32		typmod;
	Oid			basetypid;		/* typid with domains stripped */
	char	   *typname;		/* format_type_with_typemod() */
	int16		typlen;
	bool		typbyval;
	bool		notnull;
	char	   *comment;		/* COMMENT ON COLUMN, or NULL */
	SlJsonType	jtype;
	SlColClass	cls;
	int			nlabels;		/* enum labels, in sort order */
	char	  **labels;
	char	   *domain_checks;	/* CHECK text of the domain, or NULL */
	bool		excluded;		/* never sent to the LLM; filled locally */
	bool		generated;		/* GENERATED ALWAYS ... STORED: computed */
	FmgrInfo	infunc;			/* type input function */
	Oid			typioparam;
	FmgrInfo	outfunc;		/* type output function */
} SlColumn;

typedef struct SlTable
{
	Oid			relid;
	Oid			rowtype;
	char	   *nspname;
	char	   *relname;
	char	   *comment;		/* COMMENT ON TABLE, or NULL */
	TupleDesc	tupdesc;		/* the row type, dropped columns included */
	int			ncols;			/* live columns, in attribute order */
	SlColumn   *cols;
	int			nchecks;		/* table CHECK constraints */
	char	  **check_names;
	char	  **check_src;		/* pg_get_constraintdef() text */
	struct Bitmapset **check_attrs;	/* columns each mentions (attno offset
									 * by FirstLowInvalidHeapAttributeNumber) */
	int			label_col;		/* index into cols, or -1 */
	int			nexcluded;		/* columns with excluded set */
	int			nwritten;		/* columns the provider writes (sl_col_written) */
} SlTable;

/*
 * Does the provider (the LLM or the built-in generator) write this column?
 * Excluded columns are filled locally and generated ones computed; neither
 * is ever named in a request.
 */
static inline bool
sl_col_written(const SlColumn *col)
{
	return !col->excluded && !col->generated;
}

/*
 * A set of rows in column order (cols of an SlTable, not attnums).  Cells are
 * row-major: cell (r, c) is at r * ncols + c.  Every array lives in the
 * memory context that was current when the set was created.
 */
typedef struct SlRowSet
{
	int			nrows;
	int			ncols;
	int			cap;
	Datum	   *values;
	bool	   *isnull;
	char	  **text;			/* output text; NULL where isnull */
	double	   *num;			/* continuous columns: numeric value (may be
								 * NaN or +-Inf for floats); NaN elsewhere */
} SlRowSet;

#define SL_CELL(rs, r, c) ((size_t) (r) * (rs)->ncols + (c))

/* catalog.c */
extern Oid	sl_source_relid(Oid rowtype);
extern SlTable *sl_table_open(Oid rowtype, const char *label);
extern const char *sl_column_check_unsupported(Oid basetypid);
extern double sl_datum_to_double(const SlColumn *col, Datum d);

/* rowset.c */
extern void sl_rowset_append_shallow(SlRowSet *dst, const SlRowSet *src);
extern void sl_rowset_append_row(SlRowSet *dst, const SlRowSet *src, int r);
extern SlRowSet *sl_rowset_create(int ncols, int cap);
extern void sl_rowset_add(SlRowSet *rs, const SlTable *t, Datum *values,
						  bool *isnull);
extern uint64 sl_row_hash(const SlRowSet *rs, int r);
extern bool sl_rows_equal(const SlRowSet *a, int ra, const SlRowSet *b, int rb);

/* seeds.c */
extern SlRowSet *sl_seeds_read(SlTable *t, int max_rows, uint64 seed,
							   int64 *total_rows);

/* compare.c: qsort/bsearch comparators */
extern int	sl_cmp_double(const void *a, const void *b);
extern int	sl_cmp_int64(const void *a, const void *b);
extern int	sl_cmp_uint64(const void *a, const void *b);
extern int	sl_cmp_str(const void *a, const void *b);

/* limits.c: samplellm.max_memory */
extern int	sl_max_memory_kb;
extern int64 sl_limit_bytes(void);
extern void sl_limit_check(double bytes, const char *detail);
extern void sl_limit_check_context(MemoryContext cxt, const char *what);
extern double sl_row_bytes_typical(const SlTable *t);
extern double sl_row_bytes_measured(const SlTable *t, const SlRowSet *rs);
extern double sl_relation_rows_estimate(Oid relid);

/* random.c: every random choice derives from the user's seed */
extern uint64 sl_mix_seed(uint64 seed, uint64 stream);

#endif							/* SAMPLELLM_H */
