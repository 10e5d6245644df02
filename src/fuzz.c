/*
 * fuzz.c
 *		Test-only: feeds mutated inputs to the readers of untrusted input
 *		inside a real backend (built only with `make FUZZ=1`; README:
 *		Fuzzing).  cloudconn_fuzz(corpus, target, inputs, seed, crash_dir)
 *		reads the seed inputs of one target from a directory, makes inputs
 *		by a deterministic seeded mutator (bit flips, bytes set, inserted
 *		and deleted, chunks duplicated and repeated, truncation, splices of
 *		two seeds, the target's dictionary tokens, numbers swapped), and
 *		hands each to the target inside a subtransaction that catches its
 *		ERROR.  It returns what the inputs came to: read, refused with the
 *		reader's message, or an ERROR (internal ones, XX000, counted apart).
 *		A crash or an AddressSanitizer finding ends the backend: the input
 *		is written to crash_dir first (ASan's death callback), and the
 *		driver (test/fuzz/run.sh) counts the findings in the server log.
 */
#include "postgres.h"

#ifdef CLOUDCONN_FUZZ

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "aws_caller.h"
#include "ci_digest.h"
#include "fuzz.h"
#include "http.h"
#include "json_items.h"
#include "xml_guard.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define FUZZ_ASAN 1
#endif

PG_FUNCTION_INFO_V1(cloudconn_fuzz);
PG_FUNCTION_INFO_V1(cloudconn_fuzz_targets);

#define FUZZ_MAX_SEEDS 256
#define FUZZ_MAX_SEED_BYTES (1024 * 1024)
#define FUZZ_MAX_INPUT_BYTES (2 * 1024 * 1024)

static const FuzzTarget *const fuzz_target_sets[] = {
	reader_fuzz_targets, http_fuzz_targets, aws_fuzz_targets, aws_caller_fuzz_targets, roles_anywhere_fuzz_targets,
	digitalocean_fuzz_targets, azure_fuzz_targets, NULL
};

/* Tokens of XML and JSON that every target's mutator also inserts. */
static const char *const fuzz_common_tokens[] = {
	"<", ">", "</", "/>", "<?xml version=\"1.0\"?>", "<!DOCTYPE a [<!ENTITY e \"x\">]>", "&e;", "&amp;",
	"&#0;", "&#x10FFFF;", "&#xD800;", "<![CDATA[", "]]>", "<!--", "-->", "xmlns=\"x\"", "a=\"1\"", "\"",
	"'", "{", "}", "[", "]", ":", ",", "null", "true", "false", "\\u0000", "\\ud800", "\\udc00\\ud800",
	"\\\"", "\\", "1e999999", "-1e-999999", "123456789012345678901234567890", "-0", "0.0000001",
	"NaN", "Infinity", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff", "\xe2\x82", "\r\n",
	"\t", " ", "%00", "?", "=", "&", "/", "https://", "http://127.0.0.1:1/", "::1", "0.0.0.0",
	"255.255.255.256", "1.2.3", "fe80::1%eth0", NULL
};

/* Numbers swapped in for a run of digits. */
static const char *const fuzz_numbers[] = {
	"0", "-1", "1", "2147483647", "2147483648", "-2147483649", "9223372036854775807",
	"9223372036854775808", "18446744073709551616", "1e308", "1e309", "-0.0", "00000000000000000001",
	"99999999999999999999999999999999999999", "1.5", ".5", "5.", "0x10", "1e", "+1", NULL
};

/* ------------------------------------------------------------------------
 * Shared by the targets
 * ------------------------------------------------------------------------ */

ProviderConnector *
FuzzConnector(const Provider *provider, const char *settings)
{
	ProviderConnector *conn = palloc0(sizeof(ProviderConnector));

	conn->id = 1;
	conn->entity_id = 1;
	conn->name = "fuzz";
	conn->provider = provider;
	conn->settings = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(settings)));
	conn->external_id = "Zq7RkP2mXw9LbT4nVc8HsY3dFg6JaE1uQo5KiM0r";
	for (int i = 0; i < provider->nresource_types; i++)
		conn->resource_types = lappend(conn->resource_types, (void *) provider->resource_types[i]);
	return conn;
}

