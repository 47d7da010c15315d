"""The aws provider under EC2's real behaviour (tests/aws_like.py): eventual consistency, slow terminations, spot
requests, vanished ids, unknown types, busy placement groups.  Each lifecycle ends with nothing left."""

from __future__ import annotations

import pytest

from aws_like import AwsLike, aws_like, error  # noqa: F401  (fixture)
from ccdsl.errors import CapacityError, ProviderError
from ccdsl.executor.model import NodeRequest
from fixtures_executor import data_dir, ec2, ec2_config, hooks, tagged  # noqa: F401

HANDLE = "BeHaViOuRsOfAwS"


def provider(cfg, **aws):
    from ccdsl.executor.providers import aws as aws_mod

    return aws_mod.make(cfg.replace(aws=aws) if aws else cfg, {})


def request(count=2, role="worker", instance_type="t3.xlarge", **kw):
    return NodeRequest(handle=HANDLE, role=role, instance_type=instance_type, count=count, region="us-east-1",
                       options={"contract": "demo", "zone": "us-east-1b"}, **kw)


def launch(p, req):
    return p.wait_running(HANDLE, p.create(req, lambda *e: None), lambda *e: None)


def nothing_left(ec2, layer: AwsLike) -> None:
    assert tagged(ec2, HANDLE) == {}
    assert layer.open_spot_requests() == []
    assert layer.placement_groups() == []


def lifecycle(p, req, layer, ec2, between=lambda nodes: None):
    """deploy -> interrupt -> resume -> terminate, at the provider; returns the nodes that were resumed."""
    nodes = launch(p, req)
    assert {n.state for n in nodes} == {"running"} and len(nodes) == req.count
    between(nodes)
    stopped = p.stop(HANDLE, nodes)
    assert {n.state for n in stopped} == {"stopped"}
    started = p.start(HANDLE, stopped)
    assert {n.state for n in started} == {"running"}
    p.terminate(HANDLE, started)
    assert p.leftovers(HANDLE) == []
    nothing_left(ec2, layer)
    return started


# -- each behaviour: the whole lifecycle still works and leaves nothing -------------------------------------------
def test_fresh_ids_unknown_at_first(ec2_config, ec2, aws_like):
    aws_like.enable("not_found_first")
    lifecycle(provider(ec2_config), request(), aws_like, ec2)
    # the fresh security group, key pair and instances were each refused or missing once
    assert aws_like.fired["not_found_first"] >= 4


def test_shutting_down_for_a_while(ec2_config, ec2, aws_like):
    aws_like.enable("shutting_down", polls=4)
    lifecycle(provider(ec2_config), request(), aws_like, ec2)
    assert aws_like.fired["shutting_down"] >= 4


def test_shutting_down_with_the_users_own_security_group(ec2_config, ec2, aws_like, tmp_path):
    """The flow in which terminate used to fail almost every time: no group of ccdsl's to delete, so the in-use
    root volumes of the shutting-down instances were the first thing the leftovers check saw."""
    aws_like.enable("shutting_down", polls=3)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    sg = ec2.create_security_group(GroupName="mine", Description="mine", VpcId=vpc)["GroupId"]
    ec2.create_key_pair(KeyName="mykey")
    p = provider(ec2_config, security_group_id=sg, key_name="mykey", key_path=str(tmp_path / "k"))
    nodes = launch(p, request(count=1))
    p.terminate(HANDLE, nodes)
    nothing_left(ec2, aws_like)
    assert aws_like.fired["shutting_down"] >= 1
    assert ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"]


def test_a_vanished_instance_does_not_block_the_lifecycle(ec2_config, ec2, aws_like):
    aws_like.enable("vanish")
    p = provider(ec2_config)
    resumed = lifecycle(p, request(count=3), aws_like, ec2, between=lambda nodes: aws_like.vanish(nodes[1].instance_id))
    assert [n.index for n in resumed] == [0, 2]
    assert aws_like.fired["vanish"] >= 1  # stop met it and went on without it


def test_terminate_with_a_vanished_id_on_record(ec2_config, ec2, aws_like):
    """One node disappeared an hour ago; terminate must still stop every other node."""
    aws_like.enable("vanish")
    p = provider(ec2_config)
    nodes = launch(p, request(count=3))
    aws_like.vanish(nodes[0].instance_id)
    p.terminate(HANDLE, nodes)
    nothing_left(ec2, aws_like)


def test_busy_placement_group_is_retried(ec2_config, ec2, aws_like):
    aws_like.enable("placement_group_in_use", in_use=3)
    p = provider(ec2_config, placement_group="spread")
    lifecycle(p, request(), aws_like, ec2)
    assert aws_like.fired["placement_group_in_use"] == 3


