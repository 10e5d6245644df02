/*
 * guc.h
 *		The cloudconn.* configuration settings (README: Configuration).
 *
 * Settings that carry endpoints, identities or file paths are superuser-only
 * (GUC_SUPERUSER_ONLY): ordinary roles can neither read nor set them.
 */
#ifndef CLOUDCONN_GUC_H
#define CLOUDCONN_GUC_H

extern char *cloudconn_database;
extern bool cloudconn_scheduler_enabled;
extern char *cloudconn_daily_run_at;
extern char *cloudconn_timezone;
extern int	cloudconn_max_parallel_runs;
extern int	cloudconn_http_timeout_ms;
extern int	cloudconn_http_connect_timeout_ms;
extern int	cloudconn_http_max_retries;
extern char *cloudconn_ca_file;
extern char *cloudconn_key_file;
extern char *cloudconn_key_command;	/* NULL unless preloaded */
extern bool cloudconn_key_command_without_preload;
extern int	cloudconn_key_command_timeout_ms;
extern char *cloudconn_aws_region;
extern int	cloudconn_aws_max_parallel_regions;
extern char *cloudconn_aws_sts_endpoint;
extern char *cloudconn_aws_ec2_endpoint;
extern char *cloudconn_aws_rds_endpoint;
extern char *cloudconn_aws_s3_endpoint;
extern char *cloudconn_aws_lambda_endpoint;
extern char *cloudconn_aws_discovery_role_arn;
extern char *cloudconn_aws_customer_role_name;
extern char *cloudconn_aws_credentials_file;
extern char *cloudconn_aws_profile;
extern char *cloudconn_digitalocean_api_url;
extern char *cloudconn_azure_login_url;
extern char *cloudconn_azure_management_url;
extern int	cloudconn_azure_max_parallel_subscriptions;
extern int	cloudconn_history_retention_minutes;	/* 0: keep forever */
extern bool cloudconn_history_writes;	/* off: for measurement only */

/* cloudconn.aws_caller_source: where the AWS caller's credentials come from */
typedef enum GucAwsCallerSource
{
	GUC_AWS_CALLER_STATIC,		/* the environment, else the shared credentials file */
	GUC_AWS_CALLER_ROLES_ANYWHERE,	/* IAM Roles Anywhere, with an X.509 certificate */
	GUC_AWS_CALLER_INSTANCE		/* the container endpoint, else EC2 instance metadata */
} GucAwsCallerSource;

extern int	cloudconn_aws_caller_source;
extern char *cloudconn_aws_roles_anywhere_certificate_file;
extern char *cloudconn_aws_roles_anywhere_chain_file;
extern char *cloudconn_aws_roles_anywhere_private_key_file;
extern char *cloudconn_aws_roles_anywhere_trust_anchor_arn;
extern char *cloudconn_aws_roles_anywhere_profile_arn;
extern char *cloudconn_aws_roles_anywhere_role_arn;
extern char *cloudconn_aws_roles_anywhere_region;
extern char *cloudconn_aws_roles_anywhere_endpoint;
extern char *cloudconn_aws_ec2_metadata_endpoint;
extern char *cloudconn_aws_container_endpoint;

extern void GucDefineAll(void);

#endif							/* CLOUDCONN_GUC_H */
