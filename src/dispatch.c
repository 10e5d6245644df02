/*
 * dispatch.c
 *		One C entry point behind every public cloudconn function that acts
 *		for a user: it captures the calling role and calls the private
 *		implementation cloudconn._<name>(caller oid, <same arguments>).
 *
 * Why: a SECURITY DEFINER function cannot learn from SQL who called it
 * (current_user is the definer), so the permission checks need the caller
 * handed to them.  GetUserId() here, in a SECURITY INVOKER C function, is the
 * role the statement runs as: the SET ROLE role of a request, or the owner of
 * an enclosing SECURITY DEFINER function, never the login role behind it.
 * The implementations have EXECUTE revoked from PUBLIC; calling them through
 * fmgr skips that ACL check (as intended) but still honours their SECURITY
 * DEFINER and SET search_path.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "dispatch.h"
#include "standby.h"

PG_FUNCTION_INFO_V1(cloudconn_dispatch);

/* cached per call site in fn_extra */
typedef struct DispatchTarget
{
	FmgrInfo	impl;
	int			nargs;			/* of the public function */
	bool		writes;			/* refused on a standby (standby.c) */
	char		name[NAMEDATALEN];	/* of the public function */
} DispatchTarget;

/*
 * The one volatile public function that writes nothing: connector_test()
 * is volatile because it talks to the provider, and works on a standby.
 */
#define DISPATCH_READ_ONLY_VOLATILE "connector_test"

/*
 * Resolve cloudconn._<proname>(oid, <argtypes of the public function>).
 * Looked up by schema-qualified name and exact signature, so neither a
 * search_path nor a same-named function elsewhere can substitute it.
 */
static DispatchTarget *
CallerResolveTarget(FunctionCallInfo fcinfo)
{
	Oid			public_oid = fcinfo->flinfo->fn_oid;
	HeapTuple	proctup;
	Form_pg_proc procform;
	Oid			argtypes[FUNC_MAX_ARGS];
	char		implname[NAMEDATALEN + 1];
	Oid			impl_oid;
	DispatchTarget *target;

	proctup = SearchSysCache1(PROCOID, ObjectIdGetDatum(public_oid));
	if (!HeapTupleIsValid(proctup))
		elog(ERROR, "cache lookup failed for function %u", public_oid);
	procform = (Form_pg_proc) GETSTRUCT(proctup);

	if (procform->pronargs + 1 > FUNC_MAX_ARGS)
		elog(ERROR, "cloudconn function %s has too many arguments", NameStr(procform->proname));

	argtypes[0] = OIDOID;
	memcpy(&argtypes[1], procform->proargtypes.values, procform->pronargs * sizeof(Oid));
	snprintf(implname, sizeof(implname), "_%s", NameStr(procform->proname));

	impl_oid = LookupFuncName(list_make2(makeString("cloudconn"), makeString(implname)),
							  procform->pronargs + 1, argtypes, false);

	target = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(DispatchTarget));
	target->nargs = procform->pronargs;
	target->writes = procform->provolatile == PROVOLATILE_VOLATILE &&
		strcmp(NameStr(procform->proname), DISPATCH_READ_ONLY_VOLATILE) != 0;
	strlcpy(target->name, NameStr(procform->proname), sizeof(target->name));
	fmgr_info_cxt(impl_oid, &target->impl, fcinfo->flinfo->fn_mcxt);
	ReleaseSysCache(proctup);

	if (target->nargs != PG_NARGS())
		elog(ERROR, "cloudconn function called with %d arguments, declared with %d",
			 PG_NARGS(), target->nargs);
	return target;
}

Datum
cloudconn_dispatch(PG_FUNCTION_ARGS)
{
	DispatchTarget *target = (DispatchTarget *) fcinfo->flinfo->fn_extra;
	LOCAL_FCINFO(implcall, FUNC_MAX_ARGS);
	Datum		result;

	if (target == NULL)
	{
		target = CallerResolveTarget(fcinfo);
		fcinfo->flinfo->fn_extra = target;
	}
	if (target->writes)
		StandbyRefuseWrite(target->name);

	InitFunctionCallInfoData(*implcall, &target->impl, target->nargs + 1,
							 PG_GET_COLLATION(), NULL, NULL);
	implcall->args[0].value = ObjectIdGetDatum(GetUserId());
	implcall->args[0].isnull = false;
	for (int i = 0; i < target->nargs; i++)
		implcall->args[i + 1] = fcinfo->args[i];

	result = FunctionCallInvoke(implcall);
	fcinfo->isnull = implcall->isnull;
	return result;
}
