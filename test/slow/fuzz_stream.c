/*-------------------------------------------------------------------------
 *
 * fuzz_stream.c
 *	  libFuzzer target: a streamed answer (server-sent events) through
 *	  src/llm_stream.c, then the assembled body through the response -> rows
 *	  path.
 *
 * The first input byte picks how the bytes arrive (1..64 at a time); the
 * rest is the stream.  Checked besides memory safety: sl_sse_feed consumes
 * only complete lines until the end and everything at the end; the answer
 * does not depend on how the bytes were split (the same stream fed whole
 * gives the same body); the assembled body is a JSON object; and the body
 * keeps every promise of fuzz_check.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdint.h>

#include "llm.h"
#include "fuzz_shim.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The body after feeding [data, data + size) step bytes at a time. */
static char *
feed(const char *data, size_t size, size_t step)
{
	SlSse		s;
	char	   *pend = malloc(size + 1);
	size_t		plen = 0;
	size_t		pos = 0;
	size_t		used;

	sl_sse_init(&s);
	while (pos < size)
	{
		size_t		take = Min(step, size - pos);

		memcpy(pend + plen, data + pos, take);
		plen += take;
		pos += take;
		used = sl_sse_feed(&s, pend, plen, false);
		if (used > plen)
			fuzz_fail("sl_sse_feed consumed more than it was given");
		if (used > 0 && pend[used - 1] != '\n')
			fuzz_fail("sl_sse_feed stopped inside a line");
		if (memchr(pend + used, '\n', plen - used) != NULL)
			fuzz_fail("sl_sse_feed left a complete line");
		memmove(pend, pend + used, plen - used);
		plen -= used;
	}
	used = sl_sse_feed(&s, pend, plen, true);
	if (used != plen)
		fuzz_fail("sl_sse_feed at the end left bytes");
	if (s.events < 0 || s.pieces < 0 || s.prompt_tokens < 0 || s.completion_tokens < 0)
		fuzz_fail("negative count");
	free(pend);
	return sl_sse_body(&s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		step;
	const char *stream;
	char	   *whole;
	char	   *split;
	cJSON	   *doc;

	if (size == 0)
		return 0;
	step = 1 + data[0] % 64;
	stream = (const char *) data + 1;
	size--;

	whole = feed(stream, size, size + 1);
	split = feed(stream, size, step);
	if (strcmp(whole, split) != 0)
		fuzz_fail("the answer depends on how the bytes arrived");
	doc = sl_json_parse_bounded(split, strlen(split));
	if (!cJSON_IsObject(doc))
		fuzz_fail("the assembled body is not a JSON object");
	cJSON_Delete(doc);
	fuzz_check_response(split, strlen(split));
	fuzz_reset();
	return 0;
}
