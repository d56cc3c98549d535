/*-------------------------------------------------------------------------
 *
 * fuzz_parse.c
 *	  libFuzzer target: an HTTP response body through the response -> rows
 *	  path of stage 1 (src/llm_parse.c).
 *
 * The input is the raw body, as libcurl hands it to the extension.  The
 * target checks llm_parse.c's promises besides memory safety: it never raises
 * an error, rows exist exactly when the status says so, every row array
 * element and every cell can be turned into column input text, a number
 * keeps its lexeme, and every text handed to a type input function is
 * valid UTF-8 without NUL (the server's input functions assume both).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdint.h>

#include "mb/pg_wchar.h"

#include "llm.h"
#include "fuzz_shim.h"

int			LLVMFuzzerInitialize(int *argc, char ***argv);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_parse: %s\n", what);
	abort();
}

static void
check_text(const char *text)
{
	size_t		len = strlen(text);

	if (pg_encoding_verifymbstr(PG_UTF8, text, (int) len) != (int) len)
		fail("cell text is not valid UTF-8");
}

static void
check_cell(const cJSON *item)
{
	bool		bad;
	const char *text = sl_json_scalar_text(item, &bad);

	if (bad)
	{
		if (!cJSON_IsObject(item) && !cJSON_IsArray(item))
			fail("a scalar was reported as bad");
		return;
	}
	if (text == NULL)
	{
		if (!cJSON_IsNull(item))
			fail("a non-null scalar gave no text");
		return;
	}
	if (cJSON_IsNumber(item) && (text[0] == '\0' || strpbrk(text, "-0123456789") != text))
		fail("a number lost its lexeme");
	check_text(text);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	sl_json_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	SlResponse	resp;
	const cJSON *row;
	char	   *copy;

	/* the body as http.c hands it over: not NUL-terminated */
	copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	sl_parse_response(copy, size, &resp);

	if ((resp.rows != NULL) != (resp.status == SL_RESP_OK || resp.status == SL_RESP_TRUNCATED))
		fail("rows and status disagree");
	if (resp.prompt_tokens < 0 || resp.completion_tokens < 0)
		fail("negative token count");
	if (resp.rows)
	{
		if (!cJSON_IsArray(resp.rows))
			fail("rows is not an array");
		/* validate.c's walk: each row object's members, else the value */
		cJSON_ArrayForEach(row, resp.rows)
		{
			const cJSON *cell;

			if (cJSON_IsObject(row) || cJSON_IsArray(row))
			{
				cJSON_ArrayForEach(cell, row)
				{
					if (cJSON_IsObject(row) && (cell->string == NULL))
						fail("object member without a key");
					if (cell->string)
						check_text(cell->string);
					check_cell(cell);
				}
			}
			else
				check_cell(row);
		}
	}
	fuzz_reset();
	free(copy);
	return 0;
}
