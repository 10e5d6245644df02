/*
 * merge.c
 *		The merge engine: discovered resources become CIs (README: Runs and
 *		the merge).
 *
 * While a run lists, each page is kept as one tuple in a tuplestore
 * (memory up to work_mem, then a temporary file): its listing's resource
 * type and scope, and column arrays of its resources and of its errors.
 * Listing writes nothing to the database, so the run's transaction has no
 * xid and holds no snapshot while it waits on the cloud, and VACUUM is not
 * held back however long the listing takes.  Resources whose CI is
 * unchanged (the same digest, see known_cis.c) are not kept at all.  The
 * merge then, in the run's transaction, one statement a page, creates the
 * CIs of new resources under the connector's entity (straight from the
 * page), stages the changed ones into a temporary table, and merges those
 * with a handful of set-based statements:
 *   - refresh the provider-owned fields of CIs whose fields changed (a CI
 *     whose fields did not change is not written at all);
 *   - create any the run thought it knew that is gone meanwhile;
 *   - mark missing the CIs the engine found no complete listing has
 *     (discovery.c, known_cis.c): never a CI of a listing that failed or
 *     was not made (a disabled type, a region no longer listed), never a
 *     resource that failed to map, and nothing of a listing in which a
 *     resource failed without an id;
 *   - record per-resource errors and failed listings.
 * The scope of a CI is the one staged with its resource (never read from
 * its attributes).  User-owned fields (entity_id, description, links) are
 * never touched.  The caller commits or aborts: a failed run changes no CI.
 *
 * History (cloudconn.ci_change; README: Change history): each statement
 * that writes CIs writes their changes too, in the same statement (a
 * data-modifying CTE): per CI refreshed an 'updated' change per provider
 * field that differs (attributes per top-level key) and a 'returned' one if
 * it was missing, a 'missing' change per CI marked missing.  A CI created
 * has no change written: it holds the run that created it
 * (discovered_by_run_id), from which ci_changes derives its 'discovered'
 * entry, so an initial inventory writes no history.  A CI not written has
 * no change, so an unchanged run writes none.  cloudconn.history_writes off
 * (superuser, for measurement only) runs the same statements without their
 * history.
 */
#include "postgres.h"

#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

#include "ci_foreign_keys.h"
#include "guc.h"
#include "merge.h"

/* per-resource errors kept per run (all are counted) */
#define MERGE_MAX_STORED_ERRORS 1000

/*
 * A kept page: the arguments of the staging statements.  The listing's
 * type and scope, then column arrays of its resources and of its errors;
 * NULL where the page had none.
 */
enum
{
	PAGE_CI_TYPE,
	PAGE_SCOPE,
	PAGE_EXTERNAL_ID,
	PAGE_NAME,
	PAGE_HOSTNAME,
	PAGE_IP_ADDRESS,
	PAGE_OS_INFO,
	PAGE_ATTRIBUTES,
	PAGE_CREATE_IF_NEW,
	PAGE_KNOWN,
	PAGE_ERROR_ID,
	PAGE_ERROR_MESSAGE,
	PAGE_COLUMNS
};

static const Oid merge_page_types[PAGE_COLUMNS] = {
	TEXTOID,					/* ci_type */
	TEXTOID,					/* scope */
	TEXTARRAYOID,				/* external_id */
	TEXTARRAYOID,				/* name */
	TEXTARRAYOID,				/* hostname */
	TEXTARRAYOID,				/* ip_address */
	TEXTARRAYOID,				/* os_info */
	JSONBARRAYOID,				/* attributes */
	BOOLARRAYOID,				/* create_if_new */
	BOOLARRAYOID,				/* known: the connector had its CI when the run began */
	TEXTARRAYOID,				/* error: external_id */
	TEXTARRAYOID,				/* error: message */
};

struct MergeState
{
	Tuplestorestate *pages;
	TupleDesc	page_desc;
	List	   *types;			/* of const ResourceType *: the run's */
	int64	   *created;		/* per type: CIs created from pages */
	int64	   *not_created;	/* per type: new resources that made no CI */
	bool		history;		/* write the changes (cloudconn.history_writes) */
	int64		run_id;
};

