#!/usr/bin/python3
"""The AWS simulator's (aws_sim.py) resources besides EC2 instances: EC2 VPCs, RDS DB instances,
S3 buckets and Lambda functions.  For each: a deterministic generator, the control API's
overlay (PATCH), and the renderer of the service's wire shapes (RDS's Query XML, S3's REST XML,
Lambda's REST-JSON) and error bodies.  The request handling (authentication, IAM, pagination and
parameter checks) is aws_sim.py's.

Shapes were checked against botocore's service models (ec2 2016-11-15, rds 2014-10-31, s3
2006-03-01, lambda 2015-03-31) and the services' API references; where those do not say, the
choice is written next to the code ("WIRE:") and in README.md.  Python 3 standard library only.
"""

import base64
import copy
import datetime
import hashlib
import json
import random
from xml.sax.saxutils import escape as _xml_escape

RDS_VERSION = "2014-10-31"
RDS_NS = "http://rds.amazonaws.com/doc/2014-10-31/"
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
LAMBDA_FUNCTIONS_PATH = "/2015-03-31/functions/"

# WIRE: RDS answers "text/xml" like STS, indented by two spaces, without an XML declaration; S3
# answers "application/xml" with a declaration and the document on one line; Lambda answers
# "application/json" (errors too) and names an error in x-amzn-ErrorType.
CT_RDS = "text/xml"
CT_S3 = "application/xml"
CT_LAMBDA = "application/json"


class ApiError(Exception):
    """An AWS error answer; aws_sim.py renders it in the shape of the service that was called."""

    def __init__(self, status, code, message, extra=None):
        super().__init__("%s: %s" % (code, message))
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}


def stable_hex(*parts, n=17):
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:n]


def _iso(dt, millis=True):
    if millis:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _tags(tags, key="key", value="value"):
    """{"k": "v"} or [{"Key"|"key":..., "Value"|"value":...}] as a list of {key, value} pairs."""
    if tags is None:
        return None
    if isinstance(tags, dict):
        return [{key: str(k), value: "" if v is None else str(v)} for k, v in tags.items()]
    if isinstance(tags, list):
        out = []
        for t in tags:
            if not isinstance(t, dict):
                raise ValueError("each tag is an object with a key and a value")
            k = t.get("key", t.get("Key"))
            v = t.get("value", t.get("Value", ""))
            if not isinstance(k, str):
                raise ValueError("each tag needs a string key")
            out.append({key: k, value: "" if v is None else str(v)})
        return out
    raise ValueError("tags must be an object or a list of {key, value}")


def _check_count(spec, limit=100000):
    count = spec.get("count", 0)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= limit:
        raise ValueError("count must be an integer between 0 and %d" % limit)
    prefix = spec.get("name_prefix", "sim")
    if not isinstance(prefix, str) or not prefix:
        raise ValueError("name_prefix must be a non-empty string")
    return count, spec.get("seed", 0), prefix


def overlay(obj, data, shorthands=None):
    """A control PATCH: top-level fields replace the object's (null removes one); fields starting
    with _ are internal.  shorthands(obj, data) handles the kind's own (it pops what it uses)."""
    if not isinstance(data, dict):
        raise ValueError("send the fields to change as a JSON object")
    d = dict(data)
    if shorthands is not None:
        shorthands(obj, d)
    for k, v in d.items():
        if k.startswith("_"):
            raise ValueError("fields starting with _ are internal")
        if v is None:
            obj.pop(k, None)
        else:
            obj[k] = v
    obj.pop("_xml", None)
    return obj


def public_view(obj):
    return {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}


# --------------------------------------------------------------------------------------------
# EC2 VPCs (rendered by aws_sim.py's EC2 XML renderer)
# --------------------------------------------------------------------------------------------

