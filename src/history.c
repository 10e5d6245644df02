/*
 * history.c
 *		The change history of CIs (cloudconn.ci_change; README: Change
 *		history) outside the merge: edits of user-owned fields, recorded by
 *		triggers as the role that made them, the retention job, and the
 *		horizon of what ci_changes shows.
 *
 * A run's changes are written by the merge's own statements (merge.c), never
 * here.  The triggers fire only for what the merge never writes (entity_id,
 * description, links to applications and business processes), so no change
 * is recorded twice.  They run as the invoking role, which is the actor, and
 * write as the owner of cloudconn's tables, since nobody else may.  The
 * retention job deletes in batches, each in its own short transaction, so
 * that it holds no lock for long.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "history.h"

PG_FUNCTION_INFO_V1(cloudconn_ci_edit_recorded);
PG_FUNCTION_INFO_V1(cloudconn_history_horizon);

/* changes deleted per transaction by the retention job */
#define HISTORY_RETENTION_BATCH 1000

/* An edit of the CI's entity or description: one change per field that differs. */
static const char *const history_ci_edit_sql =
"INSERT INTO cloudconn.ci_change (ci_id, role_name, kind, field, old_value, new_value)"
" SELECT $1, $2, 'edited', f.field, f.o, f.n"
"   FROM (VALUES ('entity_id', pg_catalog.to_jsonb($3::pg_catalog.int8), pg_catalog.to_jsonb($4::pg_catalog.int8)),"
"                ('description', pg_catalog.to_jsonb($5::pg_catalog.text), pg_catalog.to_jsonb($6::pg_catalog.text)))"
"        AS f(field, o, n)"
"  WHERE f.o IS DISTINCT FROM f.n";

/*
 * A link made ($4 true) or removed: the application or business process by
 * id and name.  Not for a CI deleted by the same statement (its links go
 * with it).
 */
#define HISTORY_LINK_EDIT_SQL(table) \
"INSERT INTO cloudconn.ci_change (ci_id, role_name, kind, field, old_value, new_value)" \
" SELECT $1, $2, 'edited', $3, CASE WHEN NOT $4 THEN x.v END, CASE WHEN $4 THEN x.v END" \
"   FROM (SELECT pg_catalog.jsonb_build_object('id', $5::pg_catalog.int8, 'name'," \
"                (SELECT t.name FROM cloudconn." table " t WHERE t.id OPERATOR(pg_catalog.=) $5)) AS v) x" \
"  WHERE EXISTS (SELECT 1 FROM cloudconn.configuration_item ci WHERE ci.id OPERATOR(pg_catalog.=) $1)"

/* A column of a trigger's tuple, or NULL. */
static Datum
HistoryColumn(Relation rel, HeapTuple tuple, const char *name, bool *isnull)
{
	int			attnum = SPI_fnumber(RelationGetDescr(rel), name);

	if (attnum <= 0)
		elog(ERROR, "column %s of %s does not exist", name, RelationGetRelationName(rel));
	return SPI_getbinval(tuple, RelationGetDescr(rel), attnum, isnull);
}

