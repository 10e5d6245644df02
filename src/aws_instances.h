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
 * well-formed DescribeInstancesResponse; raises on out of memory, or when
 * between_slices (if not NULL) raises.  between_slices is called after
 * each slice of the body the parser is fed (256 kB): the caller lets its
 * other transfers move on there.
 */
extern bool AwsReadInstancesPage(const char *body, size_t len, const char *region,
								 const char *account,
								 void (*between_slices) (void *arg), void *between_slices_arg,
								 List **instances, char **next_token, const char **error);

#endif							/* CLOUDCONN_AWS_INSTANCES_H */