def build_vpc(account, region, index, rng, *, name=None, default=False, ipv6=False, state="available",
              tags=None):
    """A VPC with the elements of DescribeVpcs' vpcSet/item, in the API's order."""
    vid = "vpc-0" + stable_hex(account, region, "vpc", index, rng.random())
    if default:
        cidr = "172.31.0.0/16"
    else:
        cidr = "10.%d.0.0/16" % (index % 250 + 1)
    assoc = [{"cidrBlock": cidr, "associationId": "vpc-cidr-assoc-0" + stable_hex(vid, cidr),
              "cidrBlockState": {"state": "associated"}}]
    if index % 5 == 4 and not default:
        # WIRE: a secondary block shows in the association set only, never in cidrBlock
        second = "100.64.%d.0/24" % (index % 250)
        assoc.append({"cidrBlock": second, "associationId": "vpc-cidr-assoc-0" + stable_hex(vid, second),
                      "cidrBlockState": {"state": "associated"}})
    v6 = None
    if ipv6:
        block = "2001:db8:%x:%x00::/56" % (index // 256 % 65536, index % 256)
        v6 = [{"ipv6CidrBlock": block, "associationId": "vpc-cidr-assoc-0" + stable_hex(vid, block),
               "ipv6CidrBlockState": {"state": "associated"}, "networkBorderGroup": region,
               "ipv6Pool": "Amazon"}]
    tag_list = None
    if name is not None or tags:
        tag_list = ([{"key": "Name", "value": name}] if name is not None else []) + \
            [t for t in (_tags(tags) or []) if t["key"] != "Name"]
    return {
        "_region": region,
        "vpcId": vid,
        "ownerId": account,
        "state": state,
        "cidrBlock": cidr,
        "cidrBlockAssociationSet": assoc,
        "ipv6CidrBlockAssociationSet": v6,
        "dhcpOptionsId": "dopt-0" + stable_hex(account, region, "dhcp"),
        "tagSet": tag_list,
        "instanceTenancy": "default",
        "isDefault": default,
    }


def generate_vpcs(account, region, spec, start_index=0):
    """Deterministic.  spec: count, seed, name_prefix, untagged_every (default 4: every 4th VPC
    has no tags), ipv6_every (default 3), default_vpc (default true: the first VPC of a region is
    its default VPC, 172.31.0.0/16, untagged), tags."""
    count, seed, prefix = _check_count(spec, 10000)
    untagged = spec.get("untagged_every", 4)
    ipv6_every = spec.get("ipv6_every", 3)
    for k, v in (("untagged_every", untagged), ("ipv6_every", ipv6_every)):
        if not isinstance(v, int) or v < 0:
            raise ValueError("%s must be a non-negative integer" % k)
    rng = random.Random(repr(("vpcs", account, region, seed, start_index)))
    out = []
    for n in range(count):
        i = start_index + n
        default = i == 0 and spec.get("default_vpc", True)
        tagged = not default and not (untagged and i % untagged == untagged - 1)
        out.append(build_vpc(account, region, i, rng, default=default,
                             name="%s-vpc-%s-%04d" % (prefix, region, i + 1) if tagged else None,
                             ipv6=bool(ipv6_every and i % ipv6_every == ipv6_every - 1),
                             tags=spec.get("tags") if tagged else None))
    return out


def vpc_shorthands(vpc, d):
    if "tags" in d:
        tags = d.pop("tags")
        vpc["tagSet"] = _tags(tags) if tags else None


# --------------------------------------------------------------------------------------------
# RDS DB instances (Query protocol, XML)
# --------------------------------------------------------------------------------------------

class Members(list):
    """A Query-protocol list: rendered as <Outer><member>...</member>...</Outer>, each element
    named by the model's member name (RDS: DBInstance, Tag, Subnet, ...)."""

    def __init__(self, member, items):
        super().__init__(items)
        self.member = member


RDS_ENGINES = [  # (engine, version, port, license)
    ("postgres", "16.3", 5432, "postgresql-license"),
    ("mysql", "8.0.36", 3306, "general-public-license"),
    ("mariadb", "10.11.8", 3306, "general-public-license"),
    ("postgres", "15.7", 5432, "postgresql-license"),
    ("sqlserver-se", "15.00.4365.2.v1", 1433, "license-included"),
]
RDS_CLASSES = ["db.t3.micro", "db.t4g.medium", "db.m6g.large", "db.r6g.xlarge", "db.m5.2xlarge"]
RDS_STATUSES = ("available", "backing-up", "creating", "deleting", "failed", "maintenance", "modifying",
                "rebooting", "starting", "stopped", "stopping", "storage-full", "upgrading")


def build_db_instance(account, region, index, rng, *, identifier, status="available", engine=None,
                      instance_class=None, tags=None):
    eng = engine or RDS_ENGINES[index % len(RDS_ENGINES)]
    klass = instance_class or RDS_CLASSES[index % len(RDS_CLASSES)]
    azs = [region + s for s in "abc"]
    vpc = "vpc-0" + stable_hex(account, region, "rds-vpc")
    host = "%s.c%s.%s.rds.amazonaws.com" % (identifier, stable_hex(account, region, n=12), region)
    created = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
        hours=7 * index, minutes=rng.randrange(60))
    subnets = Members("Subnet", [{"SubnetIdentifier": "subnet-0" + stable_hex(account, az, "rds"),
                                  "SubnetAvailabilityZone": {"Name": az}, "SubnetOutpost": {},
                                  "SubnetStatus": "Active"} for az in azs])
    tag_list = Members("Tag", _tags(tags, "Key", "Value") or [])
    multi_az = index % 3 == 0
    return {
        "_region": region,
        "DBInstanceIdentifier": identifier,
        "DBInstanceClass": klass,
        "Engine": eng[0],
        "DBInstanceStatus": status,
        "MasterUsername": "admin" if eng[0] != "postgres" else "postgres",
        "Endpoint": None if status == "creating" else {"Address": host, "Port": eng[2],
                                                        "HostedZoneId": "Z" + stable_hex(region, n=13).upper()},
        "AllocatedStorage": 20 + (index * 37) % 480,
        "InstanceCreateTime": _iso(created),
        "PreferredBackupWindow": "03:00-03:30",
        "BackupRetentionPeriod": 7,
        "DBSecurityGroups": Members("DBSecurityGroup", []),
        "VpcSecurityGroups": Members("VpcSecurityGroupMembership", [
            {"VpcSecurityGroupId": "sg-0" + stable_hex(account, region, "rds-sg"), "Status": "active"}]),
        "DBParameterGroups": Members("DBParameterGroup", [
            {"DBParameterGroupName": "default.%s" % eng[0], "ParameterApplyStatus": "in-sync"}]),
        "AvailabilityZone": azs[index % 3],
        "DBSubnetGroup": {"DBSubnetGroupName": "default-" + vpc, "DBSubnetGroupDescription": "Created from the RDS Management Console",
                          "VpcId": vpc, "SubnetGroupStatus": "Complete", "Subnets": subnets},
        "PreferredMaintenanceWindow": "sun:05:00-sun:05:30",
        "PendingModifiedValues": {},
        "MultiAZ": multi_az,
        "SecondaryAvailabilityZone": azs[(index + 1) % 3] if multi_az else None,
        "EngineVersion": eng[1],
        "AutoMinorVersionUpgrade": True,
        "ReadReplicaDBInstanceIdentifiers": Members("ReadReplicaDBInstanceIdentifier", []),
        "LicenseModel": eng[3],
        "OptionGroupMemberships": Members("OptionGroupMembership", [
            {"OptionGroupName": "default:%s" % eng[0], "Status": "in-sync"}]),
        "PubliclyAccessible": index % 7 == 6,
        "StorageType": "gp3" if index % 4 else "io1",
        "DbInstancePort": 0,
        "StorageEncrypted": index % 5 != 4,
        "KmsKeyId": ("arn:aws:kms:%s:%s:key/%s" % (region, account, stable_hex(account, region, "kms", n=32)))
        if index % 5 != 4 else None,
        "DbiResourceId": "db-" + stable_hex(account, region, identifier, n=26).upper(),
        "CACertificateIdentifier": "rds-ca-rsa2048-g1",
        "DomainMemberships": Members("DomainMembership", []),
        "CopyTagsToSnapshot": True,
        "MonitoringInterval": 0,
        "DBInstanceArn": "arn:aws:rds:%s:%s:db:%s" % (region, account, identifier),
        "IAMDatabaseAuthenticationEnabled": False,
        "PerformanceInsightsEnabled": False,
        "DeletionProtection": index % 2 == 0,
        "AssociatedRoles": Members("DBInstanceRole", []),
        "TagList": tag_list,
        "CustomerOwnedIpEnabled": False,
        "BackupTarget": "region",
        "NetworkType": "IPV4",
        "StorageThroughput": 125 if index % 4 else 0,
        "CertificateDetails": {"CAIdentifier": "rds-ca-rsa2048-g1", "ValidTill": "2025-06-01T00:00:00Z"},
        "DedicatedLogVolume": False,
        "IsStorageConfigUpgradeAvailable": False,
        "EngineLifecycleSupport": "open-source-rds-extended-support",
    }


