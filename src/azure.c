/*
 * azure.c
 *		The Microsoft Azure provider.  It is listed in the providers view as
 *		coming soon, with no resource types: connectors cannot be created
 *		for it yet (README: SQL API).
 */
#include "postgres.h"

#include "provider.h"

static const char *const azure_settings_keys[] = {NULL};

const Provider azure_provider = {
	.name = "azure",
	.display_name = "Microsoft Azure",
	.label = "Azure",
	.status = PROVIDER_COMING_SOON,
	.settings_keys = azure_settings_keys,
};
