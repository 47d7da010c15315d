"""The aws provider against the EC2 API as documented, where moto is kinder (issue 21): capacity errors are HTTP 500,
filters take at most 200 values, regions must be opted in to, placement groups and usage classes depend on the
type, AMIs and other ids exist in one region, listings come in pages.  The behaviours are tests/aws_like.py's; EC2
is moto's server, nothing connects to an address moto reports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aws_like import aws_like  # the fixture
from ccdsl.errors import CapacityError, ConfigError, ProviderError
from ccdsl.executor.model import NodeRequest
from fixtures_executor import data_dir, ec2, ec2_config, hooks, inject, request_type, tagged
from test_aws_behaviour import (
    HANDLE,
    closed_port,
    deploy_config,
    everything_tagged,
    launches,
    lifecycle,
    nothing_left,
    provider,
    request,
)

ROOT = Path(__file__).resolve().parents[1]


def plan_in(region, *roles, spot=()):
    """A plan in ``region``: (role, type, count) per role; roles named in ``spot`` launch as spot."""
    from ccdsl.executor.deploy import Plan

    return Plan("aws", tuple(NodeRequest("", role, itype, count, region=region, spot=role in spot,
                                         options={"contract": "issue21"}) for role, itype, count in roles))


def deploy_until_ssh(cfg, *plans):
    """Deploy ``plans``: the plan that gets created cannot be reached (a closed port) and is removed again."""
    import ccdsl

    with pytest.raises(ProviderError, match="gave up"):
        ccdsl.deploy(list(plans), config=cfg)


def notes():
    from ccdsl.executor.state import State

    (record,) = State().list_clusters(live_only=False)
    return [e.detail.get("text", "") for e in State().journal_of(record.handle) if e.phase == "note"]


def runs(calls):
    return [p["InstanceType"] for name, p in calls if name == "RunInstances"]


# -- item 3: capacity answers are not retried ---------------------------------------------------------------------
def test_a_full_zone_costs_one_send_then_the_next_zone(aws_env, data_dir, ec2, aws_like):
    """InsufficientInstanceCapacity is an HTTP 500 at ``before-send`` (a ``before-call`` answer would skip botocore's
    retries and hide them): each full zone is asked once, then the next zone launches."""
    aws_like.enable("no_capacity")
    aws_like.full_zones = frozenset({"us-east-1a", "us-east-1b"})
    cfg = deploy_config(aws_env, zones=["us-east-1a", "us-east-1b", "us-east-1c"], address_map={"0": closed_port()})
    deploy_until_ssh(cfg, plan_in("us-east-1", ("worker", "m5.large", 1)))
    assert aws_like.capacity_sends == {"us-east-1a": 1, "us-east-1b": 1}
    assert any("no capacity in us-east-1a" in n for n in notes())
    assert everything_tagged(ec2) == []


def test_throttling_of_run_instances_is_still_retried(ec2_config, ec2, hooks):
    throttled = inject(2, "RequestLimitExceeded", "Request limit exceeded.", status=503)
    hooks.append(("before-send.ec2.RunInstances", throttled))
    p = provider(ec2_config)
    nodes = p.create(request(count=1), lambda *e: None)
    assert throttled.sent == 3 and len(nodes) == 1
    p.terminate(HANDLE, nodes)


# -- item 4: more than 200 nodes ----------------------------------------------------------------------------------
def test_250_nodes_launch_stop_start_and_terminate_under_the_filter_limit(ec2_config, ec2, hooks, aws_like):
    """EC2 refuses more than 200 values in a filter (FilterLimitExceeded): ids are asked for in chunks of 200."""
    aws_like.enable("filter_limit")
    calls: list[tuple[str, int]] = []

    def count(model, params, **_):
        ids = params.get("InstanceIds") or [v for f in params.get("Filters", []) for v in f["Values"]]
        calls.append((model.name, len(ids)))

    hooks.append(("before-parameter-build.ec2", count))
    resumed = lifecycle(provider(ec2_config), request(count=250, instance_type="m5.large"), aws_like, ec2)
    assert len(resumed) == 250
    assert aws_like.fired["filter_limit"] == 0  # never refused: every call stayed within the limit
    assert ("StopInstances", 200) in calls and ("StopInstances", 50) in calls
    assert ("TerminateInstances", 200) in calls and max(n for _, n in calls) == 200


def test_filter_limit_refuses_what_ec2_refuses(ec2_config, aws_like):
    """The behaviour itself: a filter of 201 values is refused, as ccdsl's old one-filter describe was."""
    aws_like.enable("filter_limit")
    p = provider(ec2_config)
    with pytest.raises(ProviderError, match="FilterLimitExceeded"):
        p.call("describe_instances", Filters=[{"Name": "instance-id", "Values": [f"i-{n:017x}" for n in range(201)]}])


