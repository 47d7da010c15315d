"""The ``aws`` provider's network and access resources: the zones a role may use, the VPC and its default subnets,
the cluster's security group (SSH from one CIDR, all traffic between members) and the jump host's, its key pair
(private key 0600 in the data dir) and placement group.  Each is created once per cluster, tagged, and on record in
``resources`` before anything depends on it.
"""

from __future__ import annotations

import ipaddress
import os
import urllib.request
from pathlib import Path
from typing import Any

from ccdsl.errors import CapacityError, ConfigError, ProviderError
from ccdsl.executor.model import NodeRequest
from ccdsl.executor.providers.aws_api import Ec2
from ccdsl.executor.providers.aws_private import jump_auto


class Network:
    """Zones, VPC, subnets, security groups, key pair and placement group of one cluster."""

    def __init__(self, ec2: Ec2) -> None:
        self.ec2 = ec2
        self.config = ec2.config
        self.default_subnets: dict[tuple[str | None, str], str] = {}  # (region, zone) -> default subnet

    def zones(self, request: NodeRequest) -> list[str | None]:
        """Zones to try for ``request`` in order (None: let the subnet decide)."""
        ec2 = self.ec2
        ec2.set_region(request.region)
        if self.config.subnet_id:
            return [None]
        if ec2.resources.get("placement_zone"):  # a cluster placement group lives in one zone: every role there
            return [ec2.resources["placement_zone"]]
        if self.config.zones:
            return list(self.config.zones)
        # A zone is usable if the default VPC has a subnet there (older accounts have none in newer zones, and
        # RunInstances would fail) and the type is offered there.
        subnets = ec2.paginate("describe_subnets", "Subnets", Filters=[
            {"Name": "default-for-az", "Values": ["true"]}, {"Name": "state", "Values": ["available"]}])
        with_subnet = {s["AvailabilityZone"] for s in subnets}
        self.default_subnets.update({(ec2.region, s["AvailabilityZone"]): s["SubnetId"] for s in subnets})
        if not with_subnet:
            self.vpc_id()  # no default VPC at all is a setting to make ([aws] subnet_id), not "no capacity"
        offered = {o["Location"] for o in ec2.paginate(
            "describe_instance_type_offerings", "InstanceTypeOfferings", LocationType="availability-zone",
            Filters=[{"Name": "instance-type", "Values": [request.instance_type]}])}
        zones = sorted(with_subnet & offered)
        if not zones:
            raise CapacityError(f"{request.instance_type} is not offered in any zone of {ec2.region} that has a "
                                f"default subnet (default subnets: {', '.join(sorted(with_subnet)) or 'none'}; "
                                f"offered in: {', '.join(sorted(offered)) or 'none'})")
        return zones

    def prepare(self, handle: str, contract: str | None, region: str | None = None, *, efa: bool = False,
                placement: str | None = None) -> None:
        """Create the per-cluster resources shared by every role: security group, key pair, placement group
        (``placement``: its strategy, default ``[aws] placement_group``).  ``efa``: a role uses EFA, whose traffic
        the security group must allow to and from itself, both ways (EC2 UG "Get started with EFA and MPI")."""
        ec2, resources = self.ec2, self.ec2.resources
        ec2.set_region(region)
        if "vpc_id" not in resources:
            resources["vpc_id"] = self.vpc_id()
        if not self.config.security_group_id and "security_group_id_created" not in resources:
            resources["security_group_id_created"] = self.create_security_group(handle, contract)
        if efa and not self.config.security_group_id and not resources.get("efa_rules"):
            group = resources["security_group_id_created"]  # its ingress rule from itself exists already
            ec2.retry_not_visible(lambda: ec2.call("authorize_security_group_egress", GroupId=group, IpPermissions=[
                {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group, "Description": "ccdsl: EFA"}]}]))
            resources["efa_rules"] = True
        if not self.config.key_name and "key_name_created" not in resources:
            self.create_key_pair(handle, contract)
        strategy = self.config.placement_group if placement is None else placement
        if strategy and "placement_group_created" not in resources:
            name = f"ccdsl-{handle}"
            ec2.call("create_placement_group", GroupName=name, Strategy=strategy,
                     TagSpecifications=[{"ResourceType": "placement-group",
                                         "Tags": ec2.tags(handle, None, contract)}])
            resources["placement_group_created"] = name

    def vpc_id(self) -> str:
        """The VPC of ``[aws] subnet_id``, else the region's default VPC."""
        if self.config.subnet_id:
            subnets = self.ec2.call("describe_subnets", SubnetIds=[self.config.subnet_id])["Subnets"]
            subnet_vpc: str = subnets[0]["VpcId"]
            return subnet_vpc
        vpcs = self.ec2.call("describe_vpcs", Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            raise ConfigError(f"region {self.ec2.region} has no default VPC",
                              hint="set [aws] subnet_id in ccdsl.toml to a subnet of your VPC")
        default_vpc: str = vpcs[0]["VpcId"]
        return default_vpc

    def create_security_group(self, handle: str, contract: str | None) -> str:
        """The cluster's security group: SSH from :meth:`ssh_cidr`, all traffic between its members."""
        ec2 = self.ec2
        # "auto" jump host: SSH from outside reaches only it (its own group, :meth:`jump_group`); members, the jump
        # host among them, reach each other through the rule on this group itself
        cidr = "" if jump_auto(self.config) else self.ssh_cidr()
        group: str = ec2.call("create_security_group", GroupName=f"ccdsl-{handle}", VpcId=ec2.resources["vpc_id"],
                              Description=f"ccdsl cluster {handle}: " + (f"SSH from {cidr}, " if cidr else "")
                              + "all traffic between members",
                              TagSpecifications=[{"ResourceType": "security-group",
                                                  "Tags": ec2.tags(handle, None, contract)}])["GroupId"]
        ec2.resources["security_group_id_created"] = group  # recorded before the rules: terminate deletes it
        ec2.retry_not_visible(lambda: ec2.call("authorize_security_group_ingress", GroupId=group, IpPermissions=[
            *([ssh_rule(cidr)] if cidr else []),
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group, "Description": "ccdsl: cluster members"}]},
        ]))
        return group

    def ssh_cidr(self) -> str:
        """The configured CIDR, or this machine's public address as a /32 (never 0.0.0.0/0 by default)."""
        if self.config.ssh_cidr:
            from ccdsl.security import network

            net, problem = network(self.config.ssh_cidr)  # host bits are refused, never widened (x.y.z.9/0)
            if problem:
                raise ConfigError(f"[aws] ssh_cidr = {self.config.ssh_cidr!r} {problem}")
            return str(net)
        url = self.config.ip_discovery_url
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:  # URL from the user's config
                text = answer.read(100).decode("ascii", "replace").strip()
            address = ipaddress.ip_address(text)
        except (OSError, ValueError) as exc:
            raise ProviderError(f"cannot find this machine's public address from {url}: {exc}",
                                hint="set [aws] ssh_cidr in ccdsl.toml to the CIDR allowed to SSH in") from None
        return f"{address}/{address.max_prefixlen}"

    def create_key_pair(self, handle: str, contract: str | None) -> None:
        """The cluster's ed25519 key pair; its private key lands 0600 in the data dir."""
        from ccdsl.executor.state import data_dir

        name = f"ccdsl-{handle}"
        answer = self.ec2.call("create_key_pair", KeyName=name, KeyType="ed25519", TagSpecifications=[
            {"ResourceType": "key-pair", "Tags": self.ec2.tags(handle, None, contract)}])
        keys = data_dir() / "keys"
        keys.mkdir(exist_ok=True, mode=0o700)
        path = keys / f"{handle}.pem"
        write_private(path, openssh_private_key(answer["KeyMaterial"]))
        self.ec2.resources["key_name_created"] = name
        self.ec2.resources["key_path_created"] = str(path)

    def subnet_for(self, zone: object) -> str | None:  # a request option: str(zone) names it
        """The one subnet of every EFA interface: ``[aws] subnet_id``, else the default subnet of ``zone`` (known
        from :meth:`zones`, asked once otherwise); None: EC2's choice."""
        if self.config.subnet_id or not zone:
            return self.config.subnet_id or None
        key = (self.ec2.region, str(zone))
        if key not in self.default_subnets:
            subnets = self.ec2.call("describe_subnets", Filters=[
                {"Name": "default-for-az", "Values": ["true"]}, {"Name": "availability-zone", "Values": [str(zone)]}])
            if not subnets.get("Subnets"):
                return None
            self.default_subnets[key] = subnets["Subnets"][0]["SubnetId"]
        return self.default_subnets[key]

    def jump_group(self, handle: str, contract: str | None) -> str:
        """The security group of the "auto" jump host: SSH from ``ssh_cidr``; created once, tagged, deleted with
        the cluster's other groups."""
        ec2 = self.ec2
        if "jump_group_created" not in ec2.resources:
            cidr = self.ssh_cidr()
            group = ec2.call("create_security_group", GroupName=f"ccdsl-{handle}-jump",
                             VpcId=ec2.resources["vpc_id"], Description=f"ccdsl cluster {handle}: SSH from {cidr} "
                             "to the jump host", TagSpecifications=[{"ResourceType": "security-group",
                                                                     "Tags": ec2.tags(handle, None, contract)}]
                             )["GroupId"]
            ec2.resources["jump_group_created"] = group
            ec2.retry_not_visible(lambda: ec2.call("authorize_security_group_ingress", GroupId=group,
                                                   IpPermissions=[ssh_rule(cidr)]))
        return str(ec2.resources["jump_group_created"])


def ssh_rule(cidr: str) -> dict[str, Any]:
    """The ingress rule that admits SSH from ``cidr`` (IPv4 or IPv6)."""
    v6 = ":" in cidr
    return {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
            "Ipv6Ranges" if v6 else "IpRanges": [{"CidrIpv6" if v6 else "CidrIp": cidr, "Description": "ccdsl: SSH"}]}


def openssh_private_key(material: str) -> str:
    """The key pair's private key in OpenSSH format, which paramiko needs for ed25519.  AWS is known to return that
    format; should it return PKCS#8 PEM instead, convert it (``cryptography`` comes with paramiko)."""
    if "BEGIN OPENSSH PRIVATE KEY" in material:
        return material
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(material.encode(), password=None)
    except (ValueError, TypeError):
        return material  # not a PEM key either: write it as it came; loading it will name the problem
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption()).decode()


def write_private(path: Path, text: str) -> None:
    """Write a secret atomically with mode 0600 from the first byte (temp file + rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text if text.endswith("\n") else text + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
