"""What the aws provider sends for private nodes (issue 23 item 2): ``AssociatePublicIpAddress: false`` on the
interface of every private node, a public address only on the "auto" jump host (the manager, or PeerWorkers' node
0 launched alone), port 22 from ``ssh_cidr`` only on the jump host's own group, and the NAT route that nodes which
download need -- refused before anything is created.  Parameters are captured as the provider sent them (a
botocore hook); EC2 is moto's server."""

from __future__ import annotations

import pytest

from aws_like import aws_like  # the fixture
from ccdsl.errors import ConfigError
from fixtures_executor import data_dir, ec2, ec2_config, hooks, nat_subnet
from test_aws_behaviour import HANDLE, nothing_left, provider
from test_executor_aws_efa import only, request, sent

BASTION = {"private": True, "jump_host": "ubuntu@198.51.100.7:22", "ssh_cidr": "10.0.0.7/32"}


def public_flags(run) -> list[bool]:
    return [i["AssociatePublicIpAddress"] for i in run["NetworkInterfaces"]]


def ssh_rules(calls) -> dict[str, list[str]]:
    """Security group id -> the CIDRs its ingress rules admit to port 22."""
    out: dict[str, list[str]] = {}
    for p in only(calls, "AuthorizeSecurityGroupIngress"):
        for r in p["IpPermissions"]:
            if r.get("FromPort") == 22:
                out.setdefault(p["GroupId"], []).extend(x["CidrIp"] for x in r.get("IpRanges", []))
    return out


def test_private_nodes_behind_a_bastion_get_no_public_address(ec2_config, ec2, hooks, aws_like):
    calls = sent(hooks)
    p = provider(ec2_config, **BASTION)
    nodes = p.wait_running(HANDLE, p.create(request("t3.xlarge", count=3), lambda *e: None), lambda *e: None)
    try:
        (run,) = only(calls, "RunInstances")
        assert "SecurityGroupIds" not in run and "SubnetId" not in run  # both live on the interface
        assert public_flags(run) == [False]
        assert [(n.index, n.address) for n in nodes] == [(0, None), (1, None), (2, None)]
        assert all(n.private_address for n in nodes)
        assert len(only(calls, "CreateSecurityGroup")) == 1
        assert ssh_rules(calls) == {run["NetworkInterfaces"][0]["Groups"][0]: ["10.0.0.7/32"]}  # the bastion only
    finally:
        p.terminate(HANDLE, nodes)
    nothing_left(ec2, aws_like)


def test_peer_workers_auto_launch_node_0_alone_as_the_only_public_node(ec2_config, ec2, hooks, aws_like):
    calls = sent(hooks)
    p = provider(ec2_config, private=True, jump_host="auto")
    p.check_plan([request("t3.xlarge", count=3)])
    nodes = p.wait_running(HANDLE, p.create(request("t3.xlarge", count=3), lambda *e: None), lambda *e: None)
    try:
        first, rest = only(calls, "RunInstances")
        assert (first["MinCount"], rest["MinCount"]) == (1, 2)
        assert public_flags(first) == [True] and public_flags(rest) == [False]
        cluster_group, jump_group = (g["GroupName"] for g in only(calls, "CreateSecurityGroup"))
        assert (cluster_group, jump_group) == (f"ccdsl-{HANDLE}", f"ccdsl-{HANDLE}-jump")
        assert len(first["NetworkInterfaces"][0]["Groups"]) == 2 and len(rest["NetworkInterfaces"][0]["Groups"]) == 1
        rules = ssh_rules(calls)
        jump_only = set(first["NetworkInterfaces"][0]["Groups"]) - set(rest["NetworkInterfaces"][0]["Groups"])
        assert rules == {jump_only.pop(): ["203.0.113.0/24"]}  # port 22 from outside: only the jump host's group
        assert [n.index for n in nodes] == [0, 1, 2]
        assert nodes[0].address and nodes[1].address is None and nodes[2].address is None
        assert sorted(n.index for n in p.describe(HANDLE)) == [0, 1, 2]  # indices survive a reconnect (tag)
    finally:
        p.terminate(HANDLE, nodes)
    nothing_left(ec2, aws_like)