# -- item 5: regions that are not opted in -------------------------------------------------------------------------
def test_a_region_not_opted_in_fails_over_to_the_next_plan(aws_env, data_dir, ec2, hooks, aws_like):
    """Its first call answers AuthFailure (not OptInRequired); DescribeRegions from [aws] region says
    not-opted-in: the deployer notes it and deploys the next plan."""
    aws_like.enable("not_opted_in")
    aws_like.disabled_regions = frozenset({"ap-east-1"})
    calls = launches(hooks)
    cfg = deploy_config(aws_env, address_map={"0": closed_port()})
    deploy_until_ssh(cfg, plan_in("ap-east-1", ("worker", "m5.large", 1)),
                     plan_in("us-east-1", ("worker", "m5.xlarge", 1)))
    assert aws_like.fired["not_opted_in"] >= 1
    assert any("ap-east-1 is not enabled for this account" in n and "m5.xlarge" in n for n in notes())
    assert runs(calls) == ["m5.xlarge"]
    assert everything_tagged(ec2) == []


def test_without_a_configured_region_the_default_region_is_asked(ec2_config, aws_like):
    """No [aws] region: DescribeRegions goes to boto3's default region (AWS_DEFAULT_REGION here)."""
    aws_like.enable("not_opted_in")
    aws_like.disabled_regions = frozenset({"ap-east-1"})
    p = provider(ec2_config, region="")
    hong_kong = NodeRequest(HANDLE, "worker", "m5.large", 1, region="ap-east-1", options={"contract": "demo"})
    with pytest.raises(CapacityError, match="ap-east-1 is not enabled") as info:
        p.zones(hong_kong)
    assert info.value.scope == "region" and "opt in" in info.value.hint
    p.terminate(HANDLE, [])  # nothing of it can exist there: no call is made


def test_auth_failure_in_an_enabled_region_is_about_the_credentials(ec2_config, aws_like):
    aws_like.enable("not_opted_in")
    aws_like.disabled_regions = frozenset({"us-east-1"})  # every call fails, DescribeRegions too: bad credentials
    with pytest.raises(ProviderError, match="AuthFailure") as info:
        provider(ec2_config).zones(request())
    assert not isinstance(info.value, CapacityError) and "credentials" in info.value.hint


# -- item 6: the whole plan is checked before anything is created ---------------------------------------------------
def test_a_type_without_the_strategy_is_refused_and_the_next_plan_deploys(aws_env, data_dir, ec2, hooks, aws_like):
    aws_like.enable("placement_strategies")
    aws_like.no_cluster_types = frozenset({"m5.large"})
    calls = launches(hooks)
    cfg = deploy_config(aws_env, placement_group="cluster", zones=["us-east-1a"],
                        address_map={"manager.0": closed_port(), "0": closed_port(), "1": closed_port()})
    deploy_until_ssh(cfg, plan_in("us-east-1", ("manager", "m5.xlarge", 1), ("worker", "m5.large", 2)),
                     plan_in("us-east-1", ("manager", "m5.xlarge", 1), ("worker", "m5.2xlarge", 2)))
    assert aws_like.fired["placement_strategies"] >= 1
    assert runs(calls) == ["m5.xlarge", "m5.2xlarge"]  # plan 1's manager was never launched
    assert any("cluster placement group" in n for n in notes())
    assert everything_tagged(ec2) == [] and aws_like.placement_groups() == []


