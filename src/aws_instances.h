/*
 * aws_instances.h
 *		Reading one page of EC2 DescribeInstances into instance objects
 *		(aws_instances.c).
 */
#ifndef CLOUDCONN_AWS_INSTANCES_H
#define CLOUDCONN_AWS_INSTANCES_H

#include "nodes/pg_list.h"

/*
 * Read a DescribeInstancesResponse body.  Each instance becomes a jsonb
 * object (a JsonbContainer * in *instances, in the current memory context):
 * "region" and "account" as given, the instance's own instanceId, imageId,
 * privateDnsName, dnsName, instanceType, launchTime, platformDetails,
 * privateIpAddress, ipAddress, subnetId and vpcId when not empty, "state"
 * (instanceState/name), "availabilityZone" (placement) and "tags" (an
 * object of key: value).  *next_token is the page's nextToken or NULL.
 * Returns false with *error (a constant message) for a body that is not a
 * well-formed DescribeInstancesResponse; raises only on out of memory.
 */
extern bool AwsReadInstancesPage(const char *body, size_t len, const char *region,
								 const char *account, List **instances, char **next_token,
								 const char **error);

#endif							/* CLOUDCONN_AWS_INSTANCES_H */
