/*
 * aws_roles_anywhere.h
 *		IAM Roles Anywhere (aws_roles_anywhere.c): temporary credentials for
 *		the AWS caller in exchange for a signature made with an X.509
 *		certificate's private key (CreateSession).  README: AWS.
 */
#ifndef CLOUDCONN_AWS_ROLES_ANYWHERE_H
#define CLOUDCONN_AWS_ROLES_ANYWHERE_H

#include "aws_caller.h"

/*
 * The credentials CreateSession hands out for cloudconn.aws_roles_anywhere_*,
 * into out (allocated in the current memory context, secrets wiped with
 * it).  The certificate, its key and its chain are read and checked
 * (dates, the key matching the certificate, the key file's permissions)
 * before any request.  Returns false with *error set to a message users
 * may read; the server log gets the paths.
 */
extern bool AwsRolesAnywhereCredentials(HttpClient *http, AwsCallerCredentials *out, char **error);

#endif							/* CLOUDCONN_AWS_ROLES_ANYWHERE_H */