def test_a_mixed_plan_is_refused_before_any_launch(aws_env, data_dir, ec2, hooks, aws_like):
    """An on-demand manager and spot workers in a placement group: the workers would be refused, so the manager
    must not be launched first."""
    import ccdsl

    calls = launches(hooks)
    cfg = deploy_config(aws_env, placement_group="spread", zones=["us-east-1a"])
    with pytest.raises(ConfigError, match="placement group"):
        ccdsl.deploy(plan_in("us-east-1", ("manager", "m5.large", 1), ("worker", "m5.large", 2),
                             spot=("worker",)), config=cfg)
    assert runs(calls) == []
    assert everything_tagged(ec2) == [] and aws_like.placement_groups() == []


def test_spread_holds_seven_per_zone_and_spot_needs_the_usage_class(ec2_config, ec2, hooks):
    p = provider(ec2_config, placement_group="spread")
    with pytest.raises(CapacityError, match="at most 7") as info:
        p.create(request(count=8, instance_type="m5.large"), lambda *e: None)
    assert info.value.scope == "region"

    def on_demand_only(parsed, **_):
        for t in parsed.get("InstanceTypes", []):
            t["SupportedUsageClasses"] = ["on-demand"]

    hooks.append(("after-call.ec2.DescribeInstanceTypes", on_demand_only))
    with pytest.raises(CapacityError, match="as spot"):
        provider(ec2_config).create(request(count=1, instance_type="m5.large", spot=True), lambda *e: None)
    assert tagged(ec2, HANDLE) == {}


