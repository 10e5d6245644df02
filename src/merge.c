/*
 * merge.c
 *		The merge engine: discovered resources become CIs (SPEC §6).
 *
 * While a run lists, each page is kept as one tuple of column arrays in a
 * tuplestore (memory up to work_mem, then a temporary file): listing writes
 * nothing to the database, so the run's transaction has no xid and holds no
 * snapshot while it waits on the cloud, and VACUUM is not held back however
 * long the listing takes.  The merge then stages every page into a
 * temporary table, one statement a page, and merges the whole listing with
 * a handful of set-based statements in the run's transaction:
 *   - refresh the provider-owned fields of CIs whose fields changed (a CI
 *     whose fields did not change is not written at all);
 *   - create the new ones under the connector's entity;
 *   - mark missing the CIs that a complete listing no longer contains,
 *     never in a scope (region) that failed, never a resource that failed
 *     to map, and nothing at all when a failed resource had no id;
 *   - record per-resource errors.
 * User-owned fields (entity_id, description, links) are never touched.  The
 * caller commits or aborts: a failed run changes no CI.
 */
#include "postgres.h"

#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

#include "merge.h"

/* per-resource errors kept per run (all are counted) */
#define MERGE_MAX_STORED_ERRORS 1000

/*
 * A staged page: the arguments of the staging statements, column arrays of
 * the page's resources and of its errors; NULL where the page had none.
 * The attributes are parsed while listing, when a run mostly waits.
 */
#define MERGE_PAGE_COLUMNS 11
#define MERGE_PAGE_ROW_COLUMNS 9

static const Oid merge_page_types[MERGE_PAGE_COLUMNS] = {
	TEXTARRAYOID,				/* external_id */
	TEXTARRAYOID,				/* ci_type */
	TEXTARRAYOID,				/* name */
	TEXTARRAYOID,				/* hostname */
	TEXTARRAYOID,				/* ip_address */
	TEXTARRAYOID,				/* os_info */
	JSONBARRAYOID,				/* attributes */
	TEXTARRAYOID,				/* scope */
	BOOLARRAYOID,				/* create_if_new */
	TEXTARRAYOID,				/* error: external_id */
	TEXTARRAYOID,				/* error: message */
};

struct MergeState
{
	Tuplestorestate *pages;
	TupleDesc	page_desc;
};

/* Start a listing: pages are kept in the current memory context. */
MergeState *
MergeBegin(void)
{
	MergeState *state = palloc(sizeof(MergeState));

	state->page_desc = CreateTemplateTupleDesc(MERGE_PAGE_COLUMNS);
	for (int c = 0; c < MERGE_PAGE_COLUMNS; c++)
		TupleDescInitEntry(state->page_desc, c + 1, NULL, merge_page_types[c], -1, 0);
	state->pages = tuplestore_begin_heap(false, false, work_mem);
	return state;
}

/* An array of text, or of jsonb parsed from JSON text; NULLs stay NULL. */
static Datum
MergeArray(char **values, int n, Oid element_type)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};

	Assert(element_type == TEXTOID || element_type == JSONBOID);
	for (int i = 0; i < n; i++)
	{
		nulls[i] = (values[i] == NULL);
		if (nulls[i])
			elems[i] = (Datum) 0;
		else if (element_type == JSONBOID)
			elems[i] = DirectFunctionCall1(jsonb_in, CStringGetDatum(values[i]));
		else
			elems[i] = CStringGetTextDatum(values[i]);
	}
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, element_type, -1, false, TYPALIGN_INT));
}

static Datum
MergeTextArray(char **values, int n)
{
	return MergeArray(values, n, TEXTOID);
}

static Datum
MergeBoolArray(bool *values, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		elems[i] = BoolGetDatum(values[i]);
	return PointerGetDatum(construct_array(elems, n, BOOLOID, 1, true, TYPALIGN_CHAR));
}

