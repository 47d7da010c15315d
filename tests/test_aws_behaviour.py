"""The aws provider under EC2's real behaviour (tests/aws_like.py): eventual consistency, slow terminations, spot
requests, vanished ids, unknown types, busy placement groups.  Each lifecycle ends with nothing left."""

from __future__ import annotations

import dataclasses
import json

import pytest

from aws_like import AwsLike, aws_like, error  # aws_like: the fixture
from ccdsl.errors import CapacityError, ProviderError
from ccdsl.executor.model import NodeRequest
from fixtures_executor import aws_settings, data_dir, ec2, ec2_config, hooks, tagged
from fixtures_netns import netns_hosts
from moto_patches import LOOPBACK_ONLY

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


def test_an_adopted_cluster_shows_its_market_and_refuses_down_when_spot(ec2_config, ec2, aws_like):
    """A cluster found in the cloud by its tags has no cost record: its market per role comes from EC2 (a spot
    instance names its spot request), and autostop --down is refused for it although [aws] spot is not set."""
    import ccdsl
    from ccdsl.errors import ConfigError

    aws_like.enable("spot_requests")
    adopted(ec2_config, count=2, spot=True)
    (info,) = ccdsl.clusters(config=ec2_config)
    assert info.market == "spot" and "(spot)" in info.describe()
    assert ec2_config.aws.spot is False
    with pytest.raises(ConfigError, match="--down is not available for spot clusters"):
        ccdsl.autostop(HANDLE, "1h", down=True, config=ec2_config)
    ccdsl.terminate(HANDLE, config=ec2_config)
    nothing_left(ec2, aws_like)
    other = "OnDemandAdopted"  # an on-demand cluster, adopted the same way
    p = provider(ec2_config)
    p.wait_running(other, p.create(dataclasses.replace(request(count=1), handle=other), lambda *e: None),
                   lambda *e: None)
    assert [i.market for i in ccdsl.clusters(config=ec2_config) if i.handle == other] == ["on-demand"]
    ccdsl.terminate(other, config=ec2_config)
    assert tagged(ec2, other) == {}


# -- spot requests (finding 1) --------------------------------------------------------------------------------------
def test_spot_lifecycle_cancels_its_requests(ec2_config, ec2, aws_like):
    """Terminating the instance of an uncancelled persistent request makes EC2 launch a new one; ccdsl cancels
    first, so nothing is left -- no instance, and no open request."""
    aws_like.enable("spot_requests")
    lifecycle(provider(ec2_config), request(spot=True), aws_like, ec2)
    assert len(aws_like.spot) == 2 and all(r["State"] == "cancelled" for r in aws_like.spot.values())
    assert aws_like.fired["spot_requests"] == 0  # no request reopened
    assert all({"Key": "ccdsl:cluster", "Value": HANDLE} in r["Tags"] for r in aws_like.spot.values())


def test_a_persistent_request_reopens_when_its_instance_is_terminated_without_cancel(ec2_config, ec2, aws_like):
    """The layer's spot behaviour itself: a bare TerminateInstances (what ccdsl used to do) leaves a replacement
    instance behind; ccdsl's terminate then cancels the request and removes that one too."""
    aws_like.enable("spot_requests")
    p = provider(ec2_config)
    (node,) = launch(p, request(count=1, spot=True))
    p.call("terminate_instances", InstanceIds=[node.instance_id])
    assert aws_like.fired["spot_requests"] == 1
    (replacement,) = tagged(ec2, HANDLE)["instances"]
    assert replacement != node.instance_id and len(aws_like.open_spot_requests()) == 1
    p.terminate(HANDLE, [node])
    nothing_left(ec2, aws_like)


def test_an_open_spot_request_is_a_leftover_and_is_found(ec2_config, ec2, aws_like):
    aws_like.enable("spot_requests")
    aws_like.spot["sir-0000abcd"] = {"SpotInstanceRequestId": "sir-0000abcd", "State": "open", "Type": "persistent",
                                     "Tags": [{"Key": "ccdsl:cluster", "Value": HANDLE}]}
    p = provider(ec2_config)
    assert p.discover() == [HANDLE]
    assert p.leftovers(HANDLE) == ["sir-0000abcd"]
    p.terminate(HANDLE, [])
    nothing_left(ec2, aws_like)


