"""Every AWS call ccdsl makes in the suite, checked against the IAM policy it documents (issue 23 item 4).

moto's server records each request it serves (its recorder, switched on by ``MOTO_ENABLE_RECORDING`` before moto
is imported: :func:`prepare`).  ccdsl's own boto3 clients say ``ccdsl/<version>`` in their User-Agent, so the
test's plain clients (which set things up and look at them) are told apart.  At the end of the run
:func:`check` reads the recording and names every recorded action the policy does not allow
(``ccdsl.executor.providers.iam.missing``); ``conftest.pytest_sessionfinish`` fails the run with that list.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
import urllib.parse
from pathlib import Path

ENV = "MOTO_RECORDER_FILEPATH"
# Calls ccdsl's clients made in this process, seen before any fault hook can answer them instead of moto (the
# emulated placement groups and spot requests of aws_like never reach the server): see :func:`recorder`.
IN_PROCESS: set[str] = set()
_SCOPE = re.compile(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/aws4_request")


def prepare() -> Path:
    """Switch moto's recorder on for this process and its children (before moto is imported) into a fresh file."""
    if ENV not in os.environ:
        os.environ[ENV] = str(Path(tempfile.mkdtemp(prefix="ccdsl-iam-")) / "requests.jsonl")
    os.environ["MOTO_ENABLE_RECORDING"] = "True"
    return Path(os.environ[ENV])


def record(model: object, params: object = None, **_: object) -> None:
    """A ``before-parameter-build`` handler: remember ``signing_name:Operation`` of the call about to be made, and
    what its parameters imply (RunInstances with IamInstanceProfile: iam:PassRole)."""
    from ccdsl.executor.providers.iam import implied

    service = getattr(model, "service_model", None)
    name = f"{getattr(service, 'signing_name', '?')}:{getattr(model, 'name', '?')}"
    IN_PROCESS.add(name)
    IN_PROCESS.update(implied(name, params if isinstance(params, dict) else ()))


RECORDER = ("before-parameter-build", record)  # first in every EVENT_HOOKS list of ccdsl's clients (conftest)


def action(entry: dict, ours_only: bool = True) -> str | None:
    """``service:Action`` of one recorded request (with ``ours_only``: only one made by ccdsl's clients); None for
    anything else."""
    headers = {k.lower(): v for k, v in entry.get("headers", {}).items()}
    if ours_only and "ccdsl/" not in headers.get("user-agent", ""):
        return None
    scope = _SCOPE.search(headers.get("authorization", ""))
    service = scope.group(1) if scope else "?"
    target = headers.get("x-amz-target")
    if target:  # JSON protocols (SSM, Pricing): "AmazonSSM.GetParameter"
        return f"{service}:{target.rpartition('.')[2]}"
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    query = urllib.parse.parse_qs(body) or urllib.parse.parse_qs(urllib.parse.urlsplit(entry.get("url", "")).query)
    name = (query.get("Action") or [None])[0]
    return f"{service}:{name}" if name else None


def implied_by(entry: dict, name: str) -> list[str]:
    """What the recorded request's parameters imply beside ``name`` (query protocols: ``IamInstanceProfile.Name``
    is the parameter ``IamInstanceProfile``)."""
    from ccdsl.executor.providers.iam import implied

    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    return implied(name, (key.split(".")[0] for key in urllib.parse.parse_qs(body)))


def calls(path: Path, ours_only: bool = True) -> set[str]:
    """Every action ccdsl's clients sent (``ours_only=False``: anyone's), as the recording at ``path`` has them."""
    found: set[str] = set()
    if not path.exists():
        return found
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:  # a line two processes wrote at once: not ours to judge
                continue
            name = action(entry, ours_only)
            if name:
                found.add(name)
                found.update(implied_by(entry, name))
    return found


def check(path: Path) -> tuple[set[str], list[str]]:
    """(what ccdsl called, what of it the policy does not allow)."""
    from ccdsl.executor.providers.iam import missing

    seen = calls(path) | IN_PROCESS
    return seen, missing(seen)
