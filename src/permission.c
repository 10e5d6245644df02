/*
 * permission.c
 *		Permitted sets: every entity (or connector) on which a role holds a
 *		permission, directly, through an ancestor entity, or through a role
 *		whose privileges it inherits.  The one place where grants are
 *		resolved, and the backend cache that makes row-level security cheap.
 *
 * Row-level security policies call entity_permitted(entity_id, perm) per
 * row; each row costs a bitmap probe (dense ids) or a binary search.  The
 * set behind it is computed by one query, under the statement's snapshot,
 * over role_assignment, the entity tree, pg_auth_members and pg_authid
 * (PostgreSQL's inheritance: a role's grants count for another role only
 * if that role has its privileges, as pg_has_role(..., 'USAGE') says, so a
 * NOINHERIT role gets nothing from its memberships).  Sets live in a small
 * backend cache of PERMISSION_CACHE_SLOTS, keyed by kind, role and
 * permission, and are reused across statements and transactions while
 * nothing they depend on has changed.
 *
 * Staleness, read this before changing anything.  A statement's snapshot S
 * is taken before any of our code runs, so "bump a counter at commit" alone
 * is unsound: a writer committing after S, whose bump a reader sees, would
 * get a set computed under S (without the change) tagged as current.  So:
 *  - Every transaction that changes what sets are computed from (row
 *    triggers on role_assignment, entity and connector(entity_id); role
 *    DDL through the utility hook: CREATE/ALTER/DROP ROLE, GRANT/REVOKE
 *    role, a database's owner) is marked.  At PRE_COMMIT (or PRE_PREPARE),
 *    before its commit can be seen by anyone, it increments the shared
 *    generation and records its FullTransactionId in a ring, under the
 *    shared lock; the largest id pushed out of the ring is kept.
 *  - A backend caches a set computed under S with the generation G it read
 *    (under the same lock) only if every writer is visible to S: each ring
 *    entry completed before S (XidInMVCCSnapshot false: committed, so S sees
 *    it, or aborted, so it changed nothing), and the largest one pushed out
 *    precedes S's xmin.  A cached set is reused under a later snapshot only
 *    if the generation is still G and the same holds for that snapshot.
 *    Then both snapshots see every change ever made, so the set is the same.
 *    Otherwise a set serves its own snapshot only (same xmin, xmax,
 *    in-progress counts, command id and transaction see the same data).
 *  - The writing transaction itself never uses or fills the shared-tagged
 *    entries (it sees its own uncommitted changes).
 *  - Syscache invalidation of pg_authid and pg_auth_members (what
 *    PostgreSQL's own role cache listens to) empties the cache as well: a
 *    second net for catalog changes that bypass the utility hook.
 * Without shared_preload_libraries there is no shared state, and sets serve
 * their own snapshot only.  During recovery the same: a standby's replayed
 * changes fire no trigger.
 *
 * The queries read role_assignment and pg_authid, which ordinary roles may
 * not, so they run as the owner of cloudconn's tables; they name every
 * object, function and operator schema-qualified, so no search_path matters,
 * and they change no setting, so they are safe in parallel workers.  No
 * pointer into the cache is kept across calls: a call site remembers its set
 * with the cache epoch, which moves whenever a set may have been freed.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/extension.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/supportnodes.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/selfuncs.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "permission.h"
#include "provider.h"			/* ProviderQuoteValue */

PG_FUNCTION_INFO_V1(cloudconn_permitted_entities);
PG_FUNCTION_INFO_V1(cloudconn_entity_permitted);
PG_FUNCTION_INFO_V1(cloudconn_connector_permitted);
PG_FUNCTION_INFO_V1(cloudconn_permitted_support);
PG_FUNCTION_INFO_V1(cloudconn_permission_data_changed);
PG_FUNCTION_INFO_V1(cloudconn_permission_cache_stats);
PG_FUNCTION_INFO_V1(cloudconn_entity_restriction);
PG_FUNCTION_INFO_V1(cloudconn_connector_restriction);