# -- tokens, lost answers (findings 4, 13) --------------------------------------------------------------------------
def test_a_relaunch_after_clean_up_is_a_new_token(ec2_config, ec2, aws_like):
    """Failover cleans up and launches the same role again: with a new security group the old token would be a
    parameter mismatch, with the same group it would answer the terminated instances."""
    aws_like.enable("idempotency")
    p = provider(ec2_config)
    first = launch(p, request(count=1))
    p.terminate(HANDLE, first)  # new security group next time
    second = launch(p, request(count=1))
    p.release(HANDLE, second)  # same security group next time
    third = launch(p, request(count=1))
    assert len({first[0].instance_id, second[0].instance_id, third[0].instance_id}) == 3
    p.terminate(HANDLE, third)
    nothing_left(ec2, aws_like)


def test_a_retried_launch_does_not_launch_twice(ec2_config, ec2, aws_like):
    aws_like.enable("idempotency")
    p = provider(ec2_config)
    created = p.create(request(count=2), lambda *e: None)
    again = p.create(request(count=2), lambda *e: None)  # same request, same round: the same instances
    assert [n.instance_id for n in again] == [n.instance_id for n in created]
    assert aws_like.fired["idempotency"] == 1
    p.terminate(HANDLE, created)
    nothing_left(ec2, aws_like)


def _lose_answer_of_first_launch(hooks, where: str) -> None:
    """Ctrl-C in the first RunInstances: ``after-call`` (EC2 launched, the answer is lost) or ``before-call`` (the
    request never left this machine)."""
    def interrupted(model, http_response=None, **_):
        # after-call: only a call EC2 answered with success (a fresh key pair's NotFound, answered by the layer
        # before sending, is retried and launched nothing)
        if model.name == "RunInstances" and not interrupted.done and (
                http_response is None or http_response.status_code < 300):
            interrupted.done = True
            raise KeyboardInterrupt

    interrupted.done = False
    hooks.append((f"{where}.ec2", interrupted))  # after the layer's own hooks: for after-call, EC2 did launch


def run_instances_sent(hooks) -> list[str]:
    """The ClientToken of every RunInstances that leaves this machine from now on."""
    from urllib.parse import parse_qs

    sent: list[str] = []

    def record(request, **_):
        body = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
        if "Action=RunInstances" in body:
            sent.extend(parse_qs(body).get("ClientToken", ["?"]))

    hooks.append(("before-send.ec2", record))
    return sent


def test_ctrl_c_during_run_instances_with_tags_not_yet_listed(ec2_config, ec2, aws_like, hooks, tmp_path):
    """The answer of RunInstances is lost and the new instances are not listed for a while; with a security group
    of the user's there is nothing else tagged to notice.  Terminate finds them by the launch's client token (issue
    21 item 14) -- without sending the launch again."""
    aws_like.enable("idempotency", "not_found_first", listings=3)
    _lose_answer_of_first_launch(hooks, "after-call")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    sg = ec2.create_security_group(GroupName="mine", Description="mine", VpcId=vpc)["GroupId"]
    ec2.create_key_pair(KeyName="mykey")
    p = provider(ec2_config, security_group_id=sg, key_name="mykey", key_path=str(tmp_path / "k"))
    with pytest.raises(KeyboardInterrupt):
        p.create(request(count=2), lambda *e: None)
    launched = [i for r in ec2.describe_instances(Filters=[{"Name": "tag:ccdsl:cluster", "Values": [HANDLE]}])[
        "Reservations"] for i in r["Instances"]]
    assert len(launched) == 2
    sent = run_instances_sent(hooks)
    p.terminate(HANDLE, [])
    nothing_left(ec2, aws_like)
    assert sent == [] and aws_like.fired["idempotency"] == 0 and aws_like.fired["not_found_first"] > 0