def generate_db_instances(account, region, spec, start_index=0):
    """Deterministic.  spec: count, seed, name_prefix, statuses (cycled), untagged_every
    (default 3), tags."""
    count, seed, prefix = _check_count(spec, 100000)
    statuses = spec.get("statuses") or ["available"]
    if not isinstance(statuses, list) or not all(s in RDS_STATUSES for s in statuses):
        raise ValueError("statuses must be a list drawn from: " + ", ".join(RDS_STATUSES))
    untagged = spec.get("untagged_every", 3)
    if not isinstance(untagged, int) or untagged < 0:
        raise ValueError("untagged_every must be a non-negative integer")
    rng = random.Random(repr(("rds", account, region, seed, start_index)))
    out = []
    for n in range(count):
        i = start_index + n
        ident = "%s-db-%s-%04d" % (prefix, region, i + 1)
        tags = None if untagged and i % untagged == untagged - 1 else dict(
            {"team": "team-%d" % (i % 4), "env": "prod" if i % 2 else "staging"}, **(spec.get("tags") or {}))
        out.append(build_db_instance(account, region, i, rng, identifier=ident,
                                     status=statuses[n % len(statuses)], tags=tags))
    return out


def db_shorthands(db, d):
    if "tags" in d:
        db["TagList"] = Members("Tag", _tags(d.pop("tags"), "Key", "Value") or [])
    for k in ("TagList",):
        if k in d and isinstance(d[k], list) and not isinstance(d[k], Members):
            d[k] = Members("Tag", _tags(d[k], "Key", "Value"))


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def query_xml_node(name, value, level, indent, out):
    """Renders a value as Query-protocol XML: a dict becomes child elements in its key order
    (keys starting with "_" skipped, None left out), a Members list <name><member>..</member>
    </name> (an empty one <name/>), a scalar its text."""
    if value is None:
        return
    pad = " " * (indent * level)
    if isinstance(value, dict):
        kids = [(k, v) for k, v in value.items() if not k.startswith("_") and v is not None]
        if not kids:
            out.append("%s<%s/>" % (pad, name))
            return
        out.append("%s<%s>" % (pad, name))
        for k, v in kids:
            query_xml_node(k, v, level + 1, indent, out)
        out.append("%s</%s>" % (pad, name))
    elif isinstance(value, list):
        member = getattr(value, "member", "member")
        if not value:
            out.append("%s<%s/>" % (pad, name))
            return
        out.append("%s<%s>" % (pad, name))
        for v in value:
            query_xml_node(member, v, level + 1, indent, out)
        out.append("%s</%s>" % (pad, name))
    else:
        text = _text(value)
        out.append("%s<%s>%s</%s>" % (pad, name, _xml_escape(text), name) if text else "%s<%s/>" % (pad, name))


