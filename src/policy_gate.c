/*
 * policy_gate.c
 *		The row-level security policies' gate, settled once per execution:
 *		a reader whom a policy does not restrict pays nothing per row.
 *
 * The read policies have the shape
 *     (SELECT cloudconn.entity_restriction(perm)) IS NULL OR <per-row check>
 * (sql/cloudconn.sql).  The planner makes the sub-select an initplan, a
 * value computed once per execution under the statement's snapshot
 * (permission.c says why that value is never stale), but the executor still
 * evaluates the whole OR for every row: a filter at all costs a scan a
 * sixth to a third of its time.  After the executor has set the plan up,
 * this hook computes those initplans at once (the executor would at the
 * first row) and rewrites each such OR in the running plan's filters: an
 * arm that is true makes the clause true, so the clause is dropped; an arm
 * that is false is dropped from the OR.  Nothing is decided at planning:
 * a cached plan reused later, in this transaction or another, is settled
 * again by its own execution, with the value that execution computes.
 *
 * Only initplans that call entity_restriction() or connector_restriction()
 * (recognised by their C symbol, whatever the schema) and depend on no
 * outer value are settled: their value cannot change during the execution.
 * Only the filters of scans and joins are rewritten (not an Agg's HAVING,
 * nor a join's own condition).  Not in parallel workers (they get the
 * leader's value of an initplan and keep the plan's filter as it is), and
 * not for EXPLAIN without ANALYZE (nothing is executed).  The Plan itself
 * is never changed (it may be cached): only this execution's ExprStates.
 * EvalPlanQual rechecks build their own states from the Plan, unsettled,
 * which gives the same answer.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/parallel.h"
#include "executor/executor.h"
#include "executor/nodeSubplan.h"
#include "nodes/execnodes.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/primnodes.h"
#include "funcapi.h"

#include "permission.h"
#include "policy_gate.h"

PG_FUNCTION_INFO_V1(cloudconn_policy_gate_stats);

static ExecutorStart_hook_type prev_executor_start_hook = NULL;

/* this backend's filter clauses dropped as true, and OR arms dropped as false */
static int64 stat_clauses_dropped = 0;
static int64 stat_arms_dropped = 0;

/* One execution's settling: its EState, and the initplans of ours computed. */
typedef struct PolicyGateContext
{
	EState	   *estate;
	Bitmapset  *computed;		/* paramids */
} PolicyGateContext;

/* Whether an initplan is one of ours, of a value fixed for the execution. */
static bool
PolicyGateInitPlanIsOurs(SubPlanState *sstate)
{
	SubPlan    *subplan = sstate->subplan;
	Plan	   *plan = sstate->planstate->plan;
	TargetEntry *tle;
	FmgrInfo	finfo;

	if (subplan->subLinkType != EXPR_SUBLINK || subplan->parParam != NIL ||
		subplan->args != NIL || list_length(subplan->setParam) != 1 ||
		!bms_is_empty(plan->extParam) || !IsA(plan, Result) || plan->lefttree != NULL ||
		plan->qual != NIL || ((Result *) plan)->resconstantqual != NULL ||
		list_length(plan->targetlist) != 1)
		return false;
	tle = linitial_node(TargetEntry, plan->targetlist);
	if (!IsA(tle->expr, FuncExpr))
		return false;
	fmgr_info(((FuncExpr *) tle->expr)->funcid, &finfo);
	return finfo.fn_addr == cloudconn_entity_restriction ||
		finfo.fn_addr == cloudconn_connector_restriction;
}

/*
 * The value of a gate, an IS [NOT] NULL test of an initplan of ours: true
 * or false into *value, or false if node is no such test.  Computes the
 * initplan if the executor has not yet.
 */
static bool
PolicyGateValue(Node *node, PolicyGateContext *context, ExprContext *econtext, bool *value)
{
	EState	   *estate = context->estate;
	NullTest   *test;
	Param	   *param;
	ParamExecData *prm;

	if (!IsA(node, NullTest))
		return false;
	test = (NullTest *) node;
	if (test->argisrow || !IsA(test->arg, Param))
		return false;
	param = (Param *) test->arg;
	if (param->paramkind != PARAM_EXEC || param->paramid < 0 ||
		param->paramid >= list_length(estate->es_plannedstmt->paramExecTypes))
		return false;
	prm = &estate->es_param_exec_vals[param->paramid];
	if (!bms_is_member(param->paramid, context->computed))
	{
		/* not computed yet by the executor (nor by us), and ours */
		if (prm->execPlan == NULL || !PolicyGateInitPlanIsOurs((SubPlanState *) prm->execPlan))
			return false;
		ExecSetParamPlan((SubPlanState *) prm->execPlan, econtext);
		context->computed = bms_add_member(context->computed, param->paramid);
	}
	*value = (test->nulltesttype == IS_NULL) == prm->isnull;
	return true;
}

