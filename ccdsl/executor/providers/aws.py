"""EC2 through boto3: the ``aws`` provider.

Everything a cluster creates is tagged ``ccdsl:cluster=<handle>`` (plus role and contract), so the cloud itself
answers "what does this cluster own?" -- that is how a cluster of a crashed session is found (``discover``) and
how ``terminate`` proves that nothing remains.  Per cluster: a security group (SSH from one CIDR, all traffic
between members), a fresh key pair (private key 0600 in the data dir), optionally a placement group, and ONE
``RunInstances`` per role (MinCount = MaxCount = node count, idempotency ``ClientToken`` derived from the handle),
IMDSv2 required, encrypted root volume.

:class:`AwsProvider` is the facade the deployer and the lifecycle use; its parts, each holding the one
:class:`.aws_api.Ec2` of the provider, are in the modules beside it: the EC2 call layer (:mod:`.aws_api`), the
instances by id (:mod:`.aws_instances`), instance types and images (:mod:`.aws_types`), the checks of a plan
(:mod:`.aws_checks`, :mod:`.aws_private`), network and access resources (:mod:`.aws_network`), launching
(:mod:`.aws_launch`, :mod:`.aws_journal`, :mod:`.aws_user_data`), and teardown and discovery
(:mod:`.aws_teardown`).

boto3 is imported lazily.  ``EVENT_HOOKS`` is a documented test and benchmark hook: ``(event, handler)`` pairs
registered on every EC2 client this module creates (fault injection with ``before-send.ec2.RunInstances``,
API-call counting with ``before-call``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ccdsl.errors import ClusterError, ProviderError
from ccdsl.executor import model
from ccdsl.executor.config import AwsConfig, Config
from ccdsl.executor.model import Node, NodeRequest, Progress
from ccdsl.executor.providers.aws_api import (
    ACCOUNT_HINTS,
    CAPACITY_CODES,
    CHUNK,
    NOT_VISIBLE_CODES,
    OPT_IN_HINT,
    QUOTA_CODES,
    SERVICE_NAMES,
    Ec2,
    chunks,
    tags_for,
)
from ccdsl.executor.providers.aws_checks import SPREAD_PER_ZONE, PlanChecks
from ccdsl.executor.providers.aws_instances import SHUTTING_DOWN, TAG_FIRST_INDEX, Instances
from ccdsl.executor.providers.aws_journal import LOST_LOOKS, LaunchJournal, client_token
from ccdsl.executor.providers.aws_launch import (
    SPOT_VALIDITY,
    Launch,
    efa_interfaces,
    instance_profile,
    private_interface,
)
from ccdsl.executor.providers.aws_network import Network, openssh_private_key, write_private
from ccdsl.executor.providers.aws_private import PrivateChecks
from ccdsl.executor.providers.aws_teardown import Teardown
from ccdsl.executor.providers.aws_types import TypeFacts
from ccdsl.executor.providers.aws_user_data import INSTALL_USER_DATA, SCRATCH_SCRIPT, user_data
from ccdsl.executor.providers.base import poll

__all__ = ["ACCOUNT_HINTS", "CAPACITY_CODES", "CHUNK", "EVENT_HOOKS", "INSTALL_USER_DATA", "LOST_LOOKS",
           "NOT_VISIBLE_CODES", "OPT_IN_HINT", "QUOTA_CODES", "SCRATCH_SCRIPT", "SERVICE_NAMES", "SHUTTING_DOWN",
           "SPOT_VALIDITY", "SPREAD_PER_ZONE", "TAG_FIRST_INDEX", "AwsProvider", "chunks", "client_token",
           "efa_interfaces", "instance_profile", "make", "openssh_private_key", "private_interface", "tags_for",
           "user_data", "write_private"]

EVENT_HOOKS: list[tuple[str, Callable[..., Any]]] = []
log = logging.getLogger("ccdsl.executor")

# What a cluster record keeps of the resources a deploy created (``settings``), read back by a later process.
RECORDED = ("security_group_id_created", "key_name_created", "key_path_created", "placement_group_created", "vpc_id",
            "spot_valid_until", "efa_rules", "launches", "jump_group_created", "efa_interfaces", "efs_token",
            "efs_id", "efs_mount_target", "efs_address")


def make(config: Config, settings: Mapping[str, Any]) -> AwsProvider:
    return AwsProvider(config.aws, settings, install=config.mpi.install)


def _event_hooks() -> list[tuple[str, Callable[..., Any]]]:
    """``EVENT_HOOKS`` as it is now (tests replace the list itself)."""
    return EVENT_HOOKS


class AwsProvider:
    """One region (and endpoint) of EC2.  ``settings`` come from a cluster record and take precedence over the
    configuration, so a later process reaches exactly the resources the deploy created."""

    name = "aws"
    authoritative = True  # EC2 is the source of truth: reconcile records with ``describe``/``discover``

    def __init__(self, config: AwsConfig, settings: Mapping[str, Any] | None = None, *, install: bool = False) -> None:
        settings = dict(settings or {})
        if "user" in settings and "shared" not in settings:  # a record older than [aws] shared: nodes share nothing
            settings["shared"] = "none"
        self.install = install  # [mpi] install: new nodes get user data that installs what the venv needs
        known = {f.name for f in dataclasses.fields(AwsConfig)}
        self.config = dataclasses.replace(config, **{k: v for k, v in settings.items() if k in known})
        self.ec2 = Ec2(self.config, settings.get("resolved_region") or self.config.region or None,
                       {k: settings[k] for k in RECORDED if k in settings}, _event_hooks)
        self.instances = Instances(self.ec2)
        self.journal = LaunchJournal(self.ec2)
        self.facts = TypeFacts(self.ec2)
        self.checks = PlanChecks(self.ec2, self.facts, PrivateChecks(self.ec2, self.facts, install=install))
        self.network = Network(self.ec2)
        self.launch = Launch(self.ec2, self.instances, self.checks, self.network, self.journal, install=install)
        self.teardown = Teardown(self.ec2, self.instances, self.journal)

    # -- what the deployer reads and sets ---------------------------------------------------------------------
    @property
    def region(self) -> str | None:
        return self.ec2.region

    @region.setter
    def region(self, value: str | None) -> None:
        self.ec2.region = value

    @property
    def resources(self) -> dict[str, Any]:
        """The resources this cluster created, as its record keeps them (one dict, shared by every part)."""
        return self.ec2.resources

    @property
    def reached_cloud(self) -> bool:
        """Whether a call that can create something was sent: until then a failed deploy left nothing."""
        return self.ec2.reached_cloud

    @property
    def on_record(self) -> Callable[[], None] | None:
        """Called (by the deployer) whenever ``resources`` must be on record before the next call goes out."""
        return self.ec2.on_record

    @on_record.setter
    def on_record(self, value: Callable[[], None] | None) -> None:
        self.ec2.on_record = value

    def client(self, service: str = "ec2", region: str | None = None) -> Any:
        """The boto3 client of ``service`` in this provider's region (``region``: another one), made once."""
        return self.ec2.client(service, region)

    def call(self, operation: str, service: str = "ec2", **params: Any) -> dict[str, Any]:
        """One API call; botocore errors become ccdsl errors (capacity errors as CapacityError)."""
        return self.ec2.call(operation, service, **params)

    def settings(self) -> dict[str, Any]:
        """What a cluster record must keep to reach this provider's resources from another process."""
        return {**dataclasses.asdict(self.config), "resolved_region": self.region, **self.resources}

    # -- Provider protocol -----------------------------------------------------------------------------------
    def zones(self, request: NodeRequest) -> list[str | None]:
        """Zones to try for ``request`` in order (None: let the subnet decide)."""
        return self.network.zones(request)

    def prepare(self, handle: str, contract: str | None, region: str | None = None, *, efa: bool = False,
                placement: str | None = None) -> None:
        """Create the per-cluster resources shared by every role (:meth:`.Network.prepare`)."""
        self.network.prepare(handle, contract, region, efa=efa, placement=placement)

    def check_plan(self, requests: Sequence[NodeRequest]) -> None:
        """Everything EC2 would refuse about a whole plan, before ANY role is created (:mod:`.aws_checks`)."""
        self.checks.check_plan(requests)

    def fabric_line(self, request: NodeRequest) -> str:
        """What the deployer journals after a role is created: ``EFA on: 32 interfaces``, ``EFA on: 1 of 32
        interfaces (…)``, or why it is off when the contract asked; empty when EFA was never in question."""
        efa = self.facts.fabric(request)
        return efa.line() if efa.on or request.options.get("efa") is not None else ""

    def create(self, request: NodeRequest, progress: Progress) -> list[Node]:
        """ONE RunInstances for the role (:meth:`.Launch.create`); ``wait_running`` follows."""
        return self.launch.create(request, progress)

    def wait_running(self, handle: str, nodes: Sequence[Node], progress: Progress) -> list[Node]:
        """Poll until every node runs (and has its addresses); reports ``running`` per node as it happens.  A node
        EC2 does not list yet is not visible yet (eventual consistency after RunInstances), not an error."""
        ids = [n.instance_id for n in nodes]
        roles = {n.instance_id: n.role for n in nodes}
        seen: set[str] = set()

        def check() -> list[Node] | None:
            current = self.instances.describe_ids(ids, roles)
            for n in current:
                if n.state == model.RUNNING and not n.address and not self.config.jump_host:
                    raise ProviderError(
                        f"instance {n.instance_id} ({n.role} {n.index}) runs but has no public IP address, and "
                        f"[aws] connect_address = 'public'",
                        hint="launch in a subnet that assigns public IPv4 addresses ([aws] subnet_id), or set [aws] "
                             "connect_address = 'private' when this machine reaches the VPC (VPN, Direct Connect)")
                if n.state == model.RUNNING and n.instance_id not in seen:
                    seen.add(n.instance_id)
                    progress(n.role, n.index, model.RUNNING)
                if n.state in (model.TERMINATED, SHUTTING_DOWN):
                    raise ProviderError(f"instance {n.instance_id} ({n.role} {n.index}) terminated while starting"
                                        f" ({n.extra.get('reason', 'no reason given')})")
            return current if len(seen) == len(ids) and len(current) == len(ids) else None

        return poll(check, what=f"{len(ids)} instance(s) of {handle} to run", timeout=self.config.wait_timeout,
                    interval=self.config.poll_interval)

    def start(self, handle: str, nodes: Sequence[Node]) -> list[Node]:
        """Start the stopped nodes; a node whose instance no longer exists is dropped (and logged).  None left:
        nothing can be started (a cluster of zero nodes is not running)."""
        ids = self.instances.act_on_instances("start_instances", [n.instance_id for n in nodes], handle)
        if not ids:
            raise ClusterError(f"cluster {handle}: none of its {len(nodes)} instance(s) exist any more, so nothing "
                               "can be started", hint=f"ccdsl terminate {handle} removes what is left")
        return self.wait_running(handle, [n for n in nodes if n.instance_id in ids], lambda *a: None)

    def stop(self, handle: str, nodes: Sequence[Node]) -> list[Node]:
        """Stop the nodes; a node whose instance no longer exists is dropped (and logged).  With ``[aws] scratch``
        it warns first: a stop empties instance storage, so what the scratch folder held is lost."""
        if self.config.scratch:
            log.warning("[aws] scratch = %r: stopping empties the nodes' instance storage, and what %s holds is lost "
                        "(resume mounts it again, empty); copy what you need out first", self.config.scratch,
                        self.config.scratch)
        ids = self.instances.act_on_instances("stop_instances", [n.instance_id for n in nodes], handle)
        roles = {n.instance_id: n.role for n in nodes}
        return self.instances.wait_state(ids, model.STOPPED, f"{len(ids)} instance(s) of {handle} to stop", roles)

    def terminate(self, handle: str, nodes: Sequence[Node]) -> None:
        """Terminate everything the cluster owns and verify by tag that nothing remains (:mod:`.aws_teardown`)."""
        self.teardown.terminate(handle, nodes)

    def release(self, handle: str, nodes: Sequence[Node]) -> None:
        """Terminate the cluster's instances but keep its security group, key pair and placement group (the
        deployer's failover to another type in the same region launches again at once)."""
        self.teardown.release(handle, nodes)

    def ec2_stopped(self, handle: str) -> dict[str, str]:
        """The cluster's spot instances that EC2 itself stopped, with their request's status code."""
        return self.teardown.ec2_stopped(handle)

    def leftovers(self, handle: str) -> list[str]:
        """Every resource still tagged with ``handle`` (terminated instances excluded), by id."""
        return self.teardown.leftovers(handle)

    def describe(self, handle: str) -> list[Node]:
        """The cluster's instances as EC2 sees them now (terminated and terminating ones excluded)."""
        return self.teardown.describe(handle)

    def describe_ids(self, ids: Iterable[str]) -> list[Node]:
        """The instances among ``ids`` that EC2 lists now, asked by id: reconcile's check that instances the listing
        by tag no longer shows are really gone (that listing can lag behind)."""
        return self.instances.describe_ids(ids)

    def discover(self) -> list[str]:
        """Handles of every cluster that owns something in this region (:meth:`.Teardown.discover`)."""
        return self.teardown.discover()