/* Start a run: pages are kept in the current memory context. */
MergeState *
MergeBegin(List *types)
{
	MergeState *state = palloc(sizeof(MergeState));

	state->types = types;
	state->created = palloc0(sizeof(int64) * Max(list_length(types), 1));
	state->not_created = palloc0(sizeof(int64) * Max(list_length(types), 1));
	state->page_desc = CreateTemplateTupleDesc(PAGE_COLUMNS);
	for (int c = 0; c < PAGE_COLUMNS; c++)
		TupleDescInitEntry(state->page_desc, c + 1, NULL, merge_page_types[c], -1, 0);
	state->pages = tuplestore_begin_heap(false, false, work_mem);
	return state;
}

/* An array of n Datums (NULL where isnull) of element_type. */
static Datum
MergeArray(Datum *elems, bool *nulls, int n, Oid element_type)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(element_type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, element_type,
											  typlen, typbyval, typalign));
}

static Datum
MergeTextArray(char **values, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));

	for (int i = 0; i < n; i++)
	{
		nulls[i] = (values[i] == NULL);
		elems[i] = nulls[i] ? (Datum) 0 : CStringGetTextDatum(values[i]);
	}
	return MergeArray(elems, nulls, n, TEXTOID);
}

void
MergeStagePage(MergeState *state, const char *ci_type, const char *scope,
			   MappedResource *rows, const bool *known, int nrows, MergeError *errors, int nerrors)
{
	Datum		values[PAGE_COLUMNS];
	bool		nulls[PAGE_COLUMNS];

	if (nrows == 0 && nerrors == 0)
		return;
	memset(nulls, true, sizeof(nulls));
	values[PAGE_CI_TYPE] = CStringGetTextDatum(ci_type);
	values[PAGE_SCOPE] = CStringGetTextDatum(scope);
	nulls[PAGE_CI_TYPE] = nulls[PAGE_SCOPE] = false;
	if (nrows > 0)
	{
		char	  **text[5];
		Datum	   *attributes = palloc(sizeof(Datum) * nrows);
		Datum	   *create = palloc(sizeof(Datum) * nrows);
		Datum	   *was_known = palloc(sizeof(Datum) * nrows);
		bool	   *no_nulls = palloc0(sizeof(bool) * nrows);

		for (int c = 0; c < 5; c++)
			text[c] = palloc(sizeof(char *) * nrows);
		for (int i = 0; i < nrows; i++)
		{
			text[0][i] = rows[i].external_id;
			text[1][i] = rows[i].name;
			text[2][i] = rows[i].hostname;
			text[3][i] = rows[i].ip_address;
			text[4][i] = rows[i].os_info;
			attributes[i] = JsonbPGetDatum(rows[i].attributes);
			create[i] = BoolGetDatum(rows[i].create_if_new);
			was_known[i] = BoolGetDatum(known[i]);
		}
		for (int c = 0; c < 5; c++)
		{
			values[PAGE_EXTERNAL_ID + c] = MergeTextArray(text[c], nrows);
			nulls[PAGE_EXTERNAL_ID + c] = false;
		}
		values[PAGE_ATTRIBUTES] = MergeArray(attributes, no_nulls, nrows, JSONBOID);
		values[PAGE_CREATE_IF_NEW] = MergeArray(create, no_nulls, nrows, BOOLOID);
		values[PAGE_KNOWN] = MergeArray(was_known, no_nulls, nrows, BOOLOID);
		nulls[PAGE_ATTRIBUTES] = nulls[PAGE_CREATE_IF_NEW] = nulls[PAGE_KNOWN] = false;
	}
	if (nerrors > 0)
	{
		char	  **ids = palloc(sizeof(char *) * nerrors);
		char	  **messages = palloc(sizeof(char *) * nerrors);

		for (int i = 0; i < nerrors; i++)
		{
			ids[i] = errors[i].external_id;
			messages[i] = errors[i].message;
		}
		values[PAGE_ERROR_ID] = MergeTextArray(ids, nerrors);
		values[PAGE_ERROR_MESSAGE] = MergeTextArray(messages, nerrors);
		nulls[PAGE_ERROR_ID] = nulls[PAGE_ERROR_MESSAGE] = false;
	}
	tuplestore_putvalues(state->pages, state->page_desc, values, nulls);
}

