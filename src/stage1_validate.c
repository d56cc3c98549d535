/*-------------------------------------------------------------------------
 *
 * stage1_validate.c
 *	  Stage 1, step 5b: candidate rows checked against the table's rules.
 *
 * PostgreSQL 15 has no soft input errors, so each row is converted inside
 * an internal subtransaction (as PL/pgSQL does for EXCEPTION blocks): a
 * value the type's input function refuses rejects that row, not the
 * statement.  Structural checks (keys, JSON types, NOT NULL) run first
 * without one.  Query cancel and other non-data errors are re-thrown.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "mb/pg_wchar.h"
#include "nodes/nodes.h"
#include "rewrite/rewriteHandler.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"

#include "samplellm.h"
#include "stage1.h"

const char *const sl_reject_names[SL_REJ_COUNT] = {
	"not_an_object",
	"unknown_key",
	"missing_key",
	"duplicate_key",
	"wrong_type",
	"invalid_value",
	"not_null",
	"domain_check",
	"check_violation",
	"seed_copy",
	"condition"
};

typedef struct KeyEntry
{
	const char *name;
	int			col;
} KeyEntry;

struct SlValidator
{
	const SlTable *t;
	const SlRowSet *seeds;
	KeyEntry   *keys;			/* column names, sorted */
	uint64	   *seed_hashes;	/* sorted, for the memorization guard */
	int			nseed_hashes;
	int			nchecks;
	ExprState **checks;
	ExprState  *condition;		/* the caller's condition, or NULL */
	ExprState **generated;		/* per column: its generation expression */
	int			ngenerated;
	EState	   *estate;
	TupleTableSlot *slot;
	MemoryContext rowcxt;		/* reset for every row */
	const char **texts;			/* per column, this row */
	bool		texts_utf8;		/* from JSON (UTF-8), else server encoding */
	bool	   *present;
	Datum	   *values;			/* per column */
	bool	   *isnull;
	int64		rejected[SL_REJ_COUNT];
};

static int
cmp_key(const void *a, const void *b)
{
	return strcmp(((const KeyEntry *) a)->name, ((const KeyEntry *) b)->name);
}

SlValidator *
sl_validator_create(const SlTable *t, const SlRowSet *seeds)
{
	SlValidator *v = palloc0(sizeof(SlValidator));
	Relation	rel;
	int			c;
	int			r;

	v->t = t;
	v->seeds = seeds;
	v->keys = palloc(sizeof(KeyEntry) * t->ncols);
	for (c = 0; c < t->ncols; c++)
	{
		v->keys[c].name = t->cols[c].name;
		v->keys[c].col = c;
	}
	qsort(v->keys, t->ncols, sizeof(KeyEntry), cmp_key);

	/*
	 * The memorization guard protects rows that identify one real record:
	 * those that occur once in the seeds.  A row many real records share
	 * (all there is in a table of a few categorical columns) is not one.
	 */
	v->seed_hashes = palloc(sizeof(uint64) * Max(seeds->nrows, 1));
	for (r = 0; r < seeds->nrows; r++)
		v->seed_hashes[r] = sl_row_hash(seeds, r);
	qsort(v->seed_hashes, seeds->nrows, sizeof(uint64), sl_cmp_uint64);
	if (sl_memorization_guard)
	{
		int			m = 0;

		for (r = 0; r < seeds->nrows; r++)
		{
			bool		dup = (r > 0 && v->seed_hashes[r - 1] == v->seed_hashes[r]) ||
				(r + 1 < seeds->nrows && v->seed_hashes[r + 1] == v->seed_hashes[r]);

			if (!dup)
				v->seed_hashes[m++] = v->seed_hashes[r];
		}
		v->nseed_hashes = m;
	}

	v->texts = palloc(sizeof(char *) * t->ncols);
	v->present = palloc(sizeof(bool) * t->ncols);
	v->values = palloc(sizeof(Datum) * t->ncols);
	v->isnull = palloc(sizeof(bool) * t->ncols);
	v->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "samplellm row",
									  ALLOCSET_DEFAULT_SIZES);

	/* The table's CHECK constraints, evaluated on each candidate row. */
	v->estate = CreateExecutorState();
	v->slot = MakeSingleTupleTableSlot(t->tupdesc, &TTSOpsVirtual);
	rel = relation_open(t->relid, AccessShareLock);
	if (rel->rd_att->constr && rel->rd_att->constr->num_check > 0)
	{
		TupleConstr *constr = rel->rd_att->constr;
		int			i;

		v->checks = palloc(sizeof(ExprState *) * constr->num_check);
		for (i = 0; i < constr->num_check; i++)
		{
			Expr	   *e = stringToNode(constr->check[i].ccbin);

			v->checks[v->nchecks++] = ExecPrepareExpr(e, v->estate);
		}
	}
	/*
	 * Stored generated columns are computed from their expressions, as the
	 * executor does on insert: a value the table could never hold is never
	 * returned.
	 */
	v->generated = palloc0(sizeof(ExprState *) * t->ncols);
	for (c = 0; c < t->ncols; c++)
	{
		Node	   *e;

		if (!t->cols[c].generated)
			continue;
		e = build_column_default(rel, t->cols[c].attnum);
		if (e == NULL)
			elog(ERROR, "no generation expression found for column \"%s\"", t->cols[c].name);
		v->generated[c] = ExecPrepareExpr((Expr *) e, v->estate);
		v->ngenerated++;
	}
	relation_close(rel, NoLock);
	return v;
}

