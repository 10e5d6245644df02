/*
 * discovery.c
 *		The discovery engine: a run loads its connector, lets the provider
 *		list every enabled resource type in every scope, maps each page as
 *		it comes (the resource type's map function) and keeps it for the
 *		merge, then merges and records the run: its status, its counts and
 *		its counts per resource type.  The engine knows nothing of any
 *		provider: what it learns of one is in the registry (provider.h).
 *
 * Memory: a page's items and mapped rows live in the provider's page
 * context, reset after each page; what is kept for the merge is copied
 * into the merge's tuplestore.  No snapshot is held while the provider
 * lists (see the run worker).
 */
#include "postgres.h"

#include <arpa/inet.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "ci_digest.h"
#include "discovery.h"
#include "known_cis.h"
#include "run_slots.h"

typedef struct DiscoveryEngine
{
	MergeState *merge;			/* the pages listed so far, but for unchanged resources */
	KnownCis   *known;			/* the connector's CIs when the run began */
	List	   *types;			/* of const ResourceType *: the enabled ones */
	int64	   *unchanged;		/* per type: resources left out of the merge */
	List	   *listings;		/* of MergeListing: those that ended */
	List	   *blocked_types;	/* (type, scope) in which a resource failed without an id */
	List	   *blocked_scopes;
	DiscoveryFigures *figures;
	MemoryContext cxt;			/* the run's: where listings are kept */
} DiscoveryEngine;

/*
 * The worker's private resident memory (RssAnon on Linux): what it holds
 * itself, unlike the resident size, which also counts the shared buffers
 * it touched.  0 where /proc does not tell.
 */
static long
DiscoveryPrivateMemoryKb(void)
{
	FILE	   *f = AllocateFile("/proc/self/status", "r");
	char		line[256];
	long		kb = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
	{
		if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
			break;
	}
	FreeFile(f);
	return kb;
}

static void
DiscoveryNoteMemory(DiscoveryFigures *figures)
{
	figures->peak_memory = Max(figures->peak_memory, MemoryContextMemAllocated(TopMemoryContext, true));
	figures->peak_private_kb = Max(figures->peak_private_kb, DiscoveryPrivateMemoryKb());
}