@pytest.mark.parametrize("where", ["after-call", "before-call"])
def test_a_lost_launch_is_on_record_and_a_new_process_terminates_it_without_launching(
        where, ec2_config, ec2, aws_like, hooks):
    """Issue 21 item 14: the launch journal is on record before RunInstances goes out (the deployer's
    ``on_record``), so a new process -- a provider built from the record alone, as ``ccdsl terminate`` builds it
    after a crash -- finds what a launch whose answer was lost created (``after-call``), and one that never left
    this machine (``before-call``) is not on record as sent: in neither case is RunInstances sent again."""
    from ccdsl.executor.providers import aws as aws_mod

    aws_like.enable("idempotency", "not_found_first", listings=2)
    _lose_answer_of_first_launch(hooks, where)
    p = provider(ec2_config)
    records: list[dict] = []
    p.on_record = lambda: records.append(json.loads(json.dumps(p.settings())))
    with pytest.raises(KeyboardInterrupt):
        p.create(request(count=2), lambda *e: None)
    on_record = records[-1]  # what a crash now would leave in state.db
    assert list((on_record.get("launches") or {}).values()) == (["sent"] if where == "after-call" else [])
    assert len(tagged(ec2, HANDLE).get("instances", [])) == (2 if where == "after-call" else 0)
    sent = run_instances_sent(hooks)
    again = aws_mod.make(ec2_config, on_record)
    again.terminate(HANDLE, [])
    nothing_left(ec2, aws_like)
    assert sent == []


# -- placement groups (finding 6) -----------------------------------------------------------------------------------
def test_spot_in_a_placement_group_is_refused_before_anything_exists(ec2_config, ec2, aws_like):
    from ccdsl.errors import ConfigError

    p = provider(ec2_config, placement_group="spread")
    with pytest.raises(ConfigError, match="placement group"):
        p.create(request(spot=True), lambda *e: None)
    assert tagged(ec2, HANDLE) == {} and aws_like.placement_groups() == []


def test_burstable_types_are_refused_for_a_cluster_placement_group(ec2_config, ec2, aws_like):
    p = provider(ec2_config, placement_group="cluster")
    with pytest.raises(CapacityError, match="burstable") as info:
        p.create(request(instance_type="t3.xlarge"), lambda *e: None)
    assert "placement_group" in info.value.hint and info.value.scope == "region"  # the next plan's type may fit
    assert tagged(ec2, HANDLE) == {} and aws_like.placement_groups() == []


def test_a_cluster_placement_group_pins_every_role_to_its_zone(ec2_config, ec2, aws_like):
    p = provider(ec2_config, placement_group="cluster", zones=["us-east-1a", "us-east-1b", "us-east-1c"])
    manager = p.create(request(count=1, role="manager", instance_type="m5.large"), lambda *e: None)
    assert manager[0].zone == "us-east-1b"
    assert p.zones(request(instance_type="m5.xlarge")) == ["us-east-1b"]
    p.terminate(HANDLE, manager)
    nothing_left(ec2, aws_like)


# -- zones, addresses, keys (findings 9, 10, 19) --------------------------------------------------------------------
def test_zones_are_those_with_a_default_subnet_that_offer_the_type(ec2_config, ec2, hooks):
    def no_subnet_in_1a(parsed, **_):
        parsed["Subnets"] = [s for s in parsed.get("Subnets", []) if s["AvailabilityZone"] != "us-east-1a"]

    hooks.append(("after-call.ec2.DescribeSubnets", no_subnet_in_1a))
    offered = {o["Location"] for o in ec2.describe_instance_type_offerings(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": ["t3.xlarge"]}])[
        "InstanceTypeOfferings"]}
    zones = provider(ec2_config).zones(request())
    assert "us-east-1a" not in zones and zones and set(zones) == offered - {"us-east-1a"}


def test_no_public_address_fails_at_once_with_a_hint(ec2_config, ec2, hooks):
    def private_only(parsed, **_):
        for r in parsed.get("Reservations", []):
            for i in r["Instances"]:
                i.pop("PublicIpAddress", None)

    hooks.append(("after-call.ec2.DescribeInstances", private_only))
    p = provider(ec2_config)
    with pytest.raises(ProviderError, match="no public IP") as info:
        launch(p, request(count=1))
    assert "connect_address" in info.value.hint
    p.terminate(HANDLE, [])
    assert tagged(ec2, HANDLE) == {}


