"""What the aws provider sends for EFA and SMT (issue 23 items 1 and 5): RunInstances' ``NetworkInterfaces`` and
``CpuOptions``, the security group's self rules, the forced cluster placement group, and what is refused before
anything is created.  moto 5.2.5 drops or reinterprets ``NetworkInterfaces`` and ``CpuOptions``, so the parameters
are captured as the provider sent them (a botocore ``before-parameter-build`` hook); EC2 is moto's server with
tests/aws_like.py's placement groups and its ``InvalidParameterCombination`` refusal."""

from __future__ import annotations

import copy

import pytest

from aws_like import aws_like  # the fixture
from ccdsl.errors import ConfigError, ProviderError
from ccdsl.executor.model import NodeRequest
from fixtures_executor import data_dir, ec2, ec2_config, hooks, nat_subnet
from test_aws_behaviour import HANDLE, deploy_config, everything_tagged, nothing_left, provider

SENT = ("RunInstances", "CreateSecurityGroup", "CreateKeyPair", "CreatePlacementGroup",
        "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress")


def sent(hooks) -> list[tuple[str, dict]]:
    """(operation, parameters) of every call in SENT, as the provider sent it (before moto sees it)."""
    calls: list[tuple[str, dict]] = []

    def record(model, params, **_):
        if model.name in SENT:
            calls.append((model.name, copy.deepcopy(params)))

    hooks.append(("before-parameter-build.ec2", record))
    return calls


def only(calls, name) -> list[dict]:
    return [p for n, p in calls if n == name]


def request(instance_type, count=2, role="worker", **options):
    return NodeRequest(handle=HANDLE, role=role, instance_type=instance_type, count=count, region="us-east-1",
                       options={"contract": "efa", "zone": "us-east-1b", **options})


def default_subnet(ec2, zone="us-east-1b") -> str:
    return ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]},
                                         {"Name": "availability-zone", "Values": [zone]}])["Subnets"][0]["SubnetId"]


def create_and_terminate(p, req, ec2, layer):
    nodes = p.create(req, lambda *e: None)
    assert len(nodes) == req.count
    p.terminate(HANDLE, nodes)
    nothing_left(ec2, layer)


def self_rules(calls) -> tuple[list, list]:
    """The security group's rules that name the group itself, ingress and egress."""
    def to_self(params):
        return [r for r in params["IpPermissions"] for pair in r.get("UserIdGroupPairs", [])
                if pair["GroupId"] == params["GroupId"] and r["IpProtocol"] == "-1"]

    return ([r for p in only(calls, "AuthorizeSecurityGroupIngress") for r in to_self(p)],
            [r for p in only(calls, "AuthorizeSecurityGroupEgress") for r in to_self(p)])


def test_a_private_p5_gets_every_efa_interface_in_one_subnet_and_a_cluster_group(ec2_config, ec2, hooks, aws_like,
                                                                                nat_subnet):
    calls = sent(hooks)
    p = provider(ec2_config, private=True, connect_address="private", subnet_id=nat_subnet)
    create_and_terminate(p, request("p5.48xlarge"), ec2, aws_like)
    (run,) = only(calls, "RunInstances")
    interfaces = run["NetworkInterfaces"]
    assert len(interfaces) == 33
    assert [i["InterfaceType"] for i in interfaces].count("efa-only") == 32
    assert (interfaces[0]["NetworkCardIndex"], interfaces[0]["DeviceIndex"], interfaces[0]["InterfaceType"]) == (
        0, 0, "interface")
    assert sorted((i["NetworkCardIndex"], i["DeviceIndex"]) for i in interfaces[1:]) == [(0, 1)] + [
        (card, 0) for card in range(1, 32)]
    assert {i["SubnetId"] for i in interfaces} == {nat_subnet}  # one subnet
    group = only(calls, "CreateSecurityGroup")
    assert len(group) == 1 and all(i["Groups"] == [interfaces[0]["Groups"][0]] for i in interfaces)
    assert not any("AssociatePublicIpAddress" in i for i in interfaces)  # several interfaces: EC2 refuses it
    assert "SecurityGroupIds" not in run and "SubnetId" not in run
    (pg,) = only(calls, "CreatePlacementGroup")
    assert pg["Strategy"] == "cluster" and run["Placement"]["GroupName"] == pg["GroupName"]
    ingress, egress = self_rules(calls)
    assert ingress and egress