int
FuzzMapItems(const ProviderConnector *conn, const ResourceType *type, const char *scope,
			 List *items, const bool *untranslatable)
{
	int			mapped = 0;
	ListCell   *lc;

	foreach(lc, items)
	{
		MappedResource row;
		char	   *error = NULL;
		unsigned char addr[16];
		uint8		digest[32];
		CiDigestFields f;

		memset(&row, 0, sizeof(row));
		if (!type->map(conn, scope, lfirst(lc), &row, &error) || row.external_id == NULL)
			continue;
		/* as discovery.c: a malformed address is a per-resource error, a good one an inet */
		if (row.ip_address != NULL &&
			inet_pton(AF_INET, row.ip_address, addr) != 1 && inet_pton(AF_INET6, row.ip_address, addr) != 1)
			continue;
		memset(&f, 0, sizeof(f));
		f.ci_type = type->ci_type;
		f.name = row.name;
		f.hostname = row.hostname;
		f.ip_address = row.ip_address ? DirectFunctionCall1(inet_in, CStringGetDatum(row.ip_address)) : (Datum) 0;
		f.os_info = row.os_info;
		f.attributes = row.attributes;
		f.scope = scope;
		CiDigest(&f, digest);
		mapped++;
	}
	return mapped;
}

void
FuzzResponse(HttpResponse *resp, long status, const char *data, size_t len)
{
	memset(resp, 0, sizeof(*resp));
	resp->status = status;
	resp->attempts = 1;
	resp->body.data = (char *) data;
	resp->body.len = (int) len;
	resp->body.maxlen = (int) len + 1;
}

/* ------------------------------------------------------------------------
 * Targets of the shared readers
 * ------------------------------------------------------------------------ */

static bool
FuzzXmlGuard(const char *data, size_t len)
{
	return XmlMarkupRefusal(data, len) == NULL;
}

/* The generic JSON scanner: every member kept, items under "items" or the whole page. */
static bool
FuzzJsonItems(const char *data, size_t len)
{
	static const char *const page_members[] = {"next", "links", "meta", NULL};
	static const char *const some[] = {"id", "name", "a.b", "networks.v4", "tags", NULL};
	JsonItemsSpec all = {"items", NULL, page_members, 1000};
	JsonItemsSpec kept = {"items", some, page_members, 1000};
	JsonItemsPage page;
	char	   *error;
	bool		read;

	read = JsonItemsRead(data, len, &all, "the fuzz page", &page, &error);
	if (read && page.items != NIL)
	{
		ListCell   *lc;
		JsonbParseState *state = NULL;

		/* each item pushed as the mappings push members */
		pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
		foreach(lc, page.items)
			JsonItemPush(&state, WJB_ELEM, lfirst(lc));
		(void) JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_ARRAY, NULL));
	}
	(void) JsonItemsRead(data, len, &kept, "the fuzz page", &page, &error);
	return read;
}

/* Values read one per line: numbers, times, addresses, URLs. */
static bool
FuzzScalars(const char *data, size_t len)
{
	const char *p = data;
	const char *end = data + len;
	bool		any = false;
	int			lines = 0;

	/* a value per line, the first 256 (a line may be long) */
	while (p < end && lines++ < 256)
	{
		const char *nl = memchr(p, '\n', end - p);
		size_t		n = nl ? (size_t) (nl - p) : (size_t) (end - p);
		char	   *v = pnstrdup(p, n);
		TimestampTz t;
		unsigned char addr[16];

		any |= JsonNumberInRange(v);
		any |= AwsCallerParseTime(v, &t);
		any |= inet_pton(AF_INET, v, addr) == 1 || inet_pton(AF_INET6, v, addr) == 1;
		any |= HttpUrlOrigin(v) != NULL;
		any |= HttpMetadataUrlValid(v);
		p += n + 1;
	}
	return any;
}