def test_a_pkcs8_key_pair_is_converted_for_paramiko(ec2_config, hooks):
    paramiko = pytest.importorskip("paramiko")
    from cryptography.hazmat.primitives import serialization

    def as_pkcs8(parsed, **_):
        key = serialization.load_ssh_private_key(parsed["KeyMaterial"].encode(), password=None)
        parsed["KeyMaterial"] = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()).decode()

    hooks.append(("after-call.ec2.CreateKeyPair", as_pkcs8))
    p = provider(ec2_config)
    nodes = launch(p, request(count=1))
    assert paramiko.Ed25519Key.from_private_key_file(nodes[0].key_path).get_name() == "ssh-ed25519"
    p.terminate(HANDLE, nodes)


# -- the bootstrap's needs (finding 2) ------------------------------------------------------------------------------
def test_install_passes_user_data_and_nodes_wait_for_cloud_init(ec2_config, ec2):
    import base64

    from ccdsl.executor.providers import aws as aws_mod

    p = aws_mod.make(ec2_config.replace(mpi={"install": True}), {})
    nodes = launch(p, request(count=1))
    recorded = ec2.describe_instance_attribute(InstanceId=nodes[0].instance_id, Attribute="userData")
    text = base64.b64decode(recorded["UserData"]["Value"]).decode()
    assert text.startswith("#cloud-config") and "python3-venv" in text and "ensurepip" in text
    assert text.count("apt-get -o DPkg::Lock::Timeout=600 ") == 2  # update and install wait for a held dpkg lock
    assert "cloud-init status --wait" in nodes[0].extra["boot_wait"]
    p.terminate(HANDLE, nodes)
    plain = provider(ec2_config)  # without [mpi] install: no user data
    nodes = launch(plain, request(count=1))
    attribute = ec2.describe_instance_attribute(InstanceId=nodes[0].instance_id, Attribute="userData")
    assert "UserData" not in attribute or not attribute["UserData"].get("Value")
    plain.terminate(HANDLE, nodes)


# -- deploy failover (findings 4, 11, 12) ---------------------------------------------------------------------------
def closed_port() -> str:
    from conftest import free_port

    return f"127.0.0.1:{free_port()}"  # nothing listens there: connection refused


def deploy_config(url, **aws):
    from ccdsl.executor.config import Config

    return Config.from_dict({"aws": aws_settings(url, **aws), "ssh": {"ready_timeout": 2.0, "connect_timeout": 1.0}})


def plan_of(*roles):
    from ccdsl.executor.deploy import Plan

    return Plan("aws", tuple(NodeRequest("", role, instance_type, count, region="us-east-1",
                                         options={"contract": "failover"}) for role, instance_type, count in roles))


def everything_tagged(ec2) -> list[str]:
    f = [{"Name": "tag-key", "Values": ["ccdsl:cluster"]}]
    inst = [i["InstanceId"] for r in ec2.describe_instances(Filters=f)["Reservations"] for i in r["Instances"]
            if i["State"]["Name"] != "terminated"]
    return inst + [g["GroupId"] for g in ec2.describe_security_groups(Filters=f)["SecurityGroups"]] + [
        k["KeyName"] for k in ec2.describe_key_pairs(Filters=f)["KeyPairs"]]


def launches(hooks):
    """Parameters of every RunInstances / CreateSecurityGroup / CreateKeyPair the provider sends."""
    calls: list[tuple[str, dict]] = []
    hooks.append(("before-parameter-build.ec2", lambda model, params, **_: calls.append((model.name, dict(params)))
                  if model.name in ("RunInstances", "CreateSecurityGroup", "CreateKeyPair") else None))
    return calls


def test_failover_keeps_group_and_key_and_launches_with_new_tokens(aws_env, data_dir, ec2, aws_like, hooks):
    """Plan 1's manager launches, its workers find no capacity; plan 2 launches the same manager again.  The
    security group and key pair stay (no delete-then-recreate race), and the manager's second launch is a new
    token (the old one would be a mismatch, or answer the terminated instance)."""
    import ccdsl
    from fixtures_executor import inject, request_type

    aws_like.enable("idempotency")
    calls = launches(hooks)
    hooks.append(("before-send.ec2.RunInstances", inject(None, "InsufficientInstanceCapacity", "no capacity",
                                                         when=lambda r: request_type(r) == "t3.xlarge")))
    closed = closed_port()
    cfg = deploy_config(aws_env, zones=["us-east-1a", "us-east-1b"],
                        address_map={"manager.0": closed, "0": closed, "1": closed})
    with pytest.raises(ProviderError, match="gave up"):  # plan 2 was created; its nodes are unreachable here
        ccdsl.deploy([plan_of(("manager", "t3.large", 1), ("worker", "t3.xlarge", 2)),
                      plan_of(("manager", "t3.large", 1), ("worker", "m5.xlarge", 2))], config=cfg)
    names = [name for name, _ in calls]
    assert names.count("CreateSecurityGroup") == 1 and names.count("CreateKeyPair") == 1
    runs = [p["InstanceType"] for name, p in calls if name == "RunInstances"]
    assert runs == ["t3.large", "t3.xlarge", "t3.xlarge", "t3.large", "m5.xlarge"]
    assert aws_like.fired["idempotency"] == 0
    assert everything_tagged(ec2) == []