def test_a_public_hpc7g_gets_one_efa_interface_with_a_public_address(ec2_config, ec2, hooks, aws_like):
    calls = sent(hooks)
    p = provider(ec2_config)
    nodes = p.wait_running(HANDLE, p.create(request("hpc7g.16xlarge"), lambda *e: None), lambda *e: None)
    assert all(n.extra["public_ip"] for n in nodes)
    p.terminate(HANDLE, nodes)
    nothing_left(ec2, aws_like)
    (run,) = only(calls, "RunInstances")
    assert run["NetworkInterfaces"] == [{
        "NetworkCardIndex": 0, "DeviceIndex": 0, "InterfaceType": "efa", "Groups": [only(calls, "RunInstances")[0][
            "NetworkInterfaces"][0]["Groups"][0]], "SubnetId": default_subnet(ec2), "DeleteOnTermination": True,
        "AssociatePublicIpAddress": True}]
    assert only(calls, "CreatePlacementGroup")[0]["Strategy"] == "cluster"
    assert all(egress for egress in self_rules(calls))


def test_auto_gives_a_public_multi_card_node_one_interface_and_says_so(aws_env, data_dir, ec2, hooks, aws_like):
    import ccdsl
    from ccdsl.executor.deploy import Plan
    from ccdsl.executor.state import State
    from test_aws_behaviour import closed_port

    calls = sent(hooks)
    cfg = deploy_config(aws_env, zones=["us-east-1b"], address_map={"0": closed_port(), "1": closed_port()})
    plan = Plan("aws", (NodeRequest("", "worker", "p5.48xlarge", 2, region="us-east-1", options={"contract": "efa"}),))
    with pytest.raises(ProviderError, match="gave up"):  # nothing listens there: removed again
        ccdsl.deploy([plan], config=cfg)
    (run,) = only(calls, "RunInstances")
    assert [i["InterfaceType"] for i in run["NetworkInterfaces"]] == ["efa"]
    (record,) = State().list_clusters(live_only=False)
    said = [e.detail["text"] for e in State().journal_of(record.handle) if e.phase == "efa"]
    assert len(said) == 1 and said[0].startswith('EFA on: 1 of 32 interfaces ([aws] efa = "auto"')
    assert everything_tagged(ec2) == [] and aws_like.placement_groups() == []


@pytest.mark.parametrize("how", [{"efa": True}, {"efa_setting": "on"}])
def test_every_interface_of_a_public_p5_is_refused_before_anything_is_created(aws_env, data_dir, ec2, hooks,
                                                                               aws_like, how):
    """efa => true (the contract's, in the request's options) or [aws] efa = "on" with several network cards and
    public nodes: no launch, no security group, no key pair, no placement group."""
    import ccdsl
    from ccdsl.executor.deploy import Plan

    calls = sent(hooks)
    options = {"efa": True} if "efa" in how else {}
    cfg = deploy_config(aws_env, zones=["us-east-1b"], **({"efa": how["efa_setting"]} if "efa_setting" in how
                                                         else {}))
    plan = Plan("aws", (NodeRequest("", "manager", "m5.large", 1, region="us-east-1", options={"contract": "efa"}),
                        NodeRequest("", "worker", "p5.48xlarge", 2, region="us-east-1",
                                    options={"contract": "efa", **options})))
    with pytest.raises(ConfigError, match="private") as info:
        ccdsl.deploy([plan], config=cfg)
    assert "[aws] private = true" in info.value.hint
    assert calls == [] and everything_tagged(ec2) == [] and aws_like.placement_groups() == []


def test_private_efa_nodes_need_a_private_connect_address(ec2_config, ec2, hooks, aws_like, nat_subnet):
    """A private EFA node has no public address: connecting to it would fail after paying for the launch."""
    calls = sent(hooks)
    with pytest.raises(ConfigError, match="no public address") as info:
        provider(ec2_config, private=True).create(request("hpc7g.16xlarge"), lambda *e: None)
    assert 'connect_address = "private"' in info.value.hint
    assert calls == [] and everything_tagged(ec2) == []
    create_and_terminate(provider(ec2_config, private=True, connect_address="private", subnet_id=nat_subnet),
                         request("hpc7g.16xlarge"), ec2, aws_like)
    (run,) = only(calls, "RunInstances")
    assert [(i["InterfaceType"], i["AssociatePublicIpAddress"]) for i in run["NetworkInterfaces"]] == [("efa", False)]


