"""EC2 as it really behaves, emulated around moto's server with botocore event hooks.

Moto answers at once and exactly: a fresh instance is visible to the next call, ``TerminateInstances`` removes an
instance and its volumes in the same breath, ``ClientToken`` is ignored, spot instances have no spot requests and
placement groups do not exist.  AWS documents otherwise, and ccdsl must cope with what AWS does.  This layer sits on
the aws provider's own boto3 clients (``ccdsl.executor.providers.aws.EVENT_HOOKS``, the ``hooks`` fixture) and
changes what they see, one switchable behaviour at a time:

``not_found_first``  a fresh instance id (and a fresh security group or key pair) is unknown to the first call
                     that names it (``InvalidInstanceID.NotFound`` ...) and missing from the first ``listings``
                     DescribeInstances listings (tags are eventually consistent too).
``idempotency``      RunInstances honours ``ClientToken``: the same token with the same parameters answers the
                     first launch again; with other parameters it is ``IdempotentParameterMismatch``.
``shutting_down``    a terminated instance stays ``shutting-down`` for ``polls`` DescribeInstances calls, its root
                     volumes stay ``in-use`` and its security group in use (``DependencyViolation``) until then.
``spot_requests``    a spot launch creates spot requests; terminating an instance of an uncancelled persistent
                     request reopens it and a new instance is launched.
``invalid_type``     DescribeInstanceTypes raises ``InvalidInstanceType`` for the types in ``bad_types``.
``vanish``           :meth:`AwsLike.vanish` makes an id disappear: gone from listings, ``NotFound`` when named.
``placement_group_in_use``  DeletePlacementGroup answers ``InvalidPlacementGroup.InUse`` ``in_use`` times.
# --- issue 21 API behaviours (e21b) ---
``no_capacity``      RunInstances in ``full_zones`` (every zone when empty) of ``full_types`` (every type when empty)
                     is answered ``InsufficientInstanceCapacity`` with HTTP 500 at ``before-send`` (a server error,
                     which botocore retries unless told not to); ``capacity_sends`` counts the sends per zone.
``filter_limit``     more than 200 values in one filter is ``FilterLimitExceeded``; more than 1000 ids in one
                     Start/Stop/TerminateInstances is ``InvalidParameterValue``.
``not_opted_in``     every EC2 call in a region of ``disabled_regions`` is ``AuthFailure``; DescribeRegions lists
                     those regions as ``not-opted-in``.
``placement_strategies``  DescribeInstanceTypes drops ``cluster`` from the SupportedStrategies of ``no_cluster_types``.
``pages``            paginated Describe* calls answer one item per page (with a NextToken).
``deleted_groups``   a deleted placement group is still listed, in state ``deleted`` (filter ``state`` applies).

Issue 21 lifecycle behaviours (a clock of the layer's own, ``days_on``):

``spot_expiry``      a spot request lives until its ``ValidUntil`` (EC2's default: 7 days after the launch); then it
                     is cancelled and its stopped instance terminated.
``efs_states``       (issue 23) an EFS file system and a mount target are ``creating`` for ``polls`` describes
                     after their create, and a deleted one is still listed ``deleting`` for ``polls`` describes;
                     CreateMountTarget on a ``creating`` file system is ``IncorrectFileSystemLifeCycleState`` and
                     DeleteFileSystem while a mount target is ``deleting`` is ``FileSystemInUse``, as EFS answers.
``spot_interruption``  :meth:`AwsLike.interrupt_spot` stops spot instances as EC2 does when it needs the capacity
                     (request ``disabled``, status ``instance-stopped-no-capacity``); StartInstances refuses them
                     (``IncorrectSpotRequestState``): only EC2 starts them again (:meth:`AwsLike.capacity_back`).

Placement groups themselves (which moto lacks) are always emulated, and so is one refusal moto does not make:
RunInstances with top-level ``SecurityGroupIds`` or ``SubnetId`` beside ``NetworkInterfaces`` is
``InvalidParameterCombination`` (aws/aws-sdk-ruby#662).  ``fired`` counts what each behaviour did, so a
test can show the behaviour it claims to exercise really happened.  Side effects (a reopened spot request's new
instance) go to moto through the test's own plain client, which has no hooks.
"""

from __future__ import annotations

import copy
import datetime
import itertools
import json
import threading
import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

BEHAVIOURS = ("not_found_first", "idempotency", "shutting_down", "spot_requests", "invalid_type", "vanish",
              "placement_group_in_use")
# --- issue 21 API behaviours (e21b) ---
BEHAVIOURS += ("no_capacity", "filter_limit", "not_opted_in", "placement_strategies", "pages", "deleted_groups")
_PAGED = {"DescribeInstances": "Reservations", "DescribeSecurityGroups": "SecurityGroups", "DescribeVolumes": "Volumes",
          "DescribeSpotInstanceRequests": "SpotInstanceRequests", "DescribeSubnets": "Subnets",
          "DescribeInstanceTypeOfferings": "InstanceTypeOfferings"}  # pages: what each answer lists
