#!/usr/bin/python3
"""HTTPS simulator of Microsoft Azure for cloudconn's automated tests: the Microsoft identity
platform's token endpoint (OAuth 2.0 client credentials) and the parts of Azure Resource Manager
(ARM) that a discovery client reads: the subscriptions list and, per subscription, the
virtual machines (plain and statusOnly=true), network interfaces and public IP addresses.

One server answers both: POST /{tenant}/oauth2/v2.0/token, and GET /subscriptions... for ARM.
It keeps Microsoft's wire format: form-encoded token requests, the error JSON of the identity
platform (error, error_description, error_codes, timestamp, trace_id, correlation_id,
error_uri), access tokens that expire, ARM list pages ({"value": [...], "nextLink": ...}),
CloudError bodies, role assignments per subscription (AuthorizationFailed), ARM's
x-ms-ratelimit-remaining-* headers and its token-bucket throttling with 429 and Retry-After.
A control API under /_sim/ sets the data and faults and reads the request log, which never
holds a secret or a token.

Python 3 standard library only, on simlib.py.  README.md beside this file lists the control API,
the fault kinds and what was checked against which official material (vendor/azure-rest-api-specs
holds the definitions the self-test validates every shape against).  Where the official material
and observed behaviour differ, the choice is written next to the constant concerned ("WIRE:").
"""

import base64
import collections
import datetime
import hashlib
import hmac
import ipaddress
import json
import math
import os
import random
import re
import secrets
import sys
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simlib  # noqa: E402

# --------------------------------------------------------------------------------------------
# Wire constants
# --------------------------------------------------------------------------------------------

# WIRE: the API versions cloudconn calls; ARM answers others with 400 (below).
API_VERSIONS = {
    "compute": {"2024-07-01", "2024-03-01", "2023-09-01"},
    "network": {"2024-05-01", "2024-03-01", "2023-11-01"},
    "resources": {"2022-12-01", "2021-01-01", "2020-01-01"},
}

# WIRE: ListAll of virtual machines pages by 50 (observed, and reported in the SDKs' issues:
# "listAll returns 50 VMs" with a nextLink).  Microsoft documents no page size for the network
# lists or the subscriptions list; 100 is served (configurable).
PAGE_SIZE_VMS = 50
PAGE_SIZE_NETWORK = 100
PAGE_SIZE_SUBSCRIPTIONS = 100

# WIRE: access tokens of the client credentials grant last about an hour: "expires_in": 3599
# (docs/identity-platform/v2-oauth2-client-creds-grant-flow.md, "Successful response").
TOKEN_LIFETIME_S = 3599

# WIRE: ARM's token bucket for subscription reads: 250 tokens, refilled at 25 a second
# ("Modernizing Azure Resource Manager throttling"; the older documentation gives 12,000 reads
# per hour per principal and subscription).  Each read reports what is left in
# x-ms-ratelimit-remaining-subscription-reads (tenant-level reads: -tenant-reads); an empty bucket
# answers 429 SubscriptionRequestsThrottled with Retry-After in seconds
# (azure-resource-manager/management/request-limits-and-throttling.md, "Error code").
READ_BUCKET_SIZE = 250
READ_REFILL_PER_S = 25.0

CT_JSON = "application/json; charset=utf-8"

# The default identities: worthless anywhere but here.
DEFAULT_TENANT = "8b1f0c2e-5a3d-4e6f-9c7b-0a1b2c3d4e5f"
DEFAULT_CLIENT = "3c9e7a51-6d2b-4f80-a1c4-7e5d9b2f6a03"
DEFAULT_SECRET = "SimQ8~cloudconn.ClientSecret-0123456789_abcdefgh"

LISTS = ("token", "subscriptions", "vms", "vm_status", "nics", "public_ips", "other")

# The resource names the simulator's token endpoint issues tokens for (scope "<resource>/.default").
MANAGEMENT_RESOURCES = ("https://management.azure.com", "https://management.core.windows.net")

_HOST_RE = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

MALFORMED_BODY = b'{"value":[{"name":"vm-0","id":"/subscriptions/x'


def _b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _is_guid(s):
    return isinstance(s, str) and bool(_GUID_RE.match(s))


def _now_text():
    """The identity platform's timestamp: "2016-01-09 02:02:12Z"."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# The identity platform's errors
# --------------------------------------------------------------------------------------------

# WIRE: (status, error, description) per AADSTS code, as the token endpoint answers them
# (docs/identity-platform/reference-error-codes.md; statuses: invalid_client 401, the others 400).
AAD_ERRORS = {
    90002: (400, "invalid_request", "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud. Check with your subscription administrator, this may happen "
            "if there are no active subscriptions for the tenant."),
    700016: (400, "unauthorized_client", "Application with identifier '{client}' was not found in the directory "
             "'{tenant_name}'. This can happen if the application has not been installed by the administrator of "
             "the tenant or consented to by any user in the tenant. You may have sent your authentication request "
             "to the wrong tenant."),
    7000215: (401, "invalid_client", "Invalid client secret provided. Ensure the secret being sent in the request "
              "is the client secret value, not the client secret ID, for a secret added to app '{client}'."),
    7000216: (401, "invalid_client", "'client_assertion', 'client_secret' or 'request' is required for the "
              "'client_credentials' grant type."),
    7000222: (401, "invalid_client", "The provided client secret keys for app '{client}' are expired. Visit the "
              "Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using "
              "certificate credentials for added security: https://aka.ms/certCreds."),
    70011: (400, "invalid_scope", "The provided value for the input parameter 'scope' is not valid. The scope "
            "{scope} is not valid."),
    70003: (400, "unsupported_grant_type", "The app requested an unsupported grant type '{grant}'."),
    900144: (400, "invalid_request", "The request body must contain the following parameter: '{param}'."),
    900561: (400, "invalid_request", "The endpoint only accepts POST, OPTIONS requests. Received a {method} request."),
}


def aad_error(code, **fields):
    """(status, body dict) of the token endpoint's error for an AADSTS code (WIRE: the shape of
    "Error response" in v2-oauth2-client-creds-grant-flow.md, plus error_uri as the service
    sends it)."""
    status, error, text = AAD_ERRORS[code]
    fields.setdefault("tenant", "")
    fields.setdefault("tenant_name", fields["tenant"])
    fields.setdefault("client", "")
    trace, corr, stamp = str(uuid.uuid4()), str(uuid.uuid4()), _now_text()
    description = "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s" % (
        code, text.format(**collections.defaultdict(str, fields)), trace, corr, stamp)
    return status, {"error": error, "error_description": description, "error_codes": [code], "timestamp": stamp,
                    "trace_id": trace, "correlation_id": corr,
                    "error_uri": "https://login.microsoftonline.com/error?code=%d" % code}


def cloud_error(code, message):
    """ARM's CloudError body (WIRE: common-types CloudError / network CloudErrorBody)."""
    return {"error": {"code": code, "message": message}}


# --------------------------------------------------------------------------------------------
# Generated resources
# --------------------------------------------------------------------------------------------

