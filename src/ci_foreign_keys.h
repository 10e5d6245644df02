/*
 * ci_foreign_keys.h
 *		The foreign keys of the CIs a run creates, checked once per run
 *		(see ci_foreign_keys.c).
 */
#ifndef CLOUDCONN_CI_FOREIGN_KEYS_H
#define CLOUDCONN_CI_FOREIGN_KEYS_H

/*
 * Whether the CIs the run creates (under entity_id, of connector_id) may
 * skip the per-row checks of their foreign keys: true when the table's
 * insert triggers are those checks only and both referenced rows are now
 * locked FOR KEY SHARE until the end of the transaction.
 */
extern bool CiForeignKeysLockOnce(int64 entity_id, int64 connector_id);

/* Around the inserts: returns the GUC nest level to restore. */
extern int	CiForeignKeysSkipRowChecks(void);
extern void CiForeignKeysRestoreRowChecks(int nestlevel);

#endif
