/*-------------------------------------------------------------------------
 *
 * llm_parse.c
 *	  Stage 1, step 5a: chat-completion responses to candidate row objects.
 *
 * LLM output is hostile input: the size is capped by the HTTP layer, the
 * encoding is verified, nesting is bounded before cJSON sees the text, and
 * nothing here raises an error but a cancel: a bad response is counted, not
 * fatal.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "llm.h"

/* Deeper than any row document needs; keeps cJSON's recursion shallow. */
#define MAX_JSON_DEPTH 32
/* How many '{' positions to try when prose surrounds the JSON. */
#define MAX_OBJECT_TRIES 16

/*
 * cJSON allocates through these hooks in whatever context is current, so a
 * parse tree dies with the context: no leak on any error path.  NO_OOM makes
 * an allocation failure a NULL that cJSON handles, not a longjmp through it.
 */
static void *
sl_json_malloc(size_t size)
{
	return MemoryContextAllocExtended(CurrentMemoryContext, size, MCXT_ALLOC_NO_OOM);
}

static void
sl_json_free(void *ptr)
{
	if (ptr)
		pfree(ptr);
}

void
sl_json_init(void)
{
	cJSON_Hooks hooks = {sl_json_malloc, sl_json_free};

	cJSON_InitHooks(&hooks);
}

/*
 * Scans JSON text for brackets outside strings: the deepest nesting seen,
 * and, with one_value, where the object or array starting at s closes
 * (just past its bracket; NULL if not before limit).  Without one_value it
 * scans all of [s, limit) and returns limit.
 */
static const char *
scan_brackets(const char *s, const char *limit, bool one_value, int *maxdepth)
{
	int			depth = 0;
	bool		instr = false;

	*maxdepth = 0;
	for (; s < limit; s++)
	{
		if (instr)
		{
			if (*s == '\\' && s + 1 < limit)
				s++;
			else if (*s == '"')
				instr = false;
		}
		else if (*s == '"')
			instr = true;
		else if (*s == '{' || *s == '[')
		{
			depth++;
			*maxdepth = Max(*maxdepth, depth);
		}
		else if ((*s == '}' || *s == ']') && --depth == 0 && one_value)
			return s + 1;
	}
	return one_value ? NULL : limit;
}

/* Maximum nesting depth of [start, end), strings skipped. */
static int
json_depth(const char *s, const char *end)
{
	int			depth;

	(void) scan_brackets(s, end, false, &depth);
	return depth;
}

/*
 * cJSON keeps numbers only as doubles.  The lexemes of [start, end) are
 * collected in document order (which is cJSON's child order) and attached
 * to the number nodes as their valuestring.
 */
typedef struct NumLexemes
{
	char	  **lex;
	int			n;
	int			next;
} NumLexemes;

static void
collect_numbers(const char *s, const char *end, NumLexemes *nl)
{
	int			cap = 64;
	bool		instr = false;

	nl->lex = palloc(sizeof(char *) * cap);
	nl->n = 0;
	nl->next = 0;
	while (s < end)
	{
		if (instr)
		{
			if (*s == '\\' && s + 1 < end)
				s++;
			else if (*s == '"')
				instr = false;
			s++;
		}
		else if (*s == '"')
		{
			instr = true;
			s++;
		}
		else if (*s == '-' || (*s >= '0' && *s <= '9'))
		{
			const char *b = s;

			while (s < end && strchr("-+.eE0123456789", *s) && *s != '\0')
				s++;
			if (nl->n == cap)
			{
				cap *= 2;
				nl->lex = repalloc(nl->lex, sizeof(char *) * cap);
			}
			nl->lex[nl->n++] = pnstrdup(b, s - b);
		}
		else
			s++;
	}
}

static bool
attach_numbers(cJSON *item, NumLexemes *nl)
{
	for (; item; item = item->next)
	{
		if (cJSON_IsNumber(item))
		{
			if (nl->next >= nl->n)
				return false;
			item->valuestring = nl->lex[nl->next++];
		}
		else if (item->child && !attach_numbers(item->child, nl))
			return false;
	}
	return true;
}

/* Parses the object or array at s; NULL if bad. */
static cJSON *
parse_value_at(const char *s, const char *limit, const char **endp)
{
	cJSON	   *v;
	NumLexemes	nl;
	int			depth;
	/* Only this value's span goes to cJSON: salvaging stays linear. */
	const char *span_end = scan_brackets(s, limit, true, &depth);

	if (span_end == NULL || depth > MAX_JSON_DEPTH)
		return NULL;
	v = cJSON_ParseWithLengthOpts(s, span_end - s, endp, false);
	if (v == NULL)
		return NULL;
	collect_numbers(s, *endp, &nl);
	if (!attach_numbers(v, &nl) || nl.next != nl.n)
		return NULL;			/* cannot happen for valid JSON; be safe */
	return v;
}

/*
 * Salvage for an answer cut short (finish_reason "length") or otherwise
 * broken: the complete objects of the "rows" array, one by one.
 */
