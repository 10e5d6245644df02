-- The CloudFormation template of an AWS connector.
\set SHOW_CONTEXT never

SELECT id AS aws_c, external_id FROM cloudconn.connector WHERE name = 'Prod AWS' \gset

-- without the discovery role configured there is nothing to trust: a clear error
SET cloudconn.aws_discovery_role_arn = '';
SET ROLE regress_eu_manager;
SELECT cloudconn.aws_cloudformation_template(:aws_c);
RESET ROLE;

SET cloudconn.aws_discovery_role_arn = 'arn:aws:iam::111122223333:role/AnzenDiscoveryRole';
SET ROLE regress_eu_manager;
SELECT cloudconn.aws_cloudformation_template(:aws_c) AS template \gset
RESET ROLE;

-- it is valid JSON; its shape, with the external id replaced by a placeholder
SELECT jsonb_pretty(replace(:'template', :'external_id', '<external id>')::jsonb);

-- the parts that matter, checked one by one
SELECT t #>> '{Parameters,ExternalId,Default}' = :'external_id' AS external_id_prefilled,
	   t #>> '{Resources,CustomerDiscoveryRole,Properties,RoleName}' AS role_name,
	   t #> '{Resources,CustomerDiscoveryRole,Properties,AssumeRolePolicyDocument,Statement}' -> 0 #>> '{Principal,AWS}' AS trusted_principal,
	   t #> '{Resources,CustomerDiscoveryRole,Properties,AssumeRolePolicyDocument,Statement}' -> 0 #> '{Condition,StringEquals,sts:ExternalId}' AS external_id_condition,
	   jsonb_array_length(t #> '{Resources,CustomerDiscoveryRole,Properties,AssumeRolePolicyDocument,Statement}') AS statements,
	   t #> '{Resources,CustomerDiscoveryRole,Properties,ManagedPolicyArns}' AS policies,
	   t #> '{Outputs,RoleArn,Value}' AS output
  FROM (SELECT :'template'::jsonb AS t) s;

-- the customer role name follows cloudconn.aws_customer_role_name
SET cloudconn.aws_customer_role_name = 'AcmeDiscovery';
SELECT cloudconn.aws_cloudformation_template(:aws_c)::jsonb
	#>> '{Resources,CustomerDiscoveryRole,Properties,RoleName}' AS role_name;
RESET cloudconn.aws_customer_role_name;
-- and refuses what IAM would refuse
SET cloudconn.aws_customer_role_name = 'bad name';
SET cloudconn.aws_discovery_role_arn = 'arn:aws:iam::1111:role/x';
SET cloudconn.aws_discovery_role_arn = 'AnzenDiscoveryRole';

-- a name with JSON metacharacters cannot break the document
SELECT cloudconn.connector_update(:aws_c, name => 'quote " and \ backslash');
SELECT cloudconn.aws_cloudformation_template(:aws_c)::jsonb ->> 'Description' AS description;
SELECT cloudconn.connector_update(:aws_c, name => 'Prod AWS');
RESET cloudconn.aws_discovery_role_arn;