def rendered_db_instance(db):
    """A DB instance's <DBInstance> element, rendered once (kept until overlay changes it)."""
    xml = db.get("_xml")
    if xml is None:
        out = []
        query_xml_node("DBInstance", db, 3, 2, out)
        xml = db["_xml"] = "\n".join(out)
    return xml


def rds_response_xml(request_id, instances, marker):
    # WIRE: <DescribeDBInstancesResponse><DescribeDBInstancesResult><DBInstances>
    # <DBInstance/>...</DBInstances><Marker/></DescribeDBInstancesResult><ResponseMetadata>
    # <RequestId/></ResponseMetadata></DescribeDBInstancesResponse>, two-space indent.
    out = ['<DescribeDBInstancesResponse xmlns="%s">' % RDS_NS, "  <DescribeDBInstancesResult>"]
    if instances:
        out.append("    <DBInstances>")
        out += [rendered_db_instance(db) for db in instances]
        out.append("    </DBInstances>")
    else:
        out.append("    <DBInstances/>")
    if marker is not None:
        out.append("    <Marker>%s</Marker>" % _xml_escape(marker))
    out += ["  </DescribeDBInstancesResult>", "  <ResponseMetadata>",
            "    <RequestId>%s</RequestId>" % request_id, "  </ResponseMetadata>",
            "</DescribeDBInstancesResponse>"]
    return ("\n".join(out) + "\n").encode("utf-8")