static cJSON *
salvage_rows(const char *content, const char *limit)
{
	const char *p = strstr(content, "\"rows\"");
	cJSON	   *rows;

	if (p == NULL)
		return NULL;
	p = strchr(p + 6, '[');
	if (p == NULL)
		return NULL;
	p++;
	rows = cJSON_CreateArray();
	if (rows == NULL)
		return NULL;
	for (;;)
	{
		const char *end;
		cJSON	   *row;

		while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == ',')
			p++;
		if (*p != '{')
			break;
		row = parse_value_at(p, limit, &end);
		if (row == NULL)
			break;
		cJSON_AddItemToArray(rows, row);
		p = end;
		CHECK_FOR_INTERRUPTS();
	}
	return rows;
}

/* The rows of an answer's content: {"rows": [...]}, or a bare array. */
static cJSON *
content_rows(const char *content, bool *salvaged)
{
	const char *limit = content + strlen(content);
	const char *p = content;
	int			tries;

	*salvaged = false;
	for (tries = 0; tries < MAX_OBJECT_TRIES; tries++)
	{
		const char *end;
		cJSON	   *doc;
		cJSON	   *rows;

		p = strpbrk(p, "{[");
		if (p == NULL)
			break;
		doc = parse_value_at(p, limit, &end);
		if (doc)
		{
			if (cJSON_IsArray(doc))
				return doc;
			rows = cJSON_GetObjectItemCaseSensitive(doc, "rows");
			if (cJSON_IsArray(rows))
				return rows;
		}
		p++;
	}
	*salvaged = true;
	return salvage_rows(content, limit);
}

void
sl_parse_response(const char *body, size_t len, SlResponse *out)
{
	cJSON	   *env;
	cJSON	   *choices;
	cJSON	   *choice;
	cJSON	   *message;
	cJSON	   *content;
	cJSON	   *usage;
	cJSON	   *finish;
	char	   *text;
	bool		salvaged;

	memset(out, 0, sizeof(SlResponse));
	out->status = SL_RESP_MALFORMED;

	if (len == 0)
		return;
	if (!pg_verify_mbstr(PG_UTF8, body, (int) len, true))
	{
		out->status = SL_RESP_ENCODING;
		return;
	}
	text = pnstrdup(body, len);
	if (json_depth(text, text + len) > MAX_JSON_DEPTH)
		return;
	env = cJSON_Parse(text);
	if (env == NULL || !cJSON_IsObject(env))
		return;

	usage = cJSON_GetObjectItemCaseSensitive(env, "usage");
	if (cJSON_IsObject(usage))
	{
		cJSON	   *pt = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens");
		cJSON	   *ct = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");

		if (cJSON_IsNumber(pt) && pt->valuedouble >= 0 && pt->valuedouble < 1e12)
			out->prompt_tokens = (int64) pt->valuedouble;
		if (cJSON_IsNumber(ct) && ct->valuedouble >= 0 && ct->valuedouble < 1e12)
			out->completion_tokens = (int64) ct->valuedouble;
	}

	choices = cJSON_GetObjectItemCaseSensitive(env, "choices");
	choice = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
	message = cJSON_IsObject(choice) ? cJSON_GetObjectItemCaseSensitive(choice, "message") : NULL;
	if (!cJSON_IsObject(message))
		return;
	content = cJSON_GetObjectItemCaseSensitive(message, "content");
	if (!cJSON_IsString(content))
	{
		out->status = cJSON_IsNull(content) ? SL_RESP_REFUSAL : SL_RESP_MALFORMED;
		return;
	}
	/* cJSON would decode \u0000 into a NUL that silently cuts a string. */
	if (strstr(text, "\\u0000") != NULL)
	{
		out->status = SL_RESP_ENCODING;
		return;
	}

	out->rows = content_rows(content->valuestring, &salvaged);
	if (out->rows == NULL)
		return;
	finish = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
	if (salvaged && cJSON_GetArraySize(out->rows) == 0)
		out->rows = NULL;		/* nothing recognisable: malformed */
	else if (salvaged || (cJSON_IsString(finish) && strcmp(finish->valuestring, "length") == 0))
		out->status = SL_RESP_TRUNCATED;
	else
		out->status = SL_RESP_OK;
}

cJSON *
sl_json_parse_bounded(const char *text, size_t len)
{
	if (json_depth(text, text + len) > MAX_JSON_DEPTH)
		return NULL;
	return cJSON_ParseWithLength(text, len);
}

const char *
sl_json_scalar_text(const cJSON *item, bool *bad)
{
	*bad = false;
	if (cJSON_IsNull(item))
		return NULL;
	if (cJSON_IsString(item))
		return item->valuestring;
	if (cJSON_IsTrue(item))
		return "true";
	if (cJSON_IsFalse(item))
		return "false";
	if (cJSON_IsNumber(item) && item->valuestring)
		return item->valuestring;
	*bad = true;
	return NULL;
}
