"""What a cluster of the ``aws`` provider owns, found by its tags, and taken down: instances terminated (their
persistent spot requests cancelled first), then its security groups, key pair, placement group, detached volumes
and file system deleted, until the cloud itself says that nothing is left.  Also every handle that owns something
in the region (``discover``): how a cluster of a crashed session is found.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from ccdsl.errors import ProviderError
from ccdsl.executor.model import Node
from ccdsl.executor.providers import shared_fs
from ccdsl.executor.providers.aws_api import Ec2, chunks, tag
from ccdsl.executor.providers.aws_instances import Instances, node_of
from ccdsl.executor.providers.aws_journal import LaunchJournal
from ccdsl.executor.providers.base import TAG_CLUSTER

LIVE_EC2_STATES = ["pending", "running", "stopping", "stopped"]
_LIVE_SPOT_STATES = ["open", "active", "disabled"]  # a request in these states can still launch an instance


class Teardown:
    """Terminate, release, leftovers and discovery for one provider."""

    def __init__(self, ec2: Ec2, instances: Instances, journal: LaunchJournal) -> None:
        self.ec2 = ec2
        self.instances = instances
        self.config = ec2.config
        self.journal = journal

    def terminate(self, handle: str, nodes: Sequence[Node]) -> None:
        """Terminate every instance tagged with the handle (and the given ones), delete the cluster's security
        group, key pair and placement group, then verify by tag that nothing remains.

        EC2 is eventually consistent and slow to let go: an instance is ``shutting-down`` (its root volume in use,
        its security group a dependency) for a while before it is ``terminated``; a fresh instance may not be listed
        yet; an id may be long gone.  So each round terminates what is listed, waits for ``terminated``, deletes
        the rest (retrying "in use"), and looks again, until nothing is left or ``wait_timeout`` passes."""
        ec2 = self.ec2
        deadline = time.monotonic() + self.config.wait_timeout
        self.journal.new_round()
        if ec2.region in ec2.not_opted_in:  # a region the account cannot use holds nothing (and answers nothing)
            return
        ids = {n.instance_id for n in nodes if n.instance_id.startswith("i-")} | self.journal.lost_launches(deadline)
        delay = self.config.poll_interval
        while True:
            self.end_instances(handle, ids, deadline)
            self.delete_cluster_resources(handle, deadline)
            left = self.leftovers(handle)
            if not left:
                break
            if time.monotonic() >= deadline:
                raise ProviderError(f"cluster {handle}: resources still exist after terminate: {', '.join(left)}",
                                    hint=f"run 'ccdsl terminate {handle}' again, or delete them in the EC2 console")
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
            ids = set()
        key = ec2.resources.get("key_path_created")
        if key:
            Path(key).unlink(missing_ok=True)
        kept = {k: v for k, v in ec2.resources.items() if k == "vpc_id"}
        ec2.resources.clear()  # one dict, shared by every part of the provider
        ec2.resources.update(kept)

    def release(self, handle: str, nodes: Sequence[Node]) -> None:
        """Terminate the cluster's instances (and cancel its spot requests) but keep its security group, key pair
        and placement group: the deployer's failover to another type in the same region launches again at once,
        and deleting then recreating same-named resources races EC2's eventual consistency."""
        deadline = time.monotonic() + self.config.wait_timeout
        self.journal.new_round()
        if self.ec2.region in self.ec2.not_opted_in:
            return
        ids = {n.instance_id for n in nodes if n.instance_id.startswith("i-")} | self.journal.lost_launches(deadline)
        self.end_instances(handle, ids, deadline)
        self.ec2.resources.pop("placement_zone", None)

    def end_instances(self, handle: str, ids: set[str], deadline: float) -> None:
        """Cancel the spot requests, then terminate ``ids`` and whatever is listed by tag, and wait for it."""
        listed = self.describe(handle)
        known = sorted(ids | {n.instance_id for n in listed})
        self.cancel_spot_requests(handle, listed)
        if known:
            known = self.instances.act_on_instances("terminate_instances", known, handle)
            self.instances.wait_gone(known, f"{len(known)} instance(s) of {handle} to terminate", deadline)

    def cancel_spot_requests(self, handle: str, nodes: Sequence[Node]) -> None:
        """Cancel the cluster's persistent spot requests BEFORE its instances terminate: terminating the instance
        of an open persistent request makes EC2 launch a new one.  Requests are found by tag and, in case the
        tags are not visible yet, through the instances' SpotInstanceRequestId."""
        ec2 = self.ec2
        sirs = {r["SpotInstanceRequestId"] for r in self.spot_requests(handle)}
        sirs |= {n.extra["spot_request"] for n in nodes if n.extra.get("spot_request")}
        for part in chunks(sorted(sirs)):
            try:
                ec2.call("cancel_spot_instance_requests", SpotInstanceRequestIds=part)
            except ProviderError as exc:
                if getattr(exc, "code", "") != "InvalidSpotInstanceRequestID.NotFound":
                    raise
                for sir in part:  # one unknown id fails the whole call: cancel one by one
                    ec2.retry_in_use(partial(ec2.call, "cancel_spot_instance_requests",
                                             SpotInstanceRequestIds=[sir]),
                                     set(), {"InvalidSpotInstanceRequestID.NotFound"}, time.monotonic())

    def spot_requests(self, handle: str | None) -> list[dict[str, Any]]:
        """Spot requests that can still launch an instance, tagged with ``handle`` (None: any ccdsl handle)."""
        tag_filter = ({"Name": f"tag:{TAG_CLUSTER}", "Values": [handle]} if handle else
                      {"Name": "tag-key", "Values": [TAG_CLUSTER]})
        return self.ec2.paginate("describe_spot_instance_requests", "SpotInstanceRequests",
                                 Filters=[tag_filter, {"Name": "state", "Values": _LIVE_SPOT_STATES}])

    def ec2_stopped(self, handle: str) -> dict[str, str]:
        """The cluster's spot instances that EC2 itself stopped (interrupted: no capacity, price, an experiment),
        with their request's status code.  Only EC2 can start them again, when capacity returns; StartInstances
        is refused (EC2 User Guide, "Stop interrupted Spot Instances" and "Spot request status")."""
        out = {}
        for r in self.spot_requests(handle):
            code = (r.get("Status") or {}).get("Code", "")
            if r.get("InstanceId") and (code == "marked-for-stop" or (
                    code.startswith("instance-stopped-") and code != "instance-stopped-by-user")):
                out[r["InstanceId"]] = code
        return out

    def delete_cluster_resources(self, handle: str, deadline: float) -> None:
        """Security groups, key pairs, placement group and detached volumes tagged with ``handle``."""
        ec2 = self.ec2
        # [aws] shared = "efs": its mount targets hold the security group.  Looked for whatever the settings say: a
        # cluster adopted after its record was lost has the settings of today's file
        shared_fs.delete_efs(ec2, handle, deadline)
        for sg in ec2.tagged("describe_security_groups", "SecurityGroups", handle):
            ec2.retry_in_use(partial(ec2.call, "delete_security_group", GroupId=sg["GroupId"]),
                             {"DependencyViolation"}, {"InvalidGroup.NotFound"}, deadline)
        for kp in ec2.tagged("describe_key_pairs", "KeyPairs", handle):
            ec2.retry_in_use(partial(ec2.call, "delete_key_pair", KeyName=kp["KeyName"]), set(),
                             {"InvalidKeyPair.NotFound"}, deadline)
        if "placement_group_created" in ec2.resources or self.config.placement_group:
            for pg in ec2.tagged("describe_placement_groups", "PlacementGroups", handle):
                ec2.retry_in_use(partial(ec2.call, "delete_placement_group", GroupName=pg["GroupName"]),
                                 {"InvalidPlacementGroup.InUse"}, {"InvalidPlacementGroup.Unknown"}, deadline)
        for volume in self.volumes(handle):  # root volumes go with their instances; a detached one would leak
            if volume["State"] == "available":
                ec2.retry_in_use(partial(ec2.call, "delete_volume", VolumeId=volume["VolumeId"]),
                                 {"VolumeInUse"}, {"InvalidVolume.NotFound"}, deadline)

    def leftovers(self, handle: str) -> list[str]:
        """Every resource still tagged with ``handle`` (terminated instances excluded), by id."""
        ec2 = self.ec2
        if ec2.region in ec2.not_opted_in:
            return []
        left = [n.instance_id for n in self.describe_tagged(handle, [*LIVE_EC2_STATES, "shutting-down"])]
        left += [g["GroupId"] for g in ec2.tagged("describe_security_groups", "SecurityGroups", handle)]
        left += [k["KeyName"] for k in ec2.tagged("describe_key_pairs", "KeyPairs", handle)]
        left += [v["VolumeId"] for v in self.volumes(handle)]
        left += [r["SpotInstanceRequestId"] for r in self.spot_requests(handle)]
        if "placement_group_created" in ec2.resources or self.config.placement_group:
            left += [p["GroupName"] for p in ec2.tagged("describe_placement_groups", "PlacementGroups", handle)]
        left += shared_fs.leftovers(ec2, handle)
        return left

    def volumes(self, handle: str) -> list[dict[str, Any]]:
        """Volumes tagged with the handle that still exist (being deleted does not count)."""
        return [v for v in self.ec2.tagged("describe_volumes", "Volumes", handle)
                if v["State"] in ("creating", "available", "in-use", "error")]

    def describe(self, handle: str) -> list[Node]:
        """The cluster's instances as EC2 sees them now (terminated and terminating ones excluded)."""
        return self.describe_tagged(handle, LIVE_EC2_STATES)

    def describe_tagged(self, handle: str, states: list[str]) -> list[Node]:
        """The cluster's instances in ``states``, by tag: the manager first, then by role and index."""
        answer = self.ec2.paginate("describe_instances", "Reservations", Filters=[
            {"Name": f"tag:{TAG_CLUSTER}", "Values": [handle]}, {"Name": "instance-state-name", "Values": states}])
        nodes = [node_of(i, self.config, self.ec2.resources) for r in answer for i in r["Instances"]]
        self.ec2.fresh.difference_update(n.instance_id for n in nodes)
        return sorted(nodes, key=lambda n: (n.role != "manager", n.role, n.index))

    def discover(self) -> list[str]:
        """Handles of every cluster that owns something in this region: live instances, security groups or key
        pairs (a deploy that crashed before RunInstances leaves only those)."""
        ec2 = self.ec2
        handles: set[str] = set()
        tag_filter = [{"Name": "tag-key", "Values": [TAG_CLUSTER]}]
        for r in ec2.paginate("describe_instances", "Reservations", Filters=tag_filter + [
                {"Name": "instance-state-name", "Values": LIVE_EC2_STATES}]):
            handles.update(tag(i, TAG_CLUSTER) for i in r["Instances"])
        for g in ec2.paginate("describe_security_groups", "SecurityGroups", Filters=tag_filter):
            handles.add(tag(g, TAG_CLUSTER))
        for k in ec2.call("describe_key_pairs", Filters=tag_filter)["KeyPairs"]:
            handles.add(tag(k, TAG_CLUSTER))
        for r in self.spot_requests(None):  # an open request launches instances again: it is a leftover too
            handles.add(tag(r, TAG_CLUSTER))
        handles |= shared_fs.discover(ec2)  # a file system bills on its own ([aws] shared = "efs")
        handles.discard("")
        return sorted(handles)
