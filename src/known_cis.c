/*
 * known_cis.c
 *		The CIs a connector had when its run began, in a hash table keyed by
 *		external id: their ids, types, scopes, provider digests and whether
 *		they were missing.  While the run lists, each resource marks its CI
 *		seen, and one whose digest is unchanged is left out of the merge
 *		altogether: an unchanged re-run stages and merges nearly nothing.
 *		After the listing, the CIs of the complete listings that no resource
 *		marked are the ones to mark missing.
 *
 * Memory: about 100 bytes per CI, in the run's memory context.  The table
 * is read once, in batches through a cursor, before the listing: what a
 * user changes in a CI meanwhile is seen by the next run.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "known_cis.h"

#define KNOWN_CIS_BATCH 10000

typedef struct KnownCi
{
	const char *external_id;	/* the key */
	uint32		hash;
	char		status;			/* simplehash's */
	bool		missing;		/* missing_since is set */
	bool		seen;
	bool		listed_new;		/* no CI: first listed by this run */
	bool		has_digest;
	int64		id;
	const char *ci_type;		/* interned */
	const char *scope;			/* interned, or NULL */
	uint8		digest[CI_DIGEST_BYTES];
} KnownCi;

#define SH_PREFIX known
#define SH_ELEMENT_TYPE KnownCi
#define SH_KEY_TYPE const char *
#define SH_KEY external_id
#define SH_HASH_KEY(tb, key) hash_bytes((const unsigned char *) (key), strlen(key))
#define SH_EQUAL(tb, a, b) (strcmp((a), (b)) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) (a)->hash
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

struct KnownCis
{
	known_hash *table;
	MemoryContext cxt;
	List	   *names;			/* interned types and scopes */
};

/* One copy of each of the few distinct types and scopes. */
static const char *
KnownCisIntern(KnownCis *known, const char *s)
{
	ListCell   *lc;

	if (s == NULL)
		return NULL;
	foreach(lc, known->names)
	{
		if (strcmp((const char *) lfirst(lc), s) == 0)
			return lfirst(lc);
	}
	known->names = lappend(known->names, MemoryContextStrdup(known->cxt, s));
	return llast(known->names);
}

KnownCis *
KnownCisLoad(int64 connector_id)
{
	KnownCis   *known = palloc0(sizeof(KnownCis));
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(connector_id)};
	SPIPlanPtr	plan;
	Portal		portal;

	known->cxt = CurrentMemoryContext;
	known->table = known_create(CurrentMemoryContext, 1024, NULL);
	plan = SPI_prepare("SELECT id, external_id, ci_type, discovery_scope, provider_digest,"
					   "       missing_since IS NOT NULL"
					   "  FROM cloudconn.configuration_item WHERE source_connector_id = $1",
					   1, types);
	if (plan == NULL)
		elog(ERROR, "could not prepare the known CIs query");
	portal = SPI_cursor_open(NULL, plan, args, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, KNOWN_CIS_BATCH);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			MemoryContext old = MemoryContextSwitchTo(known->cxt);
			bool		isnull;
			bool		found;
			char	   *external_id = TextDatumGetCString(SPI_getbinval(tuple, desc, 2, &isnull));
			Datum		scope = SPI_getbinval(tuple, desc, 4, &isnull);
			bool		no_scope = isnull;
			Datum		digest = SPI_getbinval(tuple, desc, 5, &isnull);
			KnownCi    *ci = known_insert(known->table, external_id, &found);

			ci->id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
			ci->ci_type = KnownCisIntern(known, TextDatumGetCString(SPI_getbinval(tuple, desc, 3, &isnull)));
			ci->scope = no_scope ? NULL : KnownCisIntern(known, TextDatumGetCString(scope));
			ci->has_digest = !isnull && VARSIZE_ANY_EXHDR(DatumGetByteaPP(digest)) == CI_DIGEST_BYTES;
			if (ci->has_digest)
				memcpy(ci->digest, VARDATA_ANY(DatumGetByteaPP(digest)), CI_DIGEST_BYTES);
			ci->missing = DatumGetBool(SPI_getbinval(tuple, desc, 6, &isnull));
			ci->seen = false;
			ci->listed_new = false;
			MemoryContextSwitchTo(old);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_freeplan(plan);
	return known;
}

bool
KnownCisSee(KnownCis *known, const char *external_id, const uint8 *digest, bool *found)
{
	KnownCi    *ci = known_lookup(known->table, external_id);

	if (ci == NULL)
	{
		/* a new resource: remembered, so that listed twice it makes one CI */
		MemoryContext old = MemoryContextSwitchTo(known->cxt);
		bool		inserted;

		ci = known_insert(known->table, pstrdup(external_id), &inserted);
		ci->missing = false;
		ci->seen = true;
		ci->listed_new = true;
		ci->has_digest = false;
		ci->id = 0;
		ci->ci_type = NULL;
		ci->scope = NULL;
		MemoryContextSwitchTo(old);
		if (found != NULL)
			*found = false;
		return false;
	}
	if (ci->listed_new)
	{
		/* listed again in this run (pages shifting under us): already kept */
		if (found != NULL)
			*found = false;
		return true;
	}
	if (found != NULL)
		*found = true;
	ci->seen = true;
	return digest != NULL && ci->has_digest && !ci->missing &&
		memcmp(ci->digest, digest, CI_DIGEST_BYTES) == 0;
}

/* Whether (ci_type, scope) is one of the pairs of types and scopes. */
static bool
KnownCisPairListed(const char *ci_type, const char *scope, List *types, List *scopes)
{
	ListCell   *lt;
	ListCell   *ls;

	if (scope == NULL)
		return false;
	forboth(lt, types, ls, scopes)
	{
		if (strcmp(lfirst(lt), ci_type) == 0 && strcmp(lfirst(ls), scope) == 0)
			return true;
	}
	return false;
}

int64 *
KnownCisMissing(KnownCis *known, List *complete_types, List *complete_scopes,
				List *blocked_types, List *blocked_scopes, int *nmissing)
{
	known_iterator it;
	KnownCi    *ci;
	int64	   *ids = palloc(sizeof(int64) * Max(known->table->members, 1));
	int			n = 0;

	known_start_iterate(known->table, &it);
	while ((ci = known_iterate(known->table, &it)) != NULL)
	{
		if (ci->seen || ci->missing || ci->listed_new)
			continue;
		if (KnownCisPairListed(ci->ci_type, ci->scope, complete_types, complete_scopes) &&
			!KnownCisPairListed(ci->ci_type, ci->scope, blocked_types, blocked_scopes))
			ids[n++] = ci->id;
	}
	*nmissing = n;
	return ids;
}
