/*-------------------------------------------------------------------------
 *
 * run_progress.c
 *	  Progress of running calls, for the samplellm_progress view.
 *
 * One slot per backend in shared memory (shared_preload_libraries =
 * 'samplellm' reserves it); a backend writes only its own slot, with the
 * change-count protocol of PostgreSQL's own backend status array, so
 * neither writers nor readers take a lock: a reader retries a slot whose
 * count was odd or changed while it copied.  Without the preload the calls
 * run as before and the view says how to get it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "run.h"

#define SOURCE_LEN 160

typedef struct ProgressSlot
{
	uint32		changecount;	/* odd while the owner writes */
	int			pid;			/* 0: no call running */
	Oid			userid;
	Oid			dbid;
	int64		run_id;			/* 0 until the run has one */
	SlPhase		phase;
	char		source[SOURCE_LEN];
	int64		valid;
	int64		needed;
	int			requests_done;
	int			in_flight;
	int			retried;
	int64		tokens;
	TimestampTz started;
	TimestampTz stage1_started;
} ProgressSlot;

static ProgressSlot *slots = NULL;
static int	nslots = 0;
static ProgressSlot *mine = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static const char *const phase_names[] = {
	"seeds", "exemplars", "requests", "validation", "stage 2", "result"
};

static void
progress_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(mul_size(MaxBackends, sizeof(ProgressSlot)));
}

static void
progress_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	nslots = MaxBackends;
	slots = ShmemInitStruct("samplellm progress", mul_size(nslots, sizeof(ProgressSlot)), &found);
	if (!found)
		memset(slots, 0, mul_size(nslots, sizeof(ProgressSlot)));
}

/* From _PG_init while shared_preload_libraries loads. */
void
sl_progress_install(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = progress_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = progress_shmem_startup;
}

static ProgressSlot *
my_slot(void)
{
	int			i;

	if (slots == NULL)
		return NULL;
#if PG_VERSION_NUM >= 170000
	i = MyProcNumber;
#else
	i = MyBackendId - 1;
#endif
	return (i >= 0 && i < nslots) ? &slots[i] : NULL;
}

#define BEGIN_WRITE(s) do { (s)->changecount++; pg_write_barrier(); } while (0)
#define END_WRITE(s) do { pg_write_barrier(); (s)->changecount++; } while (0)

static void
progress_exit(int code, Datum arg)
{
	sl_progress_end();
}

void
sl_progress_begin(const char *source, int64 needed)
{
	static bool exit_registered = false;

	mine = my_slot();
	if (mine == NULL)
		return;
	if (!exit_registered)
	{
		before_shmem_exit(progress_exit, (Datum) 0);
		exit_registered = true;
	}
	BEGIN_WRITE(mine);
	mine->pid = MyProcPid;
	mine->userid = GetUserId();
	mine->dbid = MyDatabaseId;
	mine->run_id = 0;
	mine->phase = SL_PHASE_SEEDS;
	strlcpy(mine->source, source ? source : "", SOURCE_LEN);
	mine->valid = 0;
	mine->needed = needed;
	mine->requests_done = mine->in_flight = mine->retried = 0;
	mine->tokens = 0;
	mine->started = GetCurrentTimestamp();
	mine->stage1_started = 0;
	END_WRITE(mine);
}

void
sl_progress_run_id(int64 run_id)
{
	if (mine == NULL)
		return;
	BEGIN_WRITE(mine);
	mine->run_id = run_id;
	END_WRITE(mine);
}

void
sl_progress_phase(SlPhase phase)
{
	if (mine == NULL)
		return;
	BEGIN_WRITE(mine);
	mine->phase = phase;
	if ((phase == SL_PHASE_REQUESTS || phase == SL_PHASE_VALIDATION) && mine->stage1_started == 0)
		mine->stage1_started = GetCurrentTimestamp();
	END_WRITE(mine);
}

void
sl_progress_stage1(int64 valid, int64 needed, int done, int in_flight, int retried,
				   int64 tokens)
{
	if (mine == NULL)
		return;
	BEGIN_WRITE(mine);
	mine->valid = valid;
	mine->needed = needed;
	mine->requests_done = done;
	mine->in_flight = in_flight;
	mine->retried = retried;
	mine->tokens = tokens;
	END_WRITE(mine);
}

void
sl_progress_end(void)
{
	if (mine == NULL)
		return;
	BEGIN_WRITE(mine);
	mine->pid = 0;
	END_WRITE(mine);
	mine = NULL;
}

/* A consistent copy of slot i (the protocol of pgstat_read_current_status). */
static void
read_slot(int i, ProgressSlot *copy)
{
	volatile ProgressSlot *s = &slots[i];

	for (;;)
	{
		uint32		before = s->changecount;

		pg_read_barrier();
		memcpy(copy, (const void *) s, sizeof(ProgressSlot));
		pg_read_barrier();
		if (before == s->changecount && (before & 1) == 0)
			return;
		CHECK_FOR_INTERRUPTS();
	}
}

PG_FUNCTION_INFO_V1(samplellm_progress);

/*
 * One row per running call: the caller's own, or every role's for members
 * of pg_read_all_stats.
 */
Datum
samplellm_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		all = has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	if (slots == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("samplellm_progress needs samplellm in shared_preload_libraries"),
				 errdetail("Progress lives in shared memory, which only a preloaded library can reserve."),
				 errhint("Add samplellm to shared_preload_libraries and restart the server.")));
	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < nslots; i++)
	{
		ProgressSlot s;
		Datum		values[14];
		bool		nulls[14];
		double		elapsed;

		read_slot(i, &s);
		if (s.pid == 0 || s.dbid != MyDatabaseId || (!all && s.userid != GetUserId()))
			continue;
		if (BackendPidGetProc(s.pid) == NULL)
			continue;			/* ended without clearing (a crash) */
		memset(nulls, false, sizeof(nulls));
		elapsed = (double) (now - s.started) / 1e6;
		values[0] = Int32GetDatum(s.pid);
		values[1] = Int64GetDatum(s.run_id);
		nulls[1] = (s.run_id == 0);
		values[2] = ObjectIdGetDatum(s.userid);
		values[3] = CStringGetTextDatum(s.source);
		values[4] = CStringGetTextDatum(phase_names[s.phase]);
		values[5] = Int64GetDatum(s.valid);
		values[6] = Int64GetDatum(s.needed);
		values[7] = Int32GetDatum(s.requests_done);
		values[8] = Int32GetDatum(s.in_flight);
		values[9] = Int32GetDatum(s.retried);
		values[10] = Int64GetDatum(s.tokens);
		values[11] = Float8GetDatum(elapsed);
		/* time left: stage 1's pace so far over what it still lacks */
		if (s.stage1_started != 0 && s.valid > 0 && s.valid < s.needed &&
			(s.phase == SL_PHASE_REQUESTS || s.phase == SL_PHASE_VALIDATION))
			values[12] = Float8GetDatum((double) (now - s.stage1_started) / 1e6 *
										(double) (s.needed - s.valid) / s.valid);
		else
			nulls[12] = true;
		values[13] = TimestampTzGetDatum(s.started);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