void
sl_validator_free(SlValidator *v)
{
	ExecDropSingleTupleTableSlot(v->slot);
	FreeExecutorState(v->estate);
	MemoryContextDelete(v->rowcxt);
}

const int64 *
sl_validator_rejected(const SlValidator *v)
{
	static const int64 none[SL_REJ_COUNT];

	/* A run that failed before validation started rejected nothing. */
	return v ? v->rejected : none;
}

static int
find_column(const SlValidator *v, const char *name)
{
	KeyEntry	key = {name, -1};
	KeyEntry   *hit = bsearch(&key, v->keys, v->t->ncols, sizeof(KeyEntry), cmp_key);

	return hit ? hit->col : -1;
}

/*
 * Excluded columns never reach the LLM: each gets the value of a seed row
 * picked by a hash of the row's other values, so the same row always gets
 * the same value whatever order answers arrive in.  This keeps the
 * column's distribution, not its relation to the other columns.
 */
static void
fill_excluded(SlValidator *v)
{
	const SlTable *t = v->t;
	uint64		h = 0x6a09e667f3bcc909ULL;
	MemoryContext old = MemoryContextSwitchTo(v->rowcxt);
	int			c;

	for (c = 0; c < t->ncols; c++)
		if (sl_col_written(&t->cols[c]) && v->texts[c])
			h = hash_combine64(h, hash_bytes_extended((const unsigned char *) v->texts[c],
													  strlen(v->texts[c]), c));
	for (c = 0; c < t->ncols; c++)
	{
		const char *s;

		if (!t->cols[c].excluded)
			continue;
		s = v->seeds->text[SL_CELL(v->seeds, hash_combine64(h, (uint64) c) % v->seeds->nrows, c)];
		/* The other texts are UTF-8 from JSON; convert_values expects that. */
		v->texts[c] = s ? pg_server_to_any(s, strlen(s), PG_UTF8) : NULL;
		v->present[c] = true;
	}
	MemoryContextSwitchTo(old);
}