/* The position of a ci_type among the run's types. */
static int
MergeTypeIndex(MergeState *state, const char *ci_type)
{
	int			i = 0;
	ListCell   *lc;

	foreach(lc, state->types)
	{
		if (strcmp(((const ResourceType *) lfirst(lc))->ci_type, ci_type) == 0)
			return i;
		i++;
	}
	elog(ERROR, "resource type %s was listed but is not enabled", ci_type);
	return -1;					/* keep compiler quiet */
}

/*
 * A page's new CIs ($1 type, $2 scope, $3.. the page's arrays, $11
 * connector, $12 entity, $13 the run, their 'discovered' entry)
 */
static const char *const merge_create_sql =
"INSERT INTO cloudconn.configuration_item"
"  (entity_id, ci_type, name, hostname, ip_address, os_info, attributes,"
"   external_id, source_connector_id, first_discovered_at, discovery_scope, discovered_by_run_id)"
" SELECT $12, $1, u.n, u.h, u.ip::inet, u.os, u.a, u.e, $11, now(), $2, $13"
"   FROM unnest($3, $4, $5, $6, $7, $8, $9, $10) AS u(e, n, h, ip, os, a, c, k)"
"  WHERE u.c AND NOT u.k";

/*
 * A page's new resources (no CI when the run began) become CIs at once,
 * from the page's arrays: they need no staging.  A resource listed twice
 * (pages shifting under us) was kept once (known_cis.c).
 */
