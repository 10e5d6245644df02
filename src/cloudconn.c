/*
 * cloudconn.c
 *		Module entry point: settings and, when preloaded, the shared state
 *		(permission cache generation, run slots, scheduler) and the
 *		background workers.
 *
 * Vocabulary used throughout: a connector is one cloud account under one
 * entity; a run is one discovery pass of a connector; a CI is a
 * configuration item, the CMDB row a discovered resource becomes.
 */
#include "postgres.h"

#include <curl/curl.h>

#include "fmgr.h"
#include "miscadmin.h"

#include "guc.h"
#include "permission.h"
#include "policy_gate.h"
#include "run_slots.h"
#include "scheduler.h"
#include "token_key.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	/*
	 * libcurl's global state (TLS library included) is set up once per
	 * process, before any thread or handle exists; with the library
	 * preloaded that happens in the postmaster and is inherited.
	 */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not initialize libcurl")));

	GucDefineAll();
	PolicyGateInstall();

	if (process_shared_preload_libraries_in_progress)
	{
		/*
		 * A key command that fails stops the start: the command cannot be
		 * changed without a restart, and a server without its key would
		 * fail every token operation until then (README: Key management).
		 */
		TokenKeyCheckAtStart();
		PermissionShmemInit();
		RunSlotsShmemInit();
		SchedulerInit();
	}
}
