/*-------------------------------------------------------------------------
 *
 * fuzz_check.c
 *	  The promises of the response -> rows path (src/llm_parse.c), checked
 *	  by both fuzz targets (fuzz_parse: raw bodies; fuzz_stream: bodies
 *	  assembled from server-sent events).
 *
 * Besides memory safety: sl_parse_response never raises an error, rows
 * exist exactly when the status says so, every row array element and every
 * cell can be turned into column input text, a number keeps its lexeme, and
 * every text handed to a type input function is valid UTF-8 without NUL
 * (the server's input functions assume both).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"

#include "llm.h"
#include "fuzz_shim.h"

int			LLVMFuzzerInitialize(int *argc, char ***argv);

/* libFuzzer's setup hook, shared by both targets */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	sl_json_init();
	return 0;
}

void
fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz: %s\n", what);
	abort();
}

static void
check_text(const char *text)
{
	size_t		len = strlen(text);

	if (pg_encoding_verifymbstr(PG_UTF8, text, (int) len) != (int) len)
		fuzz_fail("cell text is not valid UTF-8");
}

static void
check_cell(const cJSON *item)
{
	bool		bad;
	const char *text = sl_json_scalar_text(item, &bad);

	if (bad)
	{
		if (!cJSON_IsObject(item) && !cJSON_IsArray(item))
			fuzz_fail("a scalar was reported as bad");
		return;
	}
	if (text == NULL)
	{
		if (!cJSON_IsNull(item))
			fuzz_fail("a non-null scalar gave no text");
		return;
	}
	if (cJSON_IsNumber(item) && (text[0] == '\0' || strpbrk(text, "-0123456789") != text))
		fuzz_fail("a number lost its lexeme");
	check_text(text);
}

void
fuzz_check_response(char *body, size_t len)
{
	SlResponse	resp;
	const cJSON *row;

	sl_parse_response(body, len, &resp);
	if ((resp.rows != NULL) != (resp.status == SL_RESP_OK || resp.status == SL_RESP_TRUNCATED))
		fuzz_fail("rows and status disagree");
	if (resp.prompt_tokens < 0 || resp.completion_tokens < 0)
		fuzz_fail("negative token count");
	if (resp.rows == NULL)
		return;
	if (!cJSON_IsArray(resp.rows))
		fuzz_fail("rows is not an array");
	/* validate.c's walk: each row object's members, else the value */
	cJSON_ArrayForEach(row, resp.rows)
	{
		const cJSON *cell;

		if (cJSON_IsObject(row) || cJSON_IsArray(row))
		{
			cJSON_ArrayForEach(cell, row)
			{
				if (cJSON_IsObject(row) && (cell->string == NULL))
					fuzz_fail("object member without a key");
				if (cell->string)
					check_text(cell->string);
				check_cell(cell);
			}
		}
		else
			check_cell(row);
	}
}