def test_a_quota_error_skips_the_other_zones_and_fails_over(aws_env, data_dir, ec2, hooks):
    import ccdsl
    from ccdsl.executor.state import State
    from fixtures_executor import inject, request_type

    quota = inject(None, "VcpuLimitExceeded", "You have requested more vCPU capacity than your current vCPU limit "
                                              "of 16 allows", when=lambda r: request_type(r) == "t3.xlarge")
    hooks.append(("before-send.ec2.RunInstances", quota))
    cfg = deploy_config(aws_env, zones=["us-east-1a", "us-east-1b", "us-east-1c"], address_map={"0": closed_port()})
    with pytest.raises(ProviderError, match="gave up"):
        ccdsl.deploy([plan_of(("worker", "t3.xlarge", 4)), plan_of(("worker", "m5.xlarge", 1))], config=cfg)
    assert quota.sent == 1  # a regional quota: no other zone was tried
    (record,) = State().list_clusters(live_only=False)
    notes = [e.detail.get("text", "") for e in State().journal_of(record.handle) if e.phase == "note"]
    assert any("VcpuLimitExceeded" in n and "m5.xlarge" in n for n in notes)
    assert everything_tagged(ec2) == []


def test_quota_errors_everywhere_say_what_to_do(aws_env, data_dir, ec2, hooks):
    import ccdsl
    from ccdsl.errors import CapacityError
    from fixtures_executor import inject

    hooks.append(("before-send.ec2.RunInstances", inject(None, "VcpuLimitExceeded", "vCPU limit of 16")))
    with pytest.raises(CapacityError) as info:
        ccdsl.deploy([plan_of(("worker", "t3.xlarge", 4)), plan_of(("worker", "m5.xlarge", 4))],
                     config=deploy_config(aws_env, zones=["us-east-1a", "us-east-1b"]))
    assert "Service Quotas" in info.value.render()
    assert everything_tagged(ec2) == []


@pytest.mark.netns
def test_the_probe_waits_for_the_boot_command(netns_hosts, tmp_path):
    """The node's python works only once 'cloud-init' (here: the boot command) is done; wait_ready must run the
    provider's boot command before it probes."""
    import sys
    from dataclasses import replace

    from ccdsl.executor import ssh

    booted = tmp_path / "booted"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\n[ -f {booted} ] || {{ echo "python3-venv not installed yet" >&2; exit 3; }}\n'
                      f'exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    node = replace(netns_hosts.node(0), extra={"boot_wait": f"sleep 1 && touch {booted}"})
    opts = ssh.SshOptions(known_hosts=str(tmp_path / "known_hosts"), accept_new=True, connect_timeout=5)
    ready = ssh.wait_ready(node, 60, opts, python=str(python), directory=str(tmp_path / "d"))
    assert ready.state == "ready" and booted.exists()


# -- the whole ccdsl lifecycle under EC2's behaviour, through real SSH and MPI --------------------------------------
def where(comm):
    return comm.allreduce(comm.Get_rank())


