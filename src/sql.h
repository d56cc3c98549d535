/*-------------------------------------------------------------------------
 *
 * sql.h
 *	  The layer of SQL functions (sql_*.c): a run under the ledger with its
 *	  rows handed to an emitter (sql_generate.c), the INSERT that receives
 *	  them (sql_insert.c), related tables (sql_related.c), estimates and
 *	  interactions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_SQL_H
#define SAMPLELLM_SQL_H

#include "access/tupdesc.h"

#include "run.h"

/* Receives the chosen rows of a finished run, in order. */
typedef struct SlEmitter
{
	void		(*begin) (void *arg);
	void		(*row) (void *arg, const SlRun *run, Datum *values, bool *isnull);
	void		(*end) (void *arg);
	void		(*prepared) (void *arg, SlRun *run);	/* after sl_run_prepare, or NULL */
	void	   *arg;
	const bool *assign_skip;	/* per column: the target assigns it, or NULL */
} SlEmitter;

/* sql_generate.c */
extern int64 sl_sql_run_recorded(MemoryContext parent, Oid rowtype, const SlRunOptions *opt,
								 const char *target, const char *idem_key,
								 const SlEmitter *emit);

/* sql_insert.c */
typedef struct SlInsert SlInsert;

extern void sl_sql_check_source(Oid source);
extern SlInsert *sl_insert_plan(Oid source, Oid target, bool returning);
extern void sl_insert_emitter(SlInsert *ins, SlEmitter *em);
/* With returning: the rows as inserted, per target attribute, as text. */
extern char ***sl_insert_returned(const SlInsert *ins, int *nrows, TupleDesc *desc);

#endif							/* SAMPLELLM_SQL_H */
