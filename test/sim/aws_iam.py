#!/usr/bin/python3
"""IAM policy evaluation for the AWS simulator (aws_sim.py): the permissions of the customer role
that an applied CloudFormation template creates, from its managed policies (ManagedPolicyArns)
and its inline ones (Policies).

Only identity-based policies of one account are modelled, as IAM evaluates them for a request
made with a role session: an explicit Deny in any statement wins; otherwise an Allow whose
Action and Resource match allows; otherwise the request is implicitly denied.  Action and
Resource patterns take IAM's wildcards (* and ?); actions match without regard to case,
resources with it.  NotAction and NotResource are modelled; a Condition is refused when the
template is applied rather than ignored (a policy the simulator cannot evaluate must not look
like one that allows).

The AWS managed policies are represented by their statements for the services the simulator
serves (EC2, RDS, S3, Lambda, STS); their other services are left out.  Python 3 standard
library only.
"""

import re

# WIRE: the actions of the AWS managed policies for the services the simulator serves, as the
# AWS Managed Policy Reference lists them (SecurityAudit v4x, job-function/ViewOnlyAccess v4x,
# ReadOnlyAccess): every read action cloudconn calls is allowed by each of the first two.
MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/SecurityAudit": [
        {"Effect": "Allow", "Action": ["ec2:Describe*", "ec2:GetEbsEncryptionByDefault",
                                       "rds:Describe*", "rds:ListTagsForResource",
                                       "lambda:GetAccountSettings", "lambda:GetFunctionConfiguration",
                                       "lambda:GetLayerVersionPolicy", "lambda:GetPolicy", "lambda:List*",
                                       "s3:GetAccessPoint*", "s3:GetAccountPublicAccessBlock",
                                       "s3:GetBucket*", "s3:GetEncryptionConfiguration",
                                       "s3:GetLifecycleConfiguration", "s3:ListAllMyBuckets", "s3:ListBucket"],
         "Resource": "*"},
    ],
    "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess": [
        {"Effect": "Allow", "Action": ["ec2:Describe*", "rds:Describe*", "rds:ListTagsForResource",
                                       "lambda:List*", "lambda:GetAccountSettings",
                                       "s3:ListAllMyBuckets", "s3:GetBucketLocation", "s3:ListBucket"],
         "Resource": "*"},
    ],
    "arn:aws:iam::aws:policy/ReadOnlyAccess": [
        {"Effect": "Allow", "Action": ["ec2:Describe*", "ec2:Get*", "rds:Describe*", "rds:List*",
                                       "lambda:Get*", "lambda:List*", "s3:Get*", "s3:List*"],
         "Resource": "*"},
    ],
}

_ACTION_RE = re.compile(r"^(\*|[a-z0-9-]+:[A-Za-z0-9*?]+)$")


def _as_list(value, what):
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError("%s must be a string or a non-empty list of strings" % what)


def _wildcard(pattern, ignore_case):
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("^%s$" % rx, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def parse_statement(st, where):
    """One policy statement, checked and compiled: {"effect", "actions" or "not_actions",
    "resources" or "not_resources"} with compiled patterns.  Raises ValueError."""
    if not isinstance(st, dict):
        raise ValueError("%s must be an object" % where)
    effect = st.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise ValueError("%s.Effect must be Allow or Deny" % where)
    if "Condition" in st:
        raise ValueError("%s: conditions are not modelled in identity policies" % where)
    if ("Action" in st) == ("NotAction" in st):
        raise ValueError("%s needs exactly one of Action and NotAction" % where)
    if ("Resource" in st) == ("NotResource" in st):
        raise ValueError("%s needs exactly one of Resource and NotResource" % where)
    akey = "Action" if "Action" in st else "NotAction"
    actions = _as_list(st[akey], "%s.%s" % (where, akey))
    for a in actions:
        if not _ACTION_RE.match(a):
            raise ValueError("%s.%s: %r is not an IAM action (service:Action)" % (where, akey, a[:64]))
    rkey = "Resource" if "Resource" in st else "NotResource"
    resources = _as_list(st[rkey], "%s.%s" % (where, rkey))
    return {"effect": effect, "not_action": akey == "NotAction",
            "actions": [_wildcard(a, True) for a in actions],
            "action_text": actions,
            "not_resource": rkey == "NotResource",
            "resources": [_wildcard(r, False) for r in resources]}


def parse_document(doc, where):
    """A policy document (object or JSON text is the caller's business: an object here):
    its statements.  Raises ValueError."""
    if not isinstance(doc, dict):
        raise ValueError("%s must be an object" % where)
    if doc.get("Version") not in ("2012-10-17", "2008-10-17"):
        raise ValueError("%s.Version must be 2012-10-17" % where)
    stmts = doc.get("Statement")
    if isinstance(stmts, dict):
        stmts = [stmts]
    if not isinstance(stmts, list) or not stmts:
        raise ValueError("%s.Statement must be a non-empty list" % where)
    return [parse_statement(st, "%s.Statement[%d]" % (where, i)) for i, st in enumerate(stmts)]


def role_statements(props):
    """The statements of a role's ManagedPolicyArns and Policies (CloudFormation
    AWS::IAM::Role properties).  An unknown managed policy ARN is refused, as CloudFormation
    would fail to attach it.  Raises ValueError."""
    out = []
    managed = props.get("ManagedPolicyArns")
    if managed is not None:
        if not isinstance(managed, list) or not all(isinstance(a, str) for a in managed):
            raise ValueError("ManagedPolicyArns must be a list of policy ARNs")
        for arn in managed:
            if arn not in MANAGED_POLICIES:
                raise ValueError("the managed policy %s is not known to the simulator (known: %s)"
                                 % (arn[:128], ", ".join(sorted(MANAGED_POLICIES))))
            out += [parse_statement(st, arn) for st in MANAGED_POLICIES[arn]]
    inline = props.get("Policies")
    if inline is not None:
        if not isinstance(inline, list):
            raise ValueError("Policies must be a list of {PolicyName, PolicyDocument}")
        for i, p in enumerate(inline):
            if not isinstance(p, dict) or not isinstance(p.get("PolicyName"), str) or not p["PolicyName"]:
                raise ValueError("Policies[%d] needs a PolicyName" % i)
            out += parse_document(p.get("PolicyDocument"), "Policies[%d].PolicyDocument" % i)
    return out


def _matches(st, action, resource):
    hit_action = any(p.match(action) for p in st["actions"])
    if st["not_action"]:
        hit_action = not hit_action
    hit_resource = any(p.match(resource) for p in st["resources"])
    if st["not_resource"]:
        hit_resource = not hit_resource
    return hit_action and hit_resource


def evaluate(statements, action, resource="*"):
    """"allow", "explicit_deny" or "implicit_deny" for a request of action ("s3:ListAllMyBuckets")
    on resource (an ARN, or "*" for actions without resource-level permissions)."""
    allowed = False
    for st in statements:
        if _matches(st, action, resource):
            if st["effect"] == "Deny":
                return "explicit_deny"
            allowed = True
    return "allow" if allowed else "implicit_deny"


def allowed_actions(statements):
    """The action patterns the Allow statements name (for the control API's views)."""
    return sorted({a for st in statements if st["effect"] == "Allow" and not st["not_action"]
                   for a in st["action_text"]})