@pytest.mark.netns
@pytest.mark.parametrize("spot", [False, True], ids=["on-demand", "spot"])
def test_deploy_run_interrupt_resume_terminate_as_ec2_behaves(aws_env, data_dir, ec2, aws_like, hooks, netns_hosts,
                                                             tmp_path, spot):
    """deploy -> run -> interrupt -> resume -> run -> terminate with every behaviour on at once (instances mapped to
    netns hosts, as in test_executor_e2e); nothing may be left, not even an open spot request."""
    import io
    import sys

    import paramiko

    import ccdsl
    from ccdsl.executor.config import Config

    aws_like.enable("not_found_first", "shutting_down", "idempotency", "spot_requests", "placement_group_in_use",
                    polls=3, in_use=1, listings=2)
    added = []

    def authorize(parsed, **_):  # what EC2 does with a key pair: its public key on the instances (netns hosts)
        if "KeyMaterial" in parsed:
            key = paramiko.Ed25519Key.from_private_key(io.StringIO(parsed["KeyMaterial"]))
            added.append(f"{key.get_name()} {key.get_base64()} {parsed['KeyName']}\n")
            with open(netns_hosts.authorized_keys, "a") as f:
                f.write(added[-1])

    hooks.append(("after-call.ec2.CreateKeyPair", authorize))
    hosts = {str(i): h.address for i, h in enumerate(netns_hosts.hosts)}
    config = Config.from_dict({
        "aws": {**aws_settings(aws_env, user=netns_hosts.user, address_map=hosts, zones=["us-east-1a", "us-east-1b"]),
                "placement_group": "" if spot else "spread", "spot": spot},
        "ssh": {"ready_timeout": 60.0, "connect_timeout": 5.0},
        "mpi": {"python": sys.executable, "iface": "eth0", "remote_dir": str(tmp_path / "remote"),
                "authorized_keys": str(netns_hosts.authorized_keys)}})
    contract = ccdsl.parse("c = @cluster(node_count => 2, node_machinetype => EC2Type_T3_xLarge)")["c"]
    try:
        c = ccdsl.deploy(contract, config=config)
        try:
            assert c.run(where) == 1
            ccdsl.interrupt(c)
            ccdsl.resume(c, config=config)
            assert c.run(where) == 1
        finally:
            ccdsl.terminate(c.handle, config=config)
        assert ccdsl.clusters(config=config) == []
        assert tagged(ec2, c.handle) == {}
        assert aws_like.open_spot_requests() == [] and aws_like.placement_groups() == []
        assert aws_like.fired["not_found_first"] and aws_like.fired["shutting_down"]
        assert bool(aws_like.spot) == spot
    finally:
        text = netns_hosts.authorized_keys.read_text()
        netns_hosts.authorized_keys.write_text("".join(k for k in text.splitlines(True) if k not in added))


def test_the_smoke_test_spends_nothing_without_yes(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "aws_smoke.py"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CCDSL_DATA_DIR": str(tmp_path),
                               "PYTHONPATH": str(script.parents[1])})
    assert proc.returncode == 2, proc.stderr
    assert "COSTS MONEY" in proc.stdout and "budget alarm" in proc.stdout and "--yes" in proc.stdout


# --- issue 21 lifecycle (e21a) -------------------------------------------------------------------------------------
def test_spot_requests_last_a_year_and_resume_a_month_on(ec2_config, ec2, aws_like):
    """Item 2: without ValidUntil EC2 ends a persistent request after 7 days, cancels it and terminates its stopped
    instance: a spot cluster interrupted for a month could not resume.  ccdsl asks for a year, and records it."""
    import time

    aws_like.enable("spot_requests", "spot_expiry")
    p = provider(ec2_config)
    nodes = launch(p, request(count=2, spot=True))
    ahead = [r["ValidUntil"].timestamp() - time.time() for r in aws_like.spot.values()]
    assert len(ahead) == 2 and min(ahead) >= 364 * 86400
    assert p.settings()["spot_valid_until"] == max(r["_valid_until"] for r in aws_like.spot.values())
    stopped = p.stop(HANDLE, nodes)
    aws_like.days_on(30)
    started = p.start(HANDLE, stopped)
    assert [(n.index, n.state) for n in started] == [(0, "running"), (1, "running")]
    assert aws_like.fired["spot_expiry"] == 0
    p.terminate(HANDLE, started)
    nothing_left(ec2, aws_like)


def test_the_layers_spot_expiry_terminates_a_stopped_instance(ec2_config, ec2, aws_like):
    """The behaviour the test above relies on: a request without ValidUntil ends 7 days on."""
    aws_like.enable("spot_requests", "spot_expiry")
    p = provider(ec2_config)
    (node,) = launch(p, request(count=1, spot=True))
    for r in aws_like.spot.values():
        r["_valid_until"] = aws_like.now() + 7 * 86400.0
    p.stop(HANDLE, [node])
    aws_like.days_on(8)
    assert p.describe(HANDLE) == [] and aws_like.fired["spot_expiry"] == 1
    p.terminate(HANDLE, [node])
    nothing_left(ec2, aws_like)