LOCATIONS = ("westeurope", "northeurope", "eastus")
SIZES = ("Standard_B2s", "Standard_D2s_v3", "Standard_D4s_v3", "Standard_E2s_v3", "Standard_F2s_v2")
LINUX_IMAGES = (("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2", "latest", "22.04.202404090"),
                ("Canonical", "ubuntu-24_04-lts", "server", "latest", "24.04.202409120"),
                ("RedHat", "RHEL", "9-lvm-gen2", "latest", "9.4.2024080515"))
WINDOWS_IMAGES = (("MicrosoftWindowsServer", "WindowsServer", "2022-datacenter-azure-edition", "latest",
                   "20348.2582.240703"),)
DISK_TYPES = ("Premium_LRS", "StandardSSD_LRS", "Standard_LRS")
POWER_DISPLAY = {"running": "VM running", "deallocated": "VM deallocated", "stopped": "VM stopped",
                 "starting": "VM starting", "stopping": "VM stopping", "deallocating": "VM deallocating"}
FAKE_SSH_KEY = "ssh-rsa " + base64.b64encode(b"cloudconn-simulator-public-key-" * 12).decode("ascii") + " generated"


def _private_ip(n, second=False):
    return str(ipaddress.IPv4Address("10.0.0.0") + (16 + n * 2 + (1 if second else 0)))


class Resources:
    """The resources of one subscription, each rendered once to the JSON bytes ARM sends, and
    again only when it changes: the benchmarks measure the client, not the simulator."""

    def __init__(self):
        self.vms = collections.OrderedDict()      # lower-cased name -> record
        self.cache = {}                          # (list, name) -> bytes
        self.entries = {}                        # list -> [(record, second NIC?)], in listing order

    def invalidate(self, name):
        for k in ("vms", "vm_status", "nics", "public_ips"):
            self.cache.pop((k, name), None)
        self.entries.clear()

    def listing(self, lst):
        """What a list serves, in order (kept until the set changes, so that a page costs
        its own items, not a pass over every VM)."""
        got = self.entries.get(lst)
        if got is None:
            recs = list(self.vms.values())
            if lst == "nics":
                got = [(r, False) for r in recs] + [(r, True) for r in recs if r["second_nic"]]
            elif lst == "public_ips":
                got = [(r, False) for r in recs if r["public_ip"] is not None]
            else:
                got = [(r, False) for r in recs]
            self.entries[lst] = got
        return got


def make_vm(sub_id, n, rng, spec, pip_index):
    """One VM record: its own fields, and what its NICs and public IP are made from."""
    groups = spec.get("resource_groups", 4)
    rg = "Rg-%s-%02d" % (spec.get("group_prefix", "App"), n % groups)
    name = "%s%05d" % (spec.get("name_prefix", "vm-"), n)
    windows_every = spec.get("windows_every", 5)
    windows = windows_every > 0 and n % windows_every == windows_every - 1
    states = spec.get("power_states") or ["running"]
    share = spec.get("public_ip", 0.6)
    dynamic_share = spec.get("dynamic_ip", 0.3)
    rec = {
        "name": name,
        "resource_group": rg,
        "location": LOCATIONS[n % len(LOCATIONS)] if not spec.get("locations") else
        spec["locations"][n % len(spec["locations"])],
        "zone": str(1 + n % 3) if n % 4 != 3 else None,
        "size": SIZES[rng.randrange(len(SIZES))],
        "os": "Windows" if windows else "Linux",
        "image": WINDOWS_IMAGES[0] if windows else LINUX_IMAGES[rng.randrange(len(LINUX_IMAGES))],
        "disk_type": DISK_TYPES[n % len(DISK_TYPES)],
        "power_state": states[n % len(states)],
        "vm_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "tags": {"env": ("prod", "test", "dev")[n % 3], "team": "team-%d" % (n % 7)},
        "private_ip": _private_ip(n),
        "second_nic": spec.get("second_nic_every", 10) > 0 and n % spec.get("second_nic_every", 10) == 1,
        "second_ip": _private_ip(n, second=True),
        "public_ip": None,
        "public_dynamic": False,
        "created": "2024-%02d-%02dT%02d:%02d:00.1234567+00:00" % (1 + n % 12, 1 + n % 28, n % 24, n % 60),
        "guid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    }
    if rng.random() < share:
        rec["public_ip"] = simlib.public_ipv4(pip_index, wrap=True)
        rec["public_dynamic"] = rng.random() < dynamic_share
    return rec


def _ids(sub_id, rec, upper=False):
    """The ARM ids of a VM and of what belongs to it.  WIRE: ARM keeps the resource group's
    case in a resource's own id, but references to it from other resources often carry it
    upper-cased (a NIC's virtualMachine.id, a configuration's publicIPAddress.id): ids are
    case-insensitive, and the simulator sends both forms."""
    rg = rec["resource_group"].upper() if upper else rec["resource_group"]
    base = "/subscriptions/%s/resourceGroups/%s/providers/" % (sub_id, rg)
    return {
        "vm": base + "Microsoft.Compute/virtualMachines/" + rec["name"],
        "nic": base + "Microsoft.Network/networkInterfaces/" + rec["name"] + "-nic",
        "nic2": base + "Microsoft.Network/networkInterfaces/" + rec["name"] + "-nic2",
        "pip": base + "Microsoft.Network/publicIPAddresses/" + rec["name"] + "-ip",
        "disk": base + "Microsoft.Compute/disks/" + rec["name"] + "_OsDisk_1",
        "subnet": "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/virtualNetworks/vnet-%s/subnets/default"
        % (sub_id, rg, rec["location"]),
    }


def render_vm(sub_id, rec):
    ids = _ids(sub_id, rec)
    img = rec["image"]
    nics = [{"id": ids["nic"], "properties": {"primary": True, "deleteOption": "Delete"}}]
    if rec["second_nic"]:
        nics.append({"id": ids["nic2"], "properties": {"primary": False, "deleteOption": "Delete"}})
    if rec["os"] == "Windows":
        os_profile = {"computerName": rec["name"][:15], "adminUsername": "azureuser",
                      "windowsConfiguration": {"provisionVMAgent": True, "enableAutomaticUpdates": True},
                      "secrets": [], "allowExtensionOperations": True, "requireGuestProvisionSignal": True}
    else:
        os_profile = {"computerName": rec["name"], "adminUsername": "azureuser",
                      "linuxConfiguration": {"disablePasswordAuthentication": True, "provisionVMAgent": True,
                                             "ssh": {"publicKeys": [{"path": "/home/azureuser/.ssh/authorized_keys",
                                                                     "keyData": FAKE_SSH_KEY}]}},
                      "secrets": [], "allowExtensionOperations": True, "requireGuestProvisionSignal": True}
    vm = {
        "name": rec["name"],
        "id": ids["vm"],
        "type": "Microsoft.Compute/virtualMachines",
        "location": rec["location"],
        "tags": rec["tags"],
    }
    if rec["zone"]:
        vm["zones"] = [rec["zone"]]
    vm["properties"] = {
        "vmId": rec["vm_id"],
        "hardwareProfile": {"vmSize": rec["size"]},
        "storageProfile": {
            "imageReference": {"publisher": img[0], "offer": img[1], "sku": img[2], "version": img[3],
                               "exactVersion": img[4]},
            "osDisk": {"osType": rec["os"], "name": rec["name"] + "_OsDisk_1", "createOption": "FromImage",
                       "caching": "ReadWrite", "managedDisk": {"storageAccountType": rec["disk_type"],
                                                               "id": ids["disk"]},
                       "deleteOption": "Delete", "diskSizeGB": 127 if rec["os"] == "Windows" else 30},
            "dataDisks": [],
            "diskControllerType": "SCSI",
        },
        "osProfile": os_profile,
        "networkProfile": {"networkInterfaces": nics},
        "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
        "provisioningState": rec.get("provisioning_state", "Succeeded"),
        "timeCreated": rec["created"],
    }
    return vm


def render_status(sub_id, rec):
    ids = _ids(sub_id, rec)
    state = rec["power_state"]
    statuses = [{"code": "ProvisioningState/%s" % rec.get("provisioning_state", "Succeeded").lower(),
                 "level": "Info", "displayStatus": "Provisioning succeeded", "time": rec["created"]}]
    if state is not None:
        statuses.append({"code": "PowerState/" + state, "level": "Info",
                         "displayStatus": POWER_DISPLAY.get(state, "VM " + state)})
    view = {"computerName": rec["name"] if rec["os"] == "Linux" else rec["name"][:15],
            "osName": "ubuntu" if rec["os"] == "Linux" else "Windows Server 2022 Datacenter Azure Edition",
            "osVersion": "22.04" if rec["os"] == "Linux" else "10.0.20348.2582",
            "statuses": statuses}
    return {"name": rec["name"], "id": ids["vm"], "type": "Microsoft.Compute/virtualMachines",
            "location": rec["location"], "properties": {"instanceView": view}}


def _mac(n, second=False):
    v = 0x000D3A000000 + n * 2 + (1 if second else 0)
    return "-".join("%02X" % ((v >> s) & 0xFF) for s in range(40, -1, -8))


def render_nic(sub_id, rec, n, second=False):
    ids = _ids(sub_id, rec)
    up = _ids(sub_id, rec, upper=True)
    nic_id = ids["nic2" if second else "nic"]
    ip_props = {
        "provisioningState": "Succeeded",
        "privateIPAddress": rec["second_ip"] if second else rec["private_ip"],
        "privateIPAllocationMethod": "Dynamic",
        "subnet": {"id": ids["subnet"]},
        "primary": True,
        "privateIPAddressVersion": "IPv4",
    }
    if rec["public_ip"] is not None and not second:
        ip_props["publicIPAddress"] = {"id": up["pip"]}
    return {
        "name": rec["name"] + ("-nic2" if second else "-nic"),
        "id": nic_id,
        "etag": 'W/"%s"' % rec["guid"],
        "type": "Microsoft.Network/networkInterfaces",
        "location": rec["location"],
        "tags": {},
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": rec["guid"],
            "ipConfigurations": [{
                "name": "ipconfig1",
                "id": nic_id + "/ipConfigurations/ipconfig1",
                "etag": 'W/"%s"' % rec["guid"],
                "type": "Microsoft.Network/networkInterfaces/ipConfigurations",
                "properties": ip_props,
            }],
            "dnsSettings": {"dnsServers": [], "appliedDnsServers": [],
                            "internalDomainNameSuffix": "sim%04d.ax.internal.cloudapp.net" % (n % 10000)},
            "macAddress": _mac(n, second),
            "vnetEncryptionSupported": False,
            "enableIPForwarding": False,
            "enableAcceleratedNetworking": rec["size"] != "Standard_B2s",
            "primary": not second,
            "virtualMachine": {"id": up["vm"]},
            "hostedWorkloads": [],
            "tapConfigurations": [],
            "nicType": "Standard",
            "auxiliaryMode": "None",
            "auxiliarySku": "None",
        },
    }