# --- issue 21 lifecycle behaviours (e21a) ---
BEHAVIOURS += ("spot_expiry", "spot_interruption")
# --- issue 23 item 3: EFS (moto makes file systems and mount targets available, and deletes them, at once) ---
BEHAVIOURS += ("efs_states",)
_OK = SimpleNamespace(status_code=200, headers={})
_ids = itertools.count(1)


def error(code: str, message: str) -> tuple[Any, dict]:
    """A ``before-call`` answer: botocore raises it as the ClientError AWS would send."""
    return (SimpleNamespace(status_code=400, headers={}),
            {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}})


def ok(parsed: dict) -> tuple[Any, dict]:
    return _OK, {**parsed, "ResponseMetadata": {"HTTPStatusCode": 200}}


def _tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", []) or []}


def matches(resource: dict, filters: list[dict], fields: dict[str, list[str]]) -> bool:
    """EC2 filter semantics for the filters ccdsl uses: every filter matches one of its values."""
    tags = _tags(resource)
    for f in filters or []:
        name, values = f["Name"], f["Values"]
        if name.startswith("tag:"):
            have = [tags[name[4:]]] if name[4:] in tags else []
        elif name == "tag-key":
            have = list(tags)
        elif name in fields:
            have = fields[name]
        else:
            continue
        if not set(have) & set(values):
            return False
    return True


def _instance_fields(i: dict) -> dict[str, list[str]]:
    return {"instance-id": [i["InstanceId"]], "instance-state-name": [i["State"]["Name"]]}


def _volume_fields(v: dict) -> dict[str, list[str]]:
    return {"volume-id": [v["VolumeId"]], "status": [v["State"]],
            "attachment.instance-id": [a["InstanceId"] for a in v.get("Attachments", [])]}


