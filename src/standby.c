/*
 * standby.c
 *		On a hot standby (a server in recovery) nothing of cloudconn may be
 *		written: the functions that write say so up front, with SQLSTATE
 *		25006 (read_only_sql_transaction) and a message naming the function
 *		and the standby, instead of PostgreSQL's "cannot execute INSERT in a
 *		read-only transaction" with cloudconn's internal SQL in its CONTEXT,
 *		and before connector_run() would wait for a run worker that a
 *		standby never starts.  The scheduler's launcher does not run on a
 *		standby at all (it starts once recovery has finished).
 */
#include "postgres.h"

#include "access/xlog.h"

#include "standby.h"

void
StandbyRefuseWrite(const char *function)
{
	if (!RecoveryInProgress())
		return;
	ereport(ERROR,
			(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
			 errmsg("cloudconn.%s() cannot run on a standby server", function),
			 errdetail("This server is a hot standby: it is read-only, and connectors, tokens, grants and runs change on the primary only."),
			 errhint("Call it on the primary; after a failover, on the promoted server.")));
}
