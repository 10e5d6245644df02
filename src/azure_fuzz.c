/*
 * azure_fuzz.c
 *		Fuzz targets of the Azure provider's readers (fuzz.h), included at
 *		the end of azure.c when built with `make FUZZ=1`: list pages read
 *		as a subscription's listing does (the three lookups, then the VMs
 *		joined with them and mapped), a subscriptions page, the token
 *		answer, and error bodies of the login endpoint and of ARM.
 */
#ifndef CLOUDCONN_FUZZ
#error "azure_fuzz.c is included by azure.c in the FUZZ build only"
#endif

#include "fuzz.h"

#define AZURE_FUZZ_ORIGIN "https://management.azure.com"
#define AZURE_FUZZ_SUB "0b1f6471-1bf0-4dda-aec3-111122223333"

/* The subscription an input's ids name (so that its lookups join), else a default. */
static char *
AzureFuzzSubscription(const char *data, size_t len)
{
	const char *p = memmem(data, len, "/subscriptions/", 15);

	if (p != NULL && (size_t) (data + len - (p + 15)) >= 36 && AzureIsGuid(p + 15, 36))
		return AzureLower(p + 15, 36);
	return pstrdup(AZURE_FUZZ_SUB);
}

/*
 * The input as a page of each list in turn: the power states, the NICs and
 * the public IPs fill the lookups (AzureListPage), which are resolved, and
 * then the VMs are joined with them and mapped.
 */
static bool
AzureFuzzLists(const char *data, size_t len)
{
	ProviderConnector *conn = FuzzConnector(&azure_provider, "{}");
	AzureRun	run;
	AzureSub	sub;
	bool		any = false;

	memset(&run, 0, sizeof(run));
	run.cxt = CurrentMemoryContext;
	run.type = &azure_vm_type;
	run.session.origin = AZURE_FUZZ_ORIGIN;
	memset(&sub, 0, sizeof(sub));
	sub.id = AzureFuzzSubscription(data, len);
	/* as AzureSubStart, without sending anything */
	sub.cxt = AllocSetContextCreate(CurrentMemoryContext, "cloudconn azure subscription", ALLOCSET_DEFAULT_SIZES);
	sub.pipcxt = AllocSetContextCreate(sub.cxt, "cloudconn azure public IPs", ALLOCSET_DEFAULT_SIZES);
	sub.lookups.cxt = sub.cxt;
	sub.pipstrings.cxt = sub.pipcxt;
	sub.status = AzureTableCreate(sub.cxt);
	sub.nics = AzureTableCreate(sub.cxt);
	sub.pips = AzureTableCreate(sub.pipcxt);
	sub.remaining_reads = -1;

	for (int k = 0; k < AZURE_NLISTS; k++)
	{
		JsonItemsPage page;
		char	   *error;
		char	   *url = psprintf(AZURE_FUZZ_ORIGIN "/subscriptions/%s%s?%s", sub.id, azure_lists[k].path,
								   azure_lists[k].query);

		if (k == AZURE_LIST_VMS)
			AzureResolvePublicIps(&sub);
		if (!JsonItemsRead(data, len, &azure_lists[k].items, "Azure's response to the fuzz page", &page, &error) ||
			!page.has_items)
			continue;
		(void) AzureNextLink(page.page, url, AZURE_FUZZ_ORIGIN, "the fuzz page", &error);
		any = true;
		switch ((AzureListKind) k)
		{
			case AZURE_LIST_STATUS:
				AzureReadStatuses(&run, &sub, page.items);
				break;
			case AZURE_LIST_NICS:
				AzureReadNics(&run, &sub, page.items);
				break;
			case AZURE_LIST_PUBLIC_IPS:
				AzureReadPublicIps(&run, &sub, page.items);
				break;
			case AZURE_LIST_VMS:
				{
					/* as AzureReadVms, mapped here rather than by the engine */
					AzureVmItem *vms = palloc(sizeof(AzureVmItem) * Max(list_length(page.items), 1));
					List	   *items = NIL;
					int			i = 0;
					ListCell   *lc;

					foreach(lc, page.items)
					{
						vms[i].vm = lfirst(lc);
						vms[i].sub = &sub;
						items = lappend(items, &vms[i++]);
					}
					(void) FuzzMapItems(conn, &azure_vm_type, sub.id, items, page.untranslatable);
				}
				break;
			case AZURE_NLISTS:
				break;
		}
	}
	return any;
}

