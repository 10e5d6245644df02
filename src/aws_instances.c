/*
 * aws_instances.c
 *		Reading one page of EC2 DescribeInstances: libxml2's SAX2 interface
 *		picks out of each instance the fields a CI is made from, without
 *		building a document tree.  A page of 1000 instances is about 8 MB of
 *		XML; a tree of it cost more time than everything else in a run, and
 *		tens of megabytes, for the twenty-odd values per instance kept.
 *
 * The callbacks run inside libxml2, so they never ereport and never
 * allocate in a way that can ERROR: they write the instances as a JSON
 * array with CallbackBufferAppend and set flags, and the page is judged
 * once the parser has returned.  Nothing is fetched (XML_PARSE_NONET), a
 * DTD stops the parse (AWS never sends one; here it could only declare
 * entities), and entities other than XML's predefined five are errors.
 */
#include "postgres.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>

#include "utils/jsonb.h"

#include "aws_instances.h"
#include "callback_buffer.h"
#include "provider.h"
#include "xml_guard.h"

/*
 * Bounds on what one page may hold, so that its memory is bounded too: we
 * ask for MaxResults=1000; AWS allows 50 tags per instance besides its own
 * aws: ones, keys of 128 and values of 256 characters; ids, names and
 * addresses are shorter still.  A page beyond them is refused.
 */
#define AWS_PAGE_MAX_INSTANCES 1000
#define AWS_INSTANCE_MAX_TAGS 200
#define AWS_TEXT_MAX (8 * 1024)
#define AWS_PAGE_JSON_MAX (32 * 1024 * 1024)

/* The body is handed to the parser this much at a time. */
#define AWS_PARSE_SLICE ((size_t) 256 * 1024)

/* Elements are followed this deep; deeper ones are only counted. */
#define AWS_MAX_TRACKED_DEPTH 16

/* What an element is, by its place in the document. */
typedef enum AwsElement
{
	AWS_OTHER = 0,
	AWS_ROOT,					/* DescribeInstancesResponse */
	AWS_NEXT_TOKEN,				/* root/nextToken */
	AWS_RESERVATIONS,			/* root/reservationSet */
	AWS_RESERVATION,			/* reservationSet/item */
	AWS_INSTANCES,				/* reservation/instancesSet */
	AWS_INSTANCE,				/* instancesSet/item */
	AWS_FIELD,					/* instance/<one of aws_instance_fields> */
	AWS_STATE,					/* instance/instanceState */
	AWS_STATE_NAME,				/* instanceState/name */
	AWS_PLACEMENT,				/* instance/placement */
	AWS_ZONE,					/* placement/availabilityZone */
	AWS_TAGS,					/* instance/tagSet */
	AWS_TAG,					/* tagSet/item */
	AWS_TAG_KEY,				/* tag/key */
	AWS_TAG_VALUE,				/* tag/value */
} AwsElement;

/* The instance's own elements copied as they are (SPEC §5 and attributes). */
static const char *const aws_instance_fields[] = {
	"instanceId", "imageId", "privateDnsName", "dnsName", "instanceType", "launchTime",
	"platformDetails", "privateIpAddress", "ipAddress", "subnetId", "vpcId",
};

typedef struct AwsPageReader
{
	xmlParserCtxtPtr parser;
	const char *region;
	const char *account;

	int			depth;			/* of the element being read; root is 1 */
	AwsElement	stack[AWS_MAX_TRACKED_DEPTH + 1];

	StringInfoData json;		/* "[{...}, {...}" */
	int			ninstances;
	bool		instance_has_tags;
	int			instance_ntags;

	/* the text of the element being captured, if any */
	StringInfo	capture;		/* NULL when nothing is captured */
	int			capture_depth;
	StringInfoData text;		/* a field, a state, a zone, a token */
	StringInfoData tag_key;
	StringInfoData tag_value;
	bool		tag_has_key;
	bool		tag_has_value;
	StringInfoData next_token;
	bool		has_next_token;

	bool		root_ok;
	bool		seen_reservations;
	bool		dtd;
	bool		too_large;
	bool		too_many;		/* instances or tags beyond the bounds */
	bool		oom;
} AwsPageReader;

/* Stop the parse: the page is refused, whatever follows. */
static void
AwsReaderStop(AwsPageReader *r)
{
	xmlStopParser(r->parser);
}

