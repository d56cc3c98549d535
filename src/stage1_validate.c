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

#include "access/genam.h"
#include "access/relation.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
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
	"condition",
	"unknown_reference",
	"key_in_table",
	"key_repeated"
};

/* A natural key, and how to look a row's values up in its index. */
typedef struct KeyProbe
{
	const SlKey *key;
	Relation	index;
	RegProcedure *procs;		/* btree equality of each index column */
	Oid		   *collations;
} KeyProbe;

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
	bool	   *informative;	/* columns the memorization guard compares */
	SlSynth    *synth;			/* values made locally (excluded columns) */
	SlRefs	   *refs;			/* foreign keys, or NULL */
	SlRefSlots *slots;			/* the references of the answer in hand */
	int			nprobes;		/* natural keys, probed in the table */
	KeyProbe   *probes;
	Relation	heap;			/* the source, for the probes */
	TupleTableSlot *probe_slot;
};

static void open_probes(SlValidator *v);

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
	v->informative = palloc(sizeof(bool) * Max(t->ncols, 1));
	for (c = 0; c < t->ncols; c++)
		v->informative[c] = sl_col_informative(&t->cols[c]);
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
		v->seed_hashes[r] = sl_row_hash(seeds, r, v->informative);
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
	open_probes(v);
	return v;
}

