/*-------------------------------------------------------------------------
 *
 * stage1.h
 *	  Stage 1 (stage1_*.c): diverse exemplars (stage1_exemplars.c), the
 *	  prompt (stage1_prompt.c), the condition (stage1_condition.c), groups
 *	  and quotas (stage1_groups.c), validation of candidate rows
 *	  (stage1_validate.c), the candidate pool both providers fill
 *	  (stage1_pool.c), and the providers: an OpenAI-compatible LLM
 *	  (stage1_llm.c) or the built-in generator (stage1_builtin.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_STAGE1_H
#define SAMPLELLM_STAGE1_H

#include "lib/stringinfo.h"
#include "nodes/primnodes.h"

#include "llm.h"
#include "table.h"
#include "util.h"

/* ---- stage1_exemplars.c ---- */

/*
 * The seed rows split into k clusters.  members[j] lists the seed row
 * numbers of cluster j (nmembers[j] of them); empty clusters are dropped, so
 * k may be smaller than asked.
 */
typedef struct SlExemplarPlan
{
	int			k;
	int		   *nmembers;
	int		  **members;
	int		   *cluster_of;		/* per seed row */
} SlExemplarPlan;

/*
 * Encodes the rows (table_encode.c: standardized numerics, one-hot top categories
 * plus "other", NULL as its own value) and clusters them with seeded
 * k-means++.  k is clamped to the number of distinct encoded rows.
 */
extern SlExemplarPlan *sl_exemplars_plan(const SlTable *t, const SlRowSet *seeds,
										 int k, uint64 seed);

/*
 * Draws up to per_cluster distinct rows from every cluster, afresh for each
 * call (a cluster with fewer rows gives what it has).  Writes seed row numbers
 * to out (room for k * per_cluster) and returns how many were written.
 */
extern int	sl_exemplars_draw(const SlExemplarPlan *plan, int per_cluster,
							  pg_prng_state *rng, int *out);

/* ---- stage1_prompt.c ---- */

/* Bump when the prompt text changes: it is part of every run's provenance. */
#define SL_PROMPT_VERSION "cot-1"

typedef struct SlPrompt
{
	const SlTable *table;
	const SlRowSet *seeds;
	char	   *system;			/* fixed instructions, first for prefix caches */
	char	   *description;	/* the table, from the catalog and the seeds */
	char	   *schema;			/* JSON Schema of the answer */
	char	   *schema_bounded; /* the same with grammar bounds */
	int			reasoning_tokens;	/* budget of the reasoning, 0 = none */
	double		out_row_tokens; /* one answer row */
	char	   *exemplar_header;	/* JSON array of column names */
	char	   *instructions;	/* the caller's instruction, escaped, or NULL */
	int			rows_per_call;
	int			max_tokens;
	int			max_exemplars;	/* per request, after the context budget */
	bool		stats_dropped;	/* the budget left no room for seed statistics */
	int			est_prompt_tokens;	/* estimate with max_exemplars exemplars */
	double		out_row_chars;	/* one answer row as JSON, on average */
} SlPrompt;

/*
 * Builds the parts of every request.  The prompt (with nexemplars exemplars)
 * plus max_tokens must fit context_tokens: if not, the seed statistics are
 * left out of the description, then fewer exemplars are sent, then
 * max_tokens shrinks; a table too wide even for that is an error.
 */
extern SlPrompt *sl_prompt_create(const SlTable *t, const SlRowSet *seeds,
								  int rows_per_call, int max_tokens,
								  int nexemplars, int context_tokens,
								  const char *condition, const char *instructions);

/*
 * The JSON body of one chat-completion request asking for nrows rows, with
 * the given seed rows as exemplars.  Without the schema, the answer format
 * is only described in the prompt (for servers that reject response_format).
 */
extern char *sl_prompt_body(const SlPrompt *p, const SlRowSet *ex_rows,
							const int *exemplars, int nex, int nrows,
							const char *instruction, const char *references,
							int64 request_seed, int flags);

/* Appends data or catalog text as a JSON string that cannot break out. */
extern void sl_append_data_text(StringInfo buf, const char *s);

/* Appends a cell as a JSON value of the column's JSON type. */
extern void sl_append_json_value(StringInfo buf, const SlColumn *col,
								 const char *text);

/* ---- stage1_condition.c ---- */

/*
 * Parses and checks the condition against the source relation; the result
 * refers to the row's columns as Vars of range table entry 1, like a CHECK
 * constraint, so it is evaluated on the same slot.
 */
extern Expr *sl_condition_parse(const SlTable *t, const char *text);

/* ---- stage1_synth.c: values of a column's shape, none of them real ---- */

typedef struct SlSynth SlSynth;

extern SlSynth *sl_synth_create(const SlTable *t, const SlRowSet *seeds, const bool *which);
extern bool sl_synth_active(const SlSynth *s, int c);
extern const char *sl_synth_value(const SlSynth *s, int c, uint64 rowhash, int attempt);
extern bool sl_synth_is_real(const SlSynth *s, int c, const char *text);

