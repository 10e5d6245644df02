/*
 * guc.c
 *		Registration of the cloudconn.* settings (README: Configuration).
 *
 * cloudconn.database and cloudconn.key_command are PGC_POSTMASTER and can
 * only be defined while the library is preloaded; when it is loaded later
 * by CREATE EXTENSION they are left undefined (the scheduler runs only when
 * preloaded; a key_command set in the configuration file then makes every
 * use of the key fail rather than fall back to a key file).
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgtime.h"
#include "utils/guc.h"

#include "guc.h"
#include "http.h"

char	   *cloudconn_database = NULL;
bool		cloudconn_scheduler_enabled = true;
char	   *cloudconn_daily_run_at = NULL;
char	   *cloudconn_timezone = NULL;
int			cloudconn_max_parallel_runs = 2;
int			cloudconn_http_timeout_ms = 30000;
int			cloudconn_http_connect_timeout_ms = 10000;
int			cloudconn_http_max_retries = 5;
char	   *cloudconn_ca_file = NULL;
char	   *cloudconn_key_file = NULL;
char	   *cloudconn_key_command = NULL;
bool		cloudconn_key_command_without_preload = false;
int			cloudconn_key_command_timeout_ms = 30000;
char	   *cloudconn_aws_region = NULL;
int			cloudconn_aws_max_parallel_regions = 4;
char	   *cloudconn_aws_sts_endpoint = NULL;
char	   *cloudconn_aws_ec2_endpoint = NULL;
char	   *cloudconn_aws_rds_endpoint = NULL;
char	   *cloudconn_aws_s3_endpoint = NULL;
char	   *cloudconn_aws_lambda_endpoint = NULL;
char	   *cloudconn_aws_discovery_role_arn = NULL;
char	   *cloudconn_aws_customer_role_name = NULL;
char	   *cloudconn_aws_credentials_file = NULL;
char	   *cloudconn_aws_profile = NULL;
char	   *cloudconn_digitalocean_api_url = NULL;
int			cloudconn_aws_caller_source = GUC_AWS_CALLER_STATIC;
char	   *cloudconn_aws_roles_anywhere_certificate_file = NULL;
char	   *cloudconn_aws_roles_anywhere_chain_file = NULL;
char	   *cloudconn_aws_roles_anywhere_private_key_file = NULL;
char	   *cloudconn_aws_roles_anywhere_trust_anchor_arn = NULL;
char	   *cloudconn_aws_roles_anywhere_profile_arn = NULL;
char	   *cloudconn_aws_roles_anywhere_role_arn = NULL;
char	   *cloudconn_aws_roles_anywhere_region = NULL;
char	   *cloudconn_aws_roles_anywhere_endpoint = NULL;
char	   *cloudconn_aws_ec2_metadata_endpoint = NULL;
char	   *cloudconn_aws_container_endpoint = NULL;

static const struct config_enum_entry aws_caller_sources[] = {
	{"static", GUC_AWS_CALLER_STATIC, false},
	{"roles_anywhere", GUC_AWS_CALLER_ROLES_ANYWHERE, false},
	{"instance", GUC_AWS_CALLER_INSTANCE, false},
	{NULL, 0, false}
};
char	   *cloudconn_azure_login_url = NULL;
char	   *cloudconn_azure_management_url = NULL;
int			cloudconn_azure_max_parallel_subscriptions = 4;
int			cloudconn_history_retention_minutes = 400 * 24 * 60;
bool		cloudconn_history_writes = true;

/* daily_run_at is HH:MM on a 24-hour clock */
static bool
GucCheckTimeOfDay(char **newval, void **extra, GucSource source)
{
	const char *s = *newval;

	if (s != NULL && strlen(s) == 5 &&
		s[0] >= '0' && s[0] <= '2' && s[1] >= '0' && s[1] <= '9' &&
		s[2] == ':' && s[3] >= '0' && s[3] <= '5' && s[4] >= '0' && s[4] <= '9' &&
		(s[0] - '0') * 10 + (s[1] - '0') < 24)
		return true;

	GUC_check_errdetail("The time of day is written HH:MM on a 24-hour clock, for example 02:00.");
	return false;
}

static bool
GucCheckTimezone(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && pg_tzset(*newval) != NULL)
		return true;

	GUC_check_errdetail("\"%s\" is not a time zone known to this server.",
						*newval ? *newval : "");
	return false;
}

/* An endpoint must be https: credentials never travel in clear text. */
static bool
GucCheckHttpsUrl(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0' ||
		pg_strncasecmp(*newval, "https://", 8) == 0)
		return true;

	GUC_check_errdetail("Endpoints must be https:// URLs.");
	return false;
}

