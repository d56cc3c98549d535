/*-------------------------------------------------------------------------
 *
 * cache.h
 *	  Reuse of paid responses: a server-side cache of 2xx LLM answers,
 *	  keyed by role, endpoint, model and request body.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_CACHE_H
#define SAMPLELLM_CACHE_H

#include "postgres.h"

/* settings (defined by sl_cache_define_gucs) */
extern bool sl_cache_enabled;
extern int	sl_cache_max_age_s;
extern int	sl_cache_max_size_mb;

/* Defines samplellm.cache, samplellm.cache_max_age, samplellm.cache_max_size. */
extern void sl_cache_define_gucs(void);

/*
 * A cached 2xx body for this request of the current role, or NULL (miss,
 * cache disabled, expired or unreadable entry).  The result is NUL-terminated
 * (*len excludes the NUL) and palloc'd in CurrentMemoryContext.  I/O trouble
 * is a miss, with one WARNING per statement at most.
 */
extern char *sl_cache_get(const char *url, const char *model, const char *body,
						  size_t *len);

/*
 * Stores a 2xx body for this request of the current role (no-op when the
 * cache is disabled).  Never raises an error for I/O trouble: one WARNING
 * per statement at most.  May delete the oldest entries of every role to
 * stay under samplellm.cache_max_size.
 */
extern void sl_cache_put(const char *url, const char *model, const char *body,
						 const char *response, size_t len);

#endif							/* SAMPLELLM_CACHE_H */