/* Keys, JSON types and NOT NULL: no subtransaction needed. */
static SlReject
check_structure(SlValidator *v, const cJSON *row)
{
	const SlTable *t = v->t;
	const cJSON *item;
	int			c;

	if (!cJSON_IsObject(row))
		return SL_REJ_NOT_OBJECT;
	memset(v->present, 0, sizeof(bool) * t->ncols);
	for (item = row->child; item; item = item->next)
	{
		bool		bad;
		const char *text;

		c = item->string ? find_column(v, item->string) : -1;
		if (c < 0 || !sl_col_written(&t->cols[c]))
			return SL_REJ_UNKNOWN_KEY;
		if (v->present[c])
			return SL_REJ_DUPLICATE_KEY;
		v->present[c] = true;
		text = sl_json_scalar_text(item, &bad);
		if (bad)
			return SL_REJ_WRONG_TYPE;
		/* A JSON boolean is only ever right for a boolean column. */
		if (cJSON_IsBool(item) && t->cols[c].jtype != SL_JSON_BOOLEAN)
			return SL_REJ_WRONG_TYPE;
		v->texts[c] = text;
	}
	for (c = 0; c < t->ncols; c++)
	{
		if (t->cols[c].generated)
			v->texts[c] = NULL;
		if (!sl_col_written(&t->cols[c]))
			continue;
		if (!v->present[c])
			return SL_REJ_MISSING_KEY;
		if (v->texts[c] == NULL && t->cols[c].notnull)
			return SL_REJ_NOT_NULL;
	}
	if (t->nexcluded > 0)
		fill_excluded(v);
	return SL_REJ_COUNT;
}

static bool
is_seed_copy(const SlValidator *v, const SlRowSet *out, int r)
{
	uint64		h = sl_row_hash(out, r);
	uint64	   *hit = bsearch(&h, v->seed_hashes, v->nseed_hashes, sizeof(uint64), sl_cmp_uint64);
	int			s;

	if (hit == NULL)
		return false;
	/* Hash equality is a hint; confirm against the seed rows. */
	for (s = 0; s < v->seeds->nrows; s++)
		if (sl_rows_equal(v->seeds, s, out, r))
			return true;
	return false;
}

/*
 * Input functions and CHECK constraints, inside a subtransaction.  Returns
 * SL_REJ_COUNT when the row is valid, with v->values/isnull filled.
 */