static const char *const fuzz_scalar_tokens[] = {
	"2026-12-03T05:33:15Z", "2026-02-29T00:00:00.000000Z", "+00:00", "T", "https://[::1]:443/x",
	"https://a.b:99999/", "https://user@host/", "169.254.169.254", "169.254.170.2", "[fd00:ec2::254]", NULL
};

const FuzzTarget reader_fuzz_targets[] = {
	{"xml_guard", FuzzXmlGuard, NULL},
	{"json_items", FuzzJsonItems, NULL},
	{"scalars", FuzzScalars, fuzz_scalar_tokens},
	{NULL, NULL, NULL}
};

/* ------------------------------------------------------------------------
 * The mutator
 * ------------------------------------------------------------------------ */

typedef struct FuzzRng
{
	uint64		state;
} FuzzRng;

/* splitmix64: small, fast and deterministic */
static uint64
FuzzNext(FuzzRng *r)
{
	uint64		z = (r->state += UINT64CONST(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static size_t
FuzzBelow(FuzzRng *r, size_t n)
{
	return n == 0 ? 0 : (size_t) (FuzzNext(r) % n);
}

typedef struct FuzzSeed
{
	char	   *data;
	size_t		len;
} FuzzSeed;

typedef struct FuzzInput
{
	char	   *data;			/* capacity FUZZ_MAX_INPUT_BYTES */
	size_t		len;
} FuzzInput;

static void
FuzzInsert(FuzzInput *in, size_t at, const char *bytes, size_t n)
{
	if (in->len + n > FUZZ_MAX_INPUT_BYTES)
		n = FUZZ_MAX_INPUT_BYTES - in->len;
	if (at > in->len)
		at = in->len;
	memmove(in->data + at + n, in->data + at, in->len - at);
	memcpy(in->data + at, bytes, n);
	in->len += n;
}

static void
FuzzDelete(FuzzInput *in, size_t at, size_t n)
{
	if (at >= in->len)
		return;
	if (n > in->len - at)
		n = in->len - at;
	memmove(in->data + at, in->data + at + n, in->len - at - n);
	in->len -= n;
}

/* A token: the target's, the common ones, or a piece of a seed. */
static const char *
FuzzToken(FuzzRng *r, const FuzzTarget *t, size_t *n)
{
	const char *const *set = (t->dictionary != NULL && FuzzBelow(r, 2) == 0) ? t->dictionary : fuzz_common_tokens;
	int			count = 0;
	const char *tok;

	while (set[count] != NULL)
		count++;
	tok = set[FuzzBelow(r, count)];
	*n = strlen(tok);
	return tok;
}

static void
FuzzMutateOnce(FuzzRng *r, const FuzzTarget *t, FuzzInput *in, const FuzzSeed *seeds, int nseeds)
{
	size_t		at = FuzzBelow(r, in->len + 1);
	size_t		n;
	char		bytes[8];

	static const int weights[] = {0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 6, 7, 7, 8, 9, 10, 11, 11};

	switch (weights[FuzzBelow(r, lengthof(weights))])
	{
		case 0:					/* flip a bit */
			if (in->len > 0)
				in->data[FuzzBelow(r, in->len)] ^= (char) (1 << FuzzBelow(r, 8));
			break;
		case 1:					/* set a byte */
			if (in->len > 0)
				in->data[FuzzBelow(r, in->len)] = (char) FuzzNext(r);
			break;
		case 2:					/* insert random bytes */
			n = 1 + FuzzBelow(r, sizeof(bytes));
			for (size_t i = 0; i < n; i++)
				bytes[i] = (char) FuzzNext(r);
			FuzzInsert(in, at, bytes, n);
			break;
		case 3:					/* delete a run */
			FuzzDelete(in, at, 1 + FuzzBelow(r, FuzzBelow(r, 2) ? 8 : 256));
			break;
		case 4:					/* duplicate a chunk elsewhere */
			if (in->len > 0)
			{
				size_t		from = FuzzBelow(r, in->len);
				size_t		len = 1 + FuzzBelow(r, Min(in->len - from, (size_t) 512));
				char	   *copy = palloc(len);

				memcpy(copy, in->data + from, len);
				FuzzInsert(in, at, copy, len);
				pfree(copy);
			}
			break;
		case 5:					/* truncate */
			in->len = at;
			break;
		case 6:
		case 7:					/* a dictionary token */
			{
				const char *tok = FuzzToken(r, t, &n);

				FuzzInsert(in, at, tok, n);
			}
			break;
		case 8:					/* splice: the tail of another seed */
			{
				const FuzzSeed *s = &seeds[FuzzBelow(r, nseeds)];
				size_t		from = FuzzBelow(r, s->len + 1);

				in->len = at;
				FuzzInsert(in, at, s->data + from, s->len - from);
			}
			break;
		case 9:					/* a number swapped in for a run of digits */
			{
				size_t		i = at;
				size_t		j;
				int			count = 0;
				const char *number;

				while (i < in->len && !(in->data[i] >= '0' && in->data[i] <= '9'))
					i++;
				for (j = i; j < in->len && in->data[j] >= '0' && in->data[j] <= '9'; j++)
					;
				while (fuzz_numbers[count] != NULL)
					count++;
				number = fuzz_numbers[FuzzBelow(r, count)];
				FuzzDelete(in, i, j - i);
				FuzzInsert(in, i, number, strlen(number));
			}
			break;
		case 10:				/* repeat a chunk many times (depth, width, length) */
			if (in->len > 0)
			{
				size_t		from = FuzzBelow(r, in->len);
				size_t		len = 1 + FuzzBelow(r, Min(in->len - from, (size_t) 64));
				size_t		times = 2 + FuzzBelow(r, FuzzBelow(r, 4) == 0 ? 20000 : 64);
				char	   *copy;

				times = Min(times, (FUZZ_MAX_INPUT_BYTES - in->len) / len);
				copy = palloc(len * times + 1);
				for (size_t k = 0; k < times; k++)
					memcpy(copy + k * len, in->data + from, len);
				FuzzInsert(in, from, copy, len * times);
				pfree(copy);
			}
			break;
		case 11:				/* a byte that matters to UTF-8 or markup */
			if (in->len > 0)
			{
				static const char special[] = {'\0', '\xff', '\x80', '\xc3', '\xe2', '<', '>', '"', '\\', '{',
				'}', '[', ']', ':', ',', '&', ';', '=', '\n', '/', '.', '-'};

				in->data[FuzzBelow(r, in->len)] = special[FuzzBelow(r, sizeof(special))];
			}
			break;
	}
}

/* An input: a seed, mutated 1 to 8 times (mostly few). */
static void
FuzzMakeInput(FuzzRng *r, const FuzzTarget *t, FuzzInput *in, const FuzzSeed *seeds, int nseeds)
{
	const FuzzSeed *s = &seeds[FuzzBelow(r, nseeds)];
	int			rounds = 1 + (int) FuzzBelow(r, FuzzBelow(r, 3) == 0 ? 8 : 2);

	in->len = Min(s->len, (size_t) FUZZ_MAX_INPUT_BYTES);
	memcpy(in->data, s->data, in->len);
	for (int i = 0; i < rounds; i++)
		FuzzMutateOnce(r, t, in, seeds, nseeds);
}

/* ------------------------------------------------------------------------
 * Crash capture
 * ------------------------------------------------------------------------ */

static const char *fuzz_current = NULL;
static size_t fuzz_current_len = 0;
static char fuzz_crash_path[MAXPGPATH];

#ifdef FUZZ_ASAN
/* ASan's death callback: the input being read is written out (async-signal-safe calls only). */
static void
FuzzOnDeath(void)
{
	int			fd;

	if (fuzz_current == NULL || fuzz_crash_path[0] == '\0')
		return;
	fd = open(fuzz_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0)
	{
		size_t		done = 0;

		while (done < fuzz_current_len)
		{
			ssize_t		w = write(fd, fuzz_current + done, fuzz_current_len - done);

			if (w <= 0)
				break;
			done += (size_t) w;
		}
		close(fd);
	}
}
#endif

/* ------------------------------------------------------------------------
 * SQL
 * ------------------------------------------------------------------------ */

static const FuzzTarget *
FuzzFindTarget(const char *name)
{
	for (int s = 0; fuzz_target_sets[s] != NULL; s++)
	{
		for (const FuzzTarget *t = fuzz_target_sets[s]; t->name != NULL; t++)
		{
			if (strcmp(t->name, name) == 0)
				return t;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("no fuzz target \"%s\"", name)));
	return NULL;				/* keep compiler quiet */
}

/* cloudconn_fuzz_targets() RETURNS SETOF text */
Datum
cloudconn_fuzz_targets(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	for (int s = 0; fuzz_target_sets[s] != NULL; s++)
	{
		for (const FuzzTarget *t = fuzz_target_sets[s]; t->name != NULL; t++)
		{
			Datum		v = CStringGetTextDatum(t->name);
			bool		isnull = false;

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &v, &isnull);
		}
	}
	return (Datum) 0;
}

static int
FuzzCompareNames(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The seeds of a target: every file of dir, in the order of their names. */
static int
FuzzReadSeeds(const char *dir, FuzzSeed *seeds)
{
	DIR		   *d = AllocateDir(dir);
	struct dirent *de;
	char	  **names = palloc(sizeof(char *) * FUZZ_MAX_SEEDS);
	int			nnames = 0;
	int			n = 0;

	while ((de = ReadDir(d, dir)) != NULL && nnames < FUZZ_MAX_SEEDS)
	{
		if (de->d_name[0] != '.')
			names[nnames++] = pstrdup(de->d_name);
	}
	FreeDir(d);
	qsort(names, nnames, sizeof(char *), FuzzCompareNames);
	for (int i = 0; i < nnames; i++)
	{
		char		path[MAXPGPATH];
		FILE	   *f;
		char	   *buf;
		size_t		len;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if ((f = AllocateFile(path, "rb")) == NULL)
			continue;
		buf = palloc(FUZZ_MAX_SEED_BYTES);
		len = fread(buf, 1, FUZZ_MAX_SEED_BYTES, f);
		FreeFile(f);
		buf = repalloc(buf, Max(len, 1));
		seeds[n].data = buf;
		seeds[n].len = len;
		n++;
	}
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("no seed inputs in \"%s\"", dir)));
	return n;
}

typedef enum FuzzOutcome
{
	FUZZ_READ,
	FUZZ_REFUSED,
	FUZZ_ERROR
} FuzzOutcome;

/*
 * One input read by the target in a subtransaction, in inputcxt; an ERROR
 * is caught and handed back in *edata (allocated in the caller's context).
 */
static FuzzOutcome
FuzzReadOne(const FuzzTarget *t, const char *data, size_t len, MemoryContext inputcxt, ErrorData **edata)
{
	MemoryContext outer = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile FuzzOutcome outcome = FUZZ_ERROR;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(inputcxt);
	PG_TRY();
	{
		outcome = t->read(data, len) ? FUZZ_READ : FUZZ_REFUSED;
		MemoryContextSwitchTo(outer);
		ReleaseCurrentSubTransaction();
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(outer);
		*edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		CurrentResourceOwner = owner;
		outcome = FUZZ_ERROR;
	}
	PG_END_TRY();
	return outcome;
}

/*
 * cloudconn_fuzz(corpus_dir text, target text, inputs bigint, seed bigint,
 *                crash_dir text)
 * RETURNS TABLE(target text, seeds int, inputs bigint, read bigint,
 *               refused bigint, errors bigint, internal_errors bigint,
 *               first_internal_error text, seconds float8, first_error text)
 *
 * The seeds are read as they are first (each once, unmutated), then
 * mutated inputs up to the count.
 */
Datum
cloudconn_fuzz(PG_FUNCTION_ARGS)
{
	char	   *dir = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const FuzzTarget *t = FuzzFindTarget(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	int64		ninputs = PG_GETARG_INT64(2);
	int64		seed = PG_GETARG_INT64(3);
	char	   *crash_dir = text_to_cstring(PG_GETARG_TEXT_PP(4));
	TupleDesc	desc;
	FuzzSeed   *seeds = palloc(sizeof(FuzzSeed) * FUZZ_MAX_SEEDS);
	int			nseeds = FuzzReadSeeds(dir, seeds);
	FuzzInput	in;
	FuzzRng		rng;
	int64		read = 0,
				refused = 0,
				errors = 0,
				internal = 0;
	char	   *first_internal = NULL;
	char	   *first_error = NULL;
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext inputcxt;
	TimestampTz start = GetCurrentTimestamp();
	Datum		values[10];
	bool		nulls[10] = {0};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	snprintf(fuzz_crash_path, sizeof(fuzz_crash_path), "%s/crash-%s", crash_dir, t->name);
#ifdef FUZZ_ASAN
	__sanitizer_set_death_callback(FuzzOnDeath);
#endif
	rng.state = (uint64) seed ^ hash_bytes_uint32((uint32) strlen(t->name)) ^
		((uint64) hash_bytes((const unsigned char *) t->name, strlen(t->name)) << 32);
	in.data = palloc(FUZZ_MAX_INPUT_BYTES);
	inputcxt = AllocSetContextCreate(outer, "cloudconn fuzz input", ALLOCSET_SMALL_SIZES);

	for (int64 i = 0; i < ninputs; i++)
	{
		char	   *exact;
		ErrorData  *edata = NULL;

		CHECK_FOR_INTERRUPTS();
		if (i < nseeds)
		{
			in.len = Min(seeds[i].len, (size_t) FUZZ_MAX_INPUT_BYTES);
			memcpy(in.data, seeds[i].data, in.len);
		}
		else
			FuzzMakeInput(&rng, t, &in, seeds, nseeds);

		/* the input in memory of its own exact size (and a NUL), outside palloc's blocks */
		exact = malloc(in.len + 1);
		if (exact == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		memcpy(exact, in.data, in.len);
		exact[in.len] = '\0';
		fuzz_current = exact;
		fuzz_current_len = in.len;

		switch (FuzzReadOne(t, exact, in.len, inputcxt, &edata))
		{
			case FUZZ_READ:
				read++;
				break;
			case FUZZ_REFUSED:
				refused++;
				break;
			case FUZZ_ERROR:
				errors++;
				if (first_error == NULL)
					first_error = psprintf("%s: %s", unpack_sql_state(edata->sqlerrcode), edata->message);
				if (edata->sqlerrcode == ERRCODE_INTERNAL_ERROR)
				{
					internal++;
					if (first_internal == NULL)
						first_internal = pstrdup(edata->message);
				}
				FreeErrorData(edata);
				break;
		}
		/* the input stays what a crash writes out until its memory is gone */
		MemoryContextReset(inputcxt);
		fuzz_current = NULL;
		free(exact);
	}

	values[0] = CStringGetTextDatum(t->name);
	values[1] = Int32GetDatum(nseeds);
	values[2] = Int64GetDatum(ninputs);
	values[3] = Int64GetDatum(read);
	values[4] = Int64GetDatum(refused);
	values[5] = Int64GetDatum(errors);
	values[6] = Int64GetDatum(internal);
	if (first_internal)
		values[7] = CStringGetTextDatum(first_internal);
	else
		nulls[7] = true;
	values[8] = Float8GetDatum((double) (GetCurrentTimestamp() - start) / USECS_PER_SEC);
	if (first_error)
		values[9] = CStringGetTextDatum(first_error);
	else
		nulls[9] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

#endif							/* CLOUDCONN_FUZZ */
