/*
 * fuzz.h
 *		Test-only fuzzing of the readers of untrusted input (fuzz.c), built
 *		only with `make FUZZ=1` (CLOUDCONN_FUZZ).  A fuzz target is one
 *		parser as its caller uses it: the input is a body (or a file, a
 *		header block, a value) as a provider could send it, and the target
 *		runs the real reading code, mapping included, on it.  Targets live
 *		in the file of the code they exercise (src/<file>_fuzz.c, included
 *		at the end of src/<file>.c, so that static readers are reached).
 */
#ifndef CLOUDCONN_FUZZ_H
#define CLOUDCONN_FUZZ_H

#ifdef CLOUDCONN_FUZZ

#include "nodes/pg_list.h"

#include "provider.h"

/*
 * Read one input.  data is len bytes followed by a NUL (as an HTTP body
 * is), in memory of its own exact size, so a read past it is an ASan
 * finding.  Returns true if the input was read (a page taken, a file
 * parsed), false if it was refused with the reader's own message; may
 * raise an ERROR (counted, caught by the driver).  Allocates in the
 * current memory context, which is reset after each input.
 */
typedef bool (*FuzzRead) (const char *data, size_t len);

typedef struct FuzzTarget
{
	const char *name;			/* also the corpus directory's name */
	FuzzRead	read;
	const char *const *dictionary;	/* tokens the mutator inserts (NULL-terminated), or NULL */
} FuzzTarget;

/* The targets of each file, each array ended by a target without name. */
extern const FuzzTarget aws_fuzz_targets[];
extern const FuzzTarget aws_caller_fuzz_targets[];
extern const FuzzTarget roles_anywhere_fuzz_targets[];
extern const FuzzTarget digitalocean_fuzz_targets[];
extern const FuzzTarget azure_fuzz_targets[];
extern const FuzzTarget http_fuzz_targets[];
extern const FuzzTarget reader_fuzz_targets[];

/* A connector of provider with settings (JSON text) and every resource type enabled. */
extern ProviderConnector *FuzzConnector(const Provider *provider, const char *settings);

/*
 * Map items of a page as the engine does (discovery.c: DiscoveryPage):
 * each through the type's map function, its address checked and parsed as
 * an inet, and its CI digest computed.  Returns the number mapped.
 */
extern int	FuzzMapItems(const ProviderConnector *conn, const ResourceType *type, const char *scope,
						 List *items, const bool *untranslatable);

/* An HTTP response of status with data as its body (not copied). */
extern void FuzzResponse(HttpResponse *resp, long status, const char *data, size_t len);

#endif							/* CLOUDCONN_FUZZ */

#endif							/* CLOUDCONN_FUZZ_H */