# -- item 9: region-bound settings -----------------------------------------------------------------------------------
def test_an_ami_of_plan_2s_region_deploys_there(aws_env, data_dir, ec2, hooks, aws_like):
    import boto3

    west = boto3.client("ec2", endpoint_url=aws_env, region_name="us-west-2")
    source = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ami = west.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="only-in-us-west-2")["ImageId"]
    assert not ec2.describe_images(Filters=[{"Name": "image-id", "Values": [ami]}])["Images"]
    calls = launches(hooks)
    cfg = deploy_config(aws_env, image={"x86_64": ami}, address_map={"0": closed_port()})
    deploy_until_ssh(cfg, plan_in("us-east-1", ("worker", "m5.large", 1)),
                     plan_in("us-west-2", ("worker", "m5.large", 1)))
    assert [p["ImageId"] for name, p in calls if name == "RunInstances"] == [ami]
    assert any(f"image {ami}" in n and "does not exist in us-east-1" in n for n in notes())
    left = [i["InstanceId"] for r in west.describe_instances(Filters=[
        {"Name": "tag-key", "Values": ["ccdsl:cluster"]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])["Reservations"]
        for i in r["Instances"]]
    assert everything_tagged(ec2) == [] and left == []


@pytest.mark.parametrize("key", ["subnet_id", "security_group_id", "key_name"])
def test_a_setting_of_another_region_is_a_region_scope_capacity_error(ec2_config, ec2, key, tmp_path):
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    value = {"subnet_id": lambda: ec2.describe_subnets()["Subnets"][0]["SubnetId"],
             "security_group_id": lambda: ec2.create_security_group(GroupName="mine", Description="mine",
                                                                    VpcId=vpc)["GroupId"],
             "key_name": lambda: ec2.create_key_pair(KeyName="mine")["KeyName"]}[key]()
    extra = {"key_path": str(tmp_path / "k")} if key == "key_name" else {}
    p = provider(ec2_config, **{key: value}, **extra)
    p.check_plan([request(count=1)])  # here it exists
    west = NodeRequest(HANDLE, "worker", "t3.xlarge", 1, region="us-west-2", options={"contract": "demo"})
    with pytest.raises(CapacityError, match=f"{key} = '{value}' does not exist in us-west-2") as info:
        p.create(west, lambda *e: None)
    assert info.value.scope == "region"


# -- item 11: the documented IAM list -------------------------------------------------------------------------------
def test_the_docs_list_every_operation_ccdsl_calls():
    """Every EC2/SSM operation named in ccdsl/executor is in the AWS page's 'IAM permissions' list."""
    source = "\n".join(p.read_text() for p in (ROOT / "ccdsl" / "executor").rglob("*.py"))
    verbs = "(?:describe|create|delete|run|start|stop|terminate|authorize|cancel|get|modify)_[a-z_]+"
    names = set(re.findall(rf'"({verbs})"', source)) | set(re.findall(rf"client\([^()]*\)\.({verbs})\(", source))
    operations = {"".join(w.capitalize() for w in n.split("_")) for n in names}
    assert {"RunInstances", "ModifyInstanceAttribute", "GetParameter", "DescribeRegions"} <= operations
    page = (ROOT / "docs" / "clusters" / "aws.md").read_text()
    section = page[page.index("## IAM permissions"):page.index("## Smoke test on a real account")]
    listed = set(re.findall(r"[A-Z][A-Za-z]+", section))
    assert operations - listed == set()
    assert "AWSServiceRoleForEC2Spot" in section


# -- item 12: SSM's endpoint ----------------------------------------------------------------------------------------
def test_the_ssm_endpoint_stays_aws_s_own(ec2_config):
    from ccdsl.executor.providers import aws

    p = aws.make(ec2_config.replace(aws={"ssm_endpoint_url": ""}), {})
    assert p.client("ec2").meta.endpoint_url == ec2_config.aws.endpoint_url
    assert p.client("ssm").meta.endpoint_url == "https://ssm.us-east-1.amazonaws.com"


def test_a_provider_makes_each_client_once(ec2_config, hooks):
    """Each client is made once per provider (service, region): a new one parses botocore's endpoint and model
    files again (~0.15 s), and terminate used to make an EFS client for each of its DescribeFileSystems calls."""
    from ccdsl.executor.providers import aws

    made = []
    p = aws.make(ec2_config, {})
    real_hooks = p.ec2.hooks
    p.ec2.hooks = lambda: (made.append(1), real_hooks())[1]  # read once at each client's making: counts them
    efs, ssm, ec2 = p.client("efs"), p.client("ssm"), p.client("ec2")
    assert p.client("efs") is efs and p.client("ssm") is ssm and p.client("ec2") is ec2
    other = p.client("ec2", "eu-west-1")
    assert other is not ec2 and other.meta.region_name == "eu-west-1" and p.client("ec2", "eu-west-1") is other
    assert len(made) == 4
    p.terminate("ccdsl-no-such-cluster", [])  # every listing of terminate, nothing to delete
    assert p.leftovers("ccdsl-no-such-cluster") == []
    assert len(made) == 4


# -- item 15: no default VPC ----------------------------------------------------------------------------------------
def test_no_default_vpc_is_a_setting_to_make_not_no_capacity(ec2_config, hooks):
    def none(parsed, **_):
        parsed["Vpcs"] = []

    def no_default_subnets(parsed, **_):
        parsed["Subnets"] = [s for s in parsed.get("Subnets", []) if not s.get("DefaultForAz")]

    hooks.extend([("after-call.ec2.DescribeVpcs", none), ("after-call.ec2.DescribeSubnets", no_default_subnets)])
    with pytest.raises(ConfigError, match="no default VPC") as info:
        provider(ec2_config).zones(request())
    assert "subnet_id" in info.value.hint


# -- item 16: deleted placement groups, listings in pages -----------------------------------------------------------
def test_a_deleted_placement_group_is_not_a_leftover(ec2_config, ec2, aws_like):
    aws_like.enable("deleted_groups")
    p = provider(ec2_config, placement_group="spread", wait_timeout=10.0)
    lifecycle(p, request(count=3), aws_like, ec2)
    # EC2 still lists the group, as deleted (the lifecycle asked only for groups in a live state)
    assert [g["State"] for g in p.call("describe_placement_groups")["PlacementGroups"]] == ["deleted"]


def test_every_page_of_a_listing_counts(ec2_config, ec2, aws_like):
    aws_like.enable("pages")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    for n, handle in enumerate([HANDLE, HANDLE, "OtherHandleXyz"]):
        ec2.create_security_group(GroupName=f"g{n}", Description="g", VpcId=vpc, TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "ccdsl:cluster", "Value": handle}]}])
    p = provider(ec2_config)
    assert len(p.leftovers(HANDLE)) == 2
    assert p.discover() == sorted([HANDLE, "OtherHandleXyz"])
    p.terminate(HANDLE, [])
    p.terminate("OtherHandleXyz", [])
    assert everything_tagged(ec2) == []


