"""The aws provider against a real moto server over HTTP (boto3 -> 127.0.0.1)."""

from __future__ import annotations

import os
import stat

import pytest

from ccdsl.errors import CapacityError, ConfigError, ProviderError
from ccdsl.executor.model import NodeRequest
from fixtures_executor import (  # fixtures
    TextServer,
    aws_settings,
    data_dir,
    ec2,
    ec2_config,
    hooks,
    inject,
    tagged,
)

HANDLE = "AbCdEfGhIjKlMnO"


def provider(cfg, **aws):
    from ccdsl.executor.providers import aws as aws_mod

    if aws:
        cfg = cfg.replace(aws=aws)
    return aws_mod.make(cfg, {})


def create(p, count=3, role="worker", handle=HANDLE, **kw):
    events = []
    req = NodeRequest(handle=handle, role=role, instance_type="t3.xlarge", count=count, region="us-east-1",
                      options={"contract": "demo", "zone": "us-east-1b"}, **kw)
    nodes = p.create(req, lambda *e: events.append(e))
    nodes = p.wait_running(handle, nodes, lambda *e: events.append(e))
    return nodes, events


def test_one_run_instances_call_with_everything_tagged_and_locked_down(ec2_config, ec2, hooks):
    calls = []
    hooks.append(("before-parameter-build.ec2", lambda model, params, **_: calls.append((model.name, params))))
    nodes, events = create(provider(ec2_config), count=3)

    runs = [params for name, params in calls if name == "RunInstances"]
    assert len(runs) == 1
    run = runs[0]
    assert run["MinCount"] == run["MaxCount"] == 3
    assert HANDLE in run["ClientToken"] and len(run["ClientToken"]) <= 64
    assert run["MetadataOptions"]["HttpTokens"] == "required"
    assert run["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    assert [n.index for n in nodes] == [0, 1, 2]
    assert {e[2] for e in events} == {"requested", "running"}
    assert sorted(e[1] for e in events if e[2] == "running") == [0, 1, 2]

    reservations = ec2.describe_instances(Filters=[{"Name": "tag:ccdsl:cluster", "Values": [HANDLE]}])
    instances = [i for r in reservations["Reservations"] for i in r["Instances"]]
    assert sorted(i["InstanceId"] for i in instances) == sorted(n.instance_id for n in nodes)
    for i in instances:
        tags = {t["Key"]: t["Value"] for t in i["Tags"]}
        assert tags["ccdsl:role"] == "worker" and tags["ccdsl:contract"] == "demo"
        assert i["MetadataOptions"]["HttpTokens"] == "required"
        assert i["Placement"]["AvailabilityZone"] == "us-east-1b"
    volumes = ec2.describe_volumes(Filters=[{"Name": "tag:ccdsl:cluster", "Values": [HANDLE]}])["Volumes"]
    assert volumes and all(v["Encrypted"] for v in volumes)

    (sg,) = ec2.describe_security_groups(Filters=[{"Name": "tag:ccdsl:cluster", "Values": [HANDLE]}])[
        "SecurityGroups"]
    perms = sg["IpPermissions"]
    ssh = [p for p in perms if p.get("FromPort") == 22]
    assert [r["CidrIp"] for p in ssh for r in p["IpRanges"]] == ["203.0.113.0/24"]
    assert all(r["CidrIp"] != "0.0.0.0/0" for p in perms for r in p.get("IpRanges", []))
    self_rule = [p for p in perms if p["IpProtocol"] == "-1"]
    assert self_rule and self_rule[0]["UserIdGroupPairs"][0]["GroupId"] == sg["GroupId"]
    assert [k["KeyName"] for k in ec2.describe_key_pairs(
        Filters=[{"Name": "tag:ccdsl:cluster", "Values": [HANDLE]}])["KeyPairs"]] == [f"ccdsl-{HANDLE}"]


def test_private_key_is_0600_and_loadable(ec2_config, data_dir):
    paramiko = pytest.importorskip("paramiko")
    nodes, _ = create(provider(ec2_config), count=1)
    key = nodes[0].key_path
    assert key and key.startswith(str(data_dir))
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert paramiko.Ed25519Key.from_private_key_file(key).get_name() == "ssh-ed25519"


def test_stop_start_redescribes_and_terminate_leaves_nothing(ec2_config, ec2):
    p = provider(ec2_config)
    nodes, _ = create(p, count=2)
    stopped = p.stop(HANDLE, nodes)
    assert {n.state for n in stopped} == {"stopped"}
    started = p.start(HANDLE, stopped)
    assert {n.state for n in started} == {"running"}
    assert [n.instance_id for n in started] == [n.instance_id for n in nodes]
    assert all(n.address for n in started)
    assert p.discover() == [HANDLE]
    key = nodes[0].key_path
    p.terminate(HANDLE, started)
    assert tagged(ec2, HANDLE) == {}
    assert not os.path.exists(key)
    assert p.discover() == []


def test_terminate_from_settings_of_another_process(ec2_config, ec2):
    from ccdsl.executor.providers import aws as aws_mod

    p = provider(ec2_config)
    create(p, count=2)
    again = aws_mod.make(ec2_config, p.settings())  # what a record lets a later process rebuild
    assert [n.index for n in again.describe(HANDLE)] == [0, 1]
    again.terminate(HANDLE, [])
    assert tagged(ec2, HANDLE) == {}


def test_terminate_verifies_and_names_what_remains(ec2_config, ec2, hooks):
    from ccdsl.executor.providers import aws as aws_mod

    p = provider(ec2_config)
    create(p, count=1)
    # A DeleteKeyPair that "succeeds" without doing anything: the verification must notice.
    from types import SimpleNamespace

    ok = SimpleNamespace(status_code=200, headers={})
    hooks.append(("before-call.ec2.DeleteKeyPair", lambda **_: (ok, {"Return": True})))
    p2 = aws_mod.make(ec2_config, {**p.settings(), "wait_timeout": 1.0})  # it looks again until then
    with pytest.raises(ProviderError, match=f"ccdsl-{HANDLE}"):
        p2.terminate(HANDLE, [])
    assert list(tagged(ec2, HANDLE)) == ["key_pairs"]


def test_ssh_cidr_defaults_to_the_callers_address(ec2_config, ec2):
    server = TextServer("198.51.100.7\n")
    try:
        p = provider(ec2_config, ssh_cidr="", ip_discovery_url=server.url)
        create(p, count=1)
    finally:
        server.close()
    (sg,) = ec2.describe_security_groups(Filters=[{"Name": "tag:ccdsl:cluster", "Values": [HANDLE]}])[
        "SecurityGroups"]
    assert [r["CidrIp"] for perm in sg["IpPermissions"] for r in perm.get("IpRanges", [])] == ["198.51.100.7/32"]


def test_ssh_cidr_discovery_failure_is_clear_and_creates_nothing(ec2_config, ec2):
    server = TextServer("not an address")
    try:
        p = provider(ec2_config, ssh_cidr="", ip_discovery_url=server.url)
        with pytest.raises(ProviderError, match="public address") as info:
            create(p, count=1)
    finally:
        server.close()
    assert "ssh_cidr" in info.value.hint
    assert tagged(ec2, HANDLE) == {}


def test_bad_cidr_is_a_config_error(ec2_config):
    with pytest.raises(ConfigError, match="ssh_cidr"):
        create(provider(ec2_config, ssh_cidr="everyone"), count=1)


def test_spot_request(ec2_config, hooks):
    calls = []
    hooks.append(("before-parameter-build.ec2.RunInstances", lambda params, **_: calls.append(params)))
    create(provider(ec2_config), count=1, spot=True)
    assert calls[0]["InstanceMarketOptions"]["MarketType"] == "spot"
    assert calls[0]["InstanceMarketOptions"]["SpotOptions"]["InstanceInterruptionBehavior"] == "stop"


def test_throttling_is_retried(ec2_config, ec2, hooks):
    handler = inject(2, "Throttling", "Rate exceeded")
    hooks.append(("before-send.ec2.RunInstances", handler))
    _nodes, _ = create(provider(ec2_config), count=2)
    assert handler.failed == 2 and handler.sent == 3
    assert len(tagged(ec2, HANDLE)["instances"]) == 2


def test_capacity_error_is_a_capacity_error_sent_once(ec2_config, ec2, hooks):
    """EC2 answers InsufficientInstanceCapacity with HTTP 500, which botocore retried max_attempts times with backoff
    (half a minute per zone) before the deployer could fail over (issue 21 item 3): now one send."""
    full = inject(None, "InsufficientInstanceCapacity", "no t3.xlarge capacity in us-east-1b")
    hooks.append(("before-send.ec2.RunInstances", full))
    with pytest.raises(CapacityError, match="InsufficientInstanceCapacity"):
        create(provider(ec2_config), count=2)
    assert full.sent == 1
    assert "instances" not in tagged(ec2, HANDLE)


def test_address_map_test_hook(ec2_config):
    p = provider(ec2_config, address_map={"0": "10.213.0.2", "worker.1": "127.0.0.1:2222"})
    nodes, _ = create(p, count=3)
    assert [(n.address, n.port) for n in nodes[:2]] == [("10.213.0.2", 22), ("127.0.0.1", 2222)]
    assert nodes[0].private_address == "10.213.0.2"
    assert nodes[2].address == nodes[2].extra["public_ip"]  # unmapped: what EC2 reports


def test_private_connect_address(ec2_config):
    nodes, _ = create(provider(ec2_config, connect_address="private"), count=1)
    assert nodes[0].address == nodes[0].extra["private_ip"]


def test_existing_security_group_and_key_are_used_not_deleted(ec2_config, ec2, tmp_path):
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    sg = ec2.create_security_group(GroupName="mine", Description="mine", VpcId=vpc)["GroupId"]
    ec2.create_key_pair(KeyName="mykey")
    p = provider(ec2_config, security_group_id=sg, key_name="mykey", key_path=str(tmp_path / "k"))
    nodes, _ = create(p, count=1)
    assert nodes[0].key_path == str(tmp_path / "k")
    left = tagged(ec2, HANDLE)
    assert left["instances"] == [nodes[0].instance_id] and set(left) == {"instances", "volumes"}
    p.terminate(HANDLE, nodes)
    assert ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"]
    assert ec2.describe_key_pairs(KeyNames=["mykey"])["KeyPairs"]


def test_unknown_image_is_a_region_scope_capacity_error(ec2_config, ec2):
    """An AMI id names an image of one region (issue 21 item 9): missing here, another plan's region may have it."""
    with pytest.raises(CapacityError, match=r"image ami-00000000 .* does not exist in us-east-1") as info:
        create(provider(ec2_config, image={"x86_64": "ami-00000000"}), count=1)
    assert info.value.scope == "region" and "one region" in info.value.hint
    assert tagged(ec2, HANDLE) == {}  # refused before anything was created


def test_client_token_covers_every_launch_parameter_and_the_round():
    from ccdsl.executor.providers.aws import client_token

    params = {"InstanceType": "t3.xlarge", "MinCount": 4, "MaxCount": 4, "SecurityGroupIds": ["sg-1"],
              "Placement": {"AvailabilityZone": "us-east-1a"}}
    token = client_token(HANDLE, params)
    assert token == client_token(HANDLE, {**params, "ClientToken": "ignored"})
    assert token.startswith(f"ccdsl-{HANDLE}-") and len(token) <= 64
    others = {client_token(HANDLE, {**params, "SecurityGroupIds": ["sg-2"]}),  # failover: a new group
              client_token(HANDLE, {**params, "Placement": {"AvailabilityZone": "us-east-1b"}}),
              client_token(HANDLE, {**params, "InstanceType": "m5.xlarge"}),
              client_token("ZZZZZZZZZZZZZZZ", params),
              client_token(HANDLE, params, 1)}  # after a clean-up
    assert token not in others and len(others) == 5


def test_terminate_deletes_a_detached_tagged_volume(ec2_config, ec2):
    p = provider(ec2_config)
    nodes, _ = create(p, count=1)
    stray = ec2.create_volume(Size=8, AvailabilityZone="us-east-1b", TagSpecifications=[
        {"ResourceType": "volume", "Tags": [{"Key": "ccdsl:cluster", "Value": HANDLE}]}])["VolumeId"]
    assert stray in tagged(ec2, HANDLE)["volumes"]
    p.terminate(HANDLE, nodes)
    assert tagged(ec2, HANDLE) == {}