def rds_error_xml(status, code, message, request_id):
    # WIRE: the Query protocol's <ErrorResponse> (as STS's), in RDS's namespace; Type Receiver
    # for server-side (5xx) errors.
    kind = "Receiver" if status >= 500 else "Sender"
    return ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>%s</Type>\n    <Code>%s</Code>\n'
            '    <Message>%s</Message>\n  </Error>\n  <RequestId>%s</RequestId>\n</ErrorResponse>\n'
            % (RDS_NS, kind, _xml_escape(code), _xml_escape(message), request_id)).encode("utf-8")


# --------------------------------------------------------------------------------------------
# S3 buckets (REST XML)
# --------------------------------------------------------------------------------------------

def build_bucket(account, name, region, index, *, constraint=None, location_denied=False):
    """A bucket: its ListBuckets <Bucket> fields, and hidden its region, its location constraint
    as GetBucketLocation answers it ("" for us-east-1, "EU" for the oldest eu-west-1 buckets), and
    whether its bucket policy denies GetBucketLocation."""
    created = datetime.datetime(2023, 3, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(hours=5 * index)
    if constraint is None:
        constraint = "" if region == "us-east-1" else region
    return {"Name": name, "CreationDate": _iso(created), "_region": region, "_constraint": constraint,
            "_location_denied": bool(location_denied)}


def generate_buckets(account, spec, start_index=0):
    """Deterministic.  spec: count, seed, name_prefix, regions (round-robin; default
    ["us-east-1"]), eu_every (every Nth bucket of eu-west-1 has the legacy "EU" constraint;
    default 0: none)."""
    count, seed, prefix = _check_count(spec, 100000)
    regions = spec.get("regions") or ["us-east-1"]
    if not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
        raise ValueError("regions must be a list of region names")
    eu_every = spec.get("eu_every", 0)
    if not isinstance(eu_every, int) or eu_every < 0:
        raise ValueError("eu_every must be a non-negative integer")
    out = []
    for n in range(count):
        i = start_index + n
        region = regions[i % len(regions)]
        name = "%s-%s-%05d-%s" % (prefix, account[-4:], i + 1, stable_hex(account, seed, i, n=6))
        constraint = "EU" if region == "eu-west-1" and eu_every and i % eu_every == eu_every - 1 else None
        out.append(build_bucket(account, name, region, i, constraint=constraint))
    return out


def bucket_shorthands(bucket, d):
    if "region" in d:
        bucket["_region"] = d.pop("region")
        bucket["_constraint"] = "" if bucket["_region"] == "us-east-1" else bucket["_region"]
    if "location_constraint" in d:
        bucket["_constraint"] = d.pop("location_constraint")
    if "location_denied" in d:
        bucket["_location_denied"] = bool(d.pop("location_denied"))


def bucket_view(bucket):
    v = public_view(bucket)
    v.update(region=bucket["_region"], location_constraint=bucket["_constraint"],
             location_denied=bucket["_location_denied"])
    return v


def list_buckets_xml(owner_id, buckets, with_region, token, prefix):
    # WIRE: one line after the declaration, Owner first; a bucket's elements Name, CreationDate,
    # then BucketRegion (sent only when the request had a parameter, as S3 documents).  Owner's
    # DisplayName is left out, as S3 no longer returns it.
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListAllMyBucketsResult xmlns="%s">' % S3_NS,
             "<Owner><ID>%s</ID></Owner>" % owner_id]
    if buckets:
        parts.append("<Buckets>")
        for b in buckets:
            parts.append("<Bucket><Name>%s</Name><CreationDate>%s</CreationDate>%s</Bucket>" % (
                _xml_escape(b["Name"]), b["CreationDate"],
                "<BucketRegion>%s</BucketRegion>" % b["_region"] if with_region else ""))
        parts.append("</Buckets>")
    else:
        parts.append("<Buckets/>")
    if token is not None:
        parts.append("<ContinuationToken>%s</ContinuationToken>" % _xml_escape(token))
    if prefix is not None:
        parts.append("<Prefix>%s</Prefix>" % _xml_escape(prefix))
    parts.append("</ListAllMyBucketsResult>")
    return "".join(parts).encode("utf-8")


