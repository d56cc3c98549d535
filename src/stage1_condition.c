/*-------------------------------------------------------------------------
 *
 * stage1_condition.c
 *	  The `condition` option: an SQL boolean expression over the source's
 *	  columns that every returned row satisfies.
 *
 * The text is parsed as an expression on its own (PL/pgSQL's expression
 * grammar), never spliced into another statement, then analysed against
 * the source relation like a CHECK constraint: it must be boolean, may not
 * contain subqueries, aggregates, window or set-returning functions, and may
 * not call volatile functions (nothing with side effects runs per row).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "utils/rel.h"

#include "stage1.h"

static void
bad_condition(const char *text, const char *why, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid condition \"%s\"", text),
			 errdetail("%s", why),
			 hint ? errhint("%s", hint) : 0));
}

static Expr *parse_condition(const SlTable *t, const char *text);

/*
 * Errors of the parser and of analysis point into the condition's text, not
 * into the statement the user typed: re-raise them without a cursor
 * position, naming the condition instead.
 */
Expr *
sl_condition_parse(const SlTable *t, const char *text)
{
	MemoryContext cxt = CurrentMemoryContext;
	Expr	   *volatile expr = NULL;

	PG_TRY();
	{
		expr = parse_condition(t, text);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		edata->cursorpos = 0;
		edata->internalpos = 0;
		edata->internalquery = NULL;
		if (edata->context == NULL)
			edata->context = psprintf("samplellm condition \"%s\"", text);
		ReThrowError(edata);
	}
	PG_END_TRY();
	return expr;
}

static Expr *
parse_condition(const SlTable *t, const char *text)
{
	List	   *raw;
	RawStmt    *rs;
	SelectStmt *sel;
	ResTarget  *target;
	ParseState *pstate;
	ParseNamespaceItem *nsitem;
	Relation	rel;
	Node	   *expr;

	raw = raw_parser(text, RAW_PARSE_PLPGSQL_EXPR);
	if (list_length(raw) != 1)
		bad_condition(text, "It must be one expression.", NULL);
	rs = linitial_node(RawStmt, raw);
	sel = (SelectStmt *) rs->stmt;
	if (!IsA(sel, SelectStmt) || list_length(sel->targetList) != 1 ||
		sel->fromClause != NIL || sel->whereClause != NULL ||
		sel->groupClause != NIL || sel->havingClause != NULL ||
		sel->windowClause != NIL || sel->sortClause != NIL ||
		sel->limitCount != NULL || sel->limitOffset != NULL ||
		sel->lockingClause != NIL || sel->distinctClause != NIL ||
		sel->withClause != NULL || sel->valuesLists != NIL ||
		sel->op != SETOP_NONE)
		bad_condition(text, "It must be one boolean expression over the source's columns, with no FROM, WHERE or other clauses.",
					  "Write e.g. 'clicked AND price BETWEEN 10 AND 50'.");
	target = linitial_node(ResTarget, sel->targetList);
	if (target->name != NULL)
		bad_condition(text, "It must not have an alias.", NULL);

	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = text;
	rel = relation_open(t->relid, AccessShareLock);
	nsitem = addRangeTableEntryForRelation(pstate, rel, AccessShareLock,
										   NULL, false, true);
	addNSItemToQuery(pstate, nsitem, false, true, true);
	expr = transformExpr(pstate, target->val, EXPR_KIND_WHERE);
	if (pstate->p_hasSubLinks)
		bad_condition(text, "It must not contain a subquery.", NULL);
	if (pstate->p_hasAggs || pstate->p_hasWindowFuncs)
		bad_condition(text, "It must not contain aggregate or window functions.", NULL);
	if (pstate->p_hasTargetSRFs || expression_returns_set(expr))
		bad_condition(text, "It must not contain set-returning functions.", NULL);
	expr = coerce_to_boolean(pstate, expr, "condition");
	assign_expr_collations(pstate, expr);
	if (contain_volatile_functions(expr))
		bad_condition(text, "It must not call volatile functions: it is evaluated once per candidate row.",
					  "Use immutable or stable functions only.");
	relation_close(rel, NoLock);
	free_parsestate(pstate);
	return (Expr *) expr;
}