/* ---- stage1_refs.c: foreign keys, their distribution and parents ---- */

typedef struct SlRefs SlRefs;

/* The references of one request: per row asked for, per foreign key. */
typedef struct SlRefSlots
{
	int			nrows;
	int			nkeys;
	int		   *tuple;			/* nrows x nkeys: a reference, -1 for NULL */
	bool	   *used;			/* per row: taken by an answer row */
} SlRefSlots;

extern SlRefs *sl_refs_create(const SlTable *t, const SlRowSet *seeds,
							  const char *const *exclude, int nexclude);
extern bool sl_refs_any_shown(const SlRefs *refs);
extern SlRefSlots *sl_refs_draw(const SlRefs *refs, int nrows, uint64 request,
								pg_prng_state *rng);
extern void sl_refs_replace(SlRefs *refs, int f, int ntuples, char ***values,
							char **contexts, const double *weights,
							const int *cycle_counts);
extern int	sl_refs_tuple_of_row(const SlRefs *refs, int f, const SlRowSet *rs, int r);
extern void sl_refs_append_prompt(StringInfo buf, const SlRefs *refs, const SlRefSlots *s);
extern bool sl_refs_accept(const SlRefs *refs, SlRefSlots *s, const SlRowSet *rs, int r);
extern void sl_refs_fill_texts(const SlRefs *refs, pg_prng_state *rng, bool all,
							   const char **texts);
extern void sl_refs_append_json(StringInfo buf, const SlRefs *refs);

/* ---- stage1_validate.c ---- */

/* Why a candidate row was rejected.  Keep sl_reject_names in step. */
typedef enum SlReject
{
	SL_REJ_NOT_OBJECT = 0,
	SL_REJ_UNKNOWN_KEY,
	SL_REJ_MISSING_KEY,
	SL_REJ_DUPLICATE_KEY,
	SL_REJ_WRONG_TYPE,
	SL_REJ_INVALID_VALUE,
	SL_REJ_NOT_NULL,
	SL_REJ_DOMAIN,
	SL_REJ_CHECK,
	SL_REJ_SEED_COPY,
	SL_REJ_CONDITION,
	SL_REJ_REFERENCE,			/* a foreign key value the request did not give */
	SL_REJ_KEY_IN_TABLE,		/* a natural key value the table has */
	SL_REJ_KEY_REPEATED,		/* one an earlier candidate has */
	SL_REJ_COUNT
} SlReject;

extern const char *const sl_reject_names[SL_REJ_COUNT];

typedef struct SlValidator SlValidator;

extern SlValidator *sl_validator_create(const SlTable *t, const SlRowSet *seeds);

/*
 * Converts one JSON row with the columns' own input functions and typmods,
 * checks NOT NULL, domains, enum labels and the table's CHECK constraints,
 * and refuses copies of seed rows.  A valid row is appended to out (whose
 * memory context must be current) and true returned; otherwise the reason
 * is counted in rejected[] and false returned.  Cancel still raises.
 */
extern bool sl_validate_row(SlValidator *v, const cJSON *row, SlRowSet *out);
/*
 * The same for a row given as one text per column (NULL for SQL NULL), in
 * the column order of the table, e.g. from the built-in generator.
 */
extern bool sl_validate_texts(SlValidator *v, const char *const *texts, SlRowSet *out);
extern const int64 *sl_validator_rejected(const SlValidator *v);

/* Values made locally (excluded columns, the built-in generator's keys). */
extern void sl_validator_set_synth(SlValidator *v, SlSynth *synth);
/* Foreign keys; and, per answer of an LLM request, its references. */
extern void sl_validator_set_refs(SlValidator *v, SlRefs *refs);
extern void sl_validator_set_slots(SlValidator *v, SlRefSlots *slots);
/* A rejection found outside a row's validation (the pool's repeated keys). */
extern void sl_validator_count(SlValidator *v, SlReject why);

/* Candidates must also satisfy cond (from sl_condition_parse). */
extern void sl_validator_set_condition(SlValidator *v, Expr *cond);
/* Does row r of rs (e.g. a seed) satisfy the condition? */
extern bool sl_validator_matches(SlValidator *v, const SlRowSet *rs, int r);
extern void sl_validator_free(SlValidator *v);

/* ---- stage1_groups.c: per_group quotas; no quota is one group ---- */

/*
 * A group: the rows of one label value (per_group), of the label values
 * per_group does not list ("rest"), or, without per_group, every row.
 * Each group has requests of its own, numbered 0, 1, 2, ...
 */
