"""The IAM policy ccdsl documents (``ccdsl iam-policy``) allows every AWS action ccdsl calls (issue 23 item 4).

The whole suite is the real check: ``conftest.pytest_sessionfinish`` fails a run in which ccdsl's clients called an
action the policy lacks.  These tests show the parts work: the command prints the document, the recording tells
ccdsl's calls from the test's own, and a run that calls an action outside the policy fails naming it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import iam_record
from ccdsl.executor.providers.iam import IMPLIED, allowed_actions, implied, missing, policy
from fixtures_executor import data_dir, ec2, ec2_config, hooks

ROOT = Path(__file__).resolve().parents[1]
PROBE = "CCDSL_IAM_PROBE"


def test_the_command_prints_the_policy():
    out = subprocess.run([sys.executable, "-m", "ccdsl", "iam-policy"], capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout)
    assert doc == policy() and doc["Version"] == "2012-10-17"
    assert {a.split(":")[0] for a in allowed_actions(doc)} == {"ec2", "ssm", "iam", "pricing", "elasticfilesystem"}
    # creates need the cluster tag in the request, changes the tag on the resource
    conditions = json.dumps([s.get("Condition", {}) for s in doc["Statement"]])
    assert "aws:RequestTag/ccdsl:cluster" in conditions and "aws:ResourceTag/ccdsl:cluster" in conditions


def test_missing_names_what_is_not_allowed_and_what_a_call_implies():
    assert missing(["ec2:RunInstances", "ec2:DescribeInstances", "ssm:GetParameter"]) == []
    assert missing(["ec2:CreateVpc"]) == ["ec2:CreateVpc"]
    lacking_tags = {"Statement": [{"Effect": "Allow", "Action": ["ec2:RunInstances"], "Resource": "*"}]}
    assert missing(["ec2:RunInstances"], lacking_tags) == ["ec2:CreateTags"] == list(IMPLIED["ec2:RunInstances"])
    assert missing(["ec2:describeinstances"], {"Statement": [{"Effect": "Allow", "Action": "ec2:Describe*"}]}) == []


def test_a_launch_with_an_instance_profile_needs_pass_role_for_ec2_only():
    """EC2 UG "Grant permissions to attach an IAM role to an instance": iam:PassRole on the role; the policy allows
    it only for roles passed to EC2."""
    launch = ["ec2:RunInstances", *implied("ec2:RunInstances", ["ImageId", "IamInstanceProfile"])]
    assert launch == ["ec2:RunInstances", "iam:PassRole"]
    assert implied("ec2:RunInstances", ["ImageId"]) == [] and implied("ec2:CreateKeyPair", ["IamInstanceProfile"]) == []
    assert missing(launch) == []
    doc = policy()
    (passing,) = [s for s in doc["Statement"] if "iam:PassRole" in json.dumps(s["Action"])]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    doc["Statement"].remove(passing)
    assert missing(launch, doc) == ["iam:PassRole"]


def test_the_recording_holds_ccdsls_calls_and_not_the_tests_own(ec2_config, ec2):
    from ccdsl.executor.providers import aws

    recording = iam_record.prepare()
    ec2.describe_availability_zones()  # the test's own client, an action ccdsl never calls
    aws.make(ec2_config, {}).call("describe_vpcs")
    assert "ec2:DescribeAvailabilityZones" in iam_record.calls(recording, ours_only=False)  # recorded...
    seen = iam_record.calls(recording)
    assert "ec2:DescribeVpcs" in seen
    assert "ec2:DescribeAvailabilityZones" not in seen  # ...but not as ccdsl's


def test_calls_a_fault_hook_answers_are_recorded_too(ec2_config, hooks):
    """aws_like answers placement-group calls itself (moto has none): the server never sees them, the in-process
    recorder, registered before any hook, does."""
    from ccdsl.executor.providers import aws

    def answered_here(**_):  # as aws_like answers: (the HTTP response, the parsed answer)
        return SimpleNamespace(status_code=200, headers={}), {"PlacementGroups": []}

    hooks.append(("before-call.ec2.DescribePlacementGroups", answered_here))
    iam_record.IN_PROCESS.discard("ec2:DescribePlacementGroups")
    assert aws.make(ec2_config, {}).call("describe_placement_groups") == {"PlacementGroups": []}
    assert "ec2:DescribePlacementGroups" in iam_record.IN_PROCESS


@pytest.mark.skipif(PROBE not in os.environ, reason="run by test_a_run_calling_an_action_outside_the_policy_fails")
def test_probe_calls_an_action_outside_the_policy(ec2_config):
    from ccdsl.executor.providers import aws

    aws.make(ec2_config, {}).call("create_vpc", CidrBlock="10.9.0.0/16")


def test_a_run_calling_an_action_outside_the_policy_fails_naming_it(tmp_path):
    env = {**os.environ, PROBE: "1", iam_record.ENV: str(tmp_path / "requests.jsonl")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "probe",
                           "tests/test_iam_policy.py"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
    assert "IAM: ccdsl called ec2:CreateVpc, which ccdsl/executor/providers/aws_policy.json does not allow" \
        in proc.stdout
