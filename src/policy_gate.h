/*
 * policy_gate.h
 *		Settles the row-level security policies' gate once per execution
 *		(policy_gate.c's header says how).
 */
#ifndef CLOUDCONN_POLICY_GATE_H
#define CLOUDCONN_POLICY_GATE_H

#include "fmgr.h"

extern void PolicyGateInstall(void);
extern Datum cloudconn_policy_gate_stats(PG_FUNCTION_ARGS);

#endif							/* CLOUDCONN_POLICY_GATE_H */