typedef struct SlGroup
{
	char	   *label;			/* canonical label text; NULL: rest or all */
	bool		rest;			/* the label values not listed */
	int			quota;			/* rows returned */
	int			target;			/* valid candidates wanted */
	SlRowSet   *seeds;			/* its real rows: exemplars, the copula */
	SlExemplarPlan *plan;		/* exemplar clusters of those (LLM) */
	char	   *instruction;	/* what its requests ask for, or NULL */
} SlGroup;

typedef struct SlGroups
{
	int			ngroups;
	SlGroup    *groups;
	int			label_col;		/* the label, when per_group is given; else -1 */
} SlGroups;

extern SlGroups *sl_groups_create(const SlTable *t, const SlRowSet *target_rows,
								  int n, double oversample, const char *per_group,
								  bool conditioned);
/* The group a row counts for, or -1 (a label value no group takes). */
extern int	sl_groups_of_row(const SlGroups *gs, const SlRowSet *rs, int r);
extern void sl_groups_plan_exemplars(SlGroups *gs, const SlTable *t, int k, uint64 seed);

/* ---- stage1_pool.c: the candidates, owned by one place ---- */

/*
 * Candidates by (group, request): a request's valid rows, once answered.
 * A group's answered prefix (its requests 0..k-1 all answered, up to the
 * first that takes its own-label rows to its target) is a function of the
 * answers alone, so the pool built from the prefixes does not depend on
 * which answer arrived first, whatever the concurrency.
 */
typedef struct SlPool SlPool;

extern SlPool *sl_pool_create(const SlTable *t, const SlGroups *gs,
							  SlValidator *validator);
/*
 * Related tables: the one group's rows are also counted by the new parent
 * row their foreign key fk references (stratum), and the group is full
 * only when every stratum has its target; the draw then takes quota[s] of
 * each.
 */
typedef struct SlStrata
{
	const SlRefs *refs;
	int			fk;
	int			nstrata;
	int		   *quota;			/* children of each new parent row */
	int		   *target;			/* candidates wanted of each */
} SlStrata;

extern void sl_pool_set_strata(SlPool *p, const SlStrata *strata);

/* The number of group g's next request. */
extern int	sl_pool_issue(SlPool *p, int g);
/* Request k of group g answered with these valid rows (kept, not copied). */
extern void sl_pool_put(SlPool *p, int g, int k, SlRowSet *rows);
extern int	sl_pool_issued(const SlPool *p, int g);
extern int	sl_pool_answers(const SlPool *p, int g);
extern int64 sl_pool_have(const SlPool *p, int g);	/* in the prefix */
extern int64 sl_pool_have_all(const SlPool *p, int g);	/* in every answer */
extern int64 sl_pool_lacking(const SlPool *p, int g);	/* 0 once full */
extern int64 sl_pool_valid(const SlPool *p);	/* valid rows of every answer */
extern bool sl_pool_full(const SlPool *p);	/* every prefix at its target */
/* A group owed more, with per_answer own rows expected of each request in
 * flight: the neediest, or -1. */
extern int	sl_pool_next_group(const SlPool *p, double per_answer);
/* A group whose min_answers answers gave none of its rows, or -1. */
extern int	sl_pool_collapsed_group(const SlPool *p, int min_answers);
/* The pool: the groups' prefixes in order; *group_of per row (-1: none). */
extern SlRowSet *sl_pool_rows(const SlPool *p, int **group_of);
/* Has the pool each group's quota?  Appends the counts to detail if given. */
extern bool sl_pool_quotas_met(const SlPool *p, StringInfo detail);

/* ---- the providers: stage1_llm.c, stage1_builtin.c ---- */

/* What stage 1 works from. */
typedef struct SlStage1
{
	const SlTable *t;
	SlValidator *validator;
	const SlGroups *groups;
	const SlPrompt *prompt;		/* LLM only */
	SlRefs	   *refs;			/* foreign keys, or NULL */
	uint64		seed;
	MemoryContext cxt;			/* candidates live here */
} SlStage1;

/* What it did, for the run record. */
typedef struct SlStage1Stats
{
	int			requests;		/* requests issued, cached ones too; or batches */
	int			cached;			/* answers replayed from the cache */
	int64		received;		/* candidate rows received */
	int64		prompt_tokens;
	int64		completion_tokens;
	int64		responses[SL_RESP_COUNT];
	bool		no_schema;		/* the server refused response_format */
	SlHttpStats http;
	SlCapacity	capacity;		/* what the server said it can take */
	const char *stop;			/* why no further request was issued, or NULL */
	int			stop_group;		/* the group that collapsed, or -1 */
} SlStage1Stats;

extern void sl_llm_check_settings(void);
extern char *sl_llm_request_body(const SlStage1 *in, int g, int k, int flags);
extern void sl_stage1_llm(const SlStage1 *in, SlPool *pool, SlStage1Stats *st);
extern void sl_stage1_builtin(const SlStage1 *in, SlPool *pool, SlStage1Stats *st);

#endif							/* SAMPLELLM_STAGE1_H */