/* AWS role names: IAM's character set, 1 to 64 characters. */
static bool
GucCheckRoleName(char **newval, void **extra, GucSource source)
{
	const char *s = *newval;
	size_t		len = s ? strlen(s) : 0;

	if (len >= 1 && len <= 64 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+=,.@_-") == len)
		return true;

	GUC_check_errdetail("An IAM role name has 1 to 64 letters, digits or the characters +=,.@_-.");
	return false;
}

/* An IAM role ARN in any AWS partition. */
static bool
GucIsRoleArn(const char *s)
{
	const char *p;

	return strncmp(s, "arn:aws", 7) == 0 && (p = strstr(s, ":iam::")) != NULL &&
		strspn(p + 6, "0123456789") == 12 && strncmp(p + 18, ":role/", 6) == 0 &&
		p[24] != '\0' &&
		strspn(p + 24, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+=,.@_/-") == strlen(p + 24);
}

/* The discovery role: empty, or an IAM role ARN in any AWS partition. */
static bool
GucCheckRoleArn(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0' || GucIsRoleArn(*newval))
		return true;

	GUC_check_errdetail("The discovery role is an IAM role ARN such as arn:aws:iam::111122223333:role/AnzenDiscoveryRole.");
	return false;
}

/* The role IAM Roles Anywhere hands out: empty, or an IAM role ARN. */
static bool
GucCheckRolesAnywhereRoleArn(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0' || GucIsRoleArn(*newval))
		return true;

	GUC_check_errdetail("The role is an IAM role ARN such as arn:aws:iam::111122223333:role/cloudconn-caller.");
	return false;
}

/*
 * An IAM Roles Anywhere resource ARN of the given type:
 * arn:PARTITION:rolesanywhere:REGION:ACCOUNT:TYPE/ID.
 */
static bool
GucIsRolesAnywhereArn(const char *s, const char *type)
{
	const char *p = s;
	size_t		n;

	if (strncmp(p, "arn:aws", 7) != 0)
		return false;
	p += 7;
	p += strspn(p, "abcdefghijklmnopqrstuvwxyz-");	/* -cn, -us-gov */
	if (strncmp(p, ":rolesanywhere:", 15) != 0)
		return false;
	p += 15;
	n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-");
	if (n == 0 || n > 32 || p[n] != ':')
		return false;
	p += n + 1;
	if (strspn(p, "0123456789") != 12 || p[12] != ':')
		return false;
	p += 13;
	n = strlen(type);
	if (strncmp(p, type, n) != 0 || p[n] != '/')
		return false;
	p += n + 1;
	n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-");
	return n >= 1 && n <= 64 && p[n] == '\0';
}

static bool
GucCheckTrustAnchorArn(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0' || GucIsRolesAnywhereArn(*newval, "trust-anchor"))
		return true;

	GUC_check_errdetail("A trust anchor ARN looks like arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/ID.");
	return false;
}

static bool
GucCheckProfileArn(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0' || GucIsRolesAnywhereArn(*newval, "profile"))
		return true;

	GUC_check_errdetail("A profile ARN looks like arn:aws:rolesanywhere:us-east-1:111122223333:profile/ID.");
	return false;
}

/* A region name: empty, or lower-case letters, digits and dashes. */
static bool
GucCheckRegion(char **newval, void **extra, GucSource source)
{
	const char *s = *newval;
	size_t		len = s ? strlen(s) : 0;

	if (len == 0 || (len <= 32 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == len))
		return true;

	GUC_check_errdetail("A region name looks like us-east-1.");
	return false;
}

/*
 * A metadata endpoint: https, or plain http to a literal loopback or
 * link-local address (README: HTTP), where nothing but the machine itself
 * can answer.
 */
static bool
GucCheckMetadataUrl(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0' || HttpMetadataUrlValid(*newval))
		return true;

	GUC_check_errdetail("Metadata endpoints are https:// URLs, or http:// URLs to a literal loopback or link-local address such as http://169.254.169.254.");
	return false;
}

void
GucDefineAll(void)
{
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomStringVariable("cloudconn.database",
								   "Database in which the cloudconn scheduler runs daily connectors.",
								   NULL, &cloudconn_database, "postgres",
								   PGC_POSTMASTER, 0, NULL, NULL, NULL);

		DefineCustomStringVariable("cloudconn.key_command",
								   "Command whose standard output is the key that encrypts stored tokens, as 64 hexadecimal digits (empty: cloudconn.key_file).",
								   NULL, &cloudconn_key_command, "",
								   PGC_POSTMASTER, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	}
	else
	{
		/*
		 * Not preloaded: the setting cannot be defined, but a value from the
		 * configuration file is still a placeholder here (MarkGUCPrefixReserved
		 * removes it below).  A role could set such a placeholder itself, but
		 * all it gets is its own session refusing to use a key file.
		 */
		const char *v = GetConfigOption("cloudconn.key_command", true, false);

		cloudconn_key_command_without_preload = v != NULL && v[0] != '\0';
	}

	DefineCustomBoolVariable("cloudconn.scheduler_enabled",
							 "Runs daily connectors every night when on.",
							 NULL, &cloudconn_scheduler_enabled, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("cloudconn.daily_run_at",
							   "Time of day (HH:MM, in cloudconn.timezone) at which daily connectors run.",
							   NULL, &cloudconn_daily_run_at, "02:00",
							   PGC_SIGHUP, 0, GucCheckTimeOfDay, NULL, NULL);

	DefineCustomStringVariable("cloudconn.timezone",
							   "Time zone of cloudconn.daily_run_at.",
							   NULL, &cloudconn_timezone, "UTC",
							   PGC_SIGHUP, 0, GucCheckTimezone, NULL, NULL);

	DefineCustomIntVariable("cloudconn.max_parallel_runs",
							"Discovery runs executing at once, scheduled and manual together.",
							NULL, &cloudconn_max_parallel_runs, 2, 1, 64,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("cloudconn.aws_max_parallel_regions",
							"AWS regions of one run listed at once.",
							NULL, &cloudconn_aws_max_parallel_regions, 4, 1, 32,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("cloudconn.history_retention",
							"How long the change history of CIs is kept (0: forever); older changes are not shown, and the scheduler deletes them once a day.",
							NULL, &cloudconn_history_retention_minutes, 400 * 24 * 60, 0, PG_INT32_MAX,
							PGC_SIGHUP, GUC_UNIT_MIN, NULL, NULL, NULL);

	DefineCustomBoolVariable("cloudconn.history_writes",
							 "Runs write the change history of CIs (off only to measure what it costs).",
							 NULL, &cloudconn_history_writes, true,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);

	DefineCustomIntVariable("cloudconn.azure_max_parallel_subscriptions",
							"Azure subscriptions of one run listed at once.",
							NULL, &cloudconn_azure_max_parallel_subscriptions, 4, 1, 32,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("cloudconn.http_timeout_ms",
							"Total time allowed for one HTTP request to a cloud API.",
							NULL, &cloudconn_http_timeout_ms, 30000, 100, 600000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("cloudconn.http_connect_timeout_ms",
							"Time allowed to connect to a cloud API (TCP and TLS).",
							NULL, &cloudconn_http_connect_timeout_ms, 10000, 100, 600000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("cloudconn.http_max_retries",
							"Retries of throttled, 5xx and transport failures, with backoff.",
							NULL, &cloudconn_http_max_retries, 5, 0, 20,
							PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("cloudconn.ca_file",
							   "Extra CA bundle trusted for cloud API connections (verification is never off).",
							   NULL, &cloudconn_ca_file, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	DefineCustomStringVariable("cloudconn.key_file",
							   "File holding the key that encrypts stored tokens, unless cloudconn.key_command is set (default: cloudconn.key in the data directory).",
							   NULL, &cloudconn_key_file, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	DefineCustomIntVariable("cloudconn.key_command_timeout_ms",
							"Time allowed to cloudconn.key_command to print the key and exit.",
							NULL, &cloudconn_key_command_timeout_ms, 30000, 100, 600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_region",
							   "AWS region of the STS calls.",
							   NULL, &cloudconn_aws_region, "us-east-1",
							   PGC_SUSET, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_sts_endpoint",
							   "STS endpoint override (empty: https://sts.{region}.amazonaws.com).",
							   NULL, &cloudconn_aws_sts_endpoint, "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY, GucCheckHttpsUrl, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_ec2_endpoint",
							   "EC2 endpoint; {region} is substituted.",
							   NULL, &cloudconn_aws_ec2_endpoint, "https://ec2.{region}.amazonaws.com",
							   PGC_SUSET, GUC_SUPERUSER_ONLY, GucCheckHttpsUrl, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_rds_endpoint",
							   "RDS endpoint; {region} is substituted.",
							   NULL, &cloudconn_aws_rds_endpoint, "https://rds.{region}.amazonaws.com",
							   PGC_SUSET, GUC_SUPERUSER_ONLY, GucCheckHttpsUrl, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_s3_endpoint",
							   "S3 endpoint; {region} is substituted (buckets are listed through us-east-1).",
							   NULL, &cloudconn_aws_s3_endpoint, "https://s3.{region}.amazonaws.com",
							   PGC_SUSET, GUC_SUPERUSER_ONLY, GucCheckHttpsUrl, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_lambda_endpoint",
							   "Lambda endpoint; {region} is substituted.",
							   NULL, &cloudconn_aws_lambda_endpoint, "https://lambda.{region}.amazonaws.com",
							   PGC_SUSET, GUC_SUPERUSER_ONLY, GucCheckHttpsUrl, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_discovery_role_arn",
							   "ARN of the platform's intermediate discovery role (first AssumeRole hop).",
							   NULL, &cloudconn_aws_discovery_role_arn, "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY, GucCheckRoleArn, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_customer_role_name",
							   "Name of the role in customer accounts (second AssumeRole hop).",
							   NULL, &cloudconn_aws_customer_role_name, "AnzenCustomerDiscoveryRole",
							   PGC_SUSET, GUC_SUPERUSER_ONLY, GucCheckRoleName, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_credentials_file",
							   "Shared credentials file of the caller (empty: AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials).",
							   NULL, &cloudconn_aws_credentials_file, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_profile",
							   "Profile of the shared credentials file.",
							   NULL, &cloudconn_aws_profile, "default",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	DefineCustomStringVariable("cloudconn.digitalocean_api_url",
							   "DigitalOcean API origin.",
							   NULL, &cloudconn_digitalocean_api_url, "https://api.digitalocean.com",
							   PGC_SUSET, GUC_SUPERUSER_ONLY, GucCheckHttpsUrl, NULL, NULL);

	DefineCustomEnumVariable("cloudconn.aws_caller_source",
							 "Where the AWS caller's credentials come from: static (environment, shared credentials file), roles_anywhere, instance.",
							 NULL, &cloudconn_aws_caller_source, GUC_AWS_CALLER_STATIC, aws_caller_sources,
							 PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_roles_anywhere_certificate_file",
							   "X.509 certificate (PEM) the AWS caller authenticates with to IAM Roles Anywhere.",
							   NULL, &cloudconn_aws_roles_anywhere_certificate_file, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_roles_anywhere_chain_file",
							   "Intermediate certificates (PEM) sent with the IAM Roles Anywhere certificate (empty: none).",
							   NULL, &cloudconn_aws_roles_anywhere_chain_file, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_roles_anywhere_private_key_file",
							   "Private key (PEM, unencrypted, mode 0600) of the IAM Roles Anywhere certificate.",
							   NULL, &cloudconn_aws_roles_anywhere_private_key_file, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_roles_anywhere_trust_anchor_arn",
							   "ARN of the IAM Roles Anywhere trust anchor.",
							   NULL, &cloudconn_aws_roles_anywhere_trust_anchor_arn, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, GucCheckTrustAnchorArn, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_roles_anywhere_profile_arn",
							   "ARN of the IAM Roles Anywhere profile.",
							   NULL, &cloudconn_aws_roles_anywhere_profile_arn, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, GucCheckProfileArn, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_roles_anywhere_role_arn",
							   "ARN of the role IAM Roles Anywhere gives the AWS caller.",
							   NULL, &cloudconn_aws_roles_anywhere_role_arn, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, GucCheckRolesAnywhereRoleArn, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_roles_anywhere_region",
							   "Region of the IAM Roles Anywhere calls (empty: the trust anchor's).",
							   NULL, &cloudconn_aws_roles_anywhere_region, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, GucCheckRegion, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_roles_anywhere_endpoint",
							   "IAM Roles Anywhere endpoint override (empty: https://rolesanywhere.{region}.amazonaws.com).",
							   NULL, &cloudconn_aws_roles_anywhere_endpoint, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, GucCheckHttpsUrl, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_ec2_metadata_endpoint",
							   "EC2 instance metadata endpoint override (empty: http://169.254.169.254).",
							   NULL, &cloudconn_aws_ec2_metadata_endpoint, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, GucCheckMetadataUrl, NULL, NULL);

	DefineCustomStringVariable("cloudconn.aws_container_endpoint",
							   "Container credentials endpoint that AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is relative to (empty: http://169.254.170.2).",
							   NULL, &cloudconn_aws_container_endpoint, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, GucCheckMetadataUrl, NULL, NULL);
	DefineCustomStringVariable("cloudconn.azure_login_url",
							   "Microsoft Entra ID (Azure login) origin that issues access tokens.",
							   NULL, &cloudconn_azure_login_url, "https://login.microsoftonline.com",
							   PGC_SUSET, GUC_SUPERUSER_ONLY, GucCheckHttpsUrl, NULL, NULL);

	DefineCustomStringVariable("cloudconn.azure_management_url",
							   "Azure Resource Manager origin (also the resource the access token is asked for).",
							   NULL, &cloudconn_azure_management_url, "https://management.azure.com",
							   PGC_SUSET, GUC_SUPERUSER_ONLY, GucCheckHttpsUrl, NULL, NULL);

	MarkGUCPrefixReserved("cloudconn");
}