# -- item 17: account and policy errors -----------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "message", "kind", "scope", "hint"), [
    ("PendingVerification", "Your request for accessing resources in this region is being validated", CapacityError,
     "region", "verifying"),
    ("Blocked", "The account is currently blocked", ProviderError, "zone", "AWS Support"),
    ("UnauthorizedOperation", "You are not authorized to perform this operation.", ProviderError, "zone", "IAM"),
    ("UnauthorizedOperation", "You are not authorized to perform this operation. User: arn:aws:iam::1:user/u is not "
                              "authorized to perform: ec2:RunInstances with an explicit deny in a service control "
                              "policy", CapacityError, "region", "service control policy"),
])
def test_account_and_policy_errors_say_what_to_do(ec2_config, ec2, hooks, code, message, kind, scope, hint):
    hooks.append(("before-send.ec2.RunInstances", inject(None, code, message)))
    with pytest.raises(ProviderError) as info:
        provider(ec2_config).create(request(count=1), lambda *e: None)
    assert type(info.value) is kind and info.value.code == code and info.value.scope == scope
    assert hint in info.value.hint


def test_a_service_control_policy_deny_fails_over(aws_env, data_dir, ec2, hooks):
    scp = inject(None, "UnauthorizedOperation", "with an explicit deny in a service control policy",
                 when=lambda r: request_type(r) == "m5.large")
    hooks.append(("before-send.ec2.RunInstances", scp))
    calls = launches(hooks)
    cfg = deploy_config(aws_env, zones=["us-east-1a", "us-east-1b"], address_map={"0": closed_port()})
    deploy_until_ssh(cfg, plan_in("us-east-1", ("worker", "m5.large", 1)),
                     plan_in("us-east-1", ("worker", "m5.xlarge", 1)))
    assert scp.sent == 1 and runs(calls) == ["m5.large", "m5.xlarge"]
    assert everything_tagged(ec2) == []


# -- item 18: one image per region and architecture ------------------------------------------------------------------
def test_the_image_is_resolved_once_per_deploy_and_recorded(aws_env, data_dir, ec2, hooks):
    from ccdsl.executor.state import State

    asked = []
    hooks.append(("before-call.ssm.GetParameter", lambda **_: asked.append(1)))
    full = inject(None, "InsufficientInstanceCapacity", "no capacity", when=lambda r: request_type(r) == "m5.xlarge")
    hooks.append(("before-send.ec2.RunInstances", full))
    calls = launches(hooks)
    cfg = deploy_config(aws_env, zones=["us-east-1a", "us-east-1b"],
                        address_map={"manager.0": closed_port(), "0": closed_port()})
    deploy_until_ssh(cfg, plan_in("us-east-1", ("manager", "m5.large", 1), ("worker", "m5.xlarge", 1)),
                     plan_in("us-east-1", ("manager", "m5.large", 1), ("worker", "m5.2xlarge", 1)))
    assert len(asked) == 1 and full.sent == 2
    images = {p["ImageId"] for name, p in calls if name == "RunInstances"}
    (record,) = State().list_clusters(live_only=False)
    assert len(images) == 1 and record.settings["images"] == {"us-east-1/x86_64": images.pop()}


def test_a_mac_type_is_refused(ec2_config, ec2):
    """mac1.metal's architecture is x86_64_mac: it needs a Dedicated Host (and got the x86_64 image)."""
    with pytest.raises(CapacityError, match="Dedicated Host") as info:
        provider(ec2_config).create(request(count=1, instance_type="mac1.metal"), lambda *e: None)
    assert info.value.scope == "region" and tagged(ec2, HANDLE) == {}
