/*
 * aws_fuzz.c
 *		Fuzz targets of the AWS provider's readers (fuzz.h), included at the
 *		end of aws.c when built with `make FUZZ=1`: listing pages (EC2,
 *		VPC, RDS, S3 XML; Lambda JSON) read and mapped as a run does, the
 *		STS AssumeRole, DescribeRegions and GetBucketLocation answers, and
 *		error bodies of every protocol.
 */
#ifndef CLOUDCONN_FUZZ
#error "aws_fuzz.c is included by aws.c in the FUZZ build only"
#endif

#include "fuzz.h"

/* A batch without transfers, for the progress calls made while a page is read. */
static HttpBatch *aws_fuzz_batch = NULL;

/* A page of a listing, read and mapped as AwsListingAnswer and DiscoveryPage do. */
static bool
AwsFuzzListing(const ResourceType *type, const char *data, size_t len)
{
	ProviderConnector *conn = FuzzConnector(&aws_provider, "{\"account_id\": \"444455556666\"}");
	AwsListingState l;
	HttpResponse resp;
	List	   *items = NIL;
	bool	   *untranslatable = NULL;
	const char *token = NULL;
	const char *problem = NULL;

	if (aws_fuzz_batch == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		aws_fuzz_batch = HttpBatchCreate();
		MemoryContextSwitchTo(old);
	}
	memset(&l, 0, sizeof(l));
	l.type = type;
	l.spec = (const AwsListing *) type->listing;
	l.scope = type->scope_kind == SCOPE_REGION ? "eu-west-1" : PROVIDER_ACCOUNT_SCOPE;
	l.region = "eu-west-1";
	l.cxt = CurrentMemoryContext;
	l.pagecxt = CurrentMemoryContext;
	l.locating = -1;
	FuzzResponse(&resp, 200, data, len);
	if (!AwsListingReadPage(&l, &resp, aws_fuzz_batch, &items, &untranslatable, &token, &problem))
		return false;
	(void) FuzzMapItems(conn, type, l.scope, items, untranslatable);
	return true;
}

static bool
AwsFuzzEc2Instances(const char *data, size_t len)
{
	return AwsFuzzListing(&aws_ec2_instance_type, data, len);
}

static bool
AwsFuzzVpcs(const char *data, size_t len)
{
	return AwsFuzzListing(&aws_vpc_type, data, len);
}

static bool
AwsFuzzRdsInstances(const char *data, size_t len)
{
	return AwsFuzzListing(&aws_rds_db_instance_type, data, len);
}

static bool
AwsFuzzS3Buckets(const char *data, size_t len)
{
	return AwsFuzzListing(&aws_s3_bucket_type, data, len);
}

static bool
AwsFuzzLambdaFunctions(const char *data, size_t len)
{
	return AwsFuzzListing(&aws_lambda_function_type, data, len);
}

/* An STS AssumeRole answer, as AwsAssumeRole reads it. */
static bool
AwsFuzzAssumeRole(const char *data, size_t len)
{
	xmlDocPtr	doc = AwsParseXml(data, len);
	AwsCredentials cred;
	AwsError	err;
	char	   *arn = NULL;

	memset(&err, 0, sizeof(err));
	if (doc == NULL)
		return false;
	return AwsAssumeRoleRead(doc, &cred, &arn, &err);
}

/* A DescribeRegions answer (it raises for one that is not such an answer). */
static bool
AwsFuzzRegions(const char *data, size_t len)
{
	xmlDocPtr	doc = AwsParseXml(data, len);

	if (doc == NULL)
		return false;
	return AwsRegionsRead(doc) != NIL;
}