static SlReject
convert_values(SlValidator *v)
{
	const SlTable *t = v->t;
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile SlReject result = SL_REJ_COUNT;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(v->rowcxt);
	PG_TRY();
	{
		TupleTableSlot *slot = v->slot;
		ExprContext *econtext;
		int			c;
		int			i;

		for (c = 0; c < t->ncols; c++)
		{
			const SlColumn *col = &t->cols[c];
			char	   *s = NULL;

			if (col->generated)
			{
				v->values[c] = (Datum) 0;
				v->isnull[c] = true;
				continue;
			}
			if (v->texts[c])
				s = v->texts_utf8 ?
					pg_any_to_server(v->texts[c], strlen(v->texts[c]), PG_UTF8) :
					(char *) v->texts[c];
			v->values[c] = InputFunctionCall((FmgrInfo *) &col->infunc, s,
											 col->typioparam, col->typmod);
			v->isnull[c] = (s == NULL);
		}
		if (v->nchecks > 0 || v->condition || v->ngenerated > 0)
		{
			ExecClearTuple(slot);
			memset(slot->tts_isnull, true, sizeof(bool) * t->tupdesc->natts);
			for (c = 0; c < t->ncols; c++)
			{
				int			a = t->cols[c].attnum - 1;

				slot->tts_values[a] = v->values[c];
				slot->tts_isnull[a] = v->isnull[c];
			}
			ExecStoreVirtualTuple(slot);
			econtext = GetPerTupleExprContext(v->estate);
			econtext->ecxt_scantuple = slot;
			/* generation expressions see only the other columns */
			for (c = 0; c < t->ncols && v->ngenerated > 0; c++)
			{
				const SlColumn *col = &t->cols[c];
				bool		isnull;
				Datum		d;

				if (!col->generated)
					continue;
				d = ExecEvalExpr(v->generated[c], econtext, &isnull);
				v->values[c] = isnull ? (Datum) 0 : datumCopy(d, col->typbyval, col->typlen);
				v->isnull[c] = isnull;
				if (isnull && col->notnull)
					result = SL_REJ_NOT_NULL;
			}
			for (c = 0; c < t->ncols && v->ngenerated > 0; c++)
			{
				int			a = t->cols[c].attnum - 1;

				slot->tts_values[a] = v->values[c];
				slot->tts_isnull[a] = v->isnull[c];
			}
			for (i = 0; i < v->nchecks && result == SL_REJ_COUNT; i++)
			{
				if (!ExecCheck(v->checks[i], econtext))
				{
					result = SL_REJ_CHECK;
					break;
				}
			}
			/* Unlike a CHECK, the condition must be true, not just not false. */
			if (result == SL_REJ_COUNT && v->condition &&
				!ExecQual(v->condition, econtext))
				result = SL_REJ_CONDITION;
			ResetExprContext(econtext);
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(v->rowcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;

		/*
		 * Only what a bad value causes rejects the row: data exceptions
		 * (class 22: input syntax, ranges, lengths, encodings, a division
		 * by zero in a CHECK) and integrity violations (class 23: domains).
		 * Cancel, lock, resource and internal errors end the statement.
		 */
		switch (edata->sqlerrcode)
		{
			case ERRCODE_CHECK_VIOLATION:
				result = SL_REJ_DOMAIN;
				break;
			case ERRCODE_NOT_NULL_VIOLATION:
				result = SL_REJ_NOT_NULL;
				break;
			default:
				if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION &&
					ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION)
					ReThrowError(edata);
				result = SL_REJ_INVALID_VALUE;
				break;
		}
	}
	PG_END_TRY();
	return result;
}

static bool
finish_row(SlValidator *v, SlReject why, SlRowSet *out)
{
	if (why == SL_REJ_COUNT)
		why = convert_values(v);
	if (why == SL_REJ_COUNT)
	{
		sl_rowset_add(out, v->t, v->values, v->isnull);
		if (!is_seed_copy(v, out, out->nrows - 1))
			return true;
		out->nrows--;
		why = SL_REJ_SEED_COPY;
	}
	v->rejected[why]++;
	return false;
}

bool
sl_validate_row(SlValidator *v, const cJSON *row, SlRowSet *out)
{
	MemoryContextReset(v->rowcxt);
	v->texts_utf8 = true;
	return finish_row(v, check_structure(v, row), out);
}

bool
sl_validate_texts(SlValidator *v, const char *const *texts, SlRowSet *out)
{
	int			c;

	MemoryContextReset(v->rowcxt);
	v->texts_utf8 = false;
	for (c = 0; c < v->t->ncols; c++)
	{
		if (v->t->cols[c].generated)
		{
			v->texts[c] = NULL;
			continue;
		}
		v->texts[c] = texts[c];
		if (texts[c] == NULL && v->t->cols[c].notnull)
			return finish_row(v, SL_REJ_NOT_NULL, out);
	}
	return finish_row(v, SL_REJ_COUNT, out);
}

void
sl_validator_set_condition(SlValidator *v, Expr *cond)
{
	v->condition = ExecPrepareQual(list_make1(cond), v->estate);
}

/*
 * Evaluates the condition on a row already typed (a seed), outside any
 * subtransaction: the seeds passed their own table's rules, and an error
 * here (say, a division by zero in the condition) is the caller's to see.
 */
bool
sl_validator_matches(SlValidator *v, const SlRowSet *rs, int r)
{
	TupleTableSlot *slot = v->slot;
	ExprContext *econtext = GetPerTupleExprContext(v->estate);
	bool		ok;
	int			c;

	if (v->condition == NULL)
		return true;
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * v->t->tupdesc->natts);
	for (c = 0; c < v->t->ncols; c++)
	{
		int			a = v->t->cols[c].attnum - 1;

		slot->tts_values[a] = rs->values[SL_CELL(rs, r, c)];
		slot->tts_isnull[a] = rs->isnull[SL_CELL(rs, r, c)];
	}
	ExecStoreVirtualTuple(slot);
	econtext->ecxt_scantuple = slot;
	ok = ExecQual(v->condition, econtext);
	ResetExprContext(econtext);
	return ok;
}