static void
AwsReaderAppend(AwsPageReader *r, const char *s)
{
	if (!CallbackBufferAppend(&r->json, s, strlen(s), AWS_PAGE_JSON_MAX, &r->oom))
	{
		r->too_large = !r->oom;
		AwsReaderStop(r);
	}
}

/*
 * "key": "value" as a member of the object being written, after a comma
 * unless it is the object's first.
 */
static void
AwsReaderAppendMember(AwsPageReader *r, const char *key, size_t key_len,
					  const char *value, size_t len)
{
	bool		first = r->json.len > 0 && r->json.data[r->json.len - 1] == '{';

	if (!(first || CallbackBufferAppend(&r->json, ", ", 2, AWS_PAGE_JSON_MAX, &r->oom)) ||
		!CallbackBufferAppendJsonString(&r->json, key, key_len, AWS_PAGE_JSON_MAX, &r->oom) ||
		!CallbackBufferAppend(&r->json, ": ", 2, AWS_PAGE_JSON_MAX, &r->oom) ||
		!CallbackBufferAppendJsonString(&r->json, value, len, AWS_PAGE_JSON_MAX, &r->oom))
	{
		r->too_large = !r->oom;
		AwsReaderStop(r);
	}
}

/* What a child named name of an element of kind parent is. */
static AwsElement
AwsClassify(AwsElement parent, int depth, const char *name)
{
	switch (parent)
	{
		case AWS_OTHER:
			return depth == 1 && strcmp(name, "DescribeInstancesResponse") == 0 ? AWS_ROOT : AWS_OTHER;
		case AWS_ROOT:
			if (strcmp(name, "reservationSet") == 0)
				return AWS_RESERVATIONS;
			return strcmp(name, "nextToken") == 0 ? AWS_NEXT_TOKEN : AWS_OTHER;
		case AWS_RESERVATIONS:
			return strcmp(name, "item") == 0 ? AWS_RESERVATION : AWS_OTHER;
		case AWS_RESERVATION:
			return strcmp(name, "instancesSet") == 0 ? AWS_INSTANCES : AWS_OTHER;
		case AWS_INSTANCES:
			return strcmp(name, "item") == 0 ? AWS_INSTANCE : AWS_OTHER;
		case AWS_INSTANCE:
			if (strcmp(name, "instanceState") == 0)
				return AWS_STATE;
			if (strcmp(name, "placement") == 0)
				return AWS_PLACEMENT;
			if (strcmp(name, "tagSet") == 0)
				return AWS_TAGS;
			for (int i = 0; i < (int) lengthof(aws_instance_fields); i++)
			{
				if (strcmp(name, aws_instance_fields[i]) == 0)
					return AWS_FIELD;
			}
			return AWS_OTHER;
		case AWS_STATE:
			return strcmp(name, "name") == 0 ? AWS_STATE_NAME : AWS_OTHER;
		case AWS_PLACEMENT:
			return strcmp(name, "availabilityZone") == 0 ? AWS_ZONE : AWS_OTHER;
		case AWS_TAGS:
			return strcmp(name, "item") == 0 ? AWS_TAG : AWS_OTHER;
		case AWS_TAG:
			if (strcmp(name, "key") == 0)
				return AWS_TAG_KEY;
			return strcmp(name, "value") == 0 ? AWS_TAG_VALUE : AWS_OTHER;
		default:
			return AWS_OTHER;
	}
}

static void
AwsCaptureStart(AwsPageReader *r, StringInfo into)
{
	resetStringInfo(into);
	r->capture = into;
	r->capture_depth = r->depth;
}

