"""Private nodes (``[aws] private``, ``jump_host``) and what they need, refused before anything is created: a
bastion admitted to port 22, a jump node that can take a public address, and for nodes that download a route
through a NAT gateway.
"""

from __future__ import annotations

from ccdsl.errors import ConfigError
from ccdsl.executor.config import AwsConfig
from ccdsl.executor.model import NodeRequest
from ccdsl.executor.providers import efa_boot, shared_fs
from ccdsl.executor.providers.aws_api import Ec2
from ccdsl.executor.providers.aws_types import TypeFacts


def jump_auto(config: AwsConfig) -> bool:
    """Whether one node of the cluster itself is the jump host: the manager, else PeerWorkers' node 0."""
    return config.private and config.jump_host == "auto"


class PrivateChecks:
    """The checks private nodes need, and which role holds the "auto" jump host (``roles``: the roles of the plan
    being launched, filled by the plan's check and by each role's)."""

    def __init__(self, ec2: Ec2, facts: TypeFacts, *, install: bool) -> None:
        self.ec2 = ec2
        self.config = ec2.config
        self.facts = facts
        self.install = install
        self.roles: set[str] = set()
        self.nat_checked: set[str] = set()  # subnets whose route to a NAT gateway was found

    def check(self, request: NodeRequest) -> None:
        """What private nodes need, refused before anything is created: a bastion's address admitted to port 22
        (``ssh_cidr``: this machine's public address is no use behind a bastion), a jump node that can take a
        public address (a single network interface), and, for nodes that download, a NAT route."""
        self.roles.add(request.role)
        config = self.config
        bastion = bool(config.jump_host) and config.jump_host != "auto"
        if bastion and not config.ssh_cidr and not config.security_group_id:
            raise ConfigError(f"[aws] jump_host = {config.jump_host!r} reaches the nodes from the bastion, but "
                              "[aws] ssh_cidr is empty (ccdsl would admit this machine's public address to port 22, "
                              "not the bastion's)",
                              hint="set [aws] ssh_cidr to the address the nodes see the bastion from (its private "
                                   "address/32, or its subnet), or security_group_id to a group that admits it")
        if not config.private:
            return
        if jump_auto(config) and self.is_jump_role(request) and self.facts.fabric(request).interfaces > 1:
            raise ConfigError(f"{request.instance_type} ({request.role}) would be the jump host ([aws] jump_host = "
                              f"\"auto\") with {self.facts.fabric(request).interfaces} EFA interfaces, but a node "
                              "with a public address takes a single network interface",
                              hint='use a bastion (jump_host = "user@host:port"), or [aws] efa = "auto"')
        needs = self.downloads(request)
        if needs and jump_auto(config):
            raise ConfigError(f"private nodes that download ({needs}) need a subnet routed through a NAT gateway, "
                              "where the public address of the \"auto\" jump host, launched in the same subnet, "
                              "would not answer (its replies would leave through the NAT gateway)",
                              hint='use a bastion (jump_host = "user@host:port") in a public subnet, or an image '
                                   "with mpich, mpi4py and cloudpickle ([mpi] install = false); for EFA, "
                                   '[aws] efa = "off" (or the contract\'s efa => false); for the shared folder, '
                                   '[aws] shared = "none"')
        if needs:
            for subnet in self.private_subnets():
                self.check_nat(subnet, needs)

    def is_jump_role(self, request: NodeRequest) -> bool:
        """Whether ``request`` holds the "auto" jump host: the manager, or the workers when there is none."""
        return request.role == "manager" or "manager" not in self.roles

    def downloads(self, request: NodeRequest) -> str:
        """What makes ``request``'s new nodes download from the internet (empty: nothing): ``[mpi] install`` (apt
        and pip), EFA (the EFA installer, :mod:`.efa_boot`), ``[aws] shared`` (the NFS packages)."""
        needs = ["[mpi] install = true (apt-get and pip on every new node)"] if self.install else []
        if self.facts.efa_software(request):
            needs.append(f"EFA on {request.instance_type} (the EFA installer, {efa_boot.INSTALLER_URL})")
        return ", ".join(needs + shared_fs.downloads(self.config.shared))

    def private_subnets(self) -> list[str]:
        """The subnets private nodes may be launched in: ``[aws] subnet_id``, else the default subnets (of
        ``[aws] zones`` when given)."""
        if self.config.subnet_id:
            return [self.config.subnet_id]
        filters = [{"Name": "default-for-az", "Values": ["true"]}]
        if self.config.zones:
            filters.append({"Name": "availability-zone", "Values": list(self.config.zones)})
        return sorted(s["SubnetId"] for s in self.ec2.paginate("describe_subnets", "Subnets", Filters=filters))

    def check_nat(self, subnet: str, needs: str) -> None:
        """Refuse ``subnet`` unless its route table (its own, else its VPC's main one) sends 0.0.0.0/0 to a NAT
        gateway: a node without a public address reaches the internet only so (VPC UG "NAT gateways")."""
        if subnet in self.nat_checked:
            return
        call = self.ec2.call
        tables = call("describe_route_tables", Filters=[
            {"Name": "association.subnet-id", "Values": [subnet]}])["RouteTables"]
        if not tables:
            vpc = call("describe_subnets", SubnetIds=[subnet])["Subnets"][0]["VpcId"]
            tables = call("describe_route_tables", Filters=[
                {"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
        routes = [r for t in tables for r in t.get("Routes", []) if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
        if not any(r.get("NatGatewayId") and r.get("State", "active") == "active" for r in routes):
            instead = next((v for r in routes for k, v in r.items() if k.endswith("Id")), "")
            raise ConfigError(f"private nodes in subnet {subnet} cannot download: its route table sends 0.0.0.0/0 "
                              + (f"to {instead}, not to a NAT gateway" if instead else "nowhere") + f", and {needs}",
                              hint="set [aws] subnet_id to a private subnet whose route table sends 0.0.0.0/0 to a "
                                   "NAT gateway, or use an image with MPI installed ([mpi] install = false); for EFA, "
                                   '[aws] efa = "off" (or the contract\'s efa => false); for the shared folder, '
                                   '[aws] shared = "none"')
        self.nat_checked.add(subnet)
