/*-------------------------------------------------------------------------
 *
 * fuzz_parse.c
 *	  libFuzzer target: an HTTP response body through the response -> rows
 *	  path of stage 1 (src/llm_parse.c).
 *
 * The input is the raw body, as libcurl hands it to the extension; the
 * promises checked are fuzz_check.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdint.h>

#include "llm.h"
#include "fuzz_shim.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *copy;

	/* the body as http.c hands it over: not NUL-terminated */
	copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	fuzz_check_response(copy, size);
	fuzz_reset();
	free(copy);
	return 0;
}
