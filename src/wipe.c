/*
 * wipe.c
 *		Wiping secrets from memory.  explicit_bzero, so that the compiler
 *		cannot drop the stores as dead; for strings that live as long as a
 *		memory context, a reset callback of that context, so that an ERROR
 *		anywhere still wipes them.
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "wipe.h"

void
WipeBuffer(void *p, size_t len)
{
	if (p != NULL && len > 0)
		explicit_bzero(p, len);
}

void
WipeString(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
}

void
WipeAndFree(char *s)
{
	if (s == NULL)
		return;
	WipeString(s);
	pfree(s);
}

static void
WipeCallback(void *arg)
{
	WipeString((char *) arg);
}

char *
WipeOnReset(char *s)
{
	MemoryContext cxt = GetMemoryChunkContext(s);
	MemoryContextCallback *cb = MemoryContextAlloc(cxt, sizeof(MemoryContextCallback));

	cb->func = WipeCallback;
	cb->arg = s;
	MemoryContextRegisterResetCallback(cxt, cb);
	return s;
}

char *
WipeCopy(const char *s)
{
	return WipeOnReset(pstrdup(s));
}
