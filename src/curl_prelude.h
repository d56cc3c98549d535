/*-------------------------------------------------------------------------
 *
 * curl_prelude.h
 *	  Includes libcurl's header once, with its warnings silenced, so our own
 *	  code keeps -Wall -Wextra -Werror.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_CURL_PRELUDE_H
#define SAMPLELLM_CURL_PRELUDE_H

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <curl/curl.h>
#pragma GCC diagnostic pop

#endif							/* SAMPLELLM_CURL_PRELUDE_H */
