/*-------------------------------------------------------------------------
 *
 * fuzz_shim.c
 *	  Just enough of the backend to run src/llm_parse.c and src/llm_stream.c
 *	  under libFuzzer.
 *
 * Every palloc is its own malloc block, so AddressSanitizer sees the bounds
 * of each allocation exactly as the parser asked for it; the blocks are
 * chained so that fuzz_reset() frees everything one input allocated, as
 * MemoryContextReset() does in the server (LeakSanitizer then reports only
 * true leaks, i.e. memory that escaped the "context").  ereport() and elog()
 * abort: sl_parse_response() promises never to raise an error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "fuzz_shim.h"

volatile sig_atomic_t InterruptPending = false;
MemoryContext CurrentMemoryContext = NULL;

typedef struct Chunk
{
	struct Chunk *prev;
	struct Chunk *next;
	size_t		size;
	/* 16-byte alignment of the payload, as palloc's MAXALIGN promises */
	char		pad[8];
} Chunk;

static Chunk arena = {&arena, &arena, 0, {0}};
static size_t live_bytes = 0;

size_t		fuzz_max_live_bytes = 0;

static void *
chunk_alloc(size_t size, bool zero, bool no_oom)
{
	Chunk	   *c = malloc(sizeof(Chunk) + size);

	if (c == NULL)
	{
		if (no_oom)
			return NULL;
		abort();
	}
	c->size = size;
	c->next = arena.next;
	c->prev = &arena;
	arena.next->prev = c;
	arena.next = c;
	live_bytes += size;
	if (live_bytes > fuzz_max_live_bytes)
		fuzz_max_live_bytes = live_bytes;
	if (zero)
		memset(c + 1, 0, size);
	return c + 1;
}

static void
chunk_free(void *p)
{
	Chunk	   *c = (Chunk *) p - 1;

	c->prev->next = c->next;
	c->next->prev = c->prev;
	live_bytes -= c->size;
	free(c);
}

void
fuzz_reset(void)
{
	while (arena.next != &arena)
		chunk_free(arena.next + 1);
}

size_t
fuzz_live_bytes(void)
{
	return live_bytes;
}

/* the allocator's size checks, as mcxt.c makes them */
static void
check_size(Size size, int flags)
{
	if (((flags & MCXT_ALLOC_HUGE) != 0 && !AllocHugeSizeIsValid(size)) ||
		((flags & MCXT_ALLOC_HUGE) == 0 && !AllocSizeIsValid(size)))
	{
		fprintf(stderr, "fuzz_shim: invalid memory alloc request size %zu\n", (size_t) size);
		abort();
	}
}

void *
palloc(Size size)
{
	check_size(size, 0);
	return chunk_alloc(size, false, false);
}

void *
palloc0(Size size)
{
	check_size(size, 0);
	return chunk_alloc(size, true, false);
}

void *
palloc_extended(Size size, int flags)
{
	check_size(size, flags);
	return chunk_alloc(size, (flags & MCXT_ALLOC_ZERO) != 0,
					   (flags & MCXT_ALLOC_NO_OOM) != 0);
}

void *
MemoryContextAlloc(MemoryContext context, Size size)
{
	return palloc(size);
}

void *
MemoryContextAllocZero(MemoryContext context, Size size)
{
	return palloc0(size);
}

void *
MemoryContextAllocExtended(MemoryContext context, Size size, int flags)
{
	return palloc_extended(size, flags);
}

void *
repalloc(void *pointer, Size size)
{
	Chunk	   *c = (Chunk *) pointer - 1;
	void	   *p;

	check_size(size, 0);
	p = chunk_alloc(size, false, false);
	memcpy(p, pointer, Min(size, c->size));
	chunk_free(pointer);
	return p;
}

void
pfree(void *pointer)
{
	chunk_free(pointer);
}

char *
pstrdup(const char *in)
{
	return strcpy(palloc(strlen(in) + 1), in);
}

char *
pnstrdup(const char *in, Size len)
{
	char	   *out;

	len = strnlen(in, len);
	out = palloc(len + 1);
	memcpy(out, in, len);
	out[len] = '\0';
	return out;
}

/* mbutils.c's version, on top of libpgcommon's verifier */
bool
pg_verify_mbstr(int encoding, const char *mbstr, int len, bool noError)
{
	if (pg_encoding_verifymbstr(encoding, mbstr, len) == len)
		return true;
	if (!noError)
	{
		fprintf(stderr, "fuzz_shim: pg_verify_mbstr called without noError\n");
		abort();
	}
	return false;
}

/*
 * utils/adt/json.c's escape_json (the backend's, not in libpgcommon), for
 * src/llm_stream.c: the same escapes, so the assembled body is the one the
 * server builds.
 */
void
escape_json(StringInfo buf, const char *str)
{
	appendStringInfoCharMacro(buf, '"');
	for (const char *p = str; *p; p++)
	{
		switch (*p)
		{
			case '\b':
				appendStringInfoString(buf, "\\b");
				break;
			case '\f':
				appendStringInfoString(buf, "\\f");
				break;
			case '\n':
				appendStringInfoString(buf, "\\n");
				break;
			case '\r':
				appendStringInfoString(buf, "\\r");
				break;
			case '\t':
				appendStringInfoString(buf, "\\t");
				break;
			case '"':
				appendStringInfoString(buf, "\\\"");
				break;
			case '\\':
				appendStringInfoString(buf, "\\\\");
				break;
			default:
				if ((unsigned char) *p < ' ')
					appendStringInfo(buf, "\\u%04x", (int) *p);
				else
					appendStringInfoCharMacro(buf, *p);
				break;
		}
	}
	appendStringInfoCharMacro(buf, '"');
}

void
ProcessInterrupts(void)
{
	InterruptPending = false;
}

bool
errstart(int elevel, const char *domain)
{
	return elevel >= ERROR;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

int
errcode(int sqlerrcode)
{
	return 0;
}

int
errmsg(const char *fmt,...)
{
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	return 0;
}

int
errdetail(const char *fmt,...)
{
	return 0;
}

int
errhint(const char *fmt,...)
{
	return 0;
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	fprintf(stderr, "fuzz_shim: ereport(ERROR) at %s:%d: the parser must never raise\n",
			filename, lineno);
	abort();
}

void
ExceptionalCondition(const char *conditionName, const char *errorType,
					 const char *fileName, int lineNumber)
{
	fprintf(stderr, "fuzz_shim: assertion %s failed at %s:%d\n",
			conditionName, fileName, lineNumber);
	abort();
}
