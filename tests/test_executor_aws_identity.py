"""The nodes' identity (issue 23 item 4): ``[aws] instance_profile`` goes into RunInstances as EC2 takes it (a name
or an ARN), an instance profile EC2 does not know is a ConfigError before anything is left behind, and launching
with one implies ``iam:PassRole``, which the policy ``ccdsl iam-policy`` prints grants for EC2 only.

EC2 is moto's server: the instance profiles are created in its IAM by the test's own client, and moto checks that
the profile RunInstances names exists.  Its refusal is not EC2's (moto answers IAM's NoSuchEntity), so EC2's own
``InvalidParameterValue`` is injected (tests/fixtures_executor.py ``inject``)."""

from __future__ import annotations

import pytest

import iam_record
from aws_like import aws_like  # the fixture
from ccdsl.errors import ConfigError, ProviderError
from ccdsl.executor.model import NodeRequest
from fixtures_executor import data_dir, ec2, ec2_config, hooks, inject
from test_aws_behaviour import deploy_config, everything_tagged, provider
from test_executor_aws_efa import create_and_terminate, only, request, sent

# What EC2 answers for an instance profile it does not know (a name; an ARN says "ARN").
UNKNOWN_NAME = "Value (ccdsl-nope) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"


@pytest.fixture()
def profile(aws_env):
    """An instance profile (with a role in it) in moto's IAM: its (name, ARN)."""
    import boto3

    iam = boto3.client("iam", endpoint_url=aws_env, region_name="us-east-1")
    iam.create_role(RoleName="ccdsl-test-nodes", AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": '
                    '[{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}')
    made = iam.create_instance_profile(InstanceProfileName="ccdsl-test-nodes")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName="ccdsl-test-nodes", RoleName="ccdsl-test-nodes")
    yield made["InstanceProfileName"], made["Arn"]
    iam.remove_role_from_instance_profile(InstanceProfileName="ccdsl-test-nodes", RoleName="ccdsl-test-nodes")
    iam.delete_instance_profile(InstanceProfileName="ccdsl-test-nodes")
    iam.delete_role(RoleName="ccdsl-test-nodes")


def test_a_name_and_an_arn_are_sent_as_ec2_takes_them_and_imply_pass_role(ec2_config, ec2, hooks, aws_like,
                                                                           profile):
    name, arn = profile
    calls = sent(hooks)
    iam_record.IN_PROCESS.discard("iam:PassRole")
    for value in (name, arn):
        p = provider(ec2_config, instance_profile=value)
        nodes = p.create(request("c6i.large", count=1), lambda *e: None)
        (association,) = ec2.describe_iam_instance_profile_associations(Filters=[
            {"Name": "instance-id", "Values": [nodes[0].instance_id]}])["IamInstanceProfileAssociations"]
        assert association["IamInstanceProfile"]["Arn"] == arn  # moto found the profile by its name, then its ARN
        p.terminate(request("c6i.large").handle, nodes)
    named, by_arn = only(calls, "RunInstances")
    assert named["IamInstanceProfile"] == {"Name": name}
    assert by_arn["IamInstanceProfile"] == {"Arn": arn}
    assert "iam:PassRole" in iam_record.IN_PROCESS  # the in-process recorder saw the parameter...
    assert "iam:PassRole" in iam_record.calls(iam_record.prepare())  # ...and so does the server's recording


def test_no_profile_sends_none(ec2_config, ec2, hooks, aws_like):
    calls = sent(hooks)
    create_and_terminate(provider(ec2_config), request("c6i.large", count=1), ec2, aws_like)
    (run,) = only(calls, "RunInstances")
    assert "IamInstanceProfile" not in run


def test_an_unknown_profile_is_a_config_error_and_nothing_is_left(aws_env, data_dir, ec2, hooks, aws_like):
    import ccdsl
    from ccdsl.executor.deploy import Plan

    refuse = inject(None, "InvalidParameterValue", UNKNOWN_NAME)
    hooks.append(("before-send.ec2.RunInstances", refuse))
    cfg = deploy_config(aws_env, zones=["us-east-1a", "us-east-1b"], instance_profile="ccdsl-nope")
    plan = Plan("aws", (NodeRequest("", "worker", "c6i.large", 2, region="us-east-1",
                                    options={"contract": "identity"}),))
    with pytest.raises(ConfigError, match=r"\[aws\] instance_profile = 'ccdsl-nope'") as info:
        ccdsl.deploy([plan], config=cfg)
    assert "Invalid IAM Instance Profile name" in info.value.message
    assert "list-instance-profiles" in info.value.hint
    assert refuse.sent == 1  # a setting to fix: no other zone is tried
    assert everything_tagged(ec2) == [] and aws_like.placement_groups() == []


def test_another_invalid_parameter_is_not_blamed_on_the_profile(ec2_config, hooks):
    hooks.append(("before-send.ec2.RunInstances", inject(None, "InvalidParameterValue", "Value (0) for parameter "
                                                                                      "volumeSize is invalid")))
    with pytest.raises(ProviderError, match="volumeSize") as info:
        provider(ec2_config, instance_profile="ccdsl-nodes").create(request("c6i.large", count=1), lambda *e: None)
    assert not isinstance(info.value, ConfigError)


def test_a_refused_launch_with_a_profile_names_pass_role(ec2_config, hooks):
    hooks.append(("before-send.ec2.RunInstances", inject(None, "UnauthorizedOperation", "You are not authorized "
                                                                                      "to perform this operation.")))
    with pytest.raises(ProviderError, match="UnauthorizedOperation") as info:
        provider(ec2_config, instance_profile="ccdsl-nodes").create(request("c6i.large", count=1), lambda *e: None)
    assert "iam:PassRole" in info.value.hint and "sts decode-authorization-message" in info.value.hint


@pytest.mark.parametrize("value", ["ccdsl-nodes", "team+hpc=1,a.b@c_d-e", "x" * 128,
                                   "arn:aws:iam::123456789012:instance-profile/ccdsl-nodes",
                                   "arn:aws-us-gov:iam::123456789012:instance-profile/hpc/teams/ccdsl-nodes"])
def test_a_name_or_an_arn_is_accepted(data_dir, value):
    from ccdsl.executor.config import Config

    assert Config.from_dict({"aws": {"instance_profile": value}}).aws.instance_profile == value


@pytest.mark.parametrize("value, problem", [
    ("ccdsl nodes", "not an instance profile name"), ("x" * 129, "not an instance profile name"),
    ("nodes/ccdsl", "not an instance profile name"),
    ("arn:aws:iam::123456789012:role/ccdsl-nodes", "not an instance profile ARN"),  # the role, not its profile
    ("arn:aws:iam::1234:instance-profile/ccdsl-nodes", "not an instance profile ARN")])
def test_anything_else_is_refused_when_the_file_is_read(data_dir, value, problem):
    from ccdsl.executor.config import Config

    with pytest.raises(ConfigError, match=problem) as info:
        Config.from_dict({"aws": {"instance_profile": value}})
    assert "instance-profile/<name>" in info.value.hint
