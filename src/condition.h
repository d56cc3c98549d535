/*-------------------------------------------------------------------------
 *
 * condition.h
 *	  The `condition` option: an SQL boolean expression every row satisfies.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_CONDITION_H
#define SAMPLELLM_CONDITION_H

#include "nodes/primnodes.h"

#include "samplellm.h"

/*
 * Parses and checks the condition against the source relation; the result
 * refers to the row's columns as Vars of range table entry 1, like a CHECK
 * constraint, so it is evaluated on the same slot.
 */
extern Expr *sl_condition_parse(const SlTable *t, const char *text);

#endif							/* SAMPLELLM_CONDITION_H */
