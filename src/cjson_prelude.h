/*-------------------------------------------------------------------------
 *
 * cjson_prelude.h
 *	  Includes cJSON once, with its warnings kept out of our -Werror build.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_CJSON_PRELUDE_H
#define SAMPLELLM_CJSON_PRELUDE_H

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#include <cjson/cJSON.h>
#pragma GCC diagnostic pop

#endif							/* SAMPLELLM_CJSON_PRELUDE_H */
