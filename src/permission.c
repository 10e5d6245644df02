/*
 * permission.c
 *		Permitted sets: every entity (or connector) on which a role holds a
 *		permission, directly, through an ancestor entity, or through a role it
 *		is a member of.  The one place where grants are resolved.
 *
 * Row-level security policies call entity_permitted(entity_id, perm) per
 * row.  The set behind it is computed on the first call of a statement and
 * kept in a small backend cache keyed by the active snapshot, the local
 * transaction, the role and the permission.  Two MVCC snapshots with the
 * same xmin, xmax, in-progress counts and command id see the same data:
 * xids are assigned in order, so below a fixed xmax the in-progress set can
 * only shrink, which changes the count.  So every call site of a statement
 * shares the set, while a new snapshot (a later statement, or one that could
 * see a grant or revoke committed meanwhile, or a change made earlier in the
 * same transaction) recomputes it.  Each row then costs a bitmap probe (dense ids) or a
 * binary search.  No pointer into the cache is held across calls, since a
 * nested statement may reset it.
 *
 * The queries read role_assignment and pg_authid, which ordinary roles may
 * not, so they run as the owner of cloudconn's tables; they name every
 * object, function and operator schema-qualified, so no search_path matters,
 * and they change no setting, so they are safe in parallel workers.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/supportnodes.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/selfuncs.h"
#include "utils/syscache.h"
#include "utils/snapmgr.h"
#include "access/xact.h"
#include "storage/proc.h"

#include "permission.h"
#include "provider.h"			/* ProviderQuoteValue */

PG_FUNCTION_INFO_V1(cloudconn_permitted_entities);
PG_FUNCTION_INFO_V1(cloudconn_entity_permitted);
PG_FUNCTION_INFO_V1(cloudconn_connector_permitted);
PG_FUNCTION_INFO_V1(cloudconn_permitted_support);

typedef enum PermittedKind
{
	PERMITTED_ENTITIES,
	PERMITTED_CONNECTORS
} PermittedKind;

typedef struct PermittedSet
{
	PermittedKind kind;
	Oid			role;
	char		permission[32];
	int			permission_len;
	int			count;
	int64	   *ids;			/* sorted ascending */
	int64		min;
	int64		max;
	uint8	   *bitmap;			/* bit (id - min), when ids are dense */
} PermittedSet;

#define PERMISSION_CACHE_SLOTS 8

static MemoryContext PermissionCacheContext = NULL;
static TransactionId cache_snapshot_xmin;
static TransactionId cache_snapshot_xmax;
static uint32 cache_snapshot_xcnt;
static int32 cache_snapshot_subxcnt;
static bool cache_snapshot_suboverflowed;
static CommandId cache_command_id;
static LocalTransactionId cache_lxid;
static PermittedSet *cache_slots[PERMISSION_CACHE_SLOTS];
static int	cache_used = 0;
static uint64 cache_generation = 0;	/* bumped at every reset */

/* What a policy call site remembers between rows (fn_extra). */
typedef struct PermittedCallSite
{
	uint64		generation;
	Oid			role;
	PermittedSet *set;
} PermittedCallSite;

static SPIPlanPtr granted_entities_plan = NULL;
static SPIPlanPtr all_entities_plan = NULL;
static SPIPlanPtr connectors_of_entities_plan = NULL;

/*
 * Entities granted to any role the caller is a member of, then their
 * descendants.  A role dropped since its grant simply drops out (the join
 * with pg_authid).  UNION, not UNION ALL, so a malformed tree cannot loop.
 */
static const char *const granted_entities_sql =
"WITH RECURSIVE granted(id) AS ("
"  SELECT ra.entity_id"
"    FROM cloudconn.role_assignment ra"
"    JOIN pg_catalog.pg_authid r ON r.oid OPERATOR(pg_catalog.=) ra.role::pg_catalog.oid"
"   WHERE ra.permission OPERATOR(pg_catalog.=) ANY ($2)"
"     AND pg_catalog.pg_has_role($1, r.oid, 'MEMBER')"
"  UNION"
"  SELECT e.id FROM cloudconn.entity e JOIN granted g ON e.parent_id OPERATOR(pg_catalog.=) g.id"
") SELECT id FROM granted ORDER BY id";

/* superusers and BYPASSRLS roles: everything (the parameters go unused) */
static const char *const all_entities_sql =
"SELECT e.id FROM cloudconn.entity e ORDER BY e.id";

static const char *const connectors_of_entities_sql =
"SELECT k.id FROM cloudconn.connector k"
" WHERE k.entity_id OPERATOR(pg_catalog.=) ANY ($1) ORDER BY k.id";

/* What a message quotes of a permission name a caller gave, at most. */
#define PERMISSION_QUOTE_CHARS 64