def test_clusters_warns_in_the_last_week_of_the_spot_requests(ec2_config, ec2, aws_like, caplog):
    import logging
    import time

    import ccdsl
    from ccdsl.executor.state import State

    aws_like.enable("spot_requests")
    adopted(ec2_config, count=1, spot=True)
    caplog.set_level(logging.WARNING, logger="ccdsl.executor")
    State().update_cluster(HANDLE, settings={"spot_valid_until": time.time() + 30 * 86400})
    ccdsl.clusters(config=ec2_config)
    assert "spot requests" not in caplog.text
    State().update_cluster(HANDLE, settings={"spot_valid_until": time.time() + 3 * 86400})
    ccdsl.clusters(config=ec2_config)
    assert f"{HANDLE}: its spot requests end on" in caplog.text and "terminates a stopped node" in caplog.text
    ccdsl.terminate(HANDLE, config=ec2_config)
    nothing_left(ec2, aws_like)


def test_resume_refuses_spot_nodes_ec2_stopped(ec2_config, ec2, aws_like, hooks):
    """Item 7: only EC2 starts a spot instance it interrupted (StartInstances is refused); reconcile says so, and
    resume refuses without sending StartInstances.  When capacity returns the cluster shows running."""
    import ccdsl
    from ccdsl.errors import ClusterError

    aws_like.enable("spot_requests", "spot_interruption")
    nodes = adopted(ec2_config, count=2, spot=True)
    starts = []
    hooks.append(("before-call.ec2.StartInstances", lambda **_: starts.append(1)))
    aws_like.interrupt_spot([n.instance_id for n in nodes])
    (info,) = ccdsl.clusters(config=ec2_config)
    assert info.status == "interrupted"
    assert "EC2 stopped 2 spot node(s) (instance-stopped-no-capacity)" in info.note and "only EC2" in info.note
    with pytest.raises(ClusterError, match="only EC2 can start them again") as refused:
        ccdsl.resume(HANDLE, config=ec2_config)
    assert "ccdsl terminate" in refused.value.hint
    assert starts == [] and aws_like.fired["spot_interruption"] == 2  # the two stops, no refused start
    assert sorted(aws_like.capacity_back()) == sorted(n.instance_id for n in nodes)
    (info,) = ccdsl.clusters(config=ec2_config)
    assert info.status == "running"
    ccdsl.terminate(HANDLE, config=ec2_config)
    nothing_left(ec2, aws_like)


def test_every_instance_gone_ends_the_cluster_and_resume_refuses(ec2_config, ec2, aws_like):
    """Item 8: every instance of an interrupted cluster vanished (EC2 forgets terminated ids soon).  Reconcile
    removes the rest and records it terminated with a note; a resume in between refuses zero nodes instead of
    recording a running cluster of none."""
    import ccdsl
    from ccdsl.errors import ClusterError
    from ccdsl.executor.state import State

    aws_like.enable("vanish")
    nodes = adopted(ec2_config, count=2)
    ccdsl.interrupt(HANDLE, config=ec2_config)
    for n in nodes:
        aws_like.vanish(n.instance_id)
    with pytest.raises(ClusterError, match="none of its 2 instance"):  # no reconcile before: the record's ids
        ccdsl.resume(HANDLE, config=ec2_config)
    assert State().get_cluster(HANDLE).status != "running"
    assert ccdsl.clusters(config=ec2_config) == []
    record = State().get_cluster(HANDLE)
    assert record.status == "terminated" and "none of its instances exist" in record.note
    nothing_left(ec2, aws_like)  # the security group and key pair went too
    with pytest.raises(ClusterError, match="terminated"):
        ccdsl.resume(HANDLE, config=ec2_config)


