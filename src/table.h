/*-------------------------------------------------------------------------
 *
 * table.h
 *	  The source table as the pipeline sees it, and row sets (table_*.c):
 *	  columns and their rules from the catalog (table_catalog.c), row sets
 *	  (table_rowset.c), the seed sample (table_seeds.c), and a numeric
 *	  encoding of rows for distances (table_encode.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_TABLE_H
#define SAMPLELLM_TABLE_H

#include "access/attnum.h"
#include "access/tupdesc.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

/* A column's roles, from the catalog (table_keys.c); a bit set. */
#define SL_ROLE_PRIMARY		0x01	/* in the primary key */
#define SL_ROLE_UNIQUE		0x02	/* in a unique constraint or index */
#define SL_ROLE_IDENTITY	0x04	/* GENERATED ... AS IDENTITY */
#define SL_ROLE_SERIAL		0x08	/* DEFAULT nextval(...) */
#define SL_ROLE_GENERATED	0x10	/* GENERATED ALWAYS AS (...) STORED */
#define SL_ROLE_FOREIGN		0x20	/* in a foreign key */

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
	double		(*to_double) (Datum d);	/* continuous: the value as a number */
	int			nlabels;		/* enum labels, in sort order */
	char	  **labels;
	char	   *domain_checks;	/* CHECK text of the domain, or NULL */
	bool		has_lo;			/* integer bounds the table's CHECKs imply */
	bool		has_hi;
	int64		lo;
	int64		hi;
	bool		excluded;		/* never sent to the LLM; filled locally */
	bool		generated;		/* GENERATED ALWAYS ... STORED: computed */
	int			roles;			/* SL_ROLE_* */
	Oid			seqid;			/* identity or serial: its sequence */
	bool		assigned;		/* identity or serial: the sequence assigns it */
	bool		identity_always;	/* GENERATED ALWAYS AS IDENTITY */
	bool		unique_alone;	/* a natural unique key by itself: every value new */
	FmgrInfo	infunc;			/* type input function */
	Oid			typioparam;
	FmgrInfo	outfunc;		/* type output function */
} SlColumn;

/* A primary or unique key (constraint or unique index). */
typedef struct SlKey
{
	char	   *name;
	int			ncols;
	int		   *cols;			/* indexes into t->cols */
	Oid			indexid;
	bool		primary;
	bool		nulls_not_distinct;
	bool		checked;		/* no column assigned or generated: a natural
								 * key, whose values samplellm must keep new */
} SlKey;

/* A foreign key of the table. */
typedef struct SlForeignKey
{
	char	   *name;
	int			ncols;
	int		   *cols;			/* the child's columns, indexes into t->cols */
	Oid			parent;
	AttrNumber *parent_attnums; /* the referenced columns */
	Oid		   *eqops;			/* parent = child equality operators */
	bool		nullable;		/* some column may be NULL */
	bool		self;			/* references its own table */
} SlForeignKey;

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
	int			nkeys;			/* primary and unique keys */
	SlKey	   *keys;
	int			nfkeys;
	SlForeignKey *fkeys;
} SlTable;

/*
 * Does the provider (the LLM or the built-in generator) write this column?
 * Excluded columns are filled locally and generated ones computed; neither
 * is ever named in a request.
 */
static inline bool
sl_col_written(const SlColumn *col)
{
	return !col->excluded && !col->generated && !col->assigned;
}

/*
 * Does the column carry what the rows are like?  Stage 2's fields and the
 * memorization guard use these: not excluded or assigned columns (their
 * candidate values are not the provider's), not a natural unique key
 * alone (every new value is unseen by construction).
 */
static inline bool
sl_col_informative(const SlColumn *col)
{
	return !col->excluded && !col->assigned && !col->unique_alone;
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

/* table_catalog.c */
extern Oid	sl_source_relid(Oid rowtype);
extern SlTable *sl_table_open(Oid rowtype, const char *label);
extern const char *sl_column_check_unsupported(Oid basetypid);
extern double sl_datum_to_double(const SlColumn *col, Datum d);

/* table_keys.c */
extern void sl_table_load_keys(SlTable *t);
extern Oid	sl_column_sequence(Oid relid, AttrNumber attnum);
extern void sl_table_append_roles(StringInfo buf, const SlTable *t);
extern void sl_table_check_keys(const SlTable *t, int n, double existing_rows);
extern char *sl_qualified_operator(Oid opno);	/* OPERATOR(schema.name) */
extern void sl_table_assign_keys(const SlTable *t, Datum *values, bool *isnull,
								 const bool *skip);

/* table_rowset.c */
extern SlRowSet *sl_rowset_create(int ncols, int cap);
extern void sl_rowset_add(SlRowSet *rs, const SlTable *t, Datum *values,
						  bool *isnull);
extern void sl_rowset_append_shallow(SlRowSet *dst, const SlRowSet *src);
extern void sl_rowset_append_row(SlRowSet *dst, const SlRowSet *src, int r);
/* Over the columns where mask is true (all when mask is NULL). */
extern uint64 sl_row_hash(const SlRowSet *rs, int r, const bool *mask);
extern bool sl_rows_equal(const SlRowSet *a, int ra, const SlRowSet *b, int rb,
						  const bool *mask);

/* table_seeds.c */
extern SlRowSet *sl_seeds_read(SlTable *t, int max_rows, uint64 seed,
							   int64 *total_rows);
extern void sl_seeds_require_rows(const SlTable *t, const SlRowSet *seeds);

/*
 * table_encode.c: a dense row-major matrix (nrows x dim) encoding a row
 * set: continuous columns standardized on the reference set (plus a 0/1
 * "is NULL" indicator when the reference has NULLs; NaN/Inf mapped to the
 * indicator too), categorical columns one-hot over their top categories
 * plus "other" and "NULL".  Learned on one row set, it may encode others.
 */
typedef struct SlEncoder SlEncoder;

extern SlEncoder *sl_encoder_fit(const SlTable *t, const SlRowSet *ref,
								 int max_categories);
extern int	sl_encoder_dim(const SlEncoder *enc);
extern double *sl_encoder_apply(const SlEncoder *enc, const SlRowSet *rs);

#endif							/* SAMPLELLM_TABLE_H */