typedef enum PermittedKind
{
	PERMITTED_ENTITIES,
	PERMITTED_CONNECTORS
} PermittedKind;

/* What makes two MVCC snapshots see the same data (see the header). */
typedef struct SnapshotKey
{
	bool		valid;
	TransactionId xmin;
	TransactionId xmax;
	uint32		xcnt;
	int32		subxcnt;
	bool		suboverflowed;
	CommandId	curcid;
	LocalTransactionId lxid;
} SnapshotKey;

typedef struct PermittedSet
{
	PermittedKind kind;
	Oid			role;
	char		permission[32];
	int			permission_len;
	bool		shared;			/* valid while the shared generation is ... */
	uint64		generation;		/* ... this one (see the header) */
	SnapshotKey snapshot;		/* else valid for this snapshot only */
	uint64		last_used;
	int			covers_all;		/* every entity (connector)? 1, 0, -1 unknown */
	MemoryContext cxt;			/* holds the set and its ids */
	int			count;
	int64	   *ids;			/* sorted ascending */
	int64		min;
	int64		max;
	uint8	   *bitmap;			/* bit (id - min), when ids are dense */
} PermittedSet;

#define PERMISSION_CACHE_SLOTS 8

/* What a policy call site remembers between rows (fn_extra). */
typedef struct PermittedCallSite
{
	uint64		epoch;
	Oid			role;
	bool		perm_stable;	/* the permission argument is a constant */
	PermittedSet *set;
} PermittedCallSite;

/* ---- shared state: the generation and the ring of recent writers */

#define PERMISSION_RING_SIZE 32

typedef struct PermissionShared
{
	LWLock	   *lock;
	uint64		generation;
	int			next;			/* ring slot the next writer takes */
	int			used;
	FullTransactionId dropped_max;	/* largest writer pushed out; invalid if none */
	FullTransactionId writers[PERMISSION_RING_SIZE];
} PermissionShared;

static PermissionShared *permission_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

/* ---- backend state */

static MemoryContext PermissionCacheContext = NULL;
static PermittedSet *cache_slots[PERMISSION_CACHE_SLOTS];
static uint64 cache_clock = 0;	/* for least-recently-used eviction */

/*
 * The snapshot last validated against the shared state, what that said,
 * and an epoch that moves whenever it changes or a set is freed.
 */
static SnapshotKey validated_key;
static bool validated_shared_ok = false;
static uint64 validated_generation = 0;
static uint64 cache_epoch = 1;

/* bumped by syscache invalidation of the role catalogs */
static uint64 roles_inval_count = 0;
static uint64 roles_inval_seen = 0;
static bool callbacks_registered = false;

/* this transaction changed what permitted sets are computed from */
static bool xact_changed_permissions = false;

/* this backend's sets computed, and lookups answered from the cache */
static int64 stat_computed = 0;
static int64 stat_reused = 0;
static int64 stat_row_checks = 0;

static SPIPlanPtr granted_entities_plan = NULL;
static SPIPlanPtr connectors_of_entities_plan = NULL;
static SPIPlanPtr covers_tree_plan = NULL;

/*
 * Entities granted to any role whose privileges the caller has, then their
 * descendants; every entity for superusers and BYPASSRLS roles; nothing for
 * a role that does not exist.  Roles follow PostgreSQL 15's
 * roles_is_member_of(ROLERECURSE_PRIVS): a role's memberships count only if
 * it inherits (rolinherit), and the database owner is a member of
 * pg_database_owner.  All of it under the statement's snapshot, never from
 * the syscache.  UNION, not UNION ALL, so a malformed tree cannot loop.
 */