def test_placement_group_waits_for_shutting_down_members(ec2_config, ec2, aws_like):
    aws_like.enable("shutting_down", polls=3)
    lifecycle(provider(ec2_config, placement_group="spread"), request(), aws_like, ec2)


def test_every_behaviour_at_once(ec2_config, ec2, aws_like):
    aws_like.enable("not_found_first", "shutting_down", "placement_group_in_use", "idempotency", polls=3, in_use=1)
    lifecycle(provider(ec2_config, placement_group="spread"), request(count=3), aws_like, ec2)


# -- single findings ----------------------------------------------------------------------------------------------
def test_a_type_ec2_does_not_offer_is_a_capacity_error(ec2_config, ec2, aws_like):
    """DescribeInstanceTypes raises InvalidInstanceType rather than answering an empty list; that must reach the
    deployer as 'no capacity' so it fails over, and nothing may be left."""
    aws_like.enable("invalid_type", bad_types=("t3.xlarge",))
    p = provider(ec2_config)
    with pytest.raises(CapacityError, match="InvalidInstanceType"):
        p.create(request(), lambda *e: None)
    assert aws_like.fired["invalid_type"] == 1
    p.terminate(HANDLE, [])
    nothing_left(ec2, aws_like)


def test_ssm_errors_name_ssm(ec2_config, hooks):
    hooks.append(("before-call.ssm.GetParameter", lambda **_: error("ParameterNotFound", "no such parameter")))
    with pytest.raises(ProviderError) as info:
        launch(provider(ec2_config), request(count=1))
    assert info.value.message.startswith("SSM") and "EC2" not in info.value.message


def test_role_comes_from_the_request_not_the_answer(ec2_config, hooks):
    """Whether RunInstances answers with the instances' tags is not documented: without them a manager is still
    a manager."""
    def strip(parsed, **_):
        for i in parsed.get("Instances", []):
            i.pop("Tags", None)

    hooks.append(("after-call.ec2.RunInstances", strip))
    p = provider(ec2_config)
    created = p.create(request(count=1, role="manager"), lambda *e: None)
    assert [n.role for n in created] == ["manager"]
    assert [n.role for n in p.wait_running(HANDLE, created, lambda *e: None)] == ["manager"]
    p.terminate(HANDLE, created)


# -- records follow the cloud ---------------------------------------------------------------------------------------
def adopted(cfg, count=3, spot=False):
    """A cluster made at the provider and adopted by ``clusters()`` (no SSH needed for the lifecycle below)."""
    import ccdsl

    p = provider(cfg)
    nodes = launch(p, request(count=count, spot=spot))
    (info,) = ccdsl.clusters(config=cfg)
    assert info.status == "running" and info.nodes == count
    return nodes


def test_reconcile_drops_rows_of_instances_that_are_gone(ec2_config, ec2, aws_like):
    import ccdsl

    aws_like.enable("vanish")
    nodes = adopted(ec2_config)
    aws_like.vanish(nodes[2].instance_id)
    (info,) = ccdsl.clusters(config=ec2_config)
    assert info.nodes == 2 and "no longer exist" in info.note
    ccdsl.terminate(HANDLE, config=ec2_config)
    nothing_left(ec2, aws_like)


def test_interrupt_and_resume_go_on_without_a_vanished_node(ec2_config, ec2, aws_like):
    import ccdsl
    from ccdsl.executor.state import State

    aws_like.enable("vanish")
    nodes = adopted(ec2_config)
    aws_like.vanish(nodes[1].instance_id)
    ccdsl.interrupt(HANDLE, config=ec2_config)
    assert [(n.index, n.state) for n in State().nodes(HANDLE)] == [(0, "stopped"), (2, "stopped")]
    ccdsl.terminate(HANDLE, config=ec2_config)
    nothing_left(ec2, aws_like)


def test_spot_nodes_restarted_by_ec2_show_running(ec2_config, ec2, aws_like):
    """Stop-on-interruption spot: EC2 stops the nodes when it needs the capacity and starts them when it returns.
    Reconcile follows both ways (here the 'outside' stop and start are done on moto directly)."""
    import ccdsl
    from ccdsl.executor.state import State

    nodes = adopted(ec2_config, count=2)
    ids = [n.instance_id for n in nodes]
    ec2.stop_instances(InstanceIds=ids)
    (info,) = ccdsl.clusters(config=ec2_config)
    assert info.status == "interrupted"
    ec2.start_instances(InstanceIds=ids)
    (info,) = ccdsl.clusters(config=ec2_config)
    assert info.status == "running" and "started again" in info.note
    assert len(State().workers(HANDLE)) == 2
    ccdsl.terminate(HANDLE, config=ec2_config)
    nothing_left(ec2, aws_like)