/* A GetBucketLocation answer, added to a bucket as AwsBucketLocationAnswer does, then mapped. */
static bool
AwsFuzzBucketLocation(const char *data, size_t len)
{
	ProviderConnector *conn = FuzzConnector(&aws_provider, "{}");
	AwsListingState l;
	AwsError	err;
	XmlNode    *bucket = palloc0(sizeof(XmlNode));
	xmlDocPtr	doc = AwsParseXml(data, len);

	memset(&l, 0, sizeof(l));
	l.pagecxt = CurrentMemoryContext;
	memset(&err, 0, sizeof(err));
	err.status = 200;
	err.message = "the response is not well-formed XML";
	bucket->name = "Bucket";
	bucket->text = "";
	AwsNodeAddChild(&l, bucket, "Name", "fuzz-bucket-0001");
	AwsNodeAddChild(&l, bucket, "CreationDate", "2023-03-01T00:00:00.000Z");
	AwsBucketLocationRead(&l, bucket, doc, &err);
	(void) FuzzMapItems(conn, &aws_s3_bucket_type, PROVIDER_ACCOUNT_SCOPE, list_make1(bucket), NULL);
	return XmlNodeChild(bucket, "BucketRegion") != NULL;
}

/*
 * An error body, as each protocol's calls read it (AwsCallSucceeded), with
 * the messages made of it; for REST-JSON its first line is also the
 * x-amzn-ErrorType header.  Each reading wipes the body: each gets a copy.
 */
static bool
AwsFuzzErrors(const char *data, size_t len)
{
	static const AwsProtocol protocols[] = {AWS_QUERY, AWS_REST_XML, AWS_REST_JSON};
	static const long statuses[] = {400, 403, 503};
	const AwsListing *listing = (const AwsListing *) aws_ec2_instance_type.listing;
	bool		coded = false;

	for (int p = 0; p < (int) lengthof(protocols); p++)
	{
		AwsCallState call;
		AwsError	err;
		char	   *copy = palloc(len + 1);

		memcpy(copy, data, len + 1);
		memset(&err, 0, sizeof(err));
		memset(&call, 0, sizeof(call));
		call.protocol = protocols[p];
		FuzzResponse(&call.response, statuses[p], copy, len);
		if (protocols[p] == AWS_REST_JSON)
		{
			const char *nl = memchr(data, '\n', len);

			call.response.header_names = list_make1(pstrdup("x-amzn-errortype"));
			call.response.header_values = list_make1(pnstrdup(data, Min(nl ? (size_t) (nl - data) : len, (size_t) 256)));
		}
		(void) AwsRetryable(&call.response, NULL);
		(void) AwsCallSucceeded(&call, true, &err);
		coded |= err.code != NULL;
		(void) AwsExplainHop(1 + p % 2, "arn:aws:iam::444455556666:role/AnzenCustomerDiscoveryRole", &err);
		(void) AwsListingError(listing, &err);
		(void) AwsExpiredError(&err);
	}
	return coded;
}

static const char *const aws_fuzz_xml_tokens[] = {
	"<item>", "</item>", "<instancesSet>", "<reservationSet>", "<tagSet>", "<key>Name</key>",
	"<value>", "<nextToken>", "<instanceId>i-0123456789abcdef0</instanceId>", "<privateIpAddress>",
	"<ipAddress>", "<vpcId>", "<DBInstance>", "<Marker>", "<Bucket>", "<Name>", "<BucketRegion>",
	"<ContinuationToken>", "<Credentials>", "<Expiration>", "<SessionToken>", "<regionName>",
	"<Code>", "<Message>", "<Error>", "<LocationConstraint>", "EU", "us-east-1", "arn:aws:",
	"\"Functions\"", "\"NextMarker\"", "\"FunctionArn\"", "\"VpcConfig\"", NULL
};

const FuzzTarget aws_fuzz_targets[] = {
	{"aws_ec2_instances", AwsFuzzEc2Instances, aws_fuzz_xml_tokens},
	{"aws_vpcs", AwsFuzzVpcs, aws_fuzz_xml_tokens},
	{"aws_rds_instances", AwsFuzzRdsInstances, aws_fuzz_xml_tokens},
	{"aws_s3_buckets", AwsFuzzS3Buckets, aws_fuzz_xml_tokens},
	{"aws_s3_location", AwsFuzzBucketLocation, aws_fuzz_xml_tokens},
	{"aws_lambda_functions", AwsFuzzLambdaFunctions, aws_fuzz_xml_tokens},
	{"aws_sts_assume_role", AwsFuzzAssumeRole, aws_fuzz_xml_tokens},
	{"aws_regions", AwsFuzzRegions, aws_fuzz_xml_tokens},
	{"aws_errors", AwsFuzzErrors, aws_fuzz_xml_tokens},
	{NULL, NULL, NULL}
};