def location_xml(constraint):
    # WIRE: us-east-1 answers an empty element; other regions their name; the oldest
    # eu-west-1 buckets "EU".
    if not constraint:
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="%s"/>' % S3_NS).encode()
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="%s">%s</LocationConstraint>'
            % (S3_NS, _xml_escape(constraint))).encode()


def s3_error_xml(code, message, request_id, host_id, extra=None):
    # WIRE: <Error><Code/><Message/>[extra elements]<RequestId/><HostId/></Error>, one line.
    more = "".join("<%s>%s</%s>" % (k, _xml_escape(str(v)), k) for k, v in (extra or {}).items())
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>%s'
            '<RequestId>%s</RequestId><HostId>%s</HostId></Error>'
            % (_xml_escape(code), _xml_escape(message), more, request_id, host_id)).encode("utf-8")


# --------------------------------------------------------------------------------------------
# Lambda functions (REST-JSON)
# --------------------------------------------------------------------------------------------

LAMBDA_RUNTIMES = ["python3.12", "nodejs20.x", "java21", "provided.al2023", "ruby3.3", "dotnet8", None]
_HANDLERS = {"python3.12": "app.handler", "nodejs20.x": "index.handler", "java21": "example.Handler::handleRequest",
             "provided.al2023": "bootstrap", "ruby3.3": "function.handler", "dotnet8": "Fn::Fn.Function::Handler"}