static bool
AzureFuzzSubscriptions(const char *data, size_t len)
{
	HttpResponse resp;
	List	   *subs = NIL;
	char	   *next;
	char	   *error;

	FuzzResponse(&resp, 200, data, len);
	return AzureReadSubscriptionsPage(&resp, "GET /subscriptions (page 1)",
									  AZURE_FUZZ_ORIGIN "/subscriptions?api-version=" AZURE_SUBSCRIPTIONS_API,
									  AZURE_FUZZ_ORIGIN, &subs, &next, &error);
}

static bool
AzureFuzzToken(const char *data, size_t len)
{
	HttpResponse resp;
	AzureToken	tok;
	char	   *error;

	memset(&tok, 0, sizeof(tok));
	tok.cxt = AllocSetContextCreate(CurrentMemoryContext, "cloudconn azure token", ALLOCSET_SMALL_SIZES);
	FuzzResponse(&resp, 200, data, len);
	return AzureReadToken(&resp, &tok, &error);
}

/* Error bodies of the login endpoint and of ARM, as each status's message is made of them. */
static bool
AzureFuzzErrors(const char *data, size_t len)
{
	static const long statuses[] = {400, 401, 403, 404, 409, 429, 500};
	bool		coded = false;

	for (int i = 0; i < (int) lengthof(statuses); i++)
	{
		HttpResponse resp;

		FuzzResponse(&resp, statuses[i], data, len);
		(void) AzureExplainLogin(AZURE_FUZZ_SUB, AZURE_FUZZ_SUB, &resp);
		(void) AzureExplainArm("GET /subscriptions (page 1)", &resp, AZURE_FUZZ_SUB, AZURE_FUZZ_SUB, AZURE_FUZZ_SUB);
		coded |= AzureTokenExpired(&resp) || AzureCloudErrorCode(&resp) != NULL;
	}
	return coded;
}

static const char *const azure_fuzz_tokens[] = {
	"\"value\"", "\"nextLink\"", "\"id\"", "\"name\"", "\"properties\"", "\"instanceView\"", "\"statuses\"",
	"\"code\":\"PowerState/running\"", "\"ipConfigurations\"", "\"primary\":true", "\"privateIPAddress\"",
	"\"publicIPAddress\"", "\"ipAddress\"", "\"networkProfile\"", "\"networkInterfaces\"", "\"storageProfile\"",
	"\"imageReference\"", "\"osDisk\"", "\"osType\"", "\"hardwareProfile\"", "\"vmSize\"", "\"tags\"",
	"\"zones\"", "\"location\"", "\"subscriptionId\"", "\"displayName\"", "\"access_token\"",
	"\"token_type\":\"Bearer\"", "\"expires_in\"", "\"error_codes\":[7000215]", "\"error\"",
	"\"ExpiredAuthenticationToken\"", "\"SubscriptionNotFound\"", "/resourceGroups/",
	"/providers/Microsoft.Network/networkInterfaces/", "/providers/Microsoft.Network/publicIPAddresses/",
	"/providers/Microsoft.Compute/virtualMachines/", "\"https://management.azure.com/subscriptions?$skiptoken=x\"",
	NULL
};

const FuzzTarget azure_fuzz_targets[] = {
	{"azure_lists", AzureFuzzLists, azure_fuzz_tokens},
	{"azure_subscriptions", AzureFuzzSubscriptions, azure_fuzz_tokens},
	{"azure_token", AzureFuzzToken, azure_fuzz_tokens},
	{"azure_errors", AzureFuzzErrors, azure_fuzz_tokens},
	{NULL, NULL, NULL}
};