/*
 * A filter clause settled: NULL if it is true for every row, else the
 * clause without its false gates (the clause itself if it has none).
 */
static Node *
PolicyGateSettleClause(Node *clause, PolicyGateContext *context, ExprContext *econtext,
					   bool *changed)
{
	BoolExpr   *or_expr;
	List	   *kept = NIL;
	ListCell   *lc;

	if (!is_orclause(clause))
		return clause;
	or_expr = (BoolExpr *) clause;
	foreach(lc, or_expr->args)
	{
		Node	   *arm = (Node *) lfirst(lc);
		bool		value;

		if (!PolicyGateValue(arm, context, econtext, &value))
			kept = lappend(kept, arm);
		else if (value)
		{
			*changed = true;
			stat_clauses_dropped++;
			return NULL;
		}
		else
		{
			*changed = true;
			stat_arms_dropped++;
		}
	}
	if (list_length(kept) == list_length(or_expr->args))
		return clause;
	if (kept == NIL)
		return (Node *) makeBoolConst(false, false);
	if (list_length(kept) == 1)
		return (Node *) linitial(kept);
	return (Node *) makeBoolExpr(OR_EXPR, kept, or_expr->location);
}

/* Whether the executor builds ps->qual from ps->plan->qual alone (scans, joins). */
static bool
PolicyGateFilterNode(PlanState *ps)
{
	switch (nodeTag(ps))
	{
		case T_SeqScanState:
		case T_SampleScanState:
		case T_IndexScanState:
		case T_IndexOnlyScanState:
		case T_BitmapHeapScanState:
		case T_TidScanState:
		case T_TidRangeScanState:
		case T_SubqueryScanState:
		case T_FunctionScanState:
		case T_CteScanState:
		case T_NestLoopState:
		case T_MergeJoinState:
		case T_HashJoinState:
			return true;
		default:
			return false;
	}
}

static bool
PolicyGateSettleNode(PlanState *ps, void *arg)
{
	PolicyGateContext *context = (PolicyGateContext *) arg;

	if (ps->plan->qual != NIL && ps->qual != NULL && ps->ps_ExprContext != NULL &&
		PolicyGateFilterNode(ps))
	{
		List	   *settled = NIL;
		bool		changed = false;
		ListCell   *lc;

		foreach(lc, ps->plan->qual)
		{
			Node	   *clause = PolicyGateSettleClause((Node *) lfirst(lc), context,
														ps->ps_ExprContext, &changed);

			if (clause != NULL)
				settled = lappend(settled, clause);
		}
		if (changed)
			ps->qual = ExecInitQual(settled, ps);
	}
	return planstate_tree_walker(ps, PolicyGateSettleNode, context);
}

static void
PolicyGateExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (prev_executor_start_hook)
		prev_executor_start_hook(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 && !IsParallelWorker() &&
		queryDesc->planstate != NULL && queryDesc->plannedstmt->paramExecTypes != NIL)
	{
		PolicyGateContext context = {queryDesc->estate, NULL};
		MemoryContext oldcontext = MemoryContextSwitchTo(queryDesc->estate->es_query_cxt);

		(void) PolicyGateSettleNode(queryDesc->planstate, &context);
		MemoryContextSwitchTo(oldcontext);
	}
}

void
PolicyGateInstall(void)
{
	prev_executor_start_hook = ExecutorStart_hook;
	ExecutorStart_hook = PolicyGateExecutorStart;
}

/*
 * cloudconn._policy_gate_stats(OUT clauses_dropped bigint, OUT arms_dropped
 * bigint): this backend's filter clauses settled true (dropped) and gates
 * settled false (dropped from their OR); for tests and benchmarks.
 */
Datum
cloudconn_policy_gate_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[2] = {Int64GetDatum(stat_clauses_dropped), Int64GetDatum(stat_arms_dropped)};
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