static void
AwsSaxStartElement(void *ctx, const xmlChar *localname, const xmlChar *prefix,
				   const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
				   int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
	AwsPageReader *r = (AwsPageReader *) ctx;
	const char *name = (const char *) localname;
	AwsElement	parent = r->depth <= AWS_MAX_TRACKED_DEPTH ? r->stack[r->depth] : AWS_OTHER;
	AwsElement	kind;

	r->depth++;
	kind = AwsClassify(parent, r->depth, name);
	if (r->depth <= AWS_MAX_TRACKED_DEPTH)
		r->stack[r->depth] = kind;

	switch (kind)
	{
		case AWS_ROOT:
			r->root_ok = true;
			break;
		case AWS_RESERVATIONS:
			r->seen_reservations = true;
			break;
		case AWS_NEXT_TOKEN:
			AwsCaptureStart(r, &r->next_token);
			r->has_next_token = true;
			break;
		case AWS_INSTANCE:
			if (r->ninstances >= AWS_PAGE_MAX_INSTANCES)
			{
				r->too_many = true;
				AwsReaderStop(r);
				break;
			}
			AwsReaderAppend(r, r->ninstances == 0 ? "{" : ", {");
			r->ninstances++;
			r->instance_has_tags = false;
			r->instance_ntags = 0;
			AwsReaderAppendMember(r, "region", 6, r->region, strlen(r->region));
			AwsReaderAppendMember(r, "account", 7, r->account, strlen(r->account));
			break;
		case AWS_FIELD:
		case AWS_STATE_NAME:
		case AWS_ZONE:
			AwsCaptureStart(r, &r->text);
			break;
		case AWS_TAGS:
			/* a second tagSet would be a second "tags": jsonb keeps the last */
			AwsReaderAppend(r, ", \"tags\": {");
			r->instance_has_tags = true;
			break;
		case AWS_TAG:
			if (++r->instance_ntags > AWS_INSTANCE_MAX_TAGS)
			{
				r->too_many = true;
				AwsReaderStop(r);
			}
			r->tag_has_key = r->tag_has_value = false;
			break;
		case AWS_TAG_KEY:
			AwsCaptureStart(r, &r->tag_key);
			r->tag_has_key = true;
			break;
		case AWS_TAG_VALUE:
			AwsCaptureStart(r, &r->tag_value);
			r->tag_has_value = true;
			break;
		default:
			break;
	}
}

static void
AwsSaxEndElement(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
	AwsPageReader *r = (AwsPageReader *) ctx;
	AwsElement	kind = r->depth <= AWS_MAX_TRACKED_DEPTH ? r->stack[r->depth] : AWS_OTHER;

	if (r->capture != NULL && r->capture_depth == r->depth)
		r->capture = NULL;

	switch (kind)
	{
		case AWS_FIELD:
			/* empty elements are left out, as a missing one would be */
			if (r->text.len > 0)
				AwsReaderAppendMember(r, (const char *) localname, strlen((const char *) localname),
									  r->text.data, r->text.len);
			break;
		case AWS_STATE_NAME:
			AwsReaderAppendMember(r, "state", 5, r->text.data, r->text.len);
			break;
		case AWS_ZONE:
			AwsReaderAppendMember(r, "availabilityZone", 16, r->text.data, r->text.len);
			break;
		case AWS_TAG:
			if (r->tag_has_key)
				AwsReaderAppendMember(r, r->tag_key.data, r->tag_key.len,
									  r->tag_has_value ? r->tag_value.data : "",
									  r->tag_has_value ? r->tag_value.len : 0);
			break;
		case AWS_TAGS:
			AwsReaderAppend(r, "}");
			break;
		case AWS_INSTANCE:
			AwsReaderAppend(r, r->instance_has_tags ? "}" : ", \"tags\": {}}");
			break;
		default:
			break;
	}
	r->depth--;
}

static void
AwsSaxCharacters(void *ctx, const xmlChar *ch, int len)
{
	AwsPageReader *r = (AwsPageReader *) ctx;

	/* text of the captured element itself, not of elements inside it */
	if (r->capture == NULL || r->capture_depth != r->depth)
		return;
	if (!CallbackBufferAppend(r->capture, (const char *) ch, (size_t) len, AWS_TEXT_MAX, &r->oom))
	{
		r->too_large = !r->oom;
		AwsReaderStop(r);
	}
}

static void
AwsSaxDtd(void *ctx, const xmlChar *name, const xmlChar *ExternalID, const xmlChar *SystemID)
{
	AwsPageReader *r = (AwsPageReader *) ctx;

	r->dtd = true;
	AwsReaderStop(r);
}

/* libxml2's own messages are dropped: the outcome is judged by its flags. */
static void
AwsSaxIgnoreError(void *ctx, xmlErrorPtr error)
{
}

/* Empty the capture buffers, which may hold anything the page said. */
static void
AwsReaderWipe(AwsPageReader *r)
{
	StringInfo	bufs[] = {&r->text, &r->tag_key, &r->tag_value, &r->next_token};

	for (int i = 0; i < (int) lengthof(bufs); i++)
		explicit_bzero(bufs[i]->data, bufs[i]->maxlen);
}

