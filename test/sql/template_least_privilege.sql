-- The least-privilege CloudFormation template of an AWS connector: one
-- inline policy with exactly the read actions of the connector's enabled
-- resource types (from the registry), instead of the two managed policies.
\set SHOW_CONTEXT never
SET cloudconn.aws_discovery_role_arn = 'arn:aws:iam::111122223333:role/AnzenDiscoveryRole';
SELECT id AS aws_c FROM cloudconn.connector WHERE name = 'Prod AWS' \gset

SET ROLE regress_eu_manager;
SELECT cloudconn.aws_cloudformation_template(:aws_c, least_privilege => true)::jsonb AS lp,
	   cloudconn.aws_cloudformation_template(:aws_c)::jsonb AS managed \gset
RESET ROLE;

-- the role's policy, in full: the default types need these seven actions,
-- on every resource, and nothing else
SELECT jsonb_pretty(:'lp'::jsonb #> '{Resources,CustomerDiscoveryRole,Properties,Policies}') AS policies;
-- no managed policy; everything but the policies is the managed template's
SELECT :'lp'::jsonb #> '{Resources,CustomerDiscoveryRole,Properties}' ? 'ManagedPolicyArns' AS has_managed,
	   (:'lp'::jsonb #- '{Resources,CustomerDiscoveryRole,Properties,Policies}')
	 = (:'managed'::jsonb #- '{Resources,CustomerDiscoveryRole,Properties,ManagedPolicyArns}') AS same_otherwise;

-- false is the template of old, whether given or not
SET ROLE regress_eu_manager;
SELECT cloudconn.aws_cloudformation_template(:aws_c, false) = cloudconn.aws_cloudformation_template(:aws_c)
	AS false_is_the_default;
-- and null is refused
SELECT cloudconn.aws_cloudformation_template(:aws_c, NULL);
RESET ROLE;

-- the actions follow the enabled types: S3 alone needs its two, and the
-- regions; enabling Lambda later adds lambda:ListFunctions (the stack must
-- then be updated)
SELECT settings AS saved_settings FROM cloudconn.connector WHERE id = :aws_c \gset
SET ROLE regress_eu_manager;
SELECT cloudconn.connector_update(:aws_c,
	settings => :'saved_settings'::jsonb || '{"resource_types": ["aws_s3_bucket"]}');
SELECT cloudconn.aws_cloudformation_template(:aws_c, true)::jsonb
	#> '{Resources,CustomerDiscoveryRole,Properties,Policies,0,PolicyDocument,Statement,0,Action}' AS s3_only;
SELECT cloudconn.connector_update(:aws_c,
	settings => :'saved_settings'::jsonb || '{"resource_types": ["aws_lambda_function", "aws_s3_bucket"]}');
SELECT cloudconn.aws_cloudformation_template(:aws_c, true)::jsonb
	#> '{Resources,CustomerDiscoveryRole,Properties,Policies,0,PolicyDocument,Statement,0,Action}' AS with_lambda;
SELECT cloudconn.connector_update(:aws_c, settings => :'saved_settings');
RESET ROLE;

-- the same permission as the template of old: a reader may not have it
SET ROLE regress_eu_reader;
SELECT cloudconn.aws_cloudformation_template(:aws_c, true);
RESET ROLE;
RESET cloudconn.aws_discovery_role_arn;