def test_efa_off_sends_todays_parameters(ec2_config, ec2, hooks, aws_like):
    """efa => false (and a single node under auto): top-level group, no interfaces, no forced placement group."""
    calls = sent(hooks)
    p = provider(ec2_config)
    create_and_terminate(p, request("p5.48xlarge", efa=False), ec2, aws_like)
    create_and_terminate(provider(ec2_config), request("hpc7g.16xlarge", count=1), ec2, aws_like)
    for run in only(calls, "RunInstances"):
        assert "NetworkInterfaces" not in run and len(run["SecurityGroupIds"]) == 1 and "Placement" in run
        assert "GroupName" not in run["Placement"]
    assert only(calls, "CreatePlacementGroup") == [] and only(calls, "AuthorizeSecurityGroupEgress") == []


def test_a_spot_efa_role_gets_no_placement_group(ec2_config, ec2, hooks, aws_like):
    """Spot nodes that stop on interruption cannot be in a placement group: EFA alone does not force one."""
    calls = sent(hooks)
    p = provider(ec2_config)
    create_and_terminate(p, request("c5n.18xlarge", market="spot"), ec2, aws_like)
    (run,) = only(calls, "RunInstances")
    assert [i["InterfaceType"] for i in run["NetworkInterfaces"]] == ["efa"]
    assert "GroupName" not in run["Placement"] and only(calls, "CreatePlacementGroup") == []


def test_smt_off_sends_one_thread_per_core(ec2_config, ec2, hooks, aws_like):
    calls = sent(hooks)
    create_and_terminate(provider(ec2_config, smt=False), request("c6id.32xlarge", count=1), ec2, aws_like)
    create_and_terminate(provider(ec2_config, smt=False), request("hpc7g.16xlarge", count=1), ec2, aws_like)
    create_and_terminate(provider(ec2_config), request("c6id.32xlarge", count=1), ec2, aws_like)
    c6id, hpc7g, smt_on = only(calls, "RunInstances")
    assert c6id["CpuOptions"] == {"CoreCount": 64, "ThreadsPerCore": 1}
    assert "CpuOptions" not in hpc7g  # Graviton runs one thread per core already
    assert "CpuOptions" not in smt_on


def test_smt_off_refuses_a_metal_type_before_anything_is_created(aws_env, data_dir, ec2, hooks, aws_like):
    import ccdsl
    from ccdsl.executor.deploy import Plan

    calls = sent(hooks)
    cfg = deploy_config(aws_env, zones=["us-east-1b"], smt=False)
    plan = Plan("aws", (NodeRequest("", "worker", "c6i.metal", 2, region="us-east-1", options={"contract": "smt"}),))
    with pytest.raises(ConfigError, match="bare-metal") as info:
        ccdsl.deploy([plan], config=cfg)
    assert "smt = true" in info.value.hint
    assert calls == [] and everything_tagged(ec2) == []


def test_the_new_keys_are_validated(data_dir):
    from ccdsl.executor.config import Config

    with pytest.raises(ConfigError, match="efa must be one of"):
        Config.from_dict({"aws": {"efa": "yes"}})
    with pytest.raises(ConfigError, match="smt must be a boolean"):
        Config.from_dict({"aws": {"smt": "false"}})
    cfg = Config.from_dict({"aws": {"efa": "on", "private": True, "smt": False}})
    assert (cfg.aws.efa, cfg.aws.private, cfg.aws.smt) == ("on", True, False)


@pytest.mark.parametrize("text, expected", [
    ('c = @cluster(node_count => 2, efa => true, node_vcpus_count => @atleast(16))', {"worker": True}),
    ('c = @cluster(node_count => 2, efa => false, node_vcpus_count => @atleast(16))', {"worker": False}),
    ('c = @cluster(node_count => 2, node_vcpus_count => @atleast(16))', {}),
    ('c = @cluster(cluster_type => ManagerWorkers, node_count => 2, worker.efa => true, '
     'worker.node_vcpus_count => @atleast(16))', {"worker": True}),
])
def test_deploy_carries_the_contracts_efa_clause_per_role(text, expected):
    """The provider decides with the role's own clause: ``options["efa"]`` (absent: not said)."""
    from ccdsl.executor.deploy import spec_of
    from ccdsl.language import parse
    from ccdsl.resolver import resolve

    (contract,) = parse(text).values()
    for plan in spec_of(resolve(contract, top=2)).plans:
        assert {r.role: r.options["efa"] for r in plan.requests if "efa" in r.options} == expected


