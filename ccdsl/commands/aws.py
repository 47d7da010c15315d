"""``ccdsl iam-policy``: the IAM policy an AWS account needs to let ccdsl deploy (cheap to import)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("iam-policy", help="print the IAM policy (JSON) the aws provider needs, to attach to a user "
                                          "or role")
    p.set_defaults(func=cmd_iam_policy)


def cmd_iam_policy(args: argparse.Namespace) -> int:
    from ccdsl.executor.providers.iam import policy

    print(json.dumps(policy(), indent=2))
    return 0