class AwsLike:
    """The behaviour layer.  ``hooks()`` gives the (event, handler) pairs to register; ``enable`` switches."""

    def __init__(self, ec2: Any) -> None:
        self.ec2 = ec2  # the test's plain client: side effects go to moto without passing this layer
        self.on: set[str] = set()
        self.lock = threading.RLock()
        self.fired: Counter[str] = Counter()
        self.polls = 3
        self.in_use = 2
        self.bad_types: set[str] = set()
        self.fresh: set[str] = set()  # instance ids, group ids, key names not yet known when named
        self.hidden: dict[str, int] = {}  # instance id -> listings it is still missing from
        self.listings = 1
        self.tokens: dict[str, tuple[str, dict]] = {}
        self.shutting: dict[str, dict] = {}  # instance id -> {"polls", "instance", "volumes"}
        self.spot: dict[str, dict] = {}  # spot request id -> request
        self.vanished: set[str] = set()
        self.groups: dict[str, dict] = {}  # placement group name -> group (+ "_members", "_refusals")

    def enable(self, *names: str, polls: int | None = None, in_use: int | None = None, listings: int | None = None,
               bad_types: tuple[str, ...] = ()) -> AwsLike:
        unknown = set(names) - set(BEHAVIOURS)
        assert not unknown, unknown
        self.on.update(names)
        self.polls = polls if polls is not None else self.polls
        self.in_use = in_use if in_use is not None else self.in_use
        self.listings = listings if listings is not None else self.listings
        self.bad_types.update(bad_types)
        return self

    def hooks(self) -> list[tuple[str, Any]]:
        return [("before-parameter-build.ec2", self._remember), ("before-call.ec2", self._lifecycle_before),
                ("before-call.ec2", self._before), ("after-call.ec2", self._after),
                ("after-call.ec2", self._lifecycle_after), *self._e21b_hooks(), *self._efs_hooks()]

    # -- what tests ask ----------------------------------------------------------------------------------------
    def vanish(self, instance_id: str) -> None:
        """The instance is gone for good (terminated long ago, or never existed): unknown to every call."""
        self.ec2.terminate_instances(InstanceIds=[instance_id])
        with self.lock:
            self.vanished.add(instance_id)
            self.shutting.pop(instance_id, None)

    def open_spot_requests(self) -> list[dict]:
        return [r for r in self.spot.values() if r["State"] in ("open", "active", "disabled")]

    def placement_groups(self) -> list[str]:
        return sorted(self.groups)

    # -- dispatch ----------------------------------------------------------------------------------------------
    def _remember(self, params: dict, model: Any, context: dict, **_: Any) -> None:
        context["aws_like_params"] = copy.deepcopy(params)

    def _before(self, model: Any, context: dict, **_: Any) -> Any:
        handler = getattr(self, f"_before_{model.name}", None)
        if handler is None:
            return None
        with self.lock:
            return handler(context.get("aws_like_params", {}))

    def _after(self, http_response: Any, parsed: dict, model: Any, context: dict, **_: Any) -> None:
        handler = getattr(self, f"_after_{model.name}", None)
        if handler is None or http_response.status_code >= 300:
            return
        with self.lock:
            handler(context.get("aws_like_params", {}), parsed)

    def _fire(self, name: str) -> None:
        self.fired[name] += 1

    def _named(self, ids: list[str]) -> Any:
        """``NotFound`` for a vanished id, or for the first call naming a fresh one (AWS fails the whole call)."""
        gone = [i for i in ids if i in self.vanished]
        if gone:
            self._fire("vanish")
            return error("InvalidInstanceID.NotFound", f"The instance IDs '{', '.join(gone)}' do not exist")
        if "not_found_first" in self.on:
            fresh = [i for i in ids if i in self.fresh]
            if fresh:
                self.fresh.difference_update(fresh)
                self._fire("not_found_first")
                return error("InvalidInstanceID.NotFound", f"The instance ID '{fresh[0]}' does not exist")
        return None

    # -- instances ---------------------------------------------------------------------------------------------
    def _before_RunInstances(self, p: dict) -> Any:
        if p.get("NetworkInterfaces") and (p.get("SecurityGroupIds") or p.get("SubnetId")):
            return error("InvalidParameterCombination", "Network interfaces and an instance-level security groups "
                                                        "may not be specified on the same request")
        if "not_found_first" in self.on:
            key = p.get("KeyName")
            if key in self.fresh:
                self.fresh.discard(key)
                self._fire("not_found_first")
                return error("InvalidKeyPair.NotFound", f"The key pair '{key}' does not exist")
            for g in p.get("SecurityGroupIds", []):
                if g in self.fresh:
                    self.fresh.discard(g)
                    self._fire("not_found_first")
                    return error("InvalidGroup.NotFound", f"The security group '{g}' does not exist")
        group = (p.get("Placement") or {}).get("GroupName")
        if group and group not in self.groups:
            return error("InvalidPlacementGroup.Unknown", f"The Placement Group '{group}' is unknown.")
        token = p.get("ClientToken")
        if "idempotency" in self.on and token in self.tokens:
            seen, answer = self.tokens[token]
            self._fire("idempotency")
            if seen != json.dumps(p, sort_keys=True, default=str):
                return error("IdempotentParameterMismatch", "The client token you have provided is associated with "
                                                            "a resource that is already deleted or has different "
                                                            "parameters.")
            return ok(copy.deepcopy(answer))
        return None

    def _after_RunInstances(self, p: dict, parsed: dict) -> None:
        ids = [i["InstanceId"] for i in parsed.get("Instances", [])]
        if "not_found_first" in self.on:
            self.fresh.update(ids)
            self.hidden.update(dict.fromkeys(ids, self.listings))
        group = (p.get("Placement") or {}).get("GroupName")
        if group in self.groups:
            self.groups[group]["_members"].update(ids)
        market = p.get("InstanceMarketOptions") or {}
        if "spot_requests" in self.on and market.get("MarketType") == "spot":
            options = market.get("SpotOptions", {})
            tags = [t for s in p.get("TagSpecifications", []) if s["ResourceType"] == "spot-instances-request"
                    for t in s["Tags"]]
            for instance in parsed["Instances"]:
                sir = f"sir-{next(_ids):08x}"
                self.spot[sir] = {"SpotInstanceRequestId": sir, "State": "active", "Status": {"Code": "fulfilled"},
                                  "Type": options.get("SpotInstanceType", "one-time"),
                                  "InstanceInterruptionBehavior": options.get("InstanceInterruptionBehavior",
                                                                              "terminate"),
                                  "InstanceId": instance["InstanceId"], "Tags": tags,
                                  "LaunchSpecification": {"InstanceType": p["InstanceType"], "ImageId": p["ImageId"]},
                                  "_instance_tags": [t for s in p.get("TagSpecifications", [])
                                                     if s["ResourceType"] == "instance" for t in s["Tags"]]}
        self._decorate(parsed.get("Instances", []))
        token = p.get("ClientToken")
        if "idempotency" in self.on and token:
            self.tokens[token] = (json.dumps(p, sort_keys=True, default=str), copy.deepcopy(parsed))

    def _decorate(self, instances: list[dict]) -> None:
        for r in self.spot.values():
            for i in instances:
                if i["InstanceId"] == r.get("InstanceId"):
                    i["SpotInstanceRequestId"] = r["SpotInstanceRequestId"]
                    i["InstanceLifecycle"] = "spot"

    def _before_DescribeInstances(self, p: dict) -> Any:
        return self._named(p.get("InstanceIds", []))

    def _after_DescribeInstances(self, p: dict, parsed: dict) -> None:
        filters = p.get("Filters", [])
        listed = {i["InstanceId"] for r in parsed.get("Reservations", []) for i in r["Instances"]}
        if "shutting_down" in self.on:
            for iid, s in list(self.shutting.items()):
                if s["polls"] <= 0:
                    continue
                self._fire("shutting_down")
                s["polls"] -= 1
                instance = copy.deepcopy(s["instance"])
                instance["State"] = {"Code": 32, "Name": "shutting-down"}
                named = p.get("InstanceIds")
                wanted = (iid in named) if named else matches(instance, filters, _instance_fields(instance))
                if iid in listed:  # moto says terminated already: not yet
                    for r in parsed["Reservations"]:
                        r["Instances"] = [instance if i["InstanceId"] == iid else i for i in r["Instances"]]
                        if not wanted:
                            r["Instances"] = [i for i in r["Instances"] if i["InstanceId"] != iid]
                elif wanted:
                    parsed.setdefault("Reservations", []).append({"ReservationId": "r-shutting",
                                                                   "Instances": [instance]})
        for r in parsed.get("Reservations", []):
            kept = []
            for i in r["Instances"]:
                if i["InstanceId"] in self.vanished:
                    self._fire("vanish")
                    continue
                if "not_found_first" in self.on and self.hidden.get(i["InstanceId"], 0) > 0:
                    self.hidden[i["InstanceId"]] -= 1  # missing from this listing
                    self._fire("not_found_first")
                    continue
                kept.append(i)
            self._decorate(kept)
            r["Instances"] = kept
        parsed["Reservations"] = [r for r in parsed.get("Reservations", []) if r["Instances"]]

    def _before_StopInstances(self, p: dict) -> Any:
        return self._named(p.get("InstanceIds", []))

    def _before_StartInstances(self, p: dict) -> Any:
        return self._named(p.get("InstanceIds", []))

    def _after_StopInstances(self, p: dict, parsed: dict) -> None:
        for r in self.spot.values():
            if r.get("InstanceId") in p.get("InstanceIds", []) and r["State"] == "active":
                r["State"], r["Status"] = "disabled", {"Code": "instance-stopped-by-user"}

    def _after_StartInstances(self, p: dict, parsed: dict) -> None:
        for r in self.spot.values():
            if r.get("InstanceId") in p.get("InstanceIds", []) and r["State"] == "disabled":
                r["State"], r["Status"] = "active", {"Code": "fulfilled"}

    def _before_TerminateInstances(self, p: dict) -> Any:
        ids = p.get("InstanceIds", [])
        refused = self._named(ids)
        if refused is not None:
            return refused
        if "shutting_down" in self.on:
            live = [i for r in self.ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]
                    if i["State"]["Name"] != "terminated"]
            for instance in live:
                volumes = self.ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id",
                                                              "Values": [instance["InstanceId"]]}])["Volumes"]
                self.shutting[instance["InstanceId"]] = {"polls": self.polls, "instance": instance,
                                                         "volumes": volumes}
        return None

    def _after_TerminateInstances(self, p: dict, parsed: dict) -> None:
        for t in parsed.get("TerminatingInstances", []):
            if t["InstanceId"] in self.shutting:
                t["CurrentState"] = {"Code": 32, "Name": "shutting-down"}
        for r in list(self.spot.values()):
            if r.get("InstanceId") not in p.get("InstanceIds", []):
                continue
            if r["Type"] == "persistent" and r["State"] in ("active", "disabled"):
                # AWS: the request is not cancelled, so it opens again and launches a replacement.
                self._fire("spot_requests")
                spec = r["LaunchSpecification"]
                new = self.ec2.run_instances(ImageId=spec["ImageId"], InstanceType=spec["InstanceType"], MinCount=1,
                                             MaxCount=1, TagSpecifications=[{"ResourceType": "instance",
                                                                              "Tags": r["_instance_tags"]}]
                                             )["Instances"][0]["InstanceId"]
                r["InstanceId"], r["State"], r["Status"] = new, "active", {"Code": "fulfilled"}
            elif r["State"] == "active":
                r["State"], r["Status"] = "closed", {"Code": "instance-terminated-by-user"}

    # -- volumes and security groups ---------------------------------------------------------------------------
    def _in_use(self) -> list[dict]:
        return [s for s in self.shutting.values() if s["polls"] > 0]

    def _after_DescribeVolumes(self, p: dict, parsed: dict) -> None:
        listed = {v["VolumeId"] for v in parsed.get("Volumes", [])}
        for s in self._in_use():
            for v in s["volumes"]:
                if v["VolumeId"] not in listed and matches(v, p.get("Filters", []), _volume_fields(v)) and (
                        not p.get("VolumeIds") or v["VolumeId"] in p["VolumeIds"]):
                    self._fire("shutting_down")
                    parsed.setdefault("Volumes", []).append(copy.deepcopy(v))

    def _before_DeleteVolume(self, p: dict) -> Any:
        for s in self._in_use():
            if any(v["VolumeId"] == p["VolumeId"] for v in s["volumes"]):
                self._fire("shutting_down")
                return error("VolumeInUse", f"Volume {p['VolumeId']} is currently attached to "
                                            f"{s['instance']['InstanceId']}")
        return None

    def _before_DeleteSecurityGroup(self, p: dict) -> Any:
        for s in self._in_use():
            if any(g["GroupId"] == p.get("GroupId") for g in s["instance"].get("SecurityGroups", [])):
                self._fire("shutting_down")
                return error("DependencyViolation", f"resource {p.get('GroupId')} has a dependent object")
        return None

    def _after_CreateSecurityGroup(self, p: dict, parsed: dict) -> None:
        if "not_found_first" in self.on:
            self.fresh.add(parsed["GroupId"])

    def _before_AuthorizeSecurityGroupIngress(self, p: dict) -> Any:
        if "not_found_first" in self.on and p.get("GroupId") in self.fresh:
            self.fresh.discard(p["GroupId"])
            self._fire("not_found_first")
            return error("InvalidGroup.NotFound", f"The security group '{p['GroupId']}' does not exist")
        return None

    def _after_CreateKeyPair(self, p: dict, parsed: dict) -> None:
        if "not_found_first" in self.on:
            self.fresh.add(parsed["KeyName"])

    # -- instance types ----------------------------------------------------------------------------------------
    def _before_DescribeInstanceTypes(self, p: dict) -> Any:
        bad = [t for t in p.get("InstanceTypes", []) if t in self.bad_types]
        if "invalid_type" in self.on and bad:
            self._fire("invalid_type")
            return error("InvalidInstanceType", f"The following supplied instance types do not exist: [{bad[0]}]")
        return None

    # -- spot requests -----------------------------------------------------------------------------------------
    def _public(self, r: dict) -> dict:
        return {k: v for k, v in r.items() if not k.startswith("_")}

    def _before_DescribeSpotInstanceRequests(self, p: dict) -> Any:
        if "spot_requests" not in self.on:
            return None
        ids = p.get("SpotInstanceRequestIds")
        out = [self._public(r) for r in self.spot.values() if (not ids or r["SpotInstanceRequestId"] in ids)
               and matches(r, p.get("Filters", []), {"state": [r["State"]], "instance-id": [r.get("InstanceId", "")],
                                                     "spot-instance-request-id": [r["SpotInstanceRequestId"]]})]
        return ok({"SpotInstanceRequests": copy.deepcopy(out)})

    def _before_CancelSpotInstanceRequests(self, p: dict) -> Any:
        if "spot_requests" not in self.on:
            return None
        out = []
        for sir in p.get("SpotInstanceRequestIds", []):
            if sir not in self.spot:
                return error("InvalidSpotInstanceRequestID.NotFound", f"The spot instance request ID '{sir}' does "
                                                                      "not exist")
            r = self.spot[sir]
            if r["State"] in ("open", "active", "disabled"):
                r["State"], r["Status"] = "cancelled", {"Code": "request-canceled-and-instance-running"}
            out.append({"SpotInstanceRequestId": sir, "State": r["State"]})
        return ok({"CancelledSpotInstanceRequests": out})

    # -- placement groups (moto has none) ----------------------------------------------------------------------
    def _before_CreatePlacementGroup(self, p: dict) -> Any:
        name = p["GroupName"]
        if name in self.groups:
            return error("InvalidPlacementGroup.Duplicate", f"Placement group '{name}' already exists")
        tags = [t for s in p.get("TagSpecifications", []) for t in s["Tags"]]
        self.groups[name] = {"GroupName": name, "GroupId": f"pg-{next(_ids):017x}", "State": "available",
                             "Strategy": p.get("Strategy", "cluster"), "Tags": tags, "_members": set(),
                             "_refusals": 0}
        return ok({"PlacementGroup": self._public(self.groups[name])})

    def _before_DescribePlacementGroups(self, p: dict) -> Any:
        names = p.get("GroupNames")
        out = [self._public(g) for g in self.groups.values() if (not names or g["GroupName"] in names)
               and matches(g, p.get("Filters", []), {"group-name": [g["GroupName"]], "strategy": [g["Strategy"]]})]
        if names and len(out) < len(names):
            return error("InvalidPlacementGroup.Unknown", f"The Placement Group '{names[0]}' is unknown.")
        return ok({"PlacementGroups": copy.deepcopy(out)})

    def _before_DeletePlacementGroup(self, p: dict) -> Any:
        name = p["GroupName"]
        group = self.groups.get(name)
        if group is None:
            return error("InvalidPlacementGroup.Unknown", f"The Placement Group '{name}' is unknown.")
        members = [i for i in group["_members"] if i not in self.vanished]
        running = [i for r in self.ec2.describe_instances(Filters=[
            {"Name": "instance-id", "Values": members}])["Reservations"] for i in r["Instances"]
            if i["State"]["Name"] != "terminated"] if members else []
        busy = running or any(i in self.shutting and self.shutting[i]["polls"] > 0 for i in members)
        if busy or ("placement_group_in_use" in self.on and group["_refusals"] < self.in_use):
            group["_refusals"] += 1
            self._fire("placement_group_in_use")
            return error("InvalidPlacementGroup.InUse", f"Group {name} is in use.")
        del self.groups[name]
        return ok({})

    # --- issue 21 API behaviours (e21b) ---
    full_zones: frozenset[str] = frozenset()  # no_capacity: these zones (empty: every zone) ...
    full_types: frozenset[str] = frozenset()  # ... of these types (empty: every type)
    disabled_regions: frozenset[str] = frozenset()  # not_opted_in
    no_cluster_types: frozenset[str] = frozenset()  # placement_strategies

    def _e21b_hooks(self) -> list[tuple[str, Any]]:
        self.capacity_sends: Counter[str | None] = Counter()
        self.deleted_groups: dict[str, dict] = {}  # name -> the group as it was, now "deleted"
        self.created_groups: dict[str, dict] = {}
        return [("before-send.ec2.RunInstances", self._e21b_send), ("before-parameter-build.ec2", self._e21b_page_in),
                ("before-call.ec2", self._e21b_before), ("after-call.ec2", self._e21b_after)]

    def _e21b_send(self, request: Any, **_: Any) -> Any:
        from fixtures_executor import ec2_error, request_type, request_zone

        zone, itype = request_zone(request), request_type(request)
        if "no_capacity" not in self.on or (self.full_zones and zone not in self.full_zones) or (
                self.full_types and itype not in self.full_types):
            return None
        with self.lock:
            self.capacity_sends[zone] += 1
            self._fire("no_capacity")
        return ec2_error("InsufficientInstanceCapacity", f"We currently do not have sufficient {itype} capacity in "
                                                         f"the Availability Zone you requested ({zone}).", 500)

    def _e21b_page_in(self, params: dict, model: Any, context: dict, **_: Any) -> None:
        if "pages" in self.on and model.name in _PAGED:  # moto does not know our tokens: the layer pages
            token = params.pop("NextToken", None)
            context["aws_like_page"] = int(token.rsplit("-", 1)[1]) if token else 0

    def _e21b_before(self, model: Any, context: dict, **_: Any) -> Any:
        params = context.get("aws_like_params", {})
        with self.lock:
            if "not_opted_in" in self.on and context.get("client_region") in self.disabled_regions:
                self._fire("not_opted_in")
                return error("AuthFailure", "AWS was not able to validate the provided access credentials")
            if "filter_limit" in self.on:
                if any(len(f.get("Values", [])) > 200 for f in params.get("Filters", []) or []):
                    self._fire("filter_limit")
                    return error("FilterLimitExceeded", "The maximum number of filter values specified on a single "
                                                        "call is 200")
                if model.name in ("StartInstances", "StopInstances", "TerminateInstances") and len(
                        params.get("InstanceIds", [])) > 1000:
                    self._fire("filter_limit")
                    return error("InvalidParameterValue", "Up to 1000 instance IDs per call")
        return None

    def _e21b_after(self, http_response: Any, parsed: dict, model: Any, context: dict, **_: Any) -> None:
        if http_response.status_code >= 300:
            return
        p = context.get("aws_like_params", {})
        with self.lock:
            if model.name == "DescribeRegions" and "not_opted_in" in self.on:
                for r in parsed.get("Regions", []):
                    if r["RegionName"] in self.disabled_regions:
                        r["OptInStatus"] = "not-opted-in"
            if model.name == "DescribeInstanceTypes" and "placement_strategies" in self.on:
                for t in parsed.get("InstanceTypes", []):
                    info = t.get("PlacementGroupInfo", {})
                    if t["InstanceType"] in self.no_cluster_types and "cluster" in info.get("SupportedStrategies", []):
                        info["SupportedStrategies"] = [s for s in info["SupportedStrategies"] if s != "cluster"]
                        self._fire("placement_strategies")
            if model.name == "CreatePlacementGroup":
                self.created_groups[p["GroupName"]] = copy.deepcopy(parsed.get("PlacementGroup", {}))
            if model.name == "DeletePlacementGroup" and "deleted_groups" in self.on:
                self.deleted_groups[p["GroupName"]] = {**self.created_groups.get(p["GroupName"], {}),
                                                       "State": "deleted"}
            if model.name == "DescribePlacementGroups" and "deleted_groups" in self.on:
                for name, g in self.deleted_groups.items():
                    if (not p.get("GroupNames") or name in p["GroupNames"]) and matches(
                            g, p.get("Filters", []), {"group-name": [name], "state": [g["State"]]}):
                        self._fire("deleted_groups")
                        parsed.setdefault("PlacementGroups", []).append(copy.deepcopy(g))
            if "pages" in self.on and model.name in _PAGED:
                key, at = _PAGED[model.name], context.get("aws_like_page", 0)
                items = parsed.get(key, [])
                parsed[key] = items[at:at + 1]
                parsed.pop("NextToken", None)
                if at + 1 < len(items):
                    self._fire("pages")
                    parsed["NextToken"] = f"aws-like-page-{at + 1}"
    # --- issue 21 lifecycle behaviours (e21a) ---------------------------------------------------------------------
    offset = 0.0  # seconds the layer's clock is ahead of this machine's
    expired: frozenset[str] = frozenset()  # instances an expired spot request terminated

    def now(self) -> float:
        return time.time() + self.offset

    def days_on(self, days: float) -> None:
        """The layer's clock moves ``days`` on (what EC2 does at a time is decided on the layer's clock)."""
        self.offset += days * 86400.0

    def interrupt_spot(self, instance_ids: list[str]) -> None:
        """EC2 takes the capacity back: the spot instances stop, their requests wait for capacity."""
        self.ec2.stop_instances(InstanceIds=instance_ids)
        with self.lock:
            for r in self.spot.values():
                if r.get("InstanceId") in instance_ids:
                    r["State"], r["Status"] = "disabled", {"Code": "instance-stopped-no-capacity"}
                    self._fire("spot_interruption")

    def capacity_back(self) -> list[str]:
        """EC2 starts every instance it stopped for capacity again; returns their ids."""
        with self.lock:
            ids = [r["InstanceId"] for r in self.spot.values()
                   if r["Status"].get("Code") == "instance-stopped-no-capacity"]
            for r in self.spot.values():
                if r.get("InstanceId") in ids:
                    r["State"], r["Status"] = "active", {"Code": "fulfilled"}
        if ids:
            self.ec2.start_instances(InstanceIds=ids)
        return ids

    def _lifecycle_before(self, model: Any, context: dict, **_: Any) -> Any:
        with self.lock:
            p = context.get("aws_like_params", {})
            if "spot_expiry" in self.on:
                self._expire()
                ended = [i for i in p.get("InstanceIds", []) if i in self.expired]
                if model.name == "StartInstances" and ended:  # moto would start a terminated instance
                    return error("IncorrectInstanceState", f"The instance '{ended[0]}' is not in a state from which "
                                                           "it can be started.")
            if "spot_interruption" in self.on and model.name == "StartInstances":
                held = [r["InstanceId"] for r in self.spot.values() if r.get("InstanceId") in p.get("InstanceIds", [])
                        and r["Status"].get("Code") == "instance-stopped-no-capacity"]
                if held:
                    self._fire("spot_interruption")
                    return error("IncorrectSpotRequestState", f"Only Amazon EC2 can start the interrupted Spot "
                                                              f"Instance {held[0]}")
        return None

    def _lifecycle_after(self, http_response: Any, parsed: dict, model: Any, context: dict, **_: Any) -> None:
        if model.name != "RunInstances" or http_response.status_code >= 300:
            return
        options = (context.get("aws_like_params", {}).get("InstanceMarketOptions") or {}).get("SpotOptions", {})
        until = options.get("ValidUntil")
        at = until.timestamp() if hasattr(until, "timestamp") else self.now() + 7 * 86400.0  # EC2's default
        ids = {i["InstanceId"] for i in parsed.get("Instances", [])}
        with self.lock:
            for r in self.spot.values():
                if r.get("InstanceId") in ids:
                    r["ValidUntil"] = datetime.datetime.fromtimestamp(at, datetime.timezone.utc)
                    r["_valid_until"] = at

    def _expire(self) -> None:
        for r in self.spot.values():
            if r["State"] in ("open", "active", "disabled") and r.get("_valid_until", float("inf")) <= self.now():
                self._fire("spot_expiry")
                r["State"], r["Status"] = "cancelled", {"Code": "request-canceled-and-instance-running"}
                iid = r.get("InstanceId")
                states = [i["State"]["Name"] for x in self.ec2.describe_instances(InstanceIds=[iid])["Reservations"]
                          for i in x["Instances"]] if iid else []
                if states == ["stopped"]:  # a stopped instance of a cancelled request is terminated
                    self.ec2.terminate_instances(InstanceIds=[iid])
                    self.expired = self.expired | {iid}
                    r["Status"] = {"Code": "instance-terminated-by-service"}


    # -- EFS (issue 23 item 3) ---------------------------------------------------------------------------------
    def _efs_hooks(self) -> list[tuple[str, Any]]:
        self.efs_creating: dict[str, int] = {}  # file system or mount target id -> describes left "creating"
        self.efs_deleting: dict[str, list] = {}  # id -> [describes left "deleting", its last description]
        self.efs_seen: dict[str, dict] = {}  # id -> its last description (what a deleted one is listed as)
        return [("before-parameter-build.efs", self._remember), ("before-call.efs", self._efs_before),
                ("after-call.efs", self._efs_after)]

    def _efs_state(self, item: dict, key: str) -> dict:
        """``item`` (a file system or mount target moto lists) as EFS would list it now."""
        iid = item[key]
        self.efs_seen[iid] = copy.deepcopy(item)
        if self.efs_creating.get(iid, 0) > 0:
            self.efs_creating[iid] -= 1
            self._fire("efs_states")
            return {**item, "LifeCycleState": "creating"}
        return item

    def _deleting(self, key: str, wanted) -> list[dict]:
        """The deleted items still listed ``deleting`` that ``wanted(item)`` selects, one describe used up each;
        ``key``: a field only that kind has (file systems: ``CreationToken``, mount targets: ``MountTargetId``)."""
        out = []
        for entry in list(self.efs_deleting.values()):
            item = entry[1]
            if key not in item or not wanted(item) or entry[0] <= 0:
                continue
            entry[0] -= 1
            self._fire("efs_states")
            out.append({**copy.deepcopy(item), "LifeCycleState": "deleting"})
        return out

    def _efs_before(self, model: Any, context: dict, **_: Any) -> Any:
        if "efs_states" not in self.on:
            return None
        p = context.get("aws_like_params", {})
        with self.lock:
            if model.name == "CreateMountTarget" and self.efs_creating.get(p.get("FileSystemId"), 0) > 0:
                self._fire("efs_states")
                return error("IncorrectFileSystemLifeCycleState", f"File system {p['FileSystemId']} is creating")
            if model.name == "DeleteFileSystem" and self._deleting(
                    "MountTargetId", lambda mt: mt["FileSystemId"] == p.get("FileSystemId")):
                return error("FileSystemInUse", "File system is in use by a mount target being deleted")
            if model.name == "DescribeFileSystems" and p.get("FileSystemId") in self.efs_deleting:
                listed = self._deleting("CreationToken", lambda fs: fs["FileSystemId"] == p["FileSystemId"])
                if listed:
                    return ok({"FileSystems": listed})
            if model.name == "DescribeMountTargets" and p.get("MountTargetId") in self.efs_deleting:
                listed = self._deleting("MountTargetId", lambda mt: mt["MountTargetId"] == p["MountTargetId"])
                if listed:
                    return ok({"MountTargets": listed})
        return None

    def _efs_after(self, http_response: Any, parsed: dict, model: Any, context: dict, **_: Any) -> None:
        if "efs_states" not in self.on or http_response.status_code >= 300:
            return
        p = context.get("aws_like_params", {})
        with self.lock:
            if model.name == "CreateFileSystem":
                self.efs_creating[parsed["FileSystemId"]] = self.polls
                parsed["LifeCycleState"] = "creating"
            elif model.name == "CreateMountTarget":
                self.efs_creating[parsed["MountTargetId"]] = self.polls
                parsed["LifeCycleState"] = "creating"
            elif model.name == "DeleteMountTarget":
                self.efs_deleting[p["MountTargetId"]] = [self.polls, self.efs_seen.get(p["MountTargetId"], {})]
            elif model.name == "DeleteFileSystem":
                self.efs_deleting[p["FileSystemId"]] = [self.polls, self.efs_seen.get(p["FileSystemId"], {})]
            elif model.name == "DescribeFileSystems":
                parsed["FileSystems"] = [self._efs_state(fs, "FileSystemId") for fs in parsed.get("FileSystems", [])]
                if not p.get("FileSystemId"):
                    token = p.get("CreationToken")
                    parsed["FileSystems"] += self._deleting("CreationToken", lambda fs: not token or
                                                            fs.get("CreationToken") == token)
            elif model.name == "DescribeMountTargets":
                parsed["MountTargets"] = [self._efs_state(mt, "MountTargetId") for mt in parsed.get("MountTargets", [])]
                if p.get("FileSystemId"):
                    parsed["MountTargets"] += self._deleting("MountTargetId",
                                                             lambda mt: mt["FileSystemId"] == p["FileSystemId"])


@pytest.fixture()
def aws_like(hooks, ec2):
    """The behaviour layer on the aws provider's clients; every behaviour off until the test enables it."""
    layer = AwsLike(ec2)
    hooks.extend(layer.hooks())
    return layer
