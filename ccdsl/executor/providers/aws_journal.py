"""The launch journal of the ``aws`` provider: every RunInstances is on record, by its idempotency token, before
it goes out.

A RunInstances whose answer is lost (Ctrl-C, a dropped connection, a crash) may have launched instances that no
record names, and whose tags EC2 may not list for a while.  So ``resources["launches"]`` maps each launch's token to
"pending" (not sent yet) or "sent" (botocore's before-send), and the entry goes when the answer is in.  Terminate --
in this process or in a new one after a crash -- finds what a sent launch created with DescribeInstances'
``client-token`` filter (:meth:`LaunchJournal.lost_launches`).  It never sends the launch again: a request that never
reached EC2 would launch then.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from ccdsl.errors import ProviderError
from ccdsl.executor.providers.aws_api import Ec2

log = logging.getLogger("ccdsl.executor")

# How often terminate looks for the instances of a launch whose answer was lost before it concludes there are none
# (with backoff from [aws] poll_interval: the default 5 s gives about a minute; EC2 lists within seconds).
LOST_LOOKS = 8


def client_token(handle: str, params: Mapping[str, Any], launch_round: int = 0) -> str:
    """RunInstances' idempotency token: derived from the handle, EVERY launch parameter and the launch round, so a
    retried call (botocore retries, a re-issue after a lost answer) cannot launch twice.  AWS refuses a token
    reused with other parameters (IdempotentParameterMismatch) -- a new security group after failover, another
    type or zone -- and answers a reused token with the original, possibly terminated, instances: so every launch
    after a clean-up is a new round."""
    what = json.dumps({k: v for k, v in params.items() if k != "ClientToken"}, sort_keys=True, default=str)
    digest = hashlib.sha256(f"{launch_round}|{what}".encode()).hexdigest()[:16]
    return f"ccdsl-{handle}-{digest}"


class LaunchJournal:
    """RunInstances on record before it is sent, and the instances of lost answers found again.  It registers its
    ``before-send`` hook on every EC2 client ``ec2`` makes."""

    def __init__(self, ec2: Ec2) -> None:
        self.ec2 = ec2
        self.launch_round = 0  # bumped by every clean-up: a later launch must not reuse an earlier token
        ec2.own_hooks.append(("before-send.ec2.RunInstances", self.sending))

    def token(self, handle: str, params: Mapping[str, Any]) -> str:
        """The ClientToken of a launch with ``params`` in this launch round."""
        return client_token(handle, params, self.launch_round)

    def new_round(self) -> None:
        """A clean-up happened: launches from now on get new tokens."""
        self.launch_round += 1

    def sending(self, request: Any, **_: Any) -> None:
        """botocore's before-send of RunInstances: its token is "sent" from here on (and on record so)."""
        from urllib.parse import parse_qs

        body = request.body if isinstance(request.body, (bytes, str)) else b""
        text = body.decode() if isinstance(body, bytes) else body
        launches = self.ec2.resources.get("launches") or {}
        for token in parse_qs(text).get("ClientToken", []):
            if launches.get(token) == "pending":
                launches[token] = "sent"
                self.ec2.journal()

    def run_instances(self, params: dict[str, Any]) -> dict[str, Any]:
        """RunInstances, journaled (see above): a refusal from EC2 launched nothing and leaves no entry; a lost
        answer leaves the entry for :meth:`lost_launches`."""
        ec2 = self.ec2
        token = params["ClientToken"]
        launches = ec2.resources.setdefault("launches", {})
        launches[token] = "pending"
        ec2.journal()
        try:
            answer = ec2.retry_not_visible(lambda: ec2.call("run_instances", **params))
        except ProviderError as exc:
            if getattr(exc, "code", "") or launches.get(token) == "pending":  # refused, or never sent
                launches.pop(token, None)
                ec2.journal()
            raise
        except BaseException:
            if launches.get(token) == "pending":  # interrupted before it was sent: nothing can exist
                launches.pop(token, None)
                ec2.journal()
            raise
        ec2.fresh.update(i["InstanceId"] for i in answer["Instances"])
        launches.pop(token, None)  # the caller records the nodes
        return answer

    def lost_launches(self, deadline: float) -> set[str]:
        """Ids of the instances of every sent launch whose answer was lost, by the ``client-token`` filter.  EC2
        lists a fresh instance only after a while, so each token is looked for until it shows or ``LOST_LOOKS``
        looks (with backoff) found nothing: then its request launched nothing (it was refused or never arrived)."""
        ec2 = self.ec2
        launches = ec2.resources.get("launches") or {}
        tokens = sorted(t for t, how in launches.items() if how == "sent")
        ids: set[str] = set()
        delay = ec2.config.poll_interval
        for look in range(LOST_LOOKS):
            for token in list(tokens):  # one or two: a lost answer is rare
                found = {i["InstanceId"] for r in ec2.paginate("describe_instances", "Reservations", Filters=[
                    {"Name": "client-token", "Values": [token]}]) for i in r["Instances"]}
                if found:
                    ids |= found
                    tokens.remove(token)
            if not tokens or look + 1 == LOST_LOOKS or time.monotonic() >= deadline:
                break
            log.info("looking for the instances of %d launch(es) whose answer was lost (EC2 lists new ones late)",
                     len(tokens))
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
        if tokens:
            log.warning("%d launch(es) whose answer was lost show no instance: EC2 refused them or never got them "
                        "(client token %s)", len(tokens), ", ".join(tokens))
        ec2.resources.pop("launches", None)
        ec2.fresh |= ids
        ec2.journal()
        return ids