static const char *const granted_entities_sql =
"WITH RECURSIVE caller AS ("
"  SELECT a.oid, a.rolsuper OR a.rolbypassrls AS admin FROM pg_catalog.pg_authid a"
"   WHERE a.oid OPERATOR(pg_catalog.=) $1"
"), edge(member, roleid) AS ("
"  SELECT m.member, m.roleid FROM pg_catalog.pg_auth_members m"
"  UNION ALL"
"  SELECT d.datdba, " CppAsString2(ROLE_PG_DATABASE_OWNER) "::pg_catalog.oid FROM pg_catalog.pg_database d"
"   WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()"
"), privs(oid) AS ("
"  SELECT c.oid FROM caller c"
"  UNION"
"  SELECT e.roleid FROM privs p"
"    JOIN pg_catalog.pg_authid a ON a.oid OPERATOR(pg_catalog.=) p.oid AND a.rolinherit"
"    JOIN edge e ON e.member OPERATOR(pg_catalog.=) p.oid"
"), granted(id) AS ("
"  SELECT ra.entity_id FROM cloudconn.role_assignment ra"
"    JOIN privs p ON p.oid OPERATOR(pg_catalog.=) ra.role::pg_catalog.oid"
"   WHERE ra.permission OPERATOR(pg_catalog.=) ANY ($2)"
"  UNION"
"  SELECT e.id FROM cloudconn.entity e JOIN granted g ON e.parent_id OPERATOR(pg_catalog.=) g.id"
") SELECT g.id FROM granted g WHERE NOT (SELECT c.admin FROM caller c)"
"  UNION ALL"
"  SELECT e.id FROM cloudconn.entity e WHERE (SELECT c.admin FROM caller c)"
"  ORDER BY 1";

static const char *const connectors_of_entities_sql =
"SELECT k.id FROM cloudconn.connector k"
" WHERE k.entity_id OPERATOR(pg_catalog.=) ANY ($1) ORDER BY k.id";

static SPIPlanPtr count_entities_plan = NULL;
static SPIPlanPtr count_connectors_plan = NULL;

static const char *const count_entities_sql = "SELECT count(*) FROM cloudconn.entity";
static const char *const count_connectors_sql = "SELECT count(*) FROM cloudconn.connector";

/* Do the given entities include every root (so the whole tree)? */
static const char *const covers_tree_sql =
"SELECT EXISTS (SELECT FROM cloudconn.entity)"
"   AND NOT EXISTS (SELECT FROM cloudconn.entity e WHERE e.parent_id IS NULL"
"                      AND NOT (e.id OPERATOR(pg_catalog.=) ANY ($1)))";

/* ------------------------------------------------------------------------
 * Shared state
 * ------------------------------------------------------------------------ */

static void
PermissionShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(PermissionShared)));
	RequestNamedLWLockTranche("cloudconn permission", 1);
}

static void
PermissionShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	permission_shared = ShmemInitStruct("cloudconn permission", sizeof(PermissionShared), &found);
	if (!found)
	{
		memset(permission_shared, 0, sizeof(PermissionShared));
		permission_shared->lock = &(GetNamedLWLockTranche("cloudconn permission"))->lock;
		permission_shared->generation = 1;
		permission_shared->dropped_max = InvalidFullTransactionId;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* A 32-bit xid of a live snapshot, as a FullTransactionId. */
static FullTransactionId
PermissionFullXid(FullTransactionId next, TransactionId xid)
{
	return FullTransactionIdFromU64(U64FromFullTransactionId(next) -
									(uint32) (XidFromFullTransactionId(next) - xid));
}

/*
 * Read the shared generation, and whether every writer it counts is
 * visible to snapshot (see the header).  Compared as FullTransactionIds, so
 * a ring entry of any age is judged right, and XidInMVCCSnapshot only sees
 * xids inside the snapshot's range.
 */
static bool
PermissionWritersVisible(Snapshot snapshot, uint64 *generation)
{
	PermissionShared *shared = permission_shared;
	FullTransactionId next = ReadNextFullTransactionId();
	FullTransactionId xmin = PermissionFullXid(next, snapshot->xmin);
	FullTransactionId xmax = PermissionFullXid(next, snapshot->xmax);
	FullTransactionId writers[PERMISSION_RING_SIZE];
	FullTransactionId dropped;
	int			used;

	LWLockAcquire(shared->lock, LW_SHARED);
	*generation = shared->generation;
	used = shared->used;
	dropped = shared->dropped_max;
	memcpy(writers, shared->writers, sizeof(FullTransactionId) * used);
	LWLockRelease(shared->lock);

	if (FullTransactionIdIsValid(dropped) && !FullTransactionIdPrecedes(dropped, xmin))
		return false;
	for (int i = 0; i < used; i++)
	{
		if (FullTransactionIdPrecedes(writers[i], xmin))
			continue;
		if (!FullTransactionIdPrecedes(writers[i], xmax) ||
			XidInMVCCSnapshot(XidFromFullTransactionId(writers[i]), snapshot))
			return false;
	}
	return true;
}

/* Before the marked transaction's commit is visible: count it. */
static void
PermissionPublishChange(void)
{
	PermissionShared *shared = permission_shared;
	FullTransactionId xid = GetTopFullTransactionIdIfAny();

	if (shared == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->generation++;
	if (FullTransactionIdIsValid(xid))
	{
		if (shared->used == PERMISSION_RING_SIZE)
		{
			FullTransactionId old = shared->writers[shared->next];

			if (!FullTransactionIdIsValid(shared->dropped_max) ||
				FullTransactionIdPrecedes(shared->dropped_max, old))
				shared->dropped_max = old;
		}
		else
			shared->used++;
		shared->writers[shared->next] = xid;
		shared->next = (shared->next + 1) % PERMISSION_RING_SIZE;
	}
	LWLockRelease(shared->lock);
}

static void
PermissionXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (xact_changed_permissions)
				PermissionPublishChange();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			xact_changed_permissions = false;
			break;
		default:
			break;
	}
}