static void
MergeCreatePage(MergeState *state, SPIPlanPtr plan, TupleTableSlot *slot, int64 connector_id,
				int64 entity_id)
{
	Datum		args[PAGE_KNOWN + 4];
	int			t = MergeTypeIndex(state, TextDatumGetCString(slot->tts_values[PAGE_CI_TYPE]));
	Datum	   *flags;
	int			nnew = 0;
	int			n;

	deconstruct_array(DatumGetArrayTypeP(slot->tts_values[PAGE_KNOWN]), BOOLOID, 1, true, TYPALIGN_CHAR,
					  &flags, NULL, &n);
	for (int i = 0; i < n; i++)
		nnew += DatumGetBool(flags[i]) ? 0 : 1;
	if (nnew == 0)
		return;
	memcpy(args, slot->tts_values, sizeof(Datum) * (PAGE_KNOWN + 1));
	args[PAGE_KNOWN + 1] = Int64GetDatum(connector_id);
	args[PAGE_KNOWN + 2] = Int64GetDatum(entity_id);
	args[PAGE_KNOWN + 3] = Int64GetDatum(state->run_id);
	if (SPI_execute_plan(plan, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not create CIs");
	state->created[t] += SPI_processed;
	state->not_created[t] += nnew - SPI_processed;
}

/*
 * Create the staging tables, create the CIs of new resources, and stage
 * the changed ones, one statement a page (and one for its errors).
 */
static void
MergeLoadStage(MergeState *state, int64 connector_id, int64 entity_id)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(state->page_desc, &TTSOpsMinimalTuple);
	int			nestlevel = -1;
	Oid			create_types[PAGE_KNOWN + 4];
	SPIPlanPtr	create_plan;
	SPIPlanPtr	stage_plan;

	if (SPI_execute("CREATE TEMPORARY TABLE cloudconn_stage ("
					"  external_id text PRIMARY KEY, ci_type text NOT NULL, scope text NOT NULL,"
					"  name text NOT NULL, hostname text, ip_address inet, os_info text,"
					"  attributes jsonb NOT NULL, create_if_new boolean NOT NULL) ON COMMIT DROP",
					false, 0) != SPI_OK_UTILITY ||
		SPI_execute("CREATE TEMPORARY TABLE cloudconn_stage_error ("
					"  external_id text, ci_type text NOT NULL, scope text NOT NULL,"
					"  message text NOT NULL) ON COMMIT DROP", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create the staging tables");

	/* the new CIs' foreign keys checked once for the whole run, when that is sound */
	if (CiForeignKeysLockOnce(entity_id, connector_id))
		nestlevel = CiForeignKeysSkipRowChecks();

	/*
	 * The two statements of every page are parsed once for the run (a run
	 * of 100,000 resources has 500 pages or more), after the row checks'
	 * setting, under which they are planned and run.
	 */
	memcpy(create_types, merge_page_types, sizeof(Oid) * (PAGE_KNOWN + 1));
	create_types[PAGE_KNOWN + 1] = INT8OID;
	create_types[PAGE_KNOWN + 2] = INT8OID;
	create_types[PAGE_KNOWN + 3] = INT8OID;
	create_plan = SPI_prepare(merge_create_sql, PAGE_KNOWN + 4, create_types);
	stage_plan = SPI_prepare("INSERT INTO pg_temp.cloudconn_stage "
							 "SELECT u.e, $1, $2, u.n, u.h, u.ip::inet, u.os, u.a, u.c"
							 "  FROM unnest($3, $4, $5, $6, $7, $8, $9, $10) AS u(e, n, h, ip, os, a, c, k)"
							 " WHERE u.k"
							 " ON CONFLICT (external_id) DO NOTHING",
							 PAGE_KNOWN + 1, (Oid *) merge_page_types);
	if (create_plan == NULL || stage_plan == NULL)
		elog(ERROR, "could not prepare the merge's statements: %s", SPI_result_code_string(SPI_result));

	while (tuplestore_gettupleslot(state->pages, true, false, slot))
	{
		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(slot);
		if (!slot->tts_isnull[PAGE_EXTERNAL_ID])
		{
			MergeCreatePage(state, create_plan, slot, connector_id, entity_id);
			/* a resource listed twice (pages shifting under us) is kept once */
			if (SPI_execute_plan(stage_plan, slot->tts_values, NULL, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not stage discovered resources");
		}
		if (!slot->tts_isnull[PAGE_ERROR_ID])
		{
			Oid			types[4] = {TEXTOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID};
			Datum		args[4] = {slot->tts_values[PAGE_CI_TYPE], slot->tts_values[PAGE_SCOPE],
			slot->tts_values[PAGE_ERROR_ID], slot->tts_values[PAGE_ERROR_MESSAGE]};

			if (SPI_execute_with_args("INSERT INTO pg_temp.cloudconn_stage_error"
									  " SELECT u.e, $1, $2, u.m FROM unnest($3, $4) AS u(e, m)",
									  4, types, args, NULL, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not stage resource errors");
		}
	}
	if (nestlevel >= 0)
		CiForeignKeysRestoreRowChecks(nestlevel);
	SPI_freeplan(create_plan);
	SPI_freeplan(stage_plan);
	ExecDropSingleTupleTableSlot(slot);
	tuplestore_end(state->pages);
	state->pages = NULL;
}

/*
 * Run a statement that returns (ci_type, count) rows, adding each count to
 * the matching type's field (at offset field of MergeCounts), and return
 * the total.
 */
static int64
MergeCountByType(const char *sql, int nargs, Oid *types, Datum *args, List *ci_types,
				 MergeCounts *type_counts, size_t field)
{
	int64		total = 0;
	int			rc = SPI_execute_with_args(sql, nargs, types, args, NULL, false, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "merge statement failed: %s", SPI_result_code_string(rc));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		char	   *ci_type = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
		int64		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
		int			i = 0;
		ListCell   *lc;

		total += n;
		foreach(lc, ci_types)
		{
			if (strcmp(((const ResourceType *) lfirst(lc))->ci_type, ci_type) == 0)
				*(int64 *) ((char *) &type_counts[i] + field) += n;
			i++;
		}
	}
	return total;
}

/*
 * Refresh the provider-owned fields of the CIs whose fields changed ($1 the
 * connector); returns (ci_type, count) rows.
 */
#define MERGE_REFRESH_SET \
	"  UPDATE cloudconn.configuration_item ci" \
	"     SET ci_type = s.ci_type, name = s.name, hostname = s.hostname, ip_address = s.ip_address," \
	"         os_info = s.os_info, attributes = s.attributes, discovery_scope = s.scope," \
	"         missing_since = NULL, updated_at = now()"
#define MERGE_REFRESH_CHANGED(o) \
	"     AND (" o ".ci_type, " o ".name, " o ".hostname, " o ".ip_address, " o ".os_info, " o ".attributes," \
	"          " o ".discovery_scope, " o ".missing_since IS NULL)" \
	"         IS DISTINCT FROM (s.ci_type, s.name, s.hostname, s.ip_address, s.os_info, s.attributes," \
	"          s.scope, true)"

static const char *const merge_refresh_sql =
"WITH refreshed AS ("
MERGE_REFRESH_SET
"    FROM pg_temp.cloudconn_stage s"
"   WHERE ci.source_connector_id = $1 AND ci.external_id = s.external_id"
MERGE_REFRESH_CHANGED("ci")
"  RETURNING s.ci_type)"
" SELECT ci_type, count(*) FROM refreshed GROUP BY 1";

/*
 * The same, and their changes ($2 the run): the old row is read in the same
 * statement (o, the snapshot's version), so each field's old value is known
 * without a round trip.  A field is turned into jsonb only when it changed;
 * attributes are compared key by key only when they differ, over the keys
 * of both (old || new).
 */
#define MERGE_FIELD_CHANGE(field, old, new) \
	"  UNION ALL SELECT id, 'updated', '" field "', to_jsonb(" old "), to_jsonb(" new ")" \
	"    FROM refreshed WHERE " old " IS DISTINCT FROM " new

static const char *const merge_refresh_with_history_sql =
"WITH refreshed AS ("
MERGE_REFRESH_SET
"    FROM pg_temp.cloudconn_stage s"
"    JOIN cloudconn.configuration_item o ON o.source_connector_id = $1 AND o.external_id = s.external_id"
"   WHERE ci.id = o.id"
MERGE_REFRESH_CHANGED("o")
"  RETURNING ci.id, s.ci_type, o.ci_type AS old_ci_type, s.name, o.name AS old_name,"
"            s.hostname, o.hostname AS old_hostname, s.ip_address, o.ip_address AS old_ip_address,"
"            s.os_info, o.os_info AS old_os_info, s.scope, o.discovery_scope AS old_scope,"
"            s.attributes, o.attributes AS old_attributes, o.missing_since AS was_missing),"
" changes AS ("
"  INSERT INTO cloudconn.ci_change (ci_id, run_id, connector_id, kind, field, old_value, new_value)"
"  SELECT c.id, $2, $1, c.kind, c.field, c.old_value, c.new_value FROM ("
"    SELECT id, 'returned' AS kind, 'missing_since' AS field, to_jsonb(was_missing) AS old_value,"
"           NULL::jsonb AS new_value"
"      FROM refreshed WHERE was_missing IS NOT NULL"
MERGE_FIELD_CHANGE("ci_type", "old_ci_type", "ci_type")
MERGE_FIELD_CHANGE("name", "old_name", "name")
MERGE_FIELD_CHANGE("hostname", "old_hostname", "hostname")
MERGE_FIELD_CHANGE("ip_address", "abbrev(old_ip_address)", "abbrev(ip_address)")
MERGE_FIELD_CHANGE("os_info", "old_os_info", "os_info")
MERGE_FIELD_CHANGE("discovery_scope", "old_scope", "scope")
"    UNION ALL"
"    SELECT id, 'updated', 'attributes.' || key, o -> key, n -> key"
"      FROM (SELECT id, old_attributes AS o, attributes AS n,"
"                   jsonb_object_keys(old_attributes || attributes) AS key"
"              FROM refreshed WHERE old_attributes <> attributes) AS a"
"     WHERE (o -> key) IS DISTINCT FROM (n -> key)) AS c"
"   ORDER BY c.id, c.field)"
" SELECT ci_type, count(*) FROM refreshed GROUP BY 1";

/* Create a CI the run thought it knew, gone meanwhile ($1 connector, $2 entity, $3 the run). */
static const char *const merge_recreate_sql =
"WITH created AS ("
"  INSERT INTO cloudconn.configuration_item"
"    (entity_id, ci_type, name, hostname, ip_address, os_info, attributes,"
"     external_id, source_connector_id, first_discovered_at, discovery_scope, discovered_by_run_id)"
"  SELECT $2, s.ci_type, s.name, s.hostname, s.ip_address, s.os_info, s.attributes,"
"         s.external_id, $1, now(), s.scope, $3"
"    FROM pg_temp.cloudconn_stage s"
"   WHERE s.create_if_new"
"     AND NOT EXISTS (SELECT 1 FROM cloudconn.configuration_item ci"
"                      WHERE ci.source_connector_id = $1 AND ci.external_id = s.external_id)"
"  RETURNING ci_type)"
" SELECT ci_type, count(*) FROM created GROUP BY 1";

/* Mark missing the CIs no complete listing found ($1 their ids). */
#define MERGE_MISSING_SQL \
	"UPDATE cloudconn.configuration_item SET missing_since = now()" \
	" WHERE id = ANY ($1) AND missing_since IS NULL"

static const char *const merge_missing_sql = MERGE_MISSING_SQL;

/* the same, and a 'missing' change of each ($2 connector, $3 run) */
static const char *const merge_missing_with_history_sql =
"WITH marked AS (" MERGE_MISSING_SQL " RETURNING id, missing_since)"
" INSERT INTO cloudconn.ci_change (ci_id, run_id, connector_id, kind, field, new_value)"
" SELECT id, $3, $2, 'missing', 'missing_since', to_jsonb(missing_since) FROM marked";

void
MergeFinish(MergeState *state, int64 connector_id, int64 entity_id, int64 run_id,
			List *listings, List *types, const int64 *unchanged,
			const int64 *missing_ids, int nmissing,
			MergeCounts *counts, MergeCounts *type_counts)
{
	Oid			argtypes[3] = {INT8OID, INT8OID, INT8OID};
	Datum		args[3];
	Datum		history_args[2];
	int			ntypes = list_length(types);

	/* per type: .discovered counts the staged resources, .errors the per-resource errors */
	MergeCounts *staged_by_type = palloc0(sizeof(MergeCounts) * Max(ntypes, 1));
	int64		resource_errors;
	ListCell   *lc;
	int			jit_nestlevel;

	/*
	 * No JIT for the merge: its statements touch a run's changes once, and
	 * the history's estimates (rows per attribute key) would otherwise pass
	 * jit_optimize_above_cost, and compiling takes seconds.
	 */
	jit_nestlevel = NewGUCNestLevel();
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	memset(counts, 0, sizeof(*counts));
	memset(type_counts, 0, sizeof(MergeCounts) * Max(ntypes, 1));
	args[0] = Int64GetDatum(connector_id);
	args[1] = Int64GetDatum(entity_id);
	args[2] = Int64GetDatum(run_id);
	history_args[0] = args[0];
	history_args[1] = args[2];
	state->history = cloudconn_history_writes;
	state->run_id = run_id;

	MergeLoadStage(state, connector_id, entity_id);
	(void) MergeCountByType("SELECT ci_type, count(*) FROM pg_temp.cloudconn_stage GROUP BY 1",
							0, NULL, NULL, types, staged_by_type, offsetof(MergeCounts, discovered));
	resource_errors = MergeCountByType("SELECT ci_type, count(*) FROM pg_temp.cloudconn_stage_error GROUP BY 1",
									   0, NULL, NULL, types, staged_by_type, offsetof(MergeCounts, errors));

	(void) MergeCountByType(state->history ? merge_refresh_with_history_sql : merge_refresh_sql,
							state->history ? 2 : 1, argtypes, history_args, types, type_counts,
							offsetof(MergeCounts, updated));

	/* a CI the run thought it knew, gone meanwhile */
	(void) MergeCountByType(merge_recreate_sql, 3, argtypes, args, types, type_counts,
							offsetof(MergeCounts, created));

	if (nmissing > 0)
	{
		Datum	   *ids = palloc(sizeof(Datum) * nmissing);
		Datum		missing_args[3];
		int			rc;

		for (int i = 0; i < nmissing; i++)
			ids[i] = Int64GetDatum(missing_ids[i]);
		missing_args[0] = PointerGetDatum(construct_array(ids, nmissing, INT8OID, 8,
														  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		missing_args[1] = Int64GetDatum(connector_id);
		missing_args[2] = Int64GetDatum(run_id);
		rc = SPI_execute_with_args(state->history ? merge_missing_with_history_sql : merge_missing_sql,
								   state->history ? 3 : 1, (Oid[]) {INT8ARRAYOID, INT8OID, INT8OID},
								   missing_args, NULL, false, 0);
		if (rc != (state->history ? SPI_OK_INSERT : SPI_OK_UPDATE))
			elog(ERROR, "could not mark missing resources");
	}

	if (SPI_execute_with_args(
		"INSERT INTO cloudconn.run_error (run_id, external_id, message, ci_type, scope)"
		" SELECT $1, e.external_id, e.message, e.ci_type, e.scope FROM pg_temp.cloudconn_stage_error e"
		" LIMIT " CppAsString2(MERGE_MAX_STORED_ERRORS),
		1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(run_id)}, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record resource errors");

	/* failed listings: an error each, counted with their type's errors */
	foreach(lc, listings)
	{
		MergeListing *l = lfirst(lc);
		Oid			etypes[4] = {INT8OID, TEXTOID, TEXTOID, TEXTOID};
		Datum		eargs[4];
		int			i = 0;
		ListCell   *lt;

		if (l->message == NULL)
			continue;
		eargs[0] = Int64GetDatum(run_id);
		eargs[1] = CStringGetTextDatum(l->message);
		eargs[2] = CStringGetTextDatum(l->ci_type);
		eargs[3] = CStringGetTextDatum(l->scope);
		if (SPI_execute_with_args("INSERT INTO cloudconn.run_error (run_id, external_id, message, ci_type, scope)"
								  " VALUES ($1, NULL, $2, $3, $4)",
								  4, etypes, eargs, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record a failed listing");
		counts->errors++;
		foreach(lt, types)
		{
			if (strcmp(((const ResourceType *) lfirst(lt))->ci_type, l->ci_type) == 0)
				type_counts[i].errors++;
			i++;
		}
	}

	/*
	 * discovered = created + updated + unchanged + per-resource errors.  So
	 * far t->created counts the staged resources created, t->errors the
	 * type's failed listings.
	 */
	memset(counts, 0, offsetof(MergeCounts, errors));
	for (int i = 0; i < ntypes; i++)
	{
		MergeCounts *t = &type_counts[i];

		t->unchanged = unchanged[i] + state->not_created[i] + staged_by_type[i].discovered - t->created - t->updated;
		t->created += state->created[i];
		t->errors += staged_by_type[i].errors;
		t->discovered = t->created + t->updated + t->unchanged + staged_by_type[i].errors;
		counts->discovered += t->discovered;
		counts->created += t->created;
		counts->updated += t->updated;
		counts->unchanged += t->unchanged;
	}
	counts->errors += resource_errors;
	AtEOXact_GUC(true, jit_nestlevel);
}