def render_pip(sub_id, rec):
    ids = _ids(sub_id, rec)
    up = _ids(sub_id, rec, upper=True)
    dynamic = rec["public_dynamic"]
    props = {
        "provisioningState": "Succeeded",
        "resourceGuid": rec["guid"],
        "publicIPAddressVersion": "IPv4",
        "publicIPAllocationMethod": "Dynamic" if dynamic else "Static",
        "idleTimeoutInMinutes": 4,
        "ipTags": [],
        "ipConfiguration": {"id": up["nic"] + "/ipConfigurations/ipconfig1"},
    }
    # WIRE: a Dynamic address is released while its VM is deallocated (or stopped), and then the
    # resource has no ipAddress at all; a Static one keeps it.
    if not dynamic or rec["power_state"] not in ("deallocated", "stopped"):
        props["ipAddress"] = rec["public_ip"]
    pip = {
        "name": rec["name"] + "-ip",
        "id": ids["pip"],
        "etag": 'W/"%s"' % rec["guid"],
        "location": rec["location"],
        "tags": {},
        "type": "Microsoft.Network/publicIPAddresses",
        "sku": {"name": "Basic" if dynamic else "Standard", "tier": "Regional"},
        "properties": props,
    }
    if not dynamic and rec["zone"]:
        pip["zones"] = [rec["zone"]]
    return pip


# --------------------------------------------------------------------------------------------
# Fault rules
# --------------------------------------------------------------------------------------------

def _check_fault(r):
    kind = r["kind"]
    if kind == "status":
        if "retry_after" in r and not (simlib.is_number(r["retry_after"]) and r["retry_after"] >= 0):
            raise ValueError("retry_after must be a non-negative number of seconds")
        if "code" in r and not isinstance(r["code"], str):
            raise ValueError("code must be a string")
    elif kind == "foreign_next":
        if not isinstance(r.get("next_url"), str):
            raise ValueError("a foreign_next fault needs \"next_url\"")
    elif kind == "bad_vm":
        r.setdefault("index", 0)
        if not isinstance(r["index"], int) or r["index"] < 0:
            raise ValueError("index must be a non-negative integer")
        if not isinstance(r.get("field"), str):
            raise ValueError("a bad_vm fault needs \"field\"")


FAULTS = simlib.FaultRules(
    simlib.GENERIC_FAULTS + ("foreign_next", "bad_vm", "expire_token"),
    match={"path_prefix": simlib.Prefix(default="/"), "page": simlib.Positive(hint="pages count from 1"),
           "subscription": simlib.Text(), "list": simlib.Text(choices=LISTS)},
    check_kind=_check_fault)


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------