def build_function(account, region, index, rng, *, name, runtime="-", memory=None, timeout=None,
                   environment=None, vpc=None, architecture=None):
    """A function with the FunctionConfiguration members ListFunctions returns, in the model's
    order.  runtime None: a container image function (no Runtime, no Handler)."""
    if runtime == "-":
        runtime = LAMBDA_RUNTIMES[index % len(LAMBDA_RUNTIMES)]
    arn = "arn:aws:lambda:%s:%s:function:%s" % (region, account, name)
    modified = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc) + datetime.timedelta(
        minutes=13 * index, seconds=rng.randrange(60))
    fn = {
        "_region": region,
        "FunctionName": name,
        "FunctionArn": arn,
        "Runtime": runtime,
        "Role": "arn:aws:iam::%s:role/sim-lambda-%s" % (account, "exec" if index % 2 else "vpc"),
        "Handler": _HANDLERS.get(runtime) if runtime else None,
        "CodeSize": 1024 + (index * 7919) % 5000000,
        "Description": "" if index % 3 else "simulated function %d" % (index + 1),
        "Timeout": timeout if timeout is not None else [3, 15, 30, 60, 300, 900][index % 6],
        "MemorySize": memory if memory is not None else [128, 256, 512, 1024, 2048, 10240][index % 6],
        # WIRE: LastModified is ISO 8601 with milliseconds and a +0000 offset
        "LastModified": modified.strftime("%Y-%m-%dT%H:%M:%S.") + "%03d+0000" % (modified.microsecond // 1000),
        "CodeSha256": base64.b64encode(hashlib.sha256(arn.encode()).digest()).decode(),
        "Version": "$LATEST",
        "VpcConfig": vpc,
        "Environment": environment,
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": "%s-%s-%s-%s-%s" % tuple(stable_hex(arn, k, n=m) for k, m in
                                               ((1, 8), (2, 4), (3, 4), (4, 4), (5, 12))),
        "PackageType": "Zip" if runtime else "Image",
        "Architectures": [architecture or ("arm64" if index % 4 == 3 else "x86_64")],
        "EphemeralStorage": {"Size": 512},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": "/aws/lambda/%s" % name},
    }
    return fn


def generate_functions(account, region, spec, start_index=0):
    """Deterministic.  spec: count, seed, name_prefix, vpc_every (default 3: every 3rd function
    is in a VPC), environment (an object of variables every generated function gets, e.g. a
    marker for the secrets test; default: a few harmless ones on every other function)."""
    count, seed, prefix = _check_count(spec, 100000)
    vpc_every = spec.get("vpc_every", 3)
    if not isinstance(vpc_every, int) or vpc_every < 0:
        raise ValueError("vpc_every must be a non-negative integer")
    env = spec.get("environment")
    if env is not None and (not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values())):
        raise ValueError("environment must be an object of string variables")
    rng = random.Random(repr(("lambda", account, region, seed, start_index)))
    out = []
    for n in range(count):
        i = start_index + n
        vpc = None
        if vpc_every and i % vpc_every == vpc_every - 1:
            vid = "vpc-0" + stable_hex(account, region, "lambda-vpc")
            vpc = {"SubnetIds": ["subnet-0" + stable_hex(account, region, "lambda", k) for k in range(2)],
                   "SecurityGroupIds": ["sg-0" + stable_hex(account, region, "lambda-sg")],
                   "VpcId": vid, "Ipv6AllowedForDualStack": False}
        elif i % 7 == 5:
            # WIRE: some functions outside a VPC show an empty VpcConfig rather than none
            vpc = {"SubnetIds": [], "SecurityGroupIds": [], "VpcId": ""}
        variables = env if env is not None else ({"STAGE": "prod", "LOG_LEVEL": "info"} if i % 2 == 0 else None)
        out.append(build_function(account, region, i, rng, name="%s-fn-%s-%04d" % (prefix, region, i + 1),
                                  vpc=vpc, environment={"Variables": dict(variables)} if variables else None))
    return out


def function_shorthands(fn, d):
    if "environment" in d:
        env = d.pop("environment")
        fn["Environment"] = {"Variables": dict(env)} if env else None


def list_functions_json(functions, next_marker):
    # WIRE: {"Functions": [...], "NextMarker": null} on the last page (null, not absent).
    body = {"Functions": [{k: v for k, v in fn.items() if not k.startswith("_") and v is not None}
                          for fn in functions],
            "NextMarker": next_marker}
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def lambda_error_json(code, message, extra=None):
    """Lambda's error body; AccessDeniedException says "Message", the others "message" (with
    Type, and Reason for throttling), as the service sends them."""
    if code == "AccessDeniedException":
        body = {"Message": message}
    else:
        body = dict(extra or {})
        body["message"] = message
    # WIRE: the message's characters as they are, in UTF-8 (not \u escapes)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