/* Keep one page for the merge. */
void
MergeStagePage(MergeState *state, MappedResource *rows, int nrows,
			   char **error_ids, char **error_messages, int nerrors)
{
	Datum		values[MERGE_PAGE_COLUMNS];
	bool		nulls[MERGE_PAGE_COLUMNS];

	memset(nulls, true, sizeof(nulls));
	if (nrows > 0)
	{
		char	  **cols[8];
		bool	   *create = palloc(sizeof(bool) * nrows);

		for (int c = 0; c < 8; c++)
			cols[c] = palloc(sizeof(char *) * nrows);
		for (int i = 0; i < nrows; i++)
		{
			cols[0][i] = rows[i].external_id;
			cols[1][i] = (char *) rows[i].ci_type;
			cols[2][i] = rows[i].name;
			cols[3][i] = rows[i].hostname;
			cols[4][i] = rows[i].ip_address;
			cols[5][i] = rows[i].os_info;
			cols[6][i] = rows[i].attributes;
			cols[7][i] = (char *) rows[i].scope;
			create[i] = rows[i].create_if_new;
		}
		for (int c = 0; c < 8; c++)
		{
			values[c] = MergeArray(cols[c], nrows, c == 6 ? JSONBOID : TEXTOID);
			nulls[c] = false;
		}
		values[8] = MergeBoolArray(create, nrows);
		nulls[8] = false;
	}
	if (nerrors > 0)
	{
		values[9] = MergeTextArray(error_ids, nerrors);
		values[10] = MergeTextArray(error_messages, nerrors);
		nulls[9] = nulls[10] = false;
	}
	if (nrows > 0 || nerrors > 0)
		tuplestore_putvalues(state->pages, state->page_desc, values, nulls);
}

/*
 * Create the staging tables and load every kept page into them, one
 * statement a page (and one for its errors).
 */
