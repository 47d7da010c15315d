"""The IAM policy the ``aws`` provider needs, as one document: ``aws_policy.json`` beside this module.

``ccdsl iam-policy`` prints it for an administrator to attach.  It grants what ccdsl calls and no more: describes
everywhere (EC2 has no resource-level permission for them), creates only with a ``ccdsl:cluster`` tag in the request,
changes and deletes only of resources carrying that tag, tags only at creation.  The test suite records every AWS
call ccdsl's own clients make (their User-Agent says ``ccdsl/<version>``) and fails the run by name when one is not
allowed here (``tests/iam_record.py``), so the document cannot fall behind the code.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from importlib import resources
from typing import Any

# What a call implies beside its own action (AWS's service authorization reference): RunInstances with
# TagSpecifications is also ec2:CreateTags, and so on.
IMPLIED: dict[str, tuple[str, ...]] = {
    "ec2:RunInstances": ("ec2:CreateTags",),
    "ec2:CreateSecurityGroup": ("ec2:CreateTags",),
    "ec2:CreateKeyPair": ("ec2:CreateTags",),
    "ec2:CreatePlacementGroup": ("ec2:CreateTags",),
    # EFS API reference: a mount target is a network interface EFS makes in the caller's name
    "elasticfilesystem:CreateMountTarget": ("ec2:DescribeSubnets", "ec2:DescribeNetworkInterfaces",
                                            "ec2:CreateNetworkInterface"),
    "elasticfilesystem:DeleteMountTarget": ("ec2:DeleteNetworkInterface",),
}

# What a call implies only when it carries a parameter: RunInstances with IamInstanceProfile passes the profile's
# role to EC2, which needs iam:PassRole on that role (EC2 UG "Grant permissions to attach an IAM role to an
# instance").
IMPLIED_BY_PARAMETER: dict[tuple[str, str], tuple[str, ...]] = {
    ("ec2:RunInstances", "IamInstanceProfile"): ("iam:PassRole",),
    # CreateFileSystem with Tags also needs elasticfilesystem:TagResource (EFS API reference)
    ("elasticfilesystem:CreateFileSystem", "Tags"): ("elasticfilesystem:TagResource",),
}


def implied(call: str, parameters: Iterable[str]) -> list[str]:
    """The actions ``call`` (``service:Action``) implies because it carries ``parameters`` (top-level names, as
    boto3 takes them: ``IamInstanceProfile``)."""
    return [a for p in dict.fromkeys(parameters) for a in IMPLIED_BY_PARAMETER.get((call, p), ())]


def policy() -> dict[str, Any]:
    """The policy document (a fresh copy)."""
    text = resources.files("ccdsl.executor.providers").joinpath("aws_policy.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def allowed_actions(doc: dict[str, Any] | None = None) -> list[str]:
    """Every ``service:Action`` pattern an Allow statement names."""
    out: list[str] = []
    for statement in (doc or policy())["Statement"]:
        if statement.get("Effect") == "Allow":
            actions = statement["Action"]
            out += [actions] if isinstance(actions, str) else list(actions)
    return out


def missing(calls: Iterable[str], doc: dict[str, Any] | None = None) -> list[str]:
    """The actions among ``calls`` (``service:Action``) and what they imply that no Allow statement covers."""
    patterns = [p.lower() for p in allowed_actions(doc)]
    needed = set()
    for call in calls:
        needed.add(call)
        needed.update(IMPLIED.get(call, ()))
    return sorted(a for a in needed if not any(fnmatch.fnmatchcase(a.lower(), p) for p in patterns))
