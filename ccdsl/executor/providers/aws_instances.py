"""The instances of the ``aws`` provider: described (as :class:`~ccdsl.executor.model.Node`), acted on (start,
stop, terminate: :data:`.CHUNK` ids per call, dropping the ids EC2 no longer knows) and waited for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ccdsl.errors import ProviderError
from ccdsl.executor import model
from ccdsl.executor.config import AwsConfig
from ccdsl.executor.model import Node
from ccdsl.executor.providers.aws_api import Ec2, chunks, tag
from ccdsl.executor.providers.base import TAG_CONTRACT, TAG_ROLE, poll, split_host_port

log = logging.getLogger("ccdsl.executor")

# On the nodes of a role launched in two RunInstances (PeerWorkers behind its own node 0: node 0 alone with a public
# address, then the others): the index of the second launch's first node.  Launch indices restart at 0 per call.
TAG_FIRST_INDEX = "ccdsl:first-index"
SHUTTING_DOWN = "shutting-down"  # terminating, not yet terminated: its volumes and security group are still in use
_STATES = {"pending": model.PENDING, "running": model.RUNNING, "stopping": model.STOPPING, "stopped": model.STOPPED,
           "shutting-down": SHUTTING_DOWN, "terminated": model.TERMINATED}


class Instances:
    """Instances by id, through ``ec2``: what EC2 lists now, an operation on them, and waits."""

    def __init__(self, ec2: Ec2) -> None:
        self.ec2 = ec2
        self.config = ec2.config

    def describe_ids(self, ids: Iterable[str], roles: Mapping[str, str] | None = None) -> list[Node]:
        """The instances among ``ids`` that EC2 lists now.  A filter, not ``InstanceIds``: an id EC2 does not know
        (not visible yet, or gone) is simply absent instead of failing the whole call."""
        answer = [r for part in chunks(list(ids)) for r in self.ec2.paginate(
            "describe_instances", "Reservations", Filters=[{"Name": "instance-id", "Values": part}])]
        roles = roles or {}
        nodes = [node_of(i, self.config, self.ec2.resources, roles.get(i["InstanceId"]))
                 for r in answer for i in r["Instances"]]
        self.ec2.fresh.difference_update(n.instance_id for n in nodes)  # listed once: visible from now on
        return sorted(nodes, key=lambda n: (n.role, n.index))

    def wait_state(self, ids: list[str], state: str, what: str,
                   roles: Mapping[str, str] | None = None) -> list[Node]:
        """Until every one of ``ids`` is listed in ``state``."""
        def check() -> list[Node] | None:
            nodes = self.describe_ids(ids, roles)
            return nodes if len(nodes) == len(ids) and all(n.state == state for n in nodes) else None

        return poll(check, what=what, timeout=self.config.wait_timeout, interval=self.config.poll_interval)

    def wait_gone(self, ids: list[str], what: str, deadline: float) -> None:
        """Until every instance is ``terminated`` (or no longer listed at all) -- ``shutting-down`` is not done."""
        def check() -> bool | None:
            return True if all(n.state == model.TERMINATED for n in self.describe_ids(ids)) else None

        poll(check, what=what, timeout=max(1.0, deadline - time.monotonic()), interval=self.config.poll_interval)

    def act_on_instances(self, operation: str, ids: list[str], handle: str) -> list[str]:
        """``operation`` (terminate/stop/start) on ``ids``, :data:`CHUNK` ids per call; returns the ids it acted
        on."""
        return [i for part in chunks(ids) for i in self.act_on_chunk(operation, part, handle)]

    def act_on_chunk(self, operation: str, ids: list[str], handle: str) -> list[str]:
        """``operation`` on at most :data:`CHUNK` ids.

        EC2 fails the whole call when one id is unknown.  Then the ids EC2 does list are kept and the call is
        retried; an id that is not listed is gone (dropped, and logged) -- or, right after RunInstances, not
        visible yet: while every id is listed but the call still says NotFound, wait with backoff."""
        deadline = time.monotonic() + min(self.config.wait_timeout, 120.0)
        delay = self.config.poll_interval
        ids = list(ids)
        while ids:
            try:
                self.ec2.call(operation, InstanceIds=ids)
                return ids
            except ProviderError as exc:
                if getattr(exc, "code", "") != "InvalidInstanceID.NotFound" or time.monotonic() >= deadline:
                    raise
            listed = {n.instance_id for n in self.describe_ids(ids)} | self.ec2.fresh  # fresh: not visible yet
            gone = [i for i in ids if i not in listed]
            if gone:
                log.warning("%s: instance(s) %s no longer exist; %s goes on without them", handle,
                            ", ".join(gone), operation.replace("_instances", ""))
                ids = [i for i in ids if i in listed]
            else:
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        return []


def node_of(instance: Mapping[str, Any], config: AwsConfig, resources: Mapping[str, Any],
            role: str | None = None) -> Node:
    """A Node from an EC2 instance.  ``role``: what ccdsl asked for, when known -- whether RunInstances' answer
    carries the tags is not documented, so the tag is the fallback."""
    role = role or tag(instance, TAG_ROLE) or "worker"
    index = int(instance.get("AmiLaunchIndex", 0)) + int(tag(instance, TAG_FIRST_INDEX) or 0)
    public, private = instance.get("PublicIpAddress"), instance.get("PrivateIpAddress")
    # No silent fallback to the private address for 'public': from outside the VPC it never answers.
    address = public if config.connect_address == "public" else private
    port = 22
    mapped = config.address_map.get(f"{role}.{index}") or (
        config.address_map.get(str(index)) if role == "worker" else None)
    if mapped:
        where, _, inside = str(mapped).partition(",")
        address, port = split_host_port(where)
        private = inside.strip() or address
        if not public and config.connect_address == "public":
            address = None  # a private node: reached only through the jump host, as on EC2
    key = config.key_path or resources.get("key_path_created")
    extra = {"ec2_state": instance["State"]["Name"], "contract": tag(instance, TAG_CONTRACT),
             "spot_request": instance.get("SpotInstanceRequestId") or "",
             "boot_wait": config.boot_wait,  # ssh.wait_ready runs it before the probe
             "public_ip": public or "", "private_ip": instance.get("PrivateIpAddress") or "",
             # [aws] shared: what the nodes share, made when they are made ready (shared_fs.prepare)
             "shared": "" if config.shared == "none" else config.shared,
             "shared_dir": config.shared_dir,
             "reason": instance.get("StateReason", {}).get("Message", "")}
    fabrics = resources.get("efa_interfaces") or {}
    if fabrics:  # a cluster with EFA: every node has its software, and MPI runs under Open MPI's mpirun
        extra["fabric"] = "efa"
    if fabrics.get(role):  # the EFA interfaces the node was launched with: fi_info must list as many devices
        extra["efa"] = int(fabrics[role])
    return Node(index=index, role=role, instance_id=instance["InstanceId"],
                instance_type=instance["InstanceType"], state=_STATES.get(instance["State"]["Name"], model.FAILED),
                address=address, private_address=private, port=port, user=config.user,
                key_path=str(key) if key else None, zone=instance.get("Placement", {}).get("AvailabilityZone"),
                extra=extra)