def test_a_running_cluster_with_a_stopped_node_says_what_it_pays(ec2_config, ec2, aws_like):
    """Item 10: reconcile ignored a running cluster whose nodes were partly stopped (a watchdog's shutdown that
    reached only some, one spot node interrupted): it says how many run, and are paid for."""
    import ccdsl

    nodes = adopted(ec2_config, count=2)
    ec2.stop_instances(InstanceIds=[nodes[1].instance_id])
    (info,) = ccdsl.clusters(config=ec2_config)
    assert info.status == "running"
    assert info.note.startswith("1 of 2 nodes are running in the cloud (paid); stopped: worker 1")
    ec2.start_instances(InstanceIds=[nodes[1].instance_id])
    (info,) = ccdsl.clusters(config=ec2_config)
    assert info.status == "running" and info.note == ""
    ccdsl.terminate(HANDLE, config=ec2_config)
    nothing_left(ec2, aws_like)


# the smoke test on moto (item 19): SSH stubbed, as moto's instances cannot be reached (never contact them)
SMOKE_DRIVER = LOOPBACK_ONLY + r"""
import importlib, os, signal, sys
from dataclasses import replace
sys.path.insert(0, sys.argv[1])
import aws_smoke
import boto3
from aws_like import AwsLike
from ccdsl.executor.providers import aws

deploy = importlib.import_module("ccdsl.executor.deploy")  # the module (ccdsl.executor.deploy is also a function)
guard = importlib.import_module("ccdsl.executor.guard")
aws.EVENT_HOOKS.extend(AwsLike(boto3.client("ec2")).hooks())  # EC2's placement groups, which moto lacks
deploy.make_ready = lambda handle, nodes, *a, **k: [replace(n, state="ready") for n in nodes]
guard.arm = lambda *a, **k: None
how = sys.argv[2]

def leave(cluster, script):
    print("deployed", cluster.handle, "and leaving by", how, flush=True)
    if how == "error":
        raise RuntimeError("a failing script")
    if how == "exit":
        raise SystemExit(3)
    if how == "ctrl-c":
        raise KeyboardInterrupt
    os.kill(os.getpid(), getattr(signal, how))
    raise AssertionError("the signal did not arrive")

aws_smoke.run_on = leave
sys.exit(aws_smoke.main(["--yes", "--region", "us-east-1", "--ssh-cidr", "203.0.113.0/24", "--image", sys.argv[3]]))
"""


def load_smoke():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "aws_smoke.py"
    spec = importlib.util.spec_from_file_location("aws_smoke", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("how, code", [("error", 1), ("exit", 130), ("ctrl-c", 130), ("SIGTERM", 130),
                                       ("SIGHUP", 130)])
def test_the_smoke_test_cleans_up_and_reports_however_it_ends(aws_env, ec2, tmp_path, how, code):
    import subprocess
    import sys
    from pathlib import Path

    from fixtures_executor import MOTO_IMAGE

    # a ccdsl.toml where the smoke test starts: another endpoint and region; read, it would fail every deploy
    (tmp_path / "ccdsl.toml").write_text('[aws]\nendpoint_url = "http://127.0.0.1:9"\nregion = "eu-west-3"\n')
    root = Path(__file__).resolve().parents[1]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CCDSL_DATA_DIR": str(tmp_path / "data"),
           "PYTHONPATH": f"{root}:{root / 'tests'}", "AWS_ENDPOINT_URL": aws_env, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    proc = subprocess.run([sys.executable, "-c", SMOKE_DRIVER, str(root / "examples"), how, MOTO_IMAGE],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    deployed = proc.stdout.count("and leaving by")
    assert deployed == (2 if how == "error" else 1), proc.stdout  # the spot cluster too after a failure
    assert "Left behind (instances, volumes, security groups, key pairs, open spot requests): nothing" in proc.stdout
    assert everything_tagged(ec2) == []


def test_the_smoke_tests_leftovers_skip_volumes_being_deleted(aws_env, ec2):
    smoke = load_smoke()
    tags = [{"ResourceType": "volume", "Tags": [{"Key": "ccdsl:cluster", "Value": "SmokeSmokeSmoke"}]}]
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, TagSpecifications=tags)["VolumeId"]
    assert smoke.leftovers(ec2) == [volume]

    def deleting(parsed, **_):
        for v in parsed.get("Volumes", []):
            v["State"] = "deleting"

    ec2.meta.events.register("after-call.ec2.DescribeVolumes", deleting)
    assert smoke.leftovers(ec2) == []