static void
MergeLoadStage(MergeState *state)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(state->page_desc, &TTSOpsMinimalTuple);

	if (SPI_execute("CREATE TEMPORARY TABLE cloudconn_stage ("
					"  external_id text PRIMARY KEY, ci_type text NOT NULL, name text NOT NULL,"
					"  hostname text, ip_address inet, os_info text, attributes jsonb NOT NULL,"
					"  scope text, create_if_new boolean NOT NULL) ON COMMIT DROP", false, 0) != SPI_OK_UTILITY ||
		SPI_execute("CREATE TEMPORARY TABLE cloudconn_stage_error ("
					"  external_id text, message text NOT NULL) ON COMMIT DROP", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create the staging tables");

	while (tuplestore_gettupleslot(state->pages, true, false, slot))
	{
		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(slot);
		/* a resource listed twice (pages shifting under us) is kept once */
		if (!slot->tts_isnull[0] &&
			SPI_execute_with_args("INSERT INTO pg_temp.cloudconn_stage "
								  "SELECT u.e, u.t, u.n, u.h, u.ip::inet, u.os, u.a, u.s, u.c"
								  "  FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9) AS u(e, t, n, h, ip, os, a, s, c)"
								  " ON CONFLICT (external_id) DO NOTHING",
								  MERGE_PAGE_ROW_COLUMNS, (Oid *) merge_page_types, slot->tts_values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not stage discovered resources");
		if (!slot->tts_isnull[MERGE_PAGE_ROW_COLUMNS] &&
			SPI_execute_with_args("INSERT INTO pg_temp.cloudconn_stage_error SELECT * FROM unnest($1, $2)",
								  2, (Oid *) merge_page_types + MERGE_PAGE_ROW_COLUMNS, slot->tts_values + MERGE_PAGE_ROW_COLUMNS,
								  NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not stage resource errors");
	}
	ExecDropSingleTupleTableSlot(slot);
	tuplestore_end(state->pages);
	state->pages = NULL;
}

static int64
MergeCount(const char *sql, int nargs, Oid *types, Datum *args)
{
	bool		isnull;
	Datum		d;

	if (SPI_execute_with_args(sql, nargs, types, args, NULL, false, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "merge statement failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

void
MergeFinish(MergeState *state, int64 connector_id, int64 entity_id, int64 run_id, List *failed_scopes,
			MergeCounts *counts)
{
	Oid			types[3] = {INT8OID, INT8OID, TEXTARRAYOID};
	Datum		args[3];
	char	  **scopes = palloc(sizeof(char *) * Max(list_length(failed_scopes), 1));
	int			nscopes = 0;
	int64		staged;
	ListCell   *lc;

	foreach(lc, failed_scopes)
		scopes[nscopes++] = (char *) lfirst(lc);
	args[0] = Int64GetDatum(connector_id);
	args[1] = Int64GetDatum(entity_id);
	args[2] = MergeTextArray(scopes, nscopes);

	MergeLoadStage(state);
	staged = MergeCount("SELECT count(*) FROM pg_temp.cloudconn_stage", 0, NULL, NULL);
	counts->errors = MergeCount("SELECT count(*) FROM pg_temp.cloudconn_stage_error", 0, NULL, NULL);

	counts->updated = MergeCount(
		"WITH refreshed AS ("
		"  UPDATE cloudconn.configuration_item ci"
		"     SET ci_type = s.ci_type, name = s.name, hostname = s.hostname, ip_address = s.ip_address,"
		"         os_info = s.os_info, attributes = s.attributes, missing_since = NULL, updated_at = now()"
		"    FROM pg_temp.cloudconn_stage s"
		"   WHERE ci.source_connector_id = $1 AND ci.external_id = s.external_id"
		"     AND (ci.ci_type, ci.name, ci.hostname, ci.ip_address, ci.os_info, ci.attributes, ci.missing_since IS NULL)"
		"         IS DISTINCT FROM (s.ci_type, s.name, s.hostname, s.ip_address, s.os_info, s.attributes, true)"
		"  RETURNING 1)"
		" SELECT count(*) FROM refreshed", 1, types, args);

	counts->created = MergeCount(
		"WITH created AS ("
		"  INSERT INTO cloudconn.configuration_item"
		"    (entity_id, ci_type, name, hostname, ip_address, os_info, attributes,"
		"     external_id, source_connector_id, first_discovered_at)"
		"  SELECT $2, s.ci_type, s.name, s.hostname, s.ip_address, s.os_info, s.attributes,"
		"         s.external_id, $1, now()"
		"    FROM pg_temp.cloudconn_stage s"
		"   WHERE s.create_if_new"
		"     AND NOT EXISTS (SELECT 1 FROM cloudconn.configuration_item ci"
		"                      WHERE ci.source_connector_id = $1 AND ci.external_id = s.external_id)"
		"  RETURNING 1)"
		" SELECT count(*) FROM created", 2, types, args);

	/*
	 * Missing: only from a complete listing.  A resource that failed to map
	 * was listed (its CI is not missing); one that failed without an id could
	 * be any CI, so then nothing is marked.
	 */
	if (SPI_execute_with_args(
		"UPDATE cloudconn.configuration_item ci SET missing_since = now()"
		" WHERE ci.source_connector_id = $1 AND ci.missing_since IS NULL"
		"   AND NOT EXISTS (SELECT 1 FROM pg_temp.cloudconn_stage s WHERE s.external_id = ci.external_id)"
		"   AND NOT EXISTS (SELECT 1 FROM pg_temp.cloudconn_stage_error e WHERE e.external_id = ci.external_id)"
		"   AND NOT EXISTS (SELECT 1 FROM pg_temp.cloudconn_stage_error e WHERE e.external_id IS NULL)"
		"   AND coalesce(ci.attributes ->> 'region', '') <> ALL ($3)",
		3, types, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not mark missing resources");

	if (SPI_execute_with_args(
		"INSERT INTO cloudconn.run_error (run_id, external_id, message)"
		" SELECT $1, e.external_id, e.message FROM pg_temp.cloudconn_stage_error e LIMIT " CppAsString2(MERGE_MAX_STORED_ERRORS),
		1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(run_id)}, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record resource errors");

	counts->unchanged = staged - counts->created - counts->updated;
	counts->discovered = staged + counts->errors;
}