class Sim(simlib.SimState):
    stats_template = {"requests_total": 0, "requests_by_status": {}, "faults_applied": {},
                      "requests_by_list": {}, "throttled": 0, "tokens_issued": 0}
    config_keys = frozenset({"latency_ms", "page_size_vms", "page_size_network", "page_size_subscriptions",
                             "token_lifetime_s", "read_bucket_size", "read_refill_per_s", "origin"})
    fault_rules = FAULTS

    def __init__(self, initial, base_config, log_path):
        self.key = secrets.token_bytes(32)       # signs tokens and skip tokens
        super().__init__(initial, base_config, log_path)

    def reset_state(self, init):
        self.tenants = {}
        self.subscriptions = collections.OrderedDict()
        self.buckets = {}
        self.issued = []          # every token handed out (for the tests' absence checks)
        self.expired_serials = set()
        self.serial = 0
        self.pip_index = 0
        tenants = init.get("tenants")
        if tenants is None:
            tenants = [{"tenant_id": DEFAULT_TENANT, "display_name": "Contoso (simulated)",
                        "apps": [{"client_id": DEFAULT_CLIENT, "secrets": [{"value": DEFAULT_SECRET}]}]}]
        for t in tenants:
            self.set_tenant(t)
        for s in init.get("subscriptions") or []:
            self.set_subscription(s)

    def check_config(self, data):
        super().check_config(data)
        for k in ("page_size_vms", "page_size_network", "page_size_subscriptions"):
            if k in data and not (isinstance(data[k], int) and 1 <= data[k] <= 5000):
                raise ValueError(k + " must be an integer 1..5000")
        if "token_lifetime_s" in data and not (isinstance(data["token_lifetime_s"], int) and data["token_lifetime_s"] >= 1):
            raise ValueError("token_lifetime_s must be a positive integer")
        if "read_bucket_size" in data and not (isinstance(data["read_bucket_size"], int) and data["read_bucket_size"] >= 1):
            raise ValueError("read_bucket_size must be a positive integer")
        if "read_refill_per_s" in data and not (simlib.is_number(data["read_refill_per_s"]) and data["read_refill_per_s"] > 0):
            raise ValueError("read_refill_per_s must be a positive number")
        if "origin" in data and data["origin"] is not None and not isinstance(data["origin"], str):
            raise ValueError("origin must be a string or null")

    def count_request(self, entry):
        by = self.stats["requests_by_list"]
        by[entry.get("list") or "other"] = by.get(entry.get("list") or "other", 0) + 1
        if entry.get("status") == 429:
            self.stats["throttled"] += 1

    # -- identities ----------------------------------------------------------------------------

    def set_tenant(self, t):
        if not isinstance(t, dict) or not _is_guid(t.get("tenant_id")):
            raise ValueError("a tenant needs \"tenant_id\", a GUID")
        apps = {}
        for a in t.get("apps") or []:
            app = self._app(a)
            apps[app["client_id"]] = app
        with self.lock:
            self.tenants[t["tenant_id"].lower()] = {"display_name": t.get("display_name") or "Simulated directory",
                                                    "apps": apps}

    @staticmethod
    def _app(a):
        if not isinstance(a, dict) or not _is_guid(a.get("client_id")):
            raise ValueError("an app needs \"client_id\", a GUID")
        secrets_ = []
        for s in a.get("secrets") or []:
            if not isinstance(s, dict) or not isinstance(s.get("value"), str) or not s["value"]:
                raise ValueError("a secret needs \"value\", a non-empty string")
            secrets_.append({"value": s["value"], "expired": bool(s.get("expired"))})
        return {"client_id": a["client_id"].lower(), "object_id": a.get("object_id") or str(uuid.uuid4()),
                "secrets": secrets_}

    def set_app(self, data):
        tenant = (data or {}).get("tenant_id")
        app = self._app(data)
        with self.lock:
            if not isinstance(tenant, str) or tenant.lower() not in self.tenants:
                raise ValueError("no such tenant")
            self.tenants[tenant.lower()]["apps"][app["client_id"]] = app

    def known_secrets(self):
        with self.lock:
            return [s["value"] for t in self.tenants.values() for a in t["apps"].values() for s in a["secrets"]]

    # -- subscriptions -------------------------------------------------------------------------

    def set_subscription(self, s):
        if not isinstance(s, dict) or not _is_guid(s.get("subscription_id")):
            raise ValueError("a subscription needs \"subscription_id\", a GUID")
        state = s.get("state", "Enabled")
        if state not in ("Enabled", "Warned", "PastDue", "Disabled", "Deleted"):
            raise ValueError("state must be Enabled, Warned, PastDue, Disabled or Deleted")
        roles = s.get("roles")
        if roles is None:
            roles = {DEFAULT_CLIENT: "Reader"}
        self._check_roles(roles)
        sid = s["subscription_id"].lower()
        with self.lock:
            old = self.subscriptions.get(sid)
            self.subscriptions[sid] = {
                "id": sid,
                "display_name": s.get("display_name") or "Subscription %s" % sid[:8],
                "state": state,
                "tenant_id": (s.get("tenant_id") or DEFAULT_TENANT).lower(),
                "roles": {k.lower(): v for k, v in roles.items()},
                "resources": old["resources"] if old and not s.get("reset") else Resources(),
            }

    @staticmethod
    def _check_roles(roles):
        if not isinstance(roles, dict):
            raise ValueError("roles must be an object of client id: role")
        for k, v in roles.items():
            if not _is_guid(k) or v not in ("Reader", "ResourceGroupReader", None):
                raise ValueError("a role is \"Reader\", \"ResourceGroupReader\" (visible, but no read at the "
                                 "subscription's scope) or null")

    def generate(self, sid, spec):
        if not isinstance(spec, dict):
            raise ValueError("send a JSON object")
        count = spec.get("count", 10)
        if not isinstance(count, int) or not 0 <= count <= 200000:
            raise ValueError("count must be an integer 0..200000")
        rng = random.Random(spec.get("seed", 1))
        with self.lock:
            sub = self.subscriptions.get(sid)
            if sub is None:
                raise ValueError("no such subscription")
            res = sub["resources"]
            res.entries.clear()
            if not spec.get("append"):
                res.vms.clear()
                res.cache.clear()
            first = spec.get("first", len(res.vms))
            for i in range(count):
                rec = make_vm(sid, first + i, rng, spec, self.pip_index)
                if rec["public_ip"] is not None:
                    self.pip_index += 1
                rec["n"] = first + i
                res.vms[rec["name"].lower()] = rec
                if spec.get("render"):
                    self.render(sid, res, rec)
            return len(res.vms)

    @staticmethod
    def render(sid, res, rec):
        """Render a VM's four representations now rather than at its first listing (so that a
        benchmark's first run does not pay for the simulator's work)."""
        name = rec["name"].lower()
        res.cache[("vms", name)] = simlib.json_bytes(render_vm(sid, rec))
        res.cache[("vm_status", name)] = simlib.json_bytes(render_status(sid, rec))
        res.cache[("nics", name)] = simlib.json_bytes(render_nic(sid, rec, rec["n"]))
        if rec["second_nic"]:
            res.cache[("nics", name + "#2")] = simlib.json_bytes(render_nic(sid, rec, rec["n"], True))
        if rec["public_ip"] is not None:
            res.cache[("public_ips", name)] = simlib.json_bytes(render_pip(sid, rec))

    # -- tokens --------------------------------------------------------------------------------

    def issue_token(self, tenant, app, resource):
        with self.lock:
            self.serial += 1
            serial = self.serial
            lifetime = int(self.config.get("token_lifetime_s") or TOKEN_LIFETIME_S)
            self.stats["tokens_issued"] += 1
        now = int(time.time())
        header = _b64url(json.dumps({"typ": "JWT", "alg": "RS256", "kid": "cloudconn-sim"}).encode())
        payload = _b64url(json.dumps({"aud": resource, "iss": "https://sts.windows.net/%s/" % tenant, "iat": now,
                                      "nbf": now, "exp": now + lifetime, "appid": app["client_id"],
                                      "appidacr": "1", "idtyp": "app", "oid": app["object_id"], "tid": tenant,
                                      "ver": "1.0", "sid": serial, "uti": _b64url(secrets.token_bytes(16))},
                                     separators=(",", ":")).encode())
        signature = _b64url(hmac.new(self.key, (header + "." + payload).encode(), hashlib.sha256).digest()
                            + secrets.token_bytes(224))
        token = header + "." + payload + "." + signature
        with self.lock:
            self.issued.append(token)
        return token, lifetime

    def check_token(self, authorization):
        """("none" | "valid" | "expired" | "invalid", claims or None)."""
        if not authorization:
            return "none", None
        if not authorization.startswith("Bearer "):
            return "invalid", None
        token = authorization[7:]
        parts = token.split(".")
        if len(parts) != 3:
            return "invalid", None
        try:
            sig = _unb64url(parts[2])[:32]
            want = hmac.new(self.key, (parts[0] + "." + parts[1]).encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(sig, want):
                return "invalid", None
            claims = json.loads(_unb64url(parts[1]))
        except (ValueError, TypeError):
            return "invalid", None
        with self.lock:
            expired = claims.get("sid") in self.expired_serials
        if expired or claims.get("exp", 0) <= time.time():
            return "expired", claims
        return "valid", claims

    def expire_all(self):
        with self.lock:
            self.expired_serials.update(range(1, self.serial + 1))

    # -- throttling ----------------------------------------------------------------------------

    def take_read(self, key):
        """Spend one read of a (principal, scope) bucket: (allowed, remaining, retry_after_s)."""
        with self.lock:
            size = int(self.config.get("read_bucket_size") or READ_BUCKET_SIZE)
            rate = float(self.config.get("read_refill_per_s") or READ_REFILL_PER_S)
            now = time.monotonic()
            tokens, at = self.buckets.get(key, (float(size), now))
            tokens = min(float(size), tokens + (now - at) * rate)
            if tokens < 1.0:
                self.buckets[key] = (tokens, now)
                return False, 0, max(1, int(math.ceil((1.0 - tokens) / rate)))
            tokens -= 1.0
            self.buckets[key] = (tokens, now)
            return True, int(tokens), None

    def redact(self, text, extra=()):
        """text with every secret and token the simulator knows replaced by [REDACTED]."""
        with self.lock:
            known = list(self.issued)
        for s in list(extra) + self.known_secrets() + known:
            if s and s in text:
                text = text.replace(s, "[REDACTED]")
            q = urllib.parse.quote(s, safe="") if s else ""
            if q and q in text:
                text = text.replace(q, "[REDACTED]")
        return text


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------

_ROUTES = [
    (re.compile(r"^/subscriptions/([^/]+)/providers/Microsoft\.Compute/virtualMachines$", re.I), "vms", "compute"),
    (re.compile(r"^/subscriptions/([^/]+)/providers/Microsoft\.Network/networkInterfaces$", re.I), "nics", "network"),
    (re.compile(r"^/subscriptions/([^/]+)/providers/Microsoft\.Network/publicIPAddresses$", re.I), "public_ips",
     "network"),
]
_TOKEN_PATH = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")

ACTIONS = {"vms": "Microsoft.Compute/virtualMachines/read", "vm_status": "Microsoft.Compute/virtualMachines/read",
           "nics": "Microsoft.Network/networkInterfaces/read",
           "public_ips": "Microsoft.Network/publicIPAddresses/read"}


class Handler(simlib.BaseHandler):
    sim_name = "azure_sim"
    description = "HTTPS simulator of Microsoft Azure: the token endpoint and Azure Resource Manager."
    state_help = "JSON: tenants (with apps and secrets), subscriptions, config, faults"
    server_header = None        # WIRE: ARM sends no Server header; the token endpoint neither
    control_content_type = "application/json"

    def split_target(self):
        parsed = urllib.parse.urlsplit(self.path)
        return parsed.path, parsed.query

    def protocol_error(self, code, message):
        return CT_JSON, simlib.json_bytes(cloud_error("InvalidRequest", message or "Bad request."))

    def send_request_error(self, status, code, message):
        self.send_body(status, simlib.json_bytes(cloud_error(code, message)), [("Content-Type", CT_JSON)])

    def internal_error(self):
        self.send_body(500, simlib.json_bytes(cloud_error("InternalServerError", "Encountered internal server error.")),
                       [("Content-Type", CT_JSON)])

    def _origin(self):
        fixed = self.server.sim.config.get("origin")
        if fixed:
            return fixed.rstrip("/")
        host = self.headers.get("Host", "")
        if host and _HOST_RE.match(host):
            return "https://" + host
        h, p = self.server.server_address[:2]
        return "https://%s:%d" % (h, p)

    # -- the request's life ------------------------------------------------------------------

    def begin_call(self, call):
        sim = self.server.sim
        call.params = urllib.parse.parse_qs(call.query, keep_blank_values=True)
        call.list, call.subscription, call.page, call.route_kind = "other", None, 1, None
        m = _TOKEN_PATH.match(call.path)
        if m:
            call.list = "token"
            call.tenant = m.group(1).lower()
        elif call.path.rstrip("/").lower() == "/subscriptions":
            call.list = "subscriptions"
        else:
            for rx, kind, rp in _ROUTES:
                mm = rx.match(call.path)
                if mm:
                    call.subscription = mm.group(1).lower()
                    call.route_kind = rp
                    call.list = "vm_status" if kind == "vms" and \
                        call.params.get("statusOnly", [""])[0].lower() == "true" else kind
        skip = call.params.get("$skiptoken", [None])[0]
        offset = self._offset_of(skip) if skip else None
        if offset is not None:
            call.page = offset // self._page_size(call.list) + 1
        call.auth, call.claims = sim.check_token(self.headers.get("Authorization"))
        if call.claims and call.claims.get("sid") is not None:
            serial = call.claims["sid"]
        else:
            serial = None
        return {"time": simlib.log_time(), "method": call.method, "path": call.path, "query": call.query,
                "list": call.list, "subscription": call.subscription, "page": call.page, "auth": call.auth,
                "token_serial": serial, "status": None, "error_code": None, "bytes": 0, "fault": None,
                "request_id": str(uuid.uuid4()), "client_port": self.client_address[1]}

    def inspect(self, call):
        return {"method": call.method, "path": call.path, "page": call.page, "subscription": call.subscription,
                "list": call.list}

    def end_call(self, call):
        sim = self.server.sim
        text = sim.redact(json.dumps(call.entry, separators=(",", ":")), getattr(call, "presented", ()))
        sim.record(json.loads(text), text)

    def respond(self, call):
        fault = call.fault
        headers = [("x-ms-request-id", call.entry["request_id"]),
                   ("x-ms-correlation-request-id", call.entry["request_id"]),
                   ("Cache-Control", "no-cache"), ("Pragma", "no-cache"), ("Expires", "-1"),
                   ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
                   ("X-Content-Type-Options", "nosniff")]
        if call.list == "token":
            status, body, more = self._token(call)
            headers = [h for h in headers if h[0] != "Cache-Control"] + [("Cache-Control", "no-store, no-cache")]
        elif fault and fault["kind"] == "status":
            status, body, more = self._fault_status(call, fault)
        elif fault and fault["kind"] == "expire_token" and call.auth == "valid":
            call.auth = "expired"
            status, body, more = self._arm(call)
        else:
            status, body, more = self._arm(call)
        if isinstance(body, dict) and body.get("error") and status >= 400:
            e = body["error"]
            call.entry["error_code"] = e.get("code") if isinstance(e, dict) else e
        if not isinstance(body, (bytes, bytearray)):
            body = simlib.json_bytes(body)
        return status, body, [("Content-Type", CT_JSON)] + headers + more

    def malformed_body(self, call, body):
        return MALFORMED_BODY

    def _fault_status(self, call, fault):
        st = fault["status"]
        more = []
        if "retry_after" in fault:
            more.append(("Retry-After", str(int(math.ceil(fault["retry_after"])))))
        if "body" in fault:
            b = fault["body"]
            return st, b.encode("utf-8") if isinstance(b, str) else simlib.json_bytes(b), more
        code = fault.get("code") or {429: "SubscriptionRequestsThrottled", 500: "InternalServerError",
                                     503: "ServiceUnavailable", 502: "BadGateway", 504: "GatewayTimeout",
                                     403: "AuthorizationFailed", 404: "NotFound"}.get(st, "Error%d" % st)
        message = {429: "Number of 'read' requests for subscription '%s' exceeded. Please try again after '%s' "
                        "seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling"
                        % (call.subscription or "", fault.get("retry_after", 1))}.get(
            st, "The simulator answers %d (injected)." % st)
        return st, cloud_error(code, message), more

    # -- the token endpoint -------------------------------------------------------------------

    def _token(self, call):
        sim = self.server.sim
        entry = call.entry
        fault = call.fault
        if fault and fault["kind"] == "status":
            st = fault["status"]
            more = [("Retry-After", str(int(math.ceil(fault["retry_after"]))))] if "retry_after" in fault else []
            if "body" in fault:
                b = fault["body"]
                return st, b.encode("utf-8") if isinstance(b, str) else simlib.json_bytes(b), more
            return st, {"error": "temporarily_unavailable", "error_description": "AADSTS50000: injected",
                        "error_codes": [50000], "timestamp": _now_text(), "trace_id": str(uuid.uuid4()),
                        "correlation_id": str(uuid.uuid4())}, more
        if call.method != "POST":
            return self._aad(900561, method=call.method)
        form = urllib.parse.parse_qs(call.body.decode("utf-8", "replace"), keep_blank_values=True)
        value = {k: v[0] for k, v in form.items()}
        call.presented = [value.get("client_secret", "")]
        entry["grant_type"] = value.get("grant_type")
        entry["scope"] = value.get("scope")
        entry["client_id"] = value.get("client_id")
        entry["param_names"] = sorted(form)
        entry["secret"] = "missing" if not value.get("client_secret") else None
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return self._aad(900144, param="grant_type")
        with sim.lock:
            tenant = sim.tenants.get(call.tenant)
        if tenant is None:
            return self._aad(90002, tenant=call.tenant)
        for p in ("grant_type", "client_id", "scope"):
            if not value.get(p):
                return self._aad(900144, param=p)
        if value["grant_type"] != "client_credentials":
            return self._aad(70003, grant=value["grant_type"])
        app = tenant["apps"].get(value["client_id"].lower())
        if app is None:
            return self._aad(700016, client=value["client_id"], tenant=call.tenant, tenant_name=tenant["display_name"])
        scope = value["scope"]
        resources = MANAGEMENT_RESOURCES + (self._origin(),)
        resource = scope[:-len("/.default")].rstrip("/") if scope.endswith("/.default") else None
        if resource not in resources:
            return self._aad(70011, scope=scope)
        presented = value.get("client_secret")
        if not presented:
            return self._aad(7000216)
        match = None
        for s in app["secrets"]:
            if hmac.compare_digest(s["value"].encode(), presented.encode()):
                match = s
        if match is None:
            entry["secret"] = "wrong"
            return self._aad(7000215, client=app["client_id"])
        if match["expired"]:
            entry["secret"] = "expired"
            return self._aad(7000222, client=app["client_id"])
        entry["secret"] = "matches"
        token, lifetime = sim.issue_token(call.tenant, app, resource)
        with sim.lock:
            entry["token_serial"] = sim.serial
        call.presented = [presented, token]
        # WIRE: "Successful response" of the client credentials flow, with ext_expires_in as the
        # service sends it; no-store, as for every token response.
        return 200, {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                     "access_token": token}, []

    def _aad(self, code, **fields):
        status, body = aad_error(code, **fields)
        return status, body, []

    # -- ARM ---------------------------------------------------------------------------------

    def _arm(self, call):
        sim = self.server.sim
        if call.method not in ("GET", "HEAD"):
            return 405, cloud_error("MethodNotAllowed", "The requested resource does not support http method '%s'."
                                    % call.method), []
        # WIRE: authentication first (401 with WWW-Authenticate), then the api-version, then
        # throttling (per principal and scope), then the role assignment (403), then the route.
        www = [("WWW-Authenticate", 'Bearer authorization_uri="https://login.windows.net/%s", error="invalid_token", '
                'error_description="The authentication failed because of missing \'Authorization\' header."'
                % DEFAULT_TENANT)]
        if call.auth == "none":
            return 401, cloud_error("AuthenticationFailed", "Authentication failed. The 'Authorization' header is "
                                    "missing."), www
        if call.auth == "invalid":
            return 401, cloud_error("InvalidAuthenticationToken", "The access token is invalid."), www
        if call.auth == "expired":
            return 401, cloud_error("ExpiredAuthenticationToken", "The access token expiry UTC time '%s' is earlier "
                                    "than current UTC time '%s'." % (
                                        datetime.datetime.fromtimestamp(call.claims.get("exp", 0),
                                                                        datetime.timezone.utc).strftime("%m/%d/%Y %H:%M:%S"),
                                        datetime.datetime.now(datetime.timezone.utc).strftime("%m/%d/%Y %H:%M:%S"))), \
                www
        claims = call.claims
        principal = claims["appid"]
        version = call.params.get("api-version", [None])[0]
        if call.list == "subscriptions":
            if version is None:
                return self._missing_version()
            if version not in API_VERSIONS["resources"]:
                return self._bad_version(version, "subscriptions", API_VERSIONS["resources"])
            ok, left, retry = sim.take_read(("tenant", principal, claims["tid"]))
            rl = [("x-ms-ratelimit-remaining-tenant-reads", str(left))]
            if not ok:
                return self._throttled(None, retry)
            return 200, self._subscriptions_page(call, claims), rl
        if call.subscription is None:
            return 404, cloud_error("InvalidResourceType", "The resource type could not be found in the namespace of "
                                    "the request."), []
        if version is None:
            return self._missing_version()
        rp = call.route_kind
        if version not in API_VERSIONS[rp]:
            return self._bad_version(version, {"compute": "virtualMachines", "network": call.list}[rp],
                                     API_VERSIONS[rp])
        with sim.lock:
            sub = sim.subscriptions.get(call.subscription)
        if sub is None or not _is_guid(call.subscription):
            return 404, cloud_error("SubscriptionNotFound", "The subscription '%s' could not be found."
                                    % call.subscription), []
        if sub["tenant_id"] != claims["tid"]:
            return 401, cloud_error("InvalidAuthenticationTokenTenant", "The access token is from the wrong issuer "
                                    "'https://sts.windows.net/%s/'. It must match the tenant "
                                    "'https://sts.windows.net/%s/' associated with this subscription."
                                    % (claims["tid"], sub["tenant_id"])), www
        ok, left, retry = sim.take_read(("subscription", principal, call.subscription))
        rl = [("x-ms-ratelimit-remaining-subscription-reads", str(left))]
        call.entry["remaining_reads"] = left
        if not ok:
            return self._throttled(call.subscription, retry)
        if sub["roles"].get(principal) != "Reader":
            # WIRE: the message ARM gives (it names the principal and the scope, never a token)
            return 403, cloud_error("AuthorizationFailed", "The client '%s' with object id '%s' does not have "
                                    "authorization to perform action '%s' over scope '/subscriptions/%s' or the "
                                    "scope is invalid. If access was recently granted, please refresh your "
                                    "credentials." % (principal, claims.get("oid"), ACTIONS[call.list],
                                                      call.subscription)), rl
        return 200, self._resources_page(call, sub), rl

    def _missing_version(self):
        return 400, cloud_error("MissingApiVersionParameter", "The api-version query parameter (?api-version=) is "
                                "required for all requests."), []

    def _bad_version(self, version, rtype, supported):
        return 400, cloud_error("NoRegisteredProviderFound", "No registered resource provider found for location "
                                "'global' and API version '%s' for type '%s'. The supported api-versions are '%s'."
                                % (version, rtype, ", ".join(sorted(supported)))), []

    def _throttled(self, subscription, retry):
        return 429, cloud_error("SubscriptionRequestsThrottled" if subscription else "TenantRequestsThrottled",
                                "Number of 'read' requests for %s exceeded. Please try again after '%d' seconds "
                                "after additional tokens are available. Refer to https://aka.ms/arm-throttling"
                                % ("subscription '%s'" % subscription if subscription else "the tenant", retry)), \
            [("Retry-After", str(retry))]

    # -- pages -------------------------------------------------------------------------------

    def _skiptoken(self, offset):
        raw = json.dumps({"o": offset}, separators=(",", ":")).encode()
        mac = hmac.new(self.server.sim.key, raw, hashlib.sha256).digest()[:12]
        return _b64url(raw) + "." + _b64url(mac)

    def _offset_of(self, token):
        try:
            raw_text, mac_text = token.split(".")
            raw = _unb64url(raw_text)
            if not hmac.compare_digest(_unb64url(mac_text), hmac.new(self.server.sim.key, raw,
                                                                     hashlib.sha256).digest()[:12]):
                return None
            offset = json.loads(raw)["o"]
            return offset if isinstance(offset, int) and offset >= 0 else None
        except (ValueError, KeyError, TypeError):
            return None

    def _page_size(self, lst):
        cfg = self.server.sim.config
        if lst in ("vms", "vm_status"):
            return int(cfg.get("page_size_vms") or PAGE_SIZE_VMS)
        if lst == "subscriptions":
            return int(cfg.get("page_size_subscriptions") or PAGE_SIZE_SUBSCRIPTIONS)
        return int(cfg.get("page_size_network") or PAGE_SIZE_NETWORK)

    def _next_link(self, call, offset):
        """WIRE: ARM's nextLink is the absolute URL of the same list with $skiptoken (and the
        request's other parameters) on the management origin."""
        rest = [(k, v[0]) for k, v in call.params.items() if k != "$skiptoken"]
        return "%s%s?%s&$skiptoken=%s" % (self._origin(), call.path, urllib.parse.urlencode(rest),
                                         self._skiptoken(offset))

    def _window(self, call, total):
        size = self._page_size(call.list)
        skip = call.params.get("$skiptoken", [None])[0]
        offset = 0
        if skip is not None:
            offset = self._offset_of(skip)
            if offset is None:
                return None, None, size
        call.entry["page"] = call.page = offset // size + 1
        return offset, min(total, offset + size), size

    def _apply_page_faults(self, call, items, next_link):
        fault = call.fault
        if fault and fault["kind"] == "foreign_next":
            next_link = fault["next_url"]
        if fault and fault["kind"] == "bad_vm" and items and call.list in ("vms", "vm_status"):
            i = min(fault["index"], len(items) - 1)
            vm = json.loads(items[i])
            if "value" in fault:
                vm[fault["field"]] = fault["value"]
            else:
                vm.pop(fault["field"], None)
            items = items[:i] + [simlib.json_bytes(vm)] + items[i + 1:]
        return items, next_link

    @staticmethod
    def _page_bytes(items, next_link):
        out = b'{"value":[' + b",".join(items) + b"]"
        if next_link is not None:
            out += b',"nextLink":' + simlib.json_bytes(next_link)
        return out + b"}"

    def _subscriptions_page(self, call, claims):
        sim = self.server.sim
        with sim.lock:
            visible = [s for s in sim.subscriptions.values()
                       if s["tenant_id"] == claims["tid"] and s["roles"].get(claims["appid"]) in
                       ("Reader", "ResourceGroupReader")]
        offset, end, size = self._window(call, len(visible))
        if offset is None:
            return cloud_error("InvalidSkipToken", "The skip token is invalid.")
        items = [simlib.json_bytes({
            "id": "/subscriptions/" + s["id"], "authorizationSource": "RoleBased", "managedByTenants": [],
            "subscriptionId": s["id"], "tenantId": s["tenant_id"], "displayName": s["display_name"],
            "state": s["state"], "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01",
                                                          "quotaId": "PayAsYouGo_2014-09-01",
                                                          "spendingLimit": "Off"}})
            for s in visible[offset:end]]
        # WIRE: subscriptions.json marks nextLink required, but the service sends none on the
        # last page (and the spec's own example has "..."): it is left out there.
        next_link = self._next_link(call, end) if end < len(visible) else None
        items, next_link = self._apply_page_faults(call, items, next_link)
        return self._page_bytes(items, next_link)

    def _resources_page(self, call, sub):
        sim = self.server.sim
        res = sub["resources"]
        lst = call.list
        with sim.lock:
            entries = res.listing(lst)
            offset, end, size = self._window(call, len(entries))
            if offset is None:
                return cloud_error("InvalidSkipToken", "The skip token is invalid.")
            items = []
            for r, second in entries[offset:end]:
                key = (lst, r["name"].lower() + ("#2" if second else ""))
                body = res.cache.get(key)
                if body is None:
                    if lst == "vms":
                        obj = render_vm(sub["id"], r)
                    elif lst == "vm_status":
                        obj = render_status(sub["id"], r)
                    elif lst == "nics":
                        obj = render_nic(sub["id"], r, r["n"], second)
                    else:
                        obj = render_pip(sub["id"], r)
                    body = res.cache[key] = simlib.json_bytes(obj)
                items.append(body)
        next_link = self._next_link(call, end) if end < len(entries) else None
        items, next_link = self._apply_page_faults(call, items, next_link)
        return self._page_bytes(items, next_link)

    # -- the control API ---------------------------------------------------------------------

    def control_route(self, sim, m, seg, data):
        if seg == ["tenants"]:
            if m == "GET":
                with sim.lock:
                    return 200, {"tenants": [{"tenant_id": k, "display_name": t["display_name"],
                                              "apps": [{"client_id": a["client_id"], "object_id": a["object_id"],
                                                        "secrets": len(a["secrets"])} for a in t["apps"].values()]}
                                             for k, t in sim.tenants.items()]}
            if m == "POST":
                sim.set_tenant(data)
                return 200, {"ok": True}
        if seg == ["apps"] and m == "POST":
            sim.set_app(data)
            return 200, {"ok": True}
        if seg == ["issued-tokens"] and m == "GET":
            # for the tests' checks that no token or secret leaked; never part of the log
            with sim.lock:
                return 200, {"tokens": list(sim.issued), "secrets": sim.known_secrets()}
        if seg == ["tokens", "expire"] and m == "POST":
            sim.expire_all()
            return 200, {"ok": True}
        if seg and seg[0] == "subscriptions":
            return self._control_subscriptions(sim, m, seg[1:], data)
        return None

    def _control_subscriptions(self, sim, m, rest, data):
        if not rest:
            if m == "GET":
                with sim.lock:
                    return 200, {"subscriptions": [{"subscription_id": s["id"], "display_name": s["display_name"],
                                                    "state": s["state"], "tenant_id": s["tenant_id"],
                                                    "roles": s["roles"], "vms": len(s["resources"].vms)}
                                                   for s in sim.subscriptions.values()]}
            if m == "POST":
                for s in data if isinstance(data, list) else [data]:
                    sim.set_subscription(s)
                return 200, {"ok": True}
            return None
        sid = rest[0].lower()
        with sim.lock:
            sub = sim.subscriptions.get(sid)
        if sub is None:
            raise ValueError("no such subscription: %s" % rest[0])
        if len(rest) == 1:
            if m == "PATCH":
                if not isinstance(data, dict):
                    raise ValueError("send a JSON object")
                with sim.lock:
                    if "state" in data:
                        if data["state"] not in ("Enabled", "Warned", "PastDue", "Disabled", "Deleted"):
                            raise ValueError("invalid state")
                        sub["state"] = data["state"]
                    if "display_name" in data:
                        sub["display_name"] = str(data["display_name"])
                    if "roles" in data:
                        sim._check_roles(data["roles"])
                        for k, v in data["roles"].items():
                            if v is None:
                                sub["roles"].pop(k.lower(), None)
                            else:
                                sub["roles"][k.lower()] = v
                return 200, {"ok": True}
            if m == "DELETE":
                with sim.lock:
                    sim.subscriptions.pop(sid, None)
                return 200, {"ok": True}
            return None
        if rest[1] == "generate" and m == "POST":
            return 200, {"ok": True, "count": sim.generate(sid, data or {})}
        if rest[1] == "vms":
            res = sub["resources"]
            if len(rest) == 2 and m == "GET":
                with sim.lock:
                    return 200, {"vms": [self._vm_view(sid, r) for r in res.vms.values()]}
            if len(rest) == 3:
                name = rest[2].lower()
                with sim.lock:
                    rec = res.vms.get(name)
                    if rec is None:
                        raise ValueError("no such virtual machine: %s" % rest[2])
                    if m == "GET":
                        return 200, self._vm_view(sid, rec)
                    if m == "DELETE":
                        del res.vms[name]
                        res.cache.pop(("nics", name + "#2"), None)
                        res.invalidate(name)
                        return 200, {"ok": True}
                    if m == "PATCH":
                        if not isinstance(data, dict):
                            raise ValueError("send a JSON object")
                        for k, v in data.items():
                            if k not in ("power_state", "tags", "size", "provisioning_state", "public_ip",
                                         "public_dynamic", "private_ip", "location"):
                                raise ValueError("a virtual machine's changeable fields are power_state, tags, "
                                                 "size, provisioning_state, public_ip, public_dynamic, private_ip "
                                                 "and location")
                            rec[k] = v
                        res.invalidate(name)
                        res.cache.pop(("nics", name + "#2"), None)
                        return 200, self._vm_view(sid, rec)
        return None

    @staticmethod
    def _vm_view(sid, rec):
        ids = _ids(sid, rec)
        address = rec["public_ip"]
        if address is not None and rec["public_dynamic"] and rec["power_state"] in ("deallocated", "stopped"):
            address = None
        return {"name": rec["name"], "id": ids["vm"], "external_id": ids["vm"].lower(),
                "resource_group": rec["resource_group"], "location": rec["location"],
                "power_state": rec["power_state"], "private_ip": rec["private_ip"],
                "private_ips": [rec["private_ip"]] + ([rec["second_ip"]] if rec["second_nic"] else []),
                "public_ip": address, "public_dynamic": rec["public_dynamic"], "os": rec["os"],
                "size": rec["size"], "tags": rec["tags"], "zone": rec["zone"], "vm_id": rec["vm_id"]}


def _add_arguments(ap):
    ap.add_argument("--origin", help="fixed origin for nextLink (default: the request's Host)")
    ap.add_argument("--page-size-vms", type=int, default=PAGE_SIZE_VMS)
    ap.add_argument("--page-size-network", type=int, default=PAGE_SIZE_NETWORK)
    ap.add_argument("--token-lifetime", type=int, default=TOKEN_LIFETIME_S, help="seconds an access token lasts")
    ap.add_argument("--read-bucket-size", type=int, default=READ_BUCKET_SIZE)
    ap.add_argument("--read-refill-per-s", type=float, default=READ_REFILL_PER_S)


def _configure(args, state):
    return {"origin": args.origin, "page_size_vms": args.page_size_vms, "page_size_network": args.page_size_network,
            "page_size_subscriptions": PAGE_SIZE_SUBSCRIPTIONS, "token_lifetime_s": args.token_lifetime,
            "read_bucket_size": args.read_bucket_size, "read_refill_per_s": args.read_refill_per_s}


def main(argv=None):
    return simlib.serve(argv, Handler, Sim, add_arguments=_add_arguments, configure=_configure)


if __name__ == "__main__":
    sys.exit(main())