def test_manager_workers_auto_the_manager_is_the_jump_host(ec2_config, ec2, hooks, aws_like):
    calls = sent(hooks)
    p = provider(ec2_config, private=True, jump_host="auto")
    manager, workers = request("t3.micro", count=1, role="manager"), request("t3.xlarge", count=2)
    p.check_plan([manager, workers])
    nodes = [*p.create(manager, lambda *e: None), *p.create(workers, lambda *e: None)]
    try:
        to_manager, to_workers = only(calls, "RunInstances")
        assert (to_manager["InstanceType"], public_flags(to_manager)) == ("t3.micro", [True])
        assert (to_workers["MinCount"], public_flags(to_workers)) == (2, [False])
    finally:
        p.terminate(HANDLE, nodes)
    nothing_left(ec2, aws_like)


def default_vpc_to_the_internet(ec2) -> str:
    """The default VPC's main route table as EC2 has it (moto's has no route out): 0.0.0.0/0 to an internet
    gateway."""
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                              {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]
    ec2.create_route(RouteTableId=main["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    return igw


def test_nodes_that_download_are_refused_a_subnet_without_a_nat_route(ec2_config, ec2, hooks):
    igw = default_vpc_to_the_internet(ec2)
    calls = sent(hooks)
    p = provider(ec2_config.replace(mpi={"install": True}), **BASTION)
    with pytest.raises(ConfigError, match=rf"cannot download: its route table sends 0.0.0.0/0 to {igw}, not to a NAT "
                                          r"gateway, and \[mpi\] install") as info:
        p.check_plan([request("t3.xlarge")])
    assert "NAT gateway" in info.value.hint
    assert only(calls, "RunInstances") == [] and only(calls, "CreateSecurityGroup") == []
    assert not p.reached_cloud


def test_nodes_that_download_launch_in_a_subnet_with_a_nat_route(ec2_config, ec2, hooks, aws_like, nat_subnet):
    calls = sent(hooks)
    p = provider(ec2_config.replace(mpi={"install": True}), **BASTION, subnet_id=nat_subnet)
    p.check_plan([request("t3.xlarge")])
    nodes = p.create(request("t3.xlarge"), lambda *e: None)
    try:
        (run,) = only(calls, "RunInstances")
        assert run["NetworkInterfaces"][0]["SubnetId"] == nat_subnet and public_flags(run) == [False]
    finally:
        p.terminate(HANDLE, nodes)
    nothing_left(ec2, aws_like)


def test_auto_refuses_nodes_that_download(ec2_config, hooks):
    """The jump host of "auto" shares the nodes' subnet: one routed through a NAT gateway does not let its public
    address answer, and without one the nodes cannot download."""
    calls = sent(hooks)
    p = provider(ec2_config.replace(mpi={"install": True}), private=True, jump_host="auto")
    with pytest.raises(ConfigError, match="would not answer") as info:
        p.check_plan([request("t3.xlarge")])
    assert "bastion" in info.value.hint and only(calls, "CreateSecurityGroup") == []


def test_a_bastion_needs_its_address_admitted(ec2_config, hooks):
    calls = sent(hooks)
    p = provider(ec2_config, **{**BASTION, "ssh_cidr": ""})
    with pytest.raises(ConfigError, match="ssh_cidr is empty"):
        p.check_plan([request("t3.xlarge")])
    assert only(calls, "CreateSecurityGroup") == []


def test_node_0_alone_is_terminated_when_the_others_get_no_capacity(ec2_config, ec2, hooks, aws_like):
    """PeerWorkers behind its node 0: when the second RunInstances finds no capacity, node 0 does not stay
    behind (the deployer's next zone launches both again)."""
    from urllib.parse import parse_qs

    from ccdsl.errors import CapacityError
    from fixtures_executor import inject

    def the_others(request):
        body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
        return parse_qs(body).get("MinCount") == ["2"]

    full = inject(None, "InsufficientInstanceCapacity", "no capacity", when=the_others)
    hooks.append(("before-send.ec2.RunInstances", full))
    p = provider(ec2_config, private=True, jump_host="auto")
    p.check_plan([request("t3.xlarge", count=3)])
    with pytest.raises(CapacityError, match="InsufficientInstanceCapacity"):
        p.create(request("t3.xlarge", count=3), lambda *e: None)
    assert full.failed == 1
    live = [i for r in ec2.describe_instances(Filters=[
        {"Name": "tag:ccdsl:cluster", "Values": [HANDLE]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"] for i in r["Instances"]]
    assert live == []
    p.terminate(HANDLE, [])
    nothing_left(ec2, aws_like)