/* Syscache invalidation of pg_authid or pg_auth_members. */
static void
PermissionRolesChanged(Datum arg, int cacheid, uint32 hashvalue)
{
	roles_inval_count++;
}

static void
PermissionRegisterCallbacks(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(PermissionXactCallback, NULL);
	CacheRegisterSyscacheCallback(AUTHOID, PermissionRolesChanged, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMMEMROLE, PermissionRolesChanged, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, PermissionRolesChanged, (Datum) 0);
	callbacks_registered = true;
}

/* The current transaction changes what permitted sets are computed from. */
static void
PermissionMarkChanged(void)
{
	PermissionRegisterCallbacks();
	xact_changed_permissions = true;
}

static Oid	PermissionTableOwner(void);

/*
 * Before DROP ROLE or DROP OWNED BY in a database with cloudconn: the
 * roles' grants are deleted (as the owner of cloudconn's tables), which
 * revokes their cloudconn.grantee_anchor, so that PostgreSQL's check of
 * shared dependencies lets the roles go.  In the same transaction: if the
 * drop fails, the grants stay.  Elsewhere the anchor makes PostgreSQL
 * refuse to drop a role with grants (sql/cloudconn.sql).
 */
static void
PermissionDropGrantsOf(List *roles)
{
	Datum	   *oids;
	int			n = 0;
	ListCell   *lc;
	Oid			save_userid;
	int			save_sec_context;
	Oid			argtype = OIDARRAYOID;
	Datum		arg;

	if (!IsTransactionState() || !OidIsValid(get_extension_oid("cloudconn", true)))
		return;
	oids = palloc(sizeof(Datum) * Max(list_length(roles), 1));
	foreach(lc, roles)
	{
		Oid			role = get_rolespec_oid(lfirst(lc), true);

		if (OidIsValid(role))
			oids[n++] = ObjectIdGetDatum(role);
	}
	if (n == 0)
		return;
	arg = PointerGetDatum(construct_array(oids, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(PermissionTableOwner(),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_execute_with_args("DELETE FROM cloudconn.role_assignment ra"
							  " WHERE ra.role::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1)",
							  1, &argtype, &arg, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the grants of the roles dropped");
	SetUserIdAndSecContext(save_userid, save_sec_context);
	SPI_finish();
}

/*
 * Role DDL changes who inherits what: mark the transaction.  A role
 * dropped (or its privileges, DROP OWNED) loses its grants first.
 */
static void
PermissionProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						 ProcessUtilityContext context, ParamListInfo params,
						 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;

	if (IsA(stmt, CreateRoleStmt) || IsA(stmt, AlterRoleStmt) || IsA(stmt, DropRoleStmt) ||
		IsA(stmt, GrantRoleStmt) ||
		(IsA(stmt, AlterOwnerStmt) && ((AlterOwnerStmt *) stmt)->objectType == OBJECT_DATABASE))
		PermissionMarkChanged();
	if (IsA(stmt, DropRoleStmt))
		PermissionDropGrantsOf(((DropRoleStmt *) stmt)->roles);
	else if (IsA(stmt, DropOwnedStmt))
		PermissionDropGrantsOf(((DropOwnedStmt *) stmt)->roles);
	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

/* From _PG_init while preloading: the shared state and the utility hook. */
void
PermissionShmemInit(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = PermissionShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = PermissionShmemStartup;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = PermissionProcessUtility;
}

/*
 * cloudconn._permission_data_changed(): trigger (row, and statement for
 * TRUNCATE) on the tables permitted sets are computed from.
 */
Datum
cloudconn_permission_data_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "cloudconn._permission_data_changed() must be called as a trigger");
	PermissionMarkChanged();
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		return PointerGetDatum(NULL);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_newtuple);
	return PointerGetDatum(trigdata->tg_trigtuple);
}

/* ------------------------------------------------------------------------
 * Computing a set
 * ------------------------------------------------------------------------ */

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

/* An int8[] of ids. */
static Datum
PermissionIdArray(const int64 *ids, int count)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(count, 1));

	for (int i = 0; i < count; i++)
		elems[i] = Int64GetDatum(ids[i]);
	return PointerGetDatum(construct_array(elems, count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * Run one permission query under the active snapshot (read only) as the
 * owner of cloudconn's tables; the caller has connected SPI.  An error
 * restores the user id through transaction abort, as for SECURITY DEFINER.
 */
static void
PermissionQuery(SPIPlanPtr plan, Datum *args)
{
	Oid			save_userid;
	int			save_sec_context;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(PermissionTableOwner(),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_execute_plan(plan, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not compute a permitted set");
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/*
 * Compute a permitted set into cxt: the entities, or the connectors under
 * the given entities.
 */
static void
PermissionCompute(PermittedKind kind, Oid role, const char *perm, const int64 *entity_ids,
				  int nentities, int64 **ids, int *count, MemoryContext cxt)
{
	SPI_connect();
	if (kind == PERMITTED_ENTITIES)
	{
		Oid			argtypes[2] = {OIDOID, TEXTARRAYOID};
		Datum		args[2] = {ObjectIdGetDatum(role), PermissionImplying(perm)};

		PermissionQuery(PermissionPlan(&granted_entities_plan, granted_entities_sql, 2, argtypes), args);
	}
	else
	{
		Oid			argtypes[1] = {INT8ARRAYOID};
		Datum		args[1] = {PermissionIdArray(entity_ids, nentities)};

		PermissionQuery(PermissionPlan(&connectors_of_entities_plan, connectors_of_entities_sql, 1, argtypes),
						args);
	}
	PermissionCollectIds(ids, count, cxt);
	SPI_finish();
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
		set->bitmap = MemoryContextAllocZero(set->cxt, range / 8 + 1);
		for (int i = 0; i < set->count; i++)
		{
			int64		bit = set->ids[i] - set->min;

			set->bitmap[bit / 8] |= (uint8) (1 << (bit % 8));
		}
	}
}

static inline bool
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

/* ------------------------------------------------------------------------
 * The cache
 * ------------------------------------------------------------------------ */

static void
SnapshotKeyOf(Snapshot snapshot, SnapshotKey *key)
{
	memset(key, 0, sizeof(SnapshotKey));
	if (snapshot == NULL || snapshot->snapshot_type != SNAPSHOT_MVCC)
		return;
	key->valid = true;
	key->xmin = snapshot->xmin;
	key->xmax = snapshot->xmax;
	key->xcnt = snapshot->xcnt;
	key->subxcnt = snapshot->subxcnt;
	key->suboverflowed = snapshot->suboverflowed;
	key->curcid = snapshot->curcid;
	key->lxid = MyProc->lxid;
}

static bool
SnapshotKeyEqual(const SnapshotKey *a, const SnapshotKey *b)
{
	return a->valid && b->valid && a->xmin == b->xmin && a->xmax == b->xmax &&
		a->xcnt == b->xcnt && a->subxcnt == b->subxcnt &&
		a->suboverflowed == b->suboverflowed && a->curcid == b->curcid && a->lxid == b->lxid;
}

/* Is the active snapshot the one last validated?  Cheap: per row. */
static bool
PermissionSnapshotCurrent(void)
{
	Snapshot	snapshot;

	if (!validated_key.valid || !ActiveSnapshotSet())
		return false;
	snapshot = GetActiveSnapshot();
	return snapshot->snapshot_type == SNAPSHOT_MVCC &&
		snapshot->xmin == validated_key.xmin && snapshot->xmax == validated_key.xmax &&
		snapshot->xcnt == validated_key.xcnt && snapshot->subxcnt == validated_key.subxcnt &&
		snapshot->suboverflowed == validated_key.suboverflowed &&
		snapshot->curcid == validated_key.curcid && MyProc->lxid == validated_key.lxid;
}

static void
PermissionFreeSlot(int i)
{
	MemoryContextDelete(cache_slots[i]->cxt);
	cache_slots[i] = NULL;
	cache_epoch++;
}

/*
 * Validate the active snapshot against the shared state (once per
 * snapshot), and free the sets that can never be valid again: shared ones
 * of an older generation, those of other snapshots, all after a role
 * catalog invalidation.
 */
static void
PermissionValidate(Snapshot snapshot)
{
	SnapshotKey key;
	bool		roles_changed = (roles_inval_seen != roles_inval_count);
	bool		read_generation = false;

	SnapshotKeyOf(snapshot, &key);
	if (!roles_changed && SnapshotKeyEqual(&key, &validated_key))
		return;
	validated_key = key;
	validated_shared_ok = false;
	if (key.valid && permission_shared != NULL && !snapshot->takenDuringRecovery)
	{
		read_generation = true;
		validated_shared_ok = PermissionWritersVisible(snapshot, &validated_generation) &&
			!xact_changed_permissions;
	}
	roles_inval_seen = roles_inval_count;
	cache_epoch++;

	for (int i = 0; i < PERMISSION_CACHE_SLOTS; i++)
	{
		PermittedSet *set = cache_slots[i];

		if (set == NULL)
			continue;
		if (set->shared ? roles_changed || (read_generation && set->generation != validated_generation)
			: !SnapshotKeyEqual(&set->snapshot, &validated_key))
			PermissionFreeSlot(i);
	}
}

/* A free slot, making one by evicting the least recently used set. */
static int
PermissionFreeSlotIndex(void)
{
	int			victim = 0;

	for (int i = 0; i < PERMISSION_CACHE_SLOTS; i++)
	{
		if (cache_slots[i] == NULL)
			return i;
		if (cache_slots[i]->last_used < cache_slots[victim]->last_used)
			victim = i;
	}
	PermissionFreeSlot(victim);
	return victim;
}

/*
 * The permitted set of this kind for (role, perm) under the active
 * snapshot: from the cache when it holds one valid for that snapshot, else
 * computed (and kept).  Valid until the next call of this function.
 */
static PermittedSet *
PermissionLookup(PermittedKind kind, Oid role, const char *perm, int perm_len)
{
	Snapshot	snapshot = ActiveSnapshotSet() ? GetActiveSnapshot() : NULL;
	PermittedSet *set;
	int64	   *entity_ids = NULL;
	int			nentities = 0;
	char		permbuf[sizeof(((PermittedSet *) NULL)->permission) + 1];
	uint64		inval_before;
	MemoryContext cxt;
	int			slot;

	if (PermissionCacheContext == NULL)
		PermissionCacheContext = AllocSetContextCreate(TopMemoryContext, "cloudconn permitted sets",
													   ALLOCSET_SMALL_SIZES);
	PermissionRegisterCallbacks();
	PermissionValidate(snapshot);

	for (int i = 0; i < PERMISSION_CACHE_SLOTS; i++)
	{
		set = cache_slots[i];
		if (set != NULL && set->kind == kind && set->role == role && set->permission_len == perm_len &&
			memcmp(set->permission, perm, perm_len) == 0 &&
			(set->shared ? validated_shared_ok && set->generation == validated_generation
			 : SnapshotKeyEqual(&set->snapshot, &validated_key)))
		{
			set->last_used = ++cache_clock;
			stat_reused++;
			return set;
		}
	}

	if (perm_len >= (int) sizeof(permbuf))
		PermissionUnknown(perm, perm_len);	/* too long to be valid */
	memcpy(permbuf, perm, perm_len);
	permbuf[perm_len] = '\0';

	inval_before = roles_inval_count;
	if (kind == PERMITTED_CONNECTORS)
	{
		PermittedSet *entities = PermissionLookup(PERMITTED_ENTITIES, role, permbuf, perm_len);

		entity_ids = entities->ids;
		nentities = entities->count;
	}

	/*
	 * Computed in a context of the (sub)transaction, which an error frees,
	 * then moved under the cache.
	 */
	cxt = AllocSetContextCreate(CurTransactionContext, "cloudconn permitted set", ALLOCSET_SMALL_SIZES);
	set = MemoryContextAllocZero(cxt, sizeof(PermittedSet));
	set->cxt = cxt;
	PermissionCompute(kind, role, permbuf, entity_ids, nentities, &set->ids, &set->count, cxt);
	stat_computed++;
	set->covers_all = -1;
	set->kind = kind;
	set->role = role;
	set->permission_len = perm_len;
	memcpy(set->permission, permbuf, perm_len);
	/* a role catalog invalidation while computing: this snapshot only */
	set->shared = validated_shared_ok && roles_inval_count == inval_before;
	set->generation = validated_generation;
	set->snapshot = validated_key;
	set->last_used = ++cache_clock;
	PermissionIndexSet(set);
	/* the entities' set was used last, so it is not the one evicted */
	slot = PermissionFreeSlotIndex();
	MemoryContextSetParent(cxt, PermissionCacheContext);
	cache_slots[slot] = set;
	return set;
}

/* ------------------------------------------------------------------------
 * SQL-callable functions and the rest of the extension's interface
 * ------------------------------------------------------------------------ */

/*
 * The per-row path.  A call site remembers its set with the cache epoch it
 * came from, so the usual row costs a few comparisons and one probe; the
 * permission argument is a constant in a policy, so it is compared only when
 * the set is looked up again.
 */
static pg_attribute_always_inline bool
PermissionRowCheck(FunctionCallInfo fcinfo, PermittedKind kind)
{
	PermittedCallSite *site = (PermittedCallSite *) fcinfo->flinfo->fn_extra;
	Oid			role = GetUserId();
	text	   *perm;

	stat_row_checks++;
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return false;
	if (unlikely(site == NULL))
	{
		site = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(PermittedCallSite));
		site->perm_stable = get_fn_expr_arg_stable(fcinfo->flinfo, 1);
		fcinfo->flinfo->fn_extra = site;
	}
	if (unlikely(site->set == NULL || site->epoch != cache_epoch || site->role != role ||
				 !site->perm_stable || !PermissionSnapshotCurrent()))
	{
		perm = PG_GETARG_TEXT_PP(1);
		site->set = PermissionLookup(kind, role, VARDATA_ANY(perm), VARSIZE_ANY_EXHDR(perm));
		site->epoch = cache_epoch;
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

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("role and permission must not be null")));
	perm = PG_GETARG_TEXT_PP(1);
	set = PermissionLookup(PERMITTED_ENTITIES, PG_GETARG_OID(0), VARDATA_ANY(perm), VARSIZE_ANY_EXHDR(perm));
	PG_RETURN_DATUM(PermissionIdArray(set->ids, set->count));
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

/*
 * Does the set hold every entity (connector)?  Counted under the active
 * snapshot, for which the set is valid: if it was computed under an
 * earlier one, both see the same permission data, entities and connectors
 * included.  The set's ids come from the table, so equal counts mean equal
 * sets.
 */
static bool
PermissionCoversAll(PermittedSet *set)
{
	if (set->covers_all < 0)
	{
		bool		isnull;
		int64		total;

		SPI_connect();
		if (set->kind == PERMITTED_ENTITIES)
			PermissionQuery(PermissionPlan(&count_entities_plan, count_entities_sql, 0, NULL), NULL);
		else
			PermissionQuery(PermissionPlan(&count_connectors_plan, count_connectors_sql, 0, NULL), NULL);
		total = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		SPI_finish();
		set->covers_all = (total == set->count) ? 1 : 0;
	}
	return set->covers_all == 1;
}

/*
 * entity_restriction(permission) / connector_restriction(permission):
 * NULL when the current role holds the permission on every entity
 * (connector), true otherwise.  Read policies evaluate it once per
 * statement, as an InitPlan, before the per-row call: a role that sees
 * everything then skips entity_permitted() on every row.  NULL rather than
 * false, because the planner guesses 0.5% for "IS NULL" of a value it
 * cannot know (and 50% for a boolean), so the OR keeps the policy's
 * estimate to the support function's selectivity.
 */
static Datum
PermissionRestriction(FunctionCallInfo fcinfo, PermittedKind kind)
{
	text	   *perm;
	PermittedSet *set;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(true);
	perm = PG_GETARG_TEXT_PP(0);
	set = PermissionLookup(kind, GetUserId(), VARDATA_ANY(perm), VARSIZE_ANY_EXHDR(perm));
	if (PermissionCoversAll(set))
		PG_RETURN_NULL();
	PG_RETURN_BOOL(true);
}

/* cloudconn.entity_restriction(permission text): for read policies */
Datum
cloudconn_entity_restriction(PG_FUNCTION_ARGS)
{
	return PermissionRestriction(fcinfo, PERMITTED_ENTITIES);
}

/* cloudconn.connector_restriction(permission text): for read policies */
Datum
cloudconn_connector_restriction(PG_FUNCTION_ARGS)
{
	return PermissionRestriction(fcinfo, PERMITTED_CONNECTORS);
}

/*
 * Does role see the whole tree: a superuser, or a holder of a permission
 * (read, or manage, which implies it) on every root entity?  What global
 * figures (the scheduler's counters) are shown to.
 */
bool
PermissionCoversTree(Oid role)
{
	static const char *const perms[] = {"CloudConnector:read", "ConfigurationItem:read"};

	if (superuser_arg(role))
		return true;
	for (int i = 0; i < (int) lengthof(perms); i++)
	{
		PermittedSet *set = PermissionLookup(PERMITTED_ENTITIES, role, perms[i], strlen(perms[i]));
		Oid			argtypes[1] = {INT8ARRAYOID};
		Datum		args[1];
		bool		covers;
		bool		isnull;

		if (set->count == 0)
			continue;
		args[0] = PermissionIdArray(set->ids, set->count);
		SPI_connect();
		PermissionQuery(PermissionPlan(&covers_tree_plan, covers_tree_sql, 1, argtypes), args);
		covers = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		SPI_finish();
		if (covers)
			return true;
	}
	return false;
}

/*
 * cloudconn._permission_cache_stats(OUT computed bigint, OUT reused bigint,
 * OUT row_checks bigint): this backend's permitted sets computed so far,
 * lookups the cache answered, and per-row checks made (entity_permitted(),
 * connector_permitted()); for tests and benchmarks (superuser only, like
 * every private function).
 */
Datum
cloudconn_permission_cache_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[3] = {Int64GetDatum(stat_computed), Int64GetDatum(stat_reused),
							 Int64GetDatum(stat_row_checks)};
	bool		nulls[3] = {false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