bool
AwsReadInstancesPage(const char *body, size_t len, const char *region, const char *account,
					 void (*between_slices) (void *arg), void *between_slices_arg,
					 List **instances, char **next_token, const char **error)
{
	AwsPageReader r;
	xmlSAXHandler sax;
	bool		well_formed;
	Jsonb	   *page;

	*instances = NIL;
	*next_token = NULL;
	*error = NULL;
	if (len == 0 || len > INT_MAX)
	{
		*error = "the response is not well-formed XML";
		return false;
	}
	if (!XmlMarkupIsBounded(body, len, XML_GUARD_MAX_MARKUP))
	{
		*error = "the response has a tag longer than " CppAsString2(XML_GUARD_MAX_MARKUP) " bytes";
		return false;
	}

	memset(&r, 0, sizeof(r));
	r.region = region;
	r.account = account;
	initStringInfo(&r.json);
	initStringInfo(&r.text);
	initStringInfo(&r.tag_key);
	initStringInfo(&r.tag_value);
	initStringInfo(&r.next_token);
	appendStringInfoChar(&r.json, '[');

	memset(&sax, 0, sizeof(sax));
	sax.initialized = XML_SAX2_MAGIC;
	sax.startElementNs = AwsSaxStartElement;
	sax.endElementNs = AwsSaxEndElement;
	sax.characters = AwsSaxCharacters;
	sax.cdataBlock = AwsSaxCharacters;
	sax.internalSubset = AwsSaxDtd;
	sax.externalSubset = AwsSaxDtd;
	sax.serror = AwsSaxIgnoreError;

	/*
	 * A push parser, fed the body in slices: it keeps only a slice's worth
	 * of input at a time, where a memory parser would first copy the whole
	 * body (about 8 MB).  It holds its own copy of the handler.
	 */
	r.parser = xmlCreatePushParserCtxt(&sax, &r, NULL, 0, NULL);
	if (r.parser == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create an XML parser")));
	/*
	 * The callbacks never ERROR (they only flag, and the parser's own memory
	 * is libxml2's); between_slices may, and the parser goes with it.
	 */
	xmlCtxtUseOptions(r.parser, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	PG_TRY();
	{
		for (size_t done = 0; done < len && !r.parser->disableSAX; done += AWS_PARSE_SLICE)
		{
			(void) xmlParseChunk(r.parser, body + done, (int) Min(len - done, AWS_PARSE_SLICE), 0);
			if (between_slices)
				between_slices(between_slices_arg);
		}
		if (!r.parser->disableSAX)
			(void) xmlParseChunk(r.parser, NULL, 0, 1);
	}
	PG_CATCH();
	{
		if (r.parser->myDoc != NULL)
			xmlFreeDoc(r.parser->myDoc);
		xmlFreeParserCtxt(r.parser);
		AwsReaderWipe(&r);
		PG_RE_THROW();
	}
	PG_END_TRY();
	well_formed = r.parser->wellFormed != 0;
	if (r.parser->myDoc != NULL)
		xmlFreeDoc(r.parser->myDoc);
	xmlFreeParserCtxt(r.parser);

	if (r.oom)
	{
		AwsReaderWipe(&r);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not read an EC2 DescribeInstances page of %zu bytes.", len)));
	}
	if (r.dtd)
		*error = "the response has a DTD, which AWS never sends";
	else if (r.too_large)
		*error = "a value in the response is too large";
	else if (r.too_many)
		*error = "the page lists more instances than the 1000 asked for, or an instance with more than "
			CppAsString2(AWS_INSTANCE_MAX_TAGS) " tags";
	else if (!well_formed)
		*error = "the response is not well-formed XML";
	else if (!r.root_ok || !r.seen_reservations)
		*error = "the response is not a DescribeInstancesResponse";
	if (*error != NULL)
	{
		AwsReaderWipe(&r);
		return false;
	}

	appendStringInfoChar(&r.json, ']');
	page = ProviderJsonbParse(r.json.data, r.json.len, "an EC2 DescribeInstances page");
	for (int i = 0; i < r.ninstances; i++)
	{
		JsonbValue *v = getIthJsonbValueFromContainer(&page->root, i);

		Assert(v != NULL && v->type == jbvBinary);
		*instances = lappend(*instances, v->val.binary.data);
	}
	if (r.has_next_token)
		*next_token = pnstrdup(r.next_token.data, r.next_token.len);
	AwsReaderWipe(&r);
	pfree(r.json.data);
	return true;
}