def test_only_the_efa_role_goes_into_the_forced_cluster_group(ec2_config, ec2, hooks, aws_like):
    """ManagerWorkers: the manager (no EFA) keeps today's parameters although the group exists already; the EFA
    roles get the group, and the egress rule is added once."""
    calls = sent(hooks)
    described: list[list[str]] = []
    hooks.append(("before-parameter-build.ec2.DescribeInstanceTypes",
                  lambda params, **_: described.append(list(params["InstanceTypes"]))))
    p = provider(ec2_config)
    workers = p.create(request("hpc7g.16xlarge", count=2), lambda *e: None)
    manager = p.create(request("m5.large", count=1, role="manager"), lambda *e: None)
    more = p.create(request("c5n.18xlarge", count=2, role="other"), lambda *e: None)
    p.terminate(HANDLE, manager + workers + more)
    nothing_left(ec2, aws_like)
    efa_workers, plain_manager, efa_other = only(calls, "RunInstances")
    assert "GroupName" not in plain_manager["Placement"] and "NetworkInterfaces" not in plain_manager
    for run in (efa_workers, efa_other):
        assert run["Placement"] == {"AvailabilityZone": "us-east-1b", "GroupName": f"ccdsl-{HANDLE}"}
    assert len(only(calls, "CreatePlacementGroup")) == 1 and len(only(calls, "AuthorizeSecurityGroupEgress")) == 1
    assert described == [["hpc7g.16xlarge"], ["m5.large"], ["c5n.18xlarge"]]  # once per type: no call per decision


@pytest.mark.parametrize("text, expected", [
    ('c = @cluster(node_count => 2, smt => false, node_vcpus_count => @atleast(16))', {"worker": False}),
    ('c = @cluster(node_count => 2, smt => true, node_vcpus_count => @atleast(16))', {"worker": True}),
    ('c = @cluster(node_count => 2, node_vcpus_count => @atleast(16))', {}),
    ('c = @cluster(cluster_type => ManagerWorkers, node_count => 2, worker.smt => false, '
     'worker.node_vcpus_count => @atleast(16))', {"worker": False}),
])
def test_deploy_carries_the_contracts_smt_clause_per_role(text, expected):
    """The provider sends CpuOptions for the role's own clause: ``options["smt"]`` (absent: [aws] smt decides)."""
    from ccdsl.executor.deploy import spec_of
    from ccdsl.language import parse
    from ccdsl.resolver import resolve

    (contract,) = parse(text).values()
    for plan in spec_of(resolve(contract, top=2)).plans:
        assert {r.role: r.options["smt"] for r in plan.requests if "smt" in r.options} == expected


def test_the_contracts_smt_clause_decides_its_role_over_the_file(ec2_config, ec2, hooks, aws_like):
    calls = sent(hooks)
    create_and_terminate(provider(ec2_config), request("c6id.32xlarge", count=1, smt=False), ec2, aws_like)
    create_and_terminate(provider(ec2_config, smt=False), request("c6id.32xlarge", count=1, smt=True), ec2,
                         aws_like)
    asked_off, asked_on = only(calls, "RunInstances")
    assert asked_off["CpuOptions"] == {"CoreCount": 64, "ThreadsPerCore": 1}
    assert "CpuOptions" not in asked_on


def test_a_metal_type_that_runs_one_thread_per_core_needs_no_cpu_options(ec2_config, ec2, hooks, aws_like):
    """c7g.metal (Graviton) runs one thread per core: smt => false asks nothing of it, as the catalog says
    (single_thread), and it is not refused for being bare metal."""
    calls = sent(hooks)
    create_and_terminate(provider(ec2_config), request("c7g.metal", count=1, smt=False), ec2, aws_like)
    (run,) = only(calls, "RunInstances")
    assert "CpuOptions" not in run


def test_a_plan_naming_a_metal_type_under_the_contracts_smt_false_is_refused(ec2_config, ec2, hooks):
    calls = sent(hooks)
    with pytest.raises(ConfigError, match="contract's smt => false") as info:
        provider(ec2_config).create(request("c6i.metal", count=1, smt=False), lambda *e: None)
    assert "choose another type" in info.value.hint
    assert calls == [] and everything_tagged(ec2) == []
