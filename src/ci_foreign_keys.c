/*
 * ci_foreign_keys.c
 *		The foreign keys of the CIs a run creates, checked once per run
 *		instead of once per row.
 *
 * Every CI a run creates references the same two rows: its connector's
 * entity (entity_id) and its connector (source_connector_id).  PostgreSQL
 * checks a foreign key with one query per inserted row, which locks the
 * referenced row FOR KEY SHARE; for a run creating 100,000 CIs that is
 * 200,000 queries locking the same two rows, a third of the run's CPU.
 * When the table's only insert triggers are those two checks, the run
 * takes the same two locks once (CiForeignKeysLockOnce) and creates its
 * CIs with session_replication_role = replica, under which those checks do
 * not fire: the guarantee is the same (each referenced row exists and
 * cannot be deleted or have its key changed until the run commits), and
 * every other constraint (NOT NULL, CHECK, unique) is enforced as before.
 * Any other trigger or rule on the table, or a foreign key of another
 * shape (added by a user, say), and the run creates its CIs the ordinary
 * way, checked per row.
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"

#include "ci_foreign_keys.h"

/* Whether fk is entity_id -> entity (id) or source_connector_id -> connector (id). */
static bool
CiForeignKeyIsKnown(Relation ci, ForeignKeyCacheInfo *fk, Oid entity, Oid connector)
{
	AttrNumber	column;
	Oid			referenced;

	if (fk->nkeys != 1)
		return false;
	if (fk->confrelid == entity)
	{
		column = get_attnum(RelationGetRelid(ci), "entity_id");
		referenced = entity;
	}
	else if (fk->confrelid == connector)
	{
		column = get_attnum(RelationGetRelid(ci), "source_connector_id");
		referenced = connector;
	}
	else
		return false;
	return fk->conkey[0] == column && fk->confkey[0] == get_attnum(referenced, "id");
}

/*
 * Whether an insert into configuration_item fires nothing but the checks
 * of its two foreign keys (enabled the ordinary way), and it has no rule.
 */
static bool
CiInsertFiresOnlyKnownChecks(Oid namespace)
{
	Oid			ci_relid = get_relname_relid("configuration_item", namespace);
	Oid			entity = get_relname_relid("entity", namespace);
	Oid			connector = get_relname_relid("connector", namespace);
	Relation	ci;
	List	   *fkeys;
	ListCell   *lc;
	bool		eligible = true;
	int			checks = 0;

	if (!OidIsValid(ci_relid) || !OidIsValid(entity) || !OidIsValid(connector))
		return false;
	ci = table_open(ci_relid, AccessShareLock);
	fkeys = RelationGetFKeyList(ci);
	if (ci->rd_rel->relhasrules || ci->trigdesc == NULL)
		eligible = false;
	for (int i = 0; eligible && i < ci->trigdesc->numtriggers; i++)
	{
		Trigger    *t = &ci->trigdesc->triggers[i];
		bool		known = false;

		if (!TRIGGER_FOR_INSERT(t->tgtype))
			continue;
		if (RI_FKey_trigger_type(t->tgfoid) == RI_TRIGGER_FK &&
			t->tgenabled == TRIGGER_FIRES_ON_ORIGIN && TRIGGER_FOR_ROW(t->tgtype))
		{
			foreach(lc, fkeys)
			{
				ForeignKeyCacheInfo *fk = lfirst(lc);

				if (fk->conoid == t->tgconstraint)
					known = CiForeignKeyIsKnown(ci, fk, entity, connector);
			}
		}
		if (!known)
			eligible = false;
		checks++;
	}
	/* both keys present, each with its check, and no other key */
	if (eligible && (checks != 2 || list_length(fkeys) != 2))
		eligible = false;
	table_close(ci, AccessShareLock);
	return eligible;
}

/* Lock one referenced row FOR KEY SHARE, as the per-row check would; false if it is gone. */
static bool
CiLockReferencedRow(const char *sql, int64 id)
{
	if (SPI_execute_with_args(sql, 1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(id)}, NULL, false, 0)
		!= SPI_OK_SELECT)
		elog(ERROR, "could not lock a row referenced by new CIs");
	return SPI_processed == 1;
}

bool
CiForeignKeysLockOnce(int64 entity_id, int64 connector_id)
{
	Oid			namespace = get_namespace_oid("cloudconn", false);

	bool		once;

	/* a row gone meanwhile: the ordinary checks raise the usual error */
	once = CiInsertFiresOnlyKnownChecks(namespace) &&
		CiLockReferencedRow("SELECT 1 FROM ONLY cloudconn.entity x"
							" WHERE x.id OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF x", entity_id) &&
		CiLockReferencedRow("SELECT 1 FROM ONLY cloudconn.connector x"
							" WHERE x.id OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF x", connector_id);
	ereport(DEBUG1,
			(errmsg_internal("cloudconn: the foreign keys of new CIs are checked %s",
							 once ? "once for the run" : "row by row")));
	return once;
}

int
CiForeignKeysSkipRowChecks(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("session_replication_role", "replica", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

void
CiForeignKeysRestoreRowChecks(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}