/* An IP address as inet takes it from a provider: a plain IPv4 or IPv6 address. */
static bool
DiscoveryValidAddress(const char *s)
{
	unsigned char addr[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

/*
 * Whether the resource's CI already has exactly these provider fields;
 * *known whether the connector has its CI at all.
 */
static bool
DiscoveryUnchanged(DiscoveryEngine *engine, const ResourceType *type, const char *scope,
				   const MappedResource *row, bool *known)
{
	CiDigestFields f;
	uint8		digest[CI_DIGEST_BYTES];

	f.ci_type = type->ci_type;
	f.name = row->name;
	f.hostname = row->hostname;
	f.ip_address = row->ip_address ? DirectFunctionCall1(inet_in, CStringGetDatum(row->ip_address)) : (Datum) 0;
	f.os_info = row->os_info;
	f.attributes = row->attributes;
	f.scope = scope;
	CiDigest(&f, digest);
	return KnownCisSee(engine->known, row->external_id, digest, known);
}

/* The position of type among the enabled ones. */
static int
DiscoveryTypeIndex(DiscoveryEngine *engine, const ResourceType *type)
{
	int			i = 0;
	ListCell   *lc;

	foreach(lc, engine->types)
	{
		if (lfirst(lc) == type)
			return i;
		i++;
	}
	elog(ERROR, "resource type %s was listed but is not enabled", type->ci_type);
	return -1;					/* keep compiler quiet */
}

/* A resource failed without an id: nothing of its listing may be marked missing. */
static void
DiscoveryBlock(DiscoveryEngine *engine, const ResourceType *type, const char *scope)
{
	MemoryContext old = MemoryContextSwitchTo(engine->cxt);
	ListCell   *lt;
	ListCell   *ls;

	forboth(lt, engine->blocked_types, ls, engine->blocked_scopes)
	{
		if (lfirst(lt) == type->ci_type && strcmp(lfirst(ls), scope) == 0)
		{
			MemoryContextSwitchTo(old);
			return;
		}
	}
	engine->blocked_types = lappend(engine->blocked_types, (char *) type->ci_type);
	engine->blocked_scopes = lappend(engine->blocked_scopes, pstrdup(scope));
	MemoryContextSwitchTo(old);
}

/*
 * Map, validate and keep one page; report progress.  A resource whose CI
 * has the same provider fields (the same digest) is only marked seen: it
 * is not kept for the merge.
 */
void
DiscoveryPage(DiscoveryContext *ctx, const ResourceType *type, const char *scope, List *items,
			  const bool *untranslatable)
{
	DiscoveryEngine *engine = (DiscoveryEngine *) ctx->engine;
	int			n = list_length(items);
	MappedResource *rows = palloc(sizeof(MappedResource) * Max(n, 1));
	bool	   *known = palloc(sizeof(bool) * Max(n, 1));
	MergeError *errors = palloc(sizeof(MergeError) * Max(n, 1));
	int			nrows = 0,
				nerrors = 0,
				nseen = 0,
				i = 0,
				type_index = DiscoveryTypeIndex(engine, type);
	ListCell   *lc;

	CHECK_FOR_INTERRUPTS();
	foreach(lc, items)
	{
		char	   *error = NULL;
		MappedResource *row = &rows[nrows];
		bool		mapped = type->map(ctx->connector, scope, lfirst(lc), row, &error);

		if (mapped && row->external_id != NULL && untranslatable != NULL && untranslatable[i])
		{
			mapped = false;
			error = psprintf("%s has characters that the database's encoding \"%s\" cannot hold",
							 row->external_id, GetDatabaseEncodingName());
		}
		if (mapped && row->external_id != NULL && row->ip_address != NULL &&
			!DiscoveryValidAddress(row->ip_address))
		{
			mapped = false;
			error = psprintf("%s has a malformed IP address", row->external_id);
		}
		i++;
		if (!mapped)
		{
			errors[nerrors].external_id = row->external_id;
			errors[nerrors].message = error;
			nerrors++;
			if (row->external_id != NULL)
				(void) KnownCisSee(engine->known, row->external_id, NULL, NULL);
			else
				DiscoveryBlock(engine, type, scope);
			continue;
		}
		if (row->external_id == NULL)
			continue;			/* filtered out */
		nseen++;
		if (DiscoveryUnchanged(engine, type, scope, row, &known[nrows]))
			engine->unchanged[type_index]++;
		else
			nrows++;
	}
	MergeStagePage(engine->merge, type->ci_type, scope, rows, known, nrows, errors, nerrors);
	/* whatever catalog lookups mapping made, no snapshot is held while we wait */
	InvalidateCatalogSnapshot();

	DiscoveryNoteMemory(engine->figures);
	RunSlotsAddProgress(1, nseen + nerrors);
}

static void
DiscoveryEnded(DiscoveryContext *ctx, const ResourceType *type, const char *scope, const char *message)
{
	DiscoveryEngine *engine = (DiscoveryEngine *) ctx->engine;
	MemoryContext old = MemoryContextSwitchTo(engine->cxt);
	MergeListing *l = palloc(sizeof(MergeListing));

	l->ci_type = type->ci_type;
	l->scope = pstrdup(scope);
	l->message = message ? pstrdup(message) : NULL;
	engine->listings = lappend(engine->listings, l);
	MemoryContextSwitchTo(old);
}

void
DiscoveryListed(DiscoveryContext *ctx, const ResourceType *type, const char *scope)
{
	DiscoveryEnded(ctx, type, scope, NULL);
}

void
DiscoveryFailed(DiscoveryContext *ctx, const ResourceType *type, const char *scope, const char *message)
{
	DiscoveryEnded(ctx, type, scope, message);
}

void
DiscoveryNote(DiscoveryContext *ctx, const char *note)
{
	DiscoveryEngine *engine = (DiscoveryEngine *) ctx->engine;

	/* kept in the figures, which outlive the run's transaction and its ERROR */
	strlcpy(engine->figures->note, note, sizeof(engine->figures->note));
}

/*
 * {"<ci_type>": {"discovered": n, "created": n, "updated": n,
 * "unchanged": n, "errors": n}, ...} for every enabled type.
 */
static Datum
DiscoveryCountsByType(List *types, MergeCounts *type_counts)
{
	StringInfoData buf;
	int			i = 0;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	foreach(lc, types)
	{
		MergeCounts *c = &type_counts[i];

		if (i++ > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, ((const ResourceType *) lfirst(lc))->ci_type);
		appendStringInfo(&buf, ": {\"discovered\": " INT64_FORMAT ", \"created\": " INT64_FORMAT
						 ", \"updated\": " INT64_FORMAT ", \"unchanged\": " INT64_FORMAT
						 ", \"errors\": " INT64_FORMAT "}",
						 c->discovered, c->created, c->updated, c->unchanged, c->errors);
	}
	appendStringInfoChar(&buf, '}');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
}

static void
DiscoveryRecord(int64 run_id, const char *status, MergeCounts *counts, Datum counts_by_type)
{
	Oid			types[9] = {INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, JSONBOID};
	Datum		args[9] = {Int64GetDatum(run_id), CStringGetTextDatum(status),
		Int64GetDatum(counts->discovered), Int64GetDatum(counts->created),
		Int64GetDatum(counts->updated), Int64GetDatum(counts->unchanged),
		Int64GetDatum(counts->errors), Int64GetDatum(RunSlotsPagesFetched()),
	counts_by_type};

	if (SPI_execute_with_args("UPDATE cloudconn.run SET status = $2, finished_at = clock_timestamp(),"
							  "  discovered = $3, created = $4, updated = $5, unchanged = $6,"
							  "  error_count = $7, pages_fetched = $8, counts_by_type = $9"
							  " WHERE id = $1",
							  9, types, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the run");
}

const char *
DiscoveryRun(int64 run_id, int64 connector_id, MergeCounts *counts, DiscoveryFigures *figures)
{
	ProviderConnector conn;
	DiscoveryContext ctx;
	DiscoveryEngine engine;
	MergeCounts *type_counts;
	MergeListing *first_failure = NULL;
	bool		any_listed = false;
	List	   *complete_types = NIL;
	List	   *complete_scopes = NIL;
	int64	   *missing;
	int			nmissing;
	const char *status;
	TimestampTz listing_start = GetCurrentTimestamp();
	TimestampTz merge_start;
	ListCell   *lc;

	if (!ProviderConnectorLoad(connector_id, InvalidOid, &conn, CurrentMemoryContext))
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("connector " INT64_FORMAT " was deleted", connector_id)));

	memset(&engine, 0, sizeof(engine));
	engine.figures = figures;
	engine.cxt = CurrentMemoryContext;
	engine.types = conn.resource_types;
	engine.unchanged = palloc0(sizeof(int64) * Max(list_length(conn.resource_types), 1));
	engine.known = KnownCisLoad(connector_id);
	memset(&ctx, 0, sizeof(ctx));
	ctx.connector = &conn;
	ctx.http = HttpClientCreate();
	ctx.engine = &engine;

	/*
	 * List without a snapshot: the transaction has no xid until the merge,
	 * so however long the cloud takes, VACUUM is not held back.
	 */
	engine.merge = MergeBegin(conn.resource_types);
	PopActiveSnapshot();
	InvalidateCatalogSnapshot();
	conn.provider->discover(&ctx);
	merge_start = GetCurrentTimestamp();
	figures->listing_secs = (double) (merge_start - listing_start) / USECS_PER_SEC;
	PushActiveSnapshot(GetTransactionSnapshot());

	/* nothing listed at all: the run fails, with the first reason */
	foreach(lc, engine.listings)
	{
		MergeListing *l = lfirst(lc);

		if (l->message == NULL)
			any_listed = true;
		else if (first_failure == NULL)
			first_failure = l;
	}
	if (!any_listed && first_failure != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("%s", first_failure->message)));

	foreach(lc, engine.listings)
	{
		MergeListing *l = lfirst(lc);

		if (l->message == NULL)
		{
			complete_types = lappend(complete_types, (char *) l->ci_type);
			complete_scopes = lappend(complete_scopes, (char *) l->scope);
		}
	}
	missing = KnownCisMissing(engine.known, complete_types, complete_scopes,
							  engine.blocked_types, engine.blocked_scopes, &nmissing);
	type_counts = palloc0(sizeof(MergeCounts) * Max(list_length(conn.resource_types), 1));
	MergeFinish(engine.merge, connector_id, conn.entity_id, run_id, engine.listings,
				conn.resource_types, engine.unchanged, missing, nmissing, counts, type_counts);
	DiscoveryNoteMemory(figures);

	status = counts->errors > 0 ? "partial" : "succeeded";
	DiscoveryRecord(run_id, status, counts, DiscoveryCountsByType(conn.resource_types, type_counts));
	figures->merge_secs = (double) (GetCurrentTimestamp() - merge_start) / USECS_PER_SEC;
	return status;
}