/* An unknown permission name (perm_len bytes): quoted cut short, with its length. */
static void PermissionUnknown(const char *perm, int perm_len) pg_attribute_noreturn();

static void
PermissionUnknown(const char *perm, int perm_len)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown permission %s",
					ProviderQuoteValue(pnstrdup(perm, perm_len), PERMISSION_QUOTE_CHARS)),
			 errhint("Permissions are CloudConnector:read, CloudConnector:manage, ConfigurationItem:read and ConfigurationItem:manage.")));
}

/* The permissions that satisfy a request for perm: manage implies read. */
static Datum
PermissionImplying(const char *perm)
{
	const char *family_end = strchr(perm, ':');
	Datum		elems[2];
	int			n = 0;

	if (strcmp(perm, "CloudConnector:read") == 0 ||
		strcmp(perm, "ConfigurationItem:read") == 0)
	{
		elems[n++] = CStringGetTextDatum(perm);
		elems[n++] = CStringGetTextDatum(psprintf("%.*s:manage", (int) (family_end - perm), perm));
	}
	else if (strcmp(perm, "CloudConnector:manage") == 0 ||
			 strcmp(perm, "ConfigurationItem:manage") == 0)
		elems[n++] = CStringGetTextDatum(perm);
	else
		PermissionUnknown(perm, strlen(perm));

	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* pg_class row of one of cloudconn's tables (caller releases it). */
static HeapTuple
PermissionTableTuple(const char *relname)
{
	Oid			relid = get_relname_relid(relname, get_namespace_oid("cloudconn", false));
	HeapTuple	tuple;

	if (!OidIsValid(relid))
		elog(ERROR, "cloudconn.%s does not exist", relname);
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	return tuple;
}

/* Owner of cloudconn's tables: the role the permission queries run as. */
static Oid
PermissionTableOwner(void)
{
	HeapTuple	tuple = PermissionTableTuple("role_assignment");
	Oid			owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;

	ReleaseSysCache(tuple);
	return owner;
}

static void
PermissionCollectIds(int64 **ids, int *count, MemoryContext cxt)
{
	*count = (int) SPI_processed;
	*ids = MemoryContextAlloc(cxt, sizeof(int64) * Max(*count, 1));
	for (int i = 0; i < *count; i++)
	{
		bool		isnull;

		(*ids)[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
}

/* Plans are prepared once per backend; the plan cache revalidates them. */
static SPIPlanPtr
PermissionPlan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, argtypes);

		if (p == NULL)
			elog(ERROR, "could not prepare permission query: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*plan = p;
	}
	return *plan;
}

/*
 * Compute a permitted set into cxt: the entities, or the connectors under
 * the given entities.  Runs as the owner of cloudconn's tables; an error
 * restores the user id through transaction abort, as for SECURITY DEFINER.
 */
static void
PermissionCompute(PermittedKind kind, Oid role, const char *perm, const int64 *entity_ids,
				  int nentities, int64 **ids, int *count, MemoryContext cxt)
{
	Oid			save_userid;
	int			save_sec_context;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(PermissionTableOwner(),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	SPI_connect();

	if (kind == PERMITTED_ENTITIES)
	{
		Oid			argtypes[2] = {OIDOID, TEXTARRAYOID};
		Datum		args[2] = {ObjectIdGetDatum(role), PermissionImplying(perm)};
		SPIPlanPtr	plan;

		if (superuser_arg(role) || has_bypassrls_privilege(role))
			plan = PermissionPlan(&all_entities_plan, all_entities_sql, 0, NULL);
		else
			plan = PermissionPlan(&granted_entities_plan, granted_entities_sql, 2, argtypes);
		if (SPI_execute_plan(plan, args, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not compute the permitted entities");
	}
	else
	{
		Oid			argtypes[1] = {INT8ARRAYOID};
		Datum	   *elems = palloc(sizeof(Datum) * Max(nentities, 1));
		Datum		args[1];

		for (int i = 0; i < nentities; i++)
			elems[i] = Int64GetDatum(entity_ids[i]);
		args[0] = PointerGetDatum(construct_array(elems, nentities, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		if (SPI_execute_plan(PermissionPlan(&connectors_of_entities_plan, connectors_of_entities_sql, 1, argtypes),
							 args, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not compute the permitted connectors");
	}
	PermissionCollectIds(ids, count, cxt);

	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/* A bitmap when the ids are dense enough that it is small; else bsearch. */
static void
PermissionIndexSet(PermittedSet *set)
{
	int64		range;

	set->bitmap = NULL;
	if (set->count == 0)
		return;
	set->min = set->ids[0];
	set->max = set->ids[set->count - 1];
	range = set->max - set->min + 1;
	if (range > 0 && range <= (int64) 64 * set->count + 4096 && range <= (int64) 128 * 1024 * 1024)
	{
		set->bitmap = MemoryContextAllocZero(PermissionCacheContext, range / 8 + 1);
		for (int i = 0; i < set->count; i++)
		{
			int64		bit = set->ids[i] - set->min;

			set->bitmap[bit / 8] |= (uint8) (1 << (bit % 8));
		}
	}
}

static bool
PermissionSetContains(const PermittedSet *set, int64 id)
{
	int			lo = 0,
				hi = set->count - 1;

	if (set->count == 0 || id < set->min || id > set->max)
		return false;
	if (set->bitmap != NULL)
	{
		int64		bit = id - set->min;

		return (set->bitmap[bit / 8] & (1 << (bit % 8))) != 0;
	}
	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (set->ids[mid] == id)
			return true;
		if (set->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return false;
}

/*
 * The current statement's permitted set of this kind for (role, perm),
 * computed on first use.  Valid until the next call of this function.
 */
static bool PermissionCacheCurrent(uint64 generation);

static PermittedSet *
PermissionLookup(PermittedKind kind, Oid role, const char *perm, int perm_len)
{
	Snapshot	snapshot = ActiveSnapshotSet() ? GetActiveSnapshot() : NULL;
	LocalTransactionId lxid = MyProc->lxid;
	PermittedSet *set;
	int64	   *entity_ids = NULL;
	int			nentities = 0;
	char		permbuf[sizeof(((PermittedSet *) NULL)->permission) + 1];

	if (PermissionCacheContext == NULL)
		PermissionCacheContext = AllocSetContextCreate(TopMemoryContext, "cloudconn permitted sets",
													   ALLOCSET_SMALL_SIZES);

	/*
	 * Without an active snapshot there is nothing to key on: never reuse.
	 * A full cache is emptied before a lookup, with room for the two sets a
	 * connector lookup adds.
	 */
	if (snapshot == NULL || !PermissionCacheCurrent(cache_generation) ||
		cache_used >= PERMISSION_CACHE_SLOTS - 1)
	{
		MemoryContextReset(PermissionCacheContext);
		cache_used = 0;
		cache_generation++;
		if (snapshot)
		{
			cache_snapshot_xmin = snapshot->xmin;
			cache_snapshot_xmax = snapshot->xmax;
			cache_snapshot_xcnt = snapshot->xcnt;
			cache_snapshot_subxcnt = snapshot->subxcnt;
			cache_snapshot_suboverflowed = snapshot->suboverflowed;
		}
		cache_command_id = snapshot ? snapshot->curcid : InvalidCommandId;
		cache_lxid = snapshot ? lxid : InvalidLocalTransactionId;
	}

	for (int i = 0; i < cache_used; i++)
	{
		set = cache_slots[i];
		if (set->kind == kind && set->role == role && set->permission_len == perm_len &&
			memcmp(set->permission, perm, perm_len) == 0)
			return set;
	}

	if (perm_len >= (int) sizeof(permbuf))
		PermissionUnknown(perm, perm_len);	/* too long to be valid */
	memcpy(permbuf, perm, perm_len);
	permbuf[perm_len] = '\0';

	if (kind == PERMITTED_CONNECTORS)
	{
		PermittedSet *entities = PermissionLookup(PERMITTED_ENTITIES, role, permbuf, perm_len);

		entity_ids = entities->ids;
		nentities = entities->count;
	}

	set = MemoryContextAllocZero(PermissionCacheContext, sizeof(PermittedSet));
	PermissionCompute(kind, role, permbuf, entity_ids, nentities, &set->ids, &set->count,
					  PermissionCacheContext);
	set->kind = kind;
	set->role = role;
	set->permission_len = perm_len;
	memcpy(set->permission, permbuf, perm_len);
	PermissionIndexSet(set);
	cache_slots[cache_used++] = set;
	return set;
}

/*
 * True while the cache still holds what it held when generation was read,
 * for the active snapshot.
 */
static bool
PermissionCacheCurrent(uint64 generation)
{
	Snapshot	snapshot;

	if (generation != cache_generation || cache_lxid == InvalidLocalTransactionId ||
		cache_lxid != MyProc->lxid || !ActiveSnapshotSet())
		return false;
	snapshot = GetActiveSnapshot();
	return snapshot->snapshot_type == SNAPSHOT_MVCC &&
		snapshot->xmin == cache_snapshot_xmin && snapshot->xmax == cache_snapshot_xmax &&
		snapshot->xcnt == cache_snapshot_xcnt && snapshot->subxcnt == cache_snapshot_subxcnt &&
		snapshot->suboverflowed == cache_snapshot_suboverflowed &&
		snapshot->curcid == cache_command_id;
}

/*
 * The per-row path.  A call site remembers its set with the cache generation
 * it came from, so the usual row costs a few comparisons and one probe; the
 * permission argument is a constant in a policy, so it is compared only when
 * the set is looked up again.
 */
static bool
PermissionRowCheck(FunctionCallInfo fcinfo, PermittedKind kind)
{
	PermittedCallSite *site = (PermittedCallSite *) fcinfo->flinfo->fn_extra;
	Oid			role = GetUserId();
	text	   *perm;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return false;
	if (site == NULL)
	{
		site = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(PermittedCallSite));
		fcinfo->flinfo->fn_extra = site;
	}
	if (site->set == NULL || site->role != role || !PermissionCacheCurrent(site->generation) ||
		!get_fn_expr_arg_stable(fcinfo->flinfo, 1))
	{
		perm = PG_GETARG_TEXT_PP(1);
		site->set = PermissionLookup(kind, role, VARDATA_ANY(perm), VARSIZE_ANY_EXHDR(perm));
		site->generation = cache_generation;
		site->role = role;
	}
	return PermissionSetContains(site->set, PG_GETARG_INT64(0));
}

/*
 * cloudconn._permitted_entities(role oid, permission text) RETURNS bigint[]
 * Private (callers pass the role); public permitted_entities() reaches it
 * through cloudconn_dispatch with the current role.
 */
Datum
cloudconn_permitted_entities(PG_FUNCTION_ARGS)
{
	PermittedSet *set;
	text	   *perm;
	Datum	   *elems;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("role and permission must not be null")));
	perm = PG_GETARG_TEXT_PP(1);
	set = PermissionLookup(PERMITTED_ENTITIES, PG_GETARG_OID(0), VARDATA_ANY(perm), VARSIZE_ANY_EXHDR(perm));
	elems = palloc(sizeof(Datum) * Max(set->count, 1));
	for (int i = 0; i < set->count; i++)
		elems[i] = Int64GetDatum(set->ids[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, set->count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* cloudconn.entity_permitted(entity_id bigint, permission text): for policies */
Datum
cloudconn_entity_permitted(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PermissionRowCheck(fcinfo, PERMITTED_ENTITIES));
}

/* cloudconn.connector_permitted(connector_id bigint, permission text): for policies */
Datum
cloudconn_connector_permitted(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PermissionRowCheck(fcinfo, PERMITTED_CONNECTORS));
}

/*
 * Planner support for entity_permitted() and connector_permitted(): the
 * selectivity of the policy is the share of entities (connectors) the
 * planning role may see, not the planner's blind default of one third, so
 * that a role that sees everything gets the plan a superuser gets.  RLS
 * plans are replanned when the role changes, so the estimate follows it.
 */
Datum
cloudconn_permitted_support(PG_FUNCTION_ARGS)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);
	SupportRequestSelectivity *req;
	Node	   *permarg;
	PermittedKind kind;
	char	   *fname;
	text	   *perm;
	PermittedSet *set;
	HeapTuple	tuple;
	double		total;

	if (!IsA(rawreq, SupportRequestSelectivity))
		PG_RETURN_POINTER(NULL);
	req = (SupportRequestSelectivity *) rawreq;
	if (req->is_join || list_length(req->args) != 2)
		PG_RETURN_POINTER(NULL);
	permarg = (Node *) lsecond(req->args);
	if (!IsA(permarg, Const) || ((Const *) permarg)->constisnull)
		PG_RETURN_POINTER(NULL);

	fname = get_func_name(req->funcid);
	if (fname != NULL && strcmp(fname, "entity_permitted") == 0)
		kind = PERMITTED_ENTITIES;
	else if (fname != NULL && strcmp(fname, "connector_permitted") == 0)
		kind = PERMITTED_CONNECTORS;
	else
		PG_RETURN_POINTER(NULL);

	perm = DatumGetTextPP(((Const *) permarg)->constvalue);
	set = PermissionLookup(kind, GetUserId(), VARDATA_ANY(perm), VARSIZE_ANY_EXHDR(perm));

	tuple = PermissionTableTuple(kind == PERMITTED_ENTITIES ? "entity" : "connector");
	total = ((Form_pg_class) GETSTRUCT(tuple))->reltuples;
	ReleaseSysCache(tuple);
	if (total < set->count)		/* never analyzed (-1), or grown since */
		total = set->count;
	req->selectivity = total > 0 ? (Selectivity) set->count / total : 0.0;
	CLAMP_PROBABILITY(req->selectivity);
	PG_RETURN_POINTER(req);
}

/* May role read connector_id's runs (CloudConnector:read on its entity)? */
bool
PermissionConnectorReadable(Oid role, int64 connector_id)
{
	static const char perm[] = "CloudConnector:read";

	return PermissionSetContains(PermissionLookup(PERMITTED_CONNECTORS, role, perm, sizeof(perm) - 1),
								 connector_id);
}