void
sl_validator_free(SlValidator *v)
{
	int			p;

	for (p = 0; p < v->nprobes; p++)
		index_close(v->probes[p].index, AccessShareLock);
	if (v->heap)
	{
		ExecDropSingleTupleTableSlot(v->probe_slot);
		table_close(v->heap, AccessShareLock);
	}
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
 * The columns no provider writes for this row: excluded ones (synthetic
 * values, stage1_synth.c, or, with samplellm.excluded_values =
 * 'copy_real_values', a seed row's value), the built-in generator's
 * natural keys (synthetic too), and references the provider does not write
 * (stage1_refs.c).  Each draw is seeded by a hash of the row's other
 * values, so the same row gets the same values whatever order answers
 * arrive in.
 */
static void
fill_local(SlValidator *v, bool all_refs)
{
	const SlTable *t = v->t;
	uint64		h = 0x6a09e667f3bcc909ULL;
	MemoryContext old = MemoryContextSwitchTo(v->rowcxt);
	int			c;

	for (c = 0; c < t->ncols; c++)
		if (sl_col_written(&t->cols[c]) && !sl_synth_active(v->synth, c) && v->texts[c])
			h = hash_combine64(h, hash_bytes_extended((const unsigned char *) v->texts[c],
													  strlen(v->texts[c]), c));
	if (v->refs)
	{
		pg_prng_state rng;
		const char **server = palloc(sizeof(char *) * t->ncols);

		memset(server, 0, sizeof(char *) * t->ncols);
		sl_stream_init(&rng, h, SL_STREAM_BUILTIN_REFS, 0);
		sl_refs_fill_texts(v->refs, &rng, all_refs, server);
		for (c = 0; c < t->ncols; c++)
		{
			bool		set = false;
			int			f;
			int			i;

			/* which columns the refs just set: those of filled foreign keys */
			for (f = 0; f < t->nfkeys && !set; f++)
			{
				bool		shown = true;

				for (i = 0; i < t->fkeys[f].ncols; i++)
					shown &= !t->cols[t->fkeys[f].cols[i]].excluded;
				if (!all_refs && shown)
					continue;
				for (i = 0; i < t->fkeys[f].ncols; i++)
					set |= (t->fkeys[f].cols[i] == c);
			}
			if (!set)
				continue;
			v->texts[c] = server[c] && v->texts_utf8 ?
				pg_server_to_any(server[c], strlen(server[c]), PG_UTF8) : server[c];
			v->present[c] = true;
		}
	}
	for (c = 0; c < t->ncols; c++)
	{
		const char *s;

		if (sl_synth_active(v->synth, c))
			s = sl_synth_value(v->synth, c, h, 0);
		else if (t->cols[c].excluded && !(t->cols[c].roles & SL_ROLE_FOREIGN))
			s = v->seeds->text[SL_CELL(v->seeds, hash_combine64(h, (uint64) c) % v->seeds->nrows, c)];
		else
			continue;
		/* The other texts are UTF-8 from JSON; convert_values expects that. */
		v->texts[c] = s && v->texts_utf8 ? pg_server_to_any(s, strlen(s), PG_UTF8) : s;
		v->present[c] = true;
	}
	MemoryContextSwitchTo(old);
}

/* Does the table already hold row r's value of a natural key? */
static bool
key_in_table(SlValidator *v, const SlRowSet *rs, int r)
{
	int			p;

	for (p = 0; p < v->nprobes; p++)
	{
		const KeyProbe *kp = &v->probes[p];
		const SlKey *key = kp->key;
		ScanKeyData sk[INDEX_MAX_KEYS];
		IndexScanDesc scan;
		bool		found;
		bool		skip = false;
		int			i;

		for (i = 0; i < key->ncols; i++)
		{
			size_t		cell = SL_CELL(rs, r, key->cols[i]);

			if (rs->isnull[cell])
			{
				if (!key->nulls_not_distinct)
					skip = true;	/* NULLs are distinct: no conflict */
				ScanKeyEntryInitialize(&sk[i], SK_ISNULL | SK_SEARCHNULL, i + 1,
									   InvalidStrategy, InvalidOid, InvalidOid,
									   InvalidOid, (Datum) 0);
			}
			else
			{
				ScanKeyInit(&sk[i], i + 1, BTEqualStrategyNumber, kp->procs[i],
							rs->values[cell]);
				sk[i].sk_collation = kp->collations[i];
			}
		}
		if (skip)
			continue;
		scan = index_beginscan(v->heap, kp->index, GetActiveSnapshot(), key->ncols, 0);
		index_rescan(scan, sk, key->ncols, NULL, 0);
		found = index_getnext_slot(scan, ForwardScanDirection, v->probe_slot);
		index_endscan(scan);
		ExecClearTuple(v->probe_slot);
		if (found)
			return true;
	}
	return false;
}

/* Opens the indexes of the natural keys (those no sequence assigns). */
static void
open_probes(SlValidator *v)
{
	const SlTable *t = v->t;
	int			k;

	v->probes = palloc0(sizeof(KeyProbe) * Max(t->nkeys, 1));
	for (k = 0; k < t->nkeys; k++)
	{
		const SlKey *key = &t->keys[k];
		KeyProbe   *kp;
		int			i;

		if (!key->checked || !OidIsValid(key->indexid))
			continue;
		if (v->heap == NULL)
		{
			v->heap = table_open(t->relid, AccessShareLock);
			v->probe_slot = table_slot_create(v->heap, NULL);
		}
		kp = &v->probes[v->nprobes++];
		kp->key = key;
		kp->index = index_open(key->indexid, AccessShareLock);
		kp->procs = palloc(sizeof(RegProcedure) * key->ncols);
		kp->collations = palloc(sizeof(Oid) * key->ncols);
		for (i = 0; i < key->ncols; i++)
		{
			Oid			opfamily = kp->index->rd_opfamily[i];
			Oid			type = kp->index->rd_opcintype[i];
			Oid			op = get_opfamily_member(opfamily, type, type, BTEqualStrategyNumber);

			if (!OidIsValid(op))
				elog(ERROR, "samplellm: no equality operator for index %s", key->name);
			kp->procs[i] = get_opcode(op);
			kp->collations[i] = kp->index->rd_indcollation[i];
		}
	}
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
		if (t->cols[c].generated || t->cols[c].assigned)
			v->texts[c] = NULL;
		if (!sl_col_written(&t->cols[c]))
			continue;
		if (!v->present[c])
			return SL_REJ_MISSING_KEY;
		if (v->texts[c] == NULL && t->cols[c].notnull)
			return SL_REJ_NOT_NULL;
	}
	fill_local(v, false);
	return SL_REJ_COUNT;
}

static bool
is_seed_copy(const SlValidator *v, const SlRowSet *out, int r)
{
	uint64		h = sl_row_hash(out, r, v->informative);
	uint64	   *hit = bsearch(&h, v->seed_hashes, v->nseed_hashes, sizeof(uint64), sl_cmp_uint64);
	int			s;

	if (hit == NULL)
		return false;
	/* Hash equality is a hint; confirm against the seed rows. */
	for (s = 0; s < v->seeds->nrows; s++)
		if (sl_rows_equal(v->seeds, s, out, r, v->informative))
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

			if (col->generated || col->assigned)
			{
				/* computed below, or assigned when returned */
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
		if (is_seed_copy(v, out, out->nrows - 1))
			why = SL_REJ_SEED_COPY;
		else if (v->refs && !sl_refs_accept(v->refs, v->slots, out, out->nrows - 1))
			why = SL_REJ_REFERENCE;
		else if (v->nprobes > 0 && key_in_table(v, out, out->nrows - 1))
			why = SL_REJ_KEY_IN_TABLE;
		else
			return true;
		out->nrows--;
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
		v->texts[c] = (v->t->cols[c].generated || v->t->cols[c].assigned) ? NULL : texts[c];
	/* the built-in generator writes no reference and no synthetic column */
	fill_local(v, true);
	for (c = 0; c < v->t->ncols; c++)
		if (v->texts[c] == NULL && v->t->cols[c].notnull && sl_col_written(&v->t->cols[c]))
			return finish_row(v, SL_REJ_NOT_NULL, out);
	return finish_row(v, SL_REJ_COUNT, out);
}

void
sl_validator_set_synth(SlValidator *v, SlSynth *synth)
{
	v->synth = synth;
}

void
sl_validator_set_refs(SlValidator *v, SlRefs *refs)
{
	v->refs = refs;
}

void
sl_validator_set_slots(SlValidator *v, SlRefSlots *slots)
{
	v->slots = slots;
}

void
sl_validator_count(SlValidator *v, SlReject why)
{
	v->rejected[why]++;
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