/* Run one insert into ci_change as the owner of rel (cloudconn's tables). */
static void
HistoryInsertAsOwner(Relation rel, const char *sql, int nargs, Oid *types, Datum *args, char *nulls)
{
	Oid			save_userid;
	int			save_sec_context;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(rel->rd_rel->relowner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_execute_with_args(sql, nargs, types, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record an edit of a CI");
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/*
 * cloudconn._ci_edit_recorded(): AFTER ROW trigger.  Its argument says on
 * what: 'ci' (an UPDATE of configuration_item's entity_id or description),
 * 'application' or 'business_process' (an INSERT or DELETE of a link).
 */
Datum
cloudconn_ci_edit_recorded(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	const char *what;
	char	   *role;
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || trigdata->tg_trigger->tgnargs != 1)
		elog(ERROR, "cloudconn._ci_edit_recorded() must be an AFTER ROW trigger with one argument");
	rel = trigdata->tg_relation;
	what = trigdata->tg_trigger->tgargs[0];
	role = GetUserNameFromId(GetUserId(), false);

	SPI_connect();
	args[1] = CStringGetTextDatum(role);
	if (strcmp(what, "ci") == 0 && TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		Oid			types[6] = {INT8OID, TEXTOID, INT8OID, INT8OID, TEXTOID, TEXTOID};
		HeapTuple	old = trigdata->tg_trigtuple;
		HeapTuple	new = trigdata->tg_newtuple;

		args[0] = HistoryColumn(rel, new, "id", &isnull);
		args[2] = HistoryColumn(rel, old, "entity_id", &isnull);
		args[3] = HistoryColumn(rel, new, "entity_id", &isnull);
		args[4] = HistoryColumn(rel, old, "description", &isnull);
		nulls[4] = isnull ? 'n' : ' ';
		args[5] = HistoryColumn(rel, new, "description", &isnull);
		nulls[5] = isnull ? 'n' : ' ';
		HistoryInsertAsOwner(rel, history_ci_edit_sql, 6, types, args, nulls);
	}
	else if ((strcmp(what, "application") == 0 || strcmp(what, "business_process") == 0) &&
			 (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) || TRIGGER_FIRED_BY_DELETE(trigdata->tg_event)))
	{
		Oid			types[5] = {INT8OID, TEXTOID, TEXTOID, BOOLOID, INT8OID};
		bool		linked = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event);
		bool		application = strcmp(what, "application") == 0;
		HeapTuple	link = trigdata->tg_trigtuple;

		args[0] = HistoryColumn(rel, link, "ci_id", &isnull);
		args[2] = CStringGetTextDatum(what);
		args[3] = BoolGetDatum(linked);
		args[4] = HistoryColumn(rel, link, application ? "application_id" : "business_process_id", &isnull);
		HistoryInsertAsOwner(rel, application ? HISTORY_LINK_EDIT_SQL("application")
							 : HISTORY_LINK_EDIT_SQL("business_process"),
							 5, types, args, nulls);
	}
	else
		elog(ERROR, "cloudconn._ci_edit_recorded() fired on an unexpected event (%s)", what);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/*
 * cloudconn._history_horizon(): the oldest change ci_changes shows, now()
 * less cloudconn.history_retention, or -infinity when the retention is 0
 * (keep everything).  The stored changes older than this are deleted by the
 * retention job below; a CI's 'discovered' entry, derived from the CI, has
 * only this.
 */
Datum
cloudconn_history_horizon(PG_FUNCTION_ARGS)
{
	if (cloudconn_history_retention_minutes <= 0)
		PG_RETURN_TIMESTAMPTZ(DT_NOBEGIN);
	PG_RETURN_TIMESTAMPTZ(GetCurrentTransactionStartTimestamp()
						  - (TimestampTz) cloudconn_history_retention_minutes * USECS_PER_MINUTE);
}

/*
 * Delete the changes older than cloudconn.history_retention (nothing when it
 * is 0), HISTORY_RETENTION_BATCH at a time, each batch in its own
 * transaction; outside any transaction, as a superuser (the launcher).
 * Returns how many were deleted.
 */
int64
HistoryApplyRetention(void)
{
	int64		deleted = 0;
	int			retention_minutes = cloudconn_history_retention_minutes;

	if (retention_minutes <= 0)
		return 0;
	for (;;)
	{
		uint64		n;

		CHECK_FOR_INTERRUPTS();
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "cloudconn: history retention");
		/* an extension not upgraded yet (0.1.0) has no history */
		if (SPI_execute("SELECT 1 WHERE pg_catalog.to_regclass('cloudconn.ci_change') IS NOT NULL",
						true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not look for the change history of CIs");
		if (SPI_processed == 0)
			n = 0;
		else if (SPI_execute_with_args(
			"DELETE FROM cloudconn.ci_change WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
			"  SELECT c.ctid FROM cloudconn.ci_change c"
			"   WHERE c.changed_at OPERATOR(pg_catalog.<)"
			"         (pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(mins => $1))"
			"   LIMIT " CppAsString2(HISTORY_RETENTION_BATCH) "))",
			1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(retention_minutes)}, NULL, false, 0)
			!= SPI_OK_DELETE)
			elog(ERROR, "could not delete old changes of CIs");
		else
			n = SPI_processed;
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_stat(true);
		pgstat_report_activity(STATE_IDLE, NULL);
		deleted += (int64) n;
		if (n < HISTORY_RETENTION_BATCH)
			break;
	}
	return deleted;
}
