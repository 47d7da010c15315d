"""The EC2 call layer of the ``aws`` provider: one region's boto3 clients, calls whose errors become ccdsl errors,
paging, and the retries EC2's eventual consistency needs.

:class:`Ec2` is also what every part of the provider shares about one cluster in one region: the configuration,
the region, the ``resources`` the cluster's record keeps, and the journal hook that puts them on record.  The
provider's other parts (:mod:`.aws_instances`, :mod:`.aws_checks`, :mod:`.aws_network`, :mod:`.aws_launch`,
:mod:`.aws_teardown`, ...) each hold the same one.  boto3 is imported where a call is made, never at import.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ccdsl.errors import CapacityError, ConfigError, MissingDependencyError, ProviderError
from ccdsl.executor.config import AwsConfig
from ccdsl.executor.providers.base import TAG_CLUSTER, TAG_CONTRACT, TAG_ROLE

T = TypeVar("T")
Hooks = Sequence[tuple[str, Callable[..., Any]]]
log = logging.getLogger("ccdsl.executor")


# Error codes meaning "this type cannot be had here right now": fail over to another zone or type.
# DescribeInstanceTypes answers InvalidInstanceType (not an empty list) for a type the region does not offer.
# Spot adds its own: SpotMaxPriceTooLow (the zone's spot price is above the maximum price) and
# UnfulfillableCapacity ("not enough spare capacity to fulfill your request for Spot Instances"); a spot request
# that is not fulfilled reports capacity-not-available, capacity-oversubscribed or price-too-low as its status.
CAPACITY_CODES = frozenset({"InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity",
                            "Unsupported", "InsufficientCapacityOnHost", "SpotMaxPriceTooLow",
                            "UnfulfillableCapacity", "capacity-not-available", "capacity-oversubscribed",
                            "price-too-low", "InsufficientFreeAddressesInSubnet", "InvalidInstanceType"})
# Account limits: no zone of the region helps, a smaller alternative or another region may.  The deployer
# skips the region's other zones and fails over to the next alternative, saying why.
QUOTA_CODES = {
    "VcpuLimitExceeded": "the account's vCPU quota for this instance family in the region is used up; ask for more "
                         "in Service Quotas (EC2 'Running On-Demand ... instances' or 'All ... Spot Instance "
                         "Requests'), or choose fewer or smaller nodes",
    "InstanceLimitExceeded": "the account's instance limit in the region is reached; ask for more in Service Quotas",
    "MaxSpotInstanceCountExceeded": "the account's spot instance quota in the region is used up; ask for more in "
                                    "Service Quotas, or deploy without spot",
    "OptInRequired": "the account is not subscribed to this region or service; opt in (AWS console, Account "
                     "settings), or choose another region (cluster_locale)",
}
# Codes that name the account or its policies rather than a type (API "Error codes for the Amazon EC2 API").  A
# new account's region is verified for a while (PendingVerification) and another region may work; a blocked
# account works nowhere; an explicit deny in a service control policy (an Organizations guard-rail, commonly "only
# these regions") may allow another region, a missing IAM permission does not.
ACCOUNT_HINTS = {
    "PendingVerification": "AWS is still verifying the account for this region (new accounts, usually minutes, up "
                           "to 4 hours); try again later or choose another region (cluster_locale)",
    "Blocked": "the account is blocked; contact AWS Support (billing or verification) before ccdsl can launch",
    "UnauthorizedOperation": "the credentials lack an IAM permission ccdsl needs (README, 'IAM permissions "
                             "needed'); decode the message with 'aws sts decode-authorization-message'",
    "AuthFailure": "check the credentials (aws sts get-caller-identity) and, for a region that must be enabled "
                   "first, its opt-in (AWS console, Account settings)",
}
_SCP_HINT = ("a service control policy of the account's organization denies this in the region; choose a region it "
             "allows (cluster_locale), or ask the organization's administrator")
OPT_IN_HINT = QUOTA_CODES["OptInRequired"]
# Capacity and quota answers are final for this call: botocore would retry them (InsufficientInstanceCapacity is an
# HTTP 500) up to max_attempts with backoff -- half a minute per zone before failover.  Throttling still retries.
_NO_RETRY_OPERATIONS = ("RunInstances", "StartInstances")
# EC2 refuses more than 200 values in one filter (FilterLimitExceeded); id lists are sent in chunks of this size too.
CHUNK = 200
# Right after a resource is created, EC2 may not know it yet for a while (eventual consistency): these codes then
# mean "not visible yet", and the call is retried with backoff.
NOT_VISIBLE_CODES = frozenset({"InvalidInstanceID.NotFound", "InvalidGroup.NotFound", "InvalidKeyPair.NotFound"})
SERVICE_NAMES = {"ec2": "EC2", "ssm": "SSM (Systems Manager)", "pricing": "AWS Price List", "efs": "EFS"}

_MUTATING = ("create_", "run_", "authorize_", "start_", "stop_", "import_", "allocate_", "request_")


class Ec2:
    """One region (and endpoint) of EC2 for one cluster: its clients and calls, and what the cluster's record
    keeps (``resources``).  ``hooks`` gives the ``(event, handler)`` pairs to register on every client it makes,
    read at each client's making (the provider's ``EVENT_HOOKS``, which tests replace); ``own_hooks`` are the
    provider's own, registered on EC2 clients before those (the launch journal's ``before-send``)."""

    def __init__(self, config: AwsConfig, region: str | None, resources: dict[str, Any],
                 hooks: Callable[[], Hooks]) -> None:
        self.config = config
        self.region = region
        self.resources = resources
        self.hooks = hooks
        self.own_hooks: list[tuple[str, Callable[..., Any]]] = []
        # Clients by (service, region asked for; None: this object's region), and the one boto3 session they come
        # from: a new session parses botocore's endpoint and service files again (~0.15 s), and terminate used to
        # make a new EFS client for each of its four DescribeFileSystems calls (issue 24 item 7: +0.5-1 s).
        self.client_cache: dict[tuple[str, str | None], Any] = {}
        self.session: Any = None
        self.client_lock = threading.Lock()  # a boto3 session is not thread-safe; its clients are
        # Called (by the deployer) whenever ``resources`` changed in a way that must be on record before the next
        # call goes out: the launch journal (:mod:`.aws_journal`).
        self.on_record: Callable[[], None] | None = None
        # Whether a call that can create something was sent (its answer may have been lost): until then a failed
        # deploy left nothing in the cloud, and its record can go.
        self.reached_cloud = False
        self.fresh: set[str] = set()  # ids launched by this process: "not listed" means "not visible yet"
        self.not_opted_in: set[str | None] = set()  # regions that answered AuthFailure and are not enabled

    def journal(self) -> None:
        """Put ``resources`` on record now (the deployer's ``on_record``), before the next call goes out."""
        if self.on_record is not None:
            self.on_record()

    def set_region(self, region: str | None) -> None:
        """Work in ``region`` from now on (None or the same: no change); a new region gets a new client."""
        if region and region != self.region:
            self.region = region
            self.client_cache = {key: c for key, c in self.client_cache.items() if key[1] is not None}

    def tags(self, handle: str, role: str | None, contract: str | None) -> list[dict[str, str]]:
        """ccdsl's tags for a resource of the cluster, then ``[aws] tags`` (never overriding ccdsl's own)."""
        own = tags_for(handle, role, contract)
        taken = {t["Key"] for t in own}
        return own + [{"Key": str(k), "Value": str(v)} for k, v in self.config.tags.items() if k not in taken]

    # -- boto3 plumbing --------------------------------------------------------------------------------------
    def client(self, service: str = "ec2", region: str | None = None) -> Any:
        """The boto3 client of ``service`` in this provider's region (``region``: another one), made once."""
        with self.client_lock:
            made = self.client_cache.get((service, region))
            if made is None:
                made = self.client_cache[(service, region)] = self._make_client(service, region)
            return made

    def _make_client(self, service: str, region: str | None) -> Any:
        try:
            import boto3
            import botocore.config
        except ModuleNotFoundError:
            raise MissingDependencyError("boto3", "aws") from None
        if self.session is None:
            self.session = boto3.session.Session(profile_name=self.config.profile or None)
        name = region or self.region or self.session.region_name
        if name is None:
            raise ConfigError("no AWS region: set [aws] region in ccdsl.toml, or AWS_DEFAULT_REGION")
        if region is None:
            self.region = name
        from ccdsl.version import __version__

        # ccdsl/<version> in the User-Agent: CloudTrail shows which calls were ccdsl's (and the tests check every
        # one against the IAM policy ccdsl documents, aws_policy.json beside this module)
        cfg = botocore.config.Config(retries={"mode": "adaptive", "max_attempts": self.config.max_attempts},
                                     user_agent_extra=f"ccdsl/{__version__}",
                                     connect_timeout=10, read_timeout=60)
        # SSM's public parameters live at AWS's own endpoint: an EC2 endpoint override (a test cloud, a VPC
        # endpoint) does not move them -- [aws] ssm_endpoint_url does.
        endpoint = self.config.ssm_endpoint_url if service == "ssm" else self.config.endpoint_url
        client = self.session.client(service, region_name=name, endpoint_url=endpoint or None, config=cfg)
        if service == "ec2":
            for operation in _NO_RETRY_OPERATIONS:  # more specific than botocore's own handler: asked first
                client.meta.events.register(f"needs-retry.ec2.{operation}", _no_retry_when_final)
            for event, handler in self.own_hooks:  # before any test hook
                client.meta.events.register(event, handler)
        for event, handler in self.hooks():
            client.meta.events.register(event, handler)
        return client

    def call(self, operation: str, service: str = "ec2", **params: Any) -> dict[str, Any]:
        """One API call; botocore errors become ccdsl errors (capacity errors as CapacityError)."""
        import botocore.exceptions

        try:
            client = self.client(service)
            if operation.startswith(_MUTATING):
                self.reached_cloud = True
            answer: dict[str, Any] = getattr(client, operation)(**params)  # boto3 is untyped: JSON-shaped Any
            return answer
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            message = exc.response.get("Error", {}).get("Message", str(exc))
            raise self.error(service, operation, code, message) from None
        except botocore.exceptions.NoCredentialsError:
            raise ProviderError("no AWS credentials found",
                                hint="configure them as for the aws CLI (aws configure, AWS_PROFILE, or env vars)"
                                ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise ProviderError(f"{SERVICE_NAMES.get(service, service)} {operation} failed: {exc}") from None

    def error(self, service: str, operation: str, code: str, message: str) -> ProviderError:
        """The ccdsl error for an API error; ``scope`` says what a failover skips: "zone" (try the next zone) or
        "region" (the next plan).  An AuthFailure in a region the account has not opted in to (13 regions need
        that) is such a region-scope CapacityError, found through DescribeRegions from the configured region;
        everywhere else it means bad credentials."""
        what = f"{SERVICE_NAMES.get(service, service)} {operation} failed: {code}: {message}"
        scope = "zone"
        if code in CAPACITY_CODES:
            err: type[ProviderError] = CapacityError
            hint = None
        elif code in QUOTA_CODES or code == "PendingVerification":
            err, hint, scope = CapacityError, QUOTA_CODES.get(code) or ACCOUNT_HINTS[code], "region"
        elif code == "UnauthorizedOperation" and "service control polic" in message.lower():
            err, hint, scope = CapacityError, _SCP_HINT, "region"
        elif code == "AuthFailure" and service == "ec2" and self.opt_in_status() == "not-opted-in":
            err, hint, scope = CapacityError, OPT_IN_HINT, "region"
            what = f"region {self.region} is not enabled for this account ({what})"
            self.not_opted_in.add(self.region)
        else:
            err, hint = ProviderError, ACCOUNT_HINTS.get(code)
        e = err(what, hint=hint)
        e.code = code  # type: ignore[attr-defined]
        e.scope = scope  # type: ignore[attr-defined]
        return e

    def opt_in_status(self) -> str:
        """This region's ``OptInStatus`` as DescribeRegions answers it in the configured region (``[aws] region``,
        else boto3's default) -- '' when unknown: no other region to ask, or that call fails too (then the
        credentials are what is wrong)."""
        import boto3
        import botocore.exceptions

        home = self.config.region or boto3.session.Session(profile_name=self.config.profile or None).region_name
        if not home or home == self.region:
            return ""
        try:
            regions = self.client("ec2", region=home).describe_regions(AllRegions=True, RegionNames=[self.region])
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            return ""
        return next((str(r.get("OptInStatus", "")) for r in regions.get("Regions", [])), "")

    def paginate(self, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
        """Every page of a listing call, ``key``'s items joined."""
        out: list[dict[str, Any]] = []
        token = None
        while True:
            answer = self.call(operation, **params, **({"NextToken": token} if token else {}))
            out.extend(answer.get(key, []))
            token = answer.get("NextToken")
            if not token:
                return out

    def tagged(self, operation: str, key: str, handle: str) -> list[dict[str, Any]]:
        """Resources tagged with ``handle``, every page.  A placement group that is ``deleted`` (EC2 lists it for
        a while) is not one any more, nor is one being deleted (as volumes)."""
        filters = [{"Name": f"tag:{TAG_CLUSTER}", "Values": [handle]}]
        if operation == "describe_placement_groups":
            filters.append({"Name": "state", "Values": ["pending", "available"]})
        return self.paginate(operation, key, Filters=filters)

    # -- retries on EC2's eventual consistency -----------------------------------------------------------------
    def retry_in_use(self, action: Callable[[], Any], busy: set[str], done: set[str], deadline: float) -> None:
        """Run a delete: error codes in ``busy`` ("still in use" -- a security group or placement group stays a
        dependency for minutes after its instances terminate) are retried with backoff until ``deadline``; codes in
        ``done`` mean it is gone already."""
        delay = self.config.poll_interval
        while True:
            try:
                action()
                return
            except ProviderError as exc:
                code = getattr(exc, "code", "")
                if code in done:
                    return
                if code not in busy or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 15.0)

    def retry_not_visible(self, action: Callable[[], T]) -> T:
        """``action`` retried with backoff while EC2 says a resource just created does not exist (eventual
        consistency: a fresh security group, key pair or instance)."""
        deadline = time.monotonic() + min(self.config.wait_timeout, 120.0)
        delay = self.config.poll_interval
        while True:
            try:
                return action()
            except ProviderError as exc:
                if getattr(exc, "code", "") not in NOT_VISIBLE_CODES or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def tags_for(handle: str, role: str | None, contract: str | None) -> list[dict[str, str]]:
    tags = [{"Key": TAG_CLUSTER, "Value": handle}, {"Key": "Name", "Value": f"ccdsl-{handle}" + (f"-{role}" if role
                                                                                               else "")}]
    if role:
        tags.append({"Key": TAG_ROLE, "Value": role})
    if contract:
        tags.append({"Key": TAG_CONTRACT, "Value": contract})
    return tags


def region_refusal(message: str, *, hint: str, code: str) -> CapacityError:
    """A CapacityError that no other zone of the region can help with: the deployer goes on to the next plan."""
    e = CapacityError(message, hint=hint)
    e.code = code  # type: ignore[attr-defined]
    e.scope = "region"  # type: ignore[attr-defined]
    return e


def _no_retry_when_final(response: Any = None, **_: Any) -> bool | None:
    """botocore ``needs-retry`` handler: False (do not retry) for a capacity or quota answer; None leaves the
    decision to botocore's own retry handler (throttling, connection errors)."""
    if not response:
        return None
    code = (response[1] or {}).get("Error", {}).get("Code", "")
    return False if code in CAPACITY_CODES or code in QUOTA_CODES else None


def chunks(items: Sequence[str], size: int = CHUNK) -> list[list[str]]:
    """``items`` in lists of at most ``size`` (EC2's limit on filter values; id lists are sent the same way)."""
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def tag(resource: Mapping[str, Any], key: str) -> str:
    """The value of the tag ``key`` on an EC2 resource ('' when it has none)."""
    for t in resource.get("Tags", []) or []:
        if t["Key"] == key:
            value: str = t["Value"]
            return value
    return ""
