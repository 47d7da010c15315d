"""A long-lived child process that parses and resolves contract texts for the generated-contract tests (issue 18),
so that a hang or a blow-up is caught instead of taking the test run down with it.

    python tests/resolve_worker.py STDERR_FILE

Memory: after start-up (imports, the shipped catalog's view, the synthetic catalogs) the address space is capped
at what it is then plus ``CCDSL_WORKER_MEMORY`` bytes (default 1.5 GiB, ``RLIMIT_AS``): an example that needs more
fails with MemoryError (or kills the worker), which the parent reports.  Time is bounded by the parent
(:class:`Worker`), which kills a worker that does not answer.  File descriptor 2 goes to STDERR_FILE, so whatever a
resolve prints there (Z3's own error output, a Python warning) is sent back with its answer.

Protocol: one JSON request per line on stdin, one JSON answer per line on stdout::

    {"texts": [...], "name": "c",
     "catalog": ["shipped"] | ["plain", seed] | ["spot", seed] | ["synthetic", rows, seed],
     "region": "us-east-1", "any_region": false}
    -> {"outcomes": [outcome, ...], "stderr": "..."}

An outcome is ``["ok", provider, region, type, count, price, manager type, manager region]``,
``["error", class name, detail]`` (a CcdslError) or ``["crash", traceback]`` (anything else).
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LIMIT = int(os.environ.get("CCDSL_WORKER_MEMORY", str(3 << 29)))  # 1.5 GiB above the worker's start-up size


def _catalog(spec: list[Any]) -> Any:
    if spec[0] == "shipped":
        return None
    if spec[0] == "synthetic":  # a catalog of any size, built for the request (never kept)
        from synthetic import catalog

        return catalog(rows=int(spec[1]), seed=int(spec[2]))
    if spec[0] == "plain":
        from test_resolver_oracle import small_catalog

        return small_catalog(int(spec[1]))
    from test_resolver_spot import spot_catalog

    return spot_catalog(int(spec[1]))


def _detail(e: Exception) -> Any:
    """What must agree between two layouts of one contract: the conflict's clauses, the diagnostics' messages
    (without the line and column numbers, which the layout moves)."""
    from ccdsl.errors import ContractError, UnsatisfiableError

    if isinstance(e, UnsatisfiableError):
        return [[c.parameter, c.role] for c in e.conflict]
    if isinstance(e, ContractError):
        return [re.sub(r"line \d+|column \d+", "line N", d.message) for d in e.diagnostics if d.severity == "error"]
    return str(e.message)


def outcome(text: str, name: str, catalog: Any, region: str, any_region: bool) -> list[Any]:
    import traceback

    import ccdsl
    from ccdsl.errors import CcdslError

    try:
        contract = ccdsl.parse(text, path="generated.ccc")[name]
        r = ccdsl.resolve(contract, catalog, region=region, any_region=any_region)
    except CcdslError as e:
        return ["error", type(e).__name__, _detail(e)]
    except BaseException:  # what the property forbids: reported, not raised
        return ["crash", traceback.format_exc()]
    m = r.manager
    return ["ok", r.provider, r.region, r.instance_type, r.node_count, r.price_per_hour,
            m.instance_type if m else None, m.region if m else None]


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def main(stderr_path: str) -> None:
    import resource
    import warnings

    sys.path.insert(0, str(HERE))
    err = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(err, 2)
    warnings.simplefilter("always")  # every warning printed, each time: nothing may reach stderr
    import ccdsl

    ccdsl.resolve(ccdsl.parse("warm = @cluster node_count => 1")["warm"])  # the shipped catalog's view
    for seed in range(4):
        _catalog(["plain", seed])
        _catalog(["spot", seed])
    if hasattr(resource, "RLIMIT_AS") and LIMIT > 0:
        cap = _vm_size() + LIMIT
        resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
    out = sys.stdout
    reader = open(stderr_path, "rb")  # noqa: SIM115 - read alongside fd 2 for the worker's whole life
    reader.seek(0, 2)
    print(json.dumps({"ready": True}), file=out, flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            catalog = _catalog(req["catalog"])
        except BaseException:
            import traceback

            outcomes = [["crash", traceback.format_exc()]] * len(req["texts"])
        else:
            outcomes = [outcome(t, req["name"], catalog, req["region"], req["any_region"]) for t in req["texts"]]
        catalog = None
        sys.stderr.flush()
        print(json.dumps({"outcomes": outcomes, "stderr": reader.read().decode("utf-8", "replace")}), file=out,
              flush=True)


class Worker:
    """The parent's side: start the worker, ask it, kill and restart it when it does not answer in ``timeout``
    seconds (generous: it catches hangs, not slowness, and is never the thing a loaded machine trips over)."""

    def __init__(self, scratch: Path, timeout: float = 60.0, env: dict[str, str] | None = None) -> None:
        self.scratch = scratch
        self.timeout = timeout
        self.env = env
        self.proc: subprocess.Popen[str] | None = None
        self.started = 0

    def start(self) -> None:
        self.started += 1
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__)), str(self.scratch / "stderr.txt")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=self.env,
                                     cwd=HERE.parent)
        ready = self._read(600.0)  # start-up builds the catalog views: not an example, not held to the limit
        if ready is None or not ready.get("ready"):
            raise RuntimeError(f"the resolve worker did not start: {ready}")

    def _read(self, timeout: float) -> dict[str, Any] | None:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                line = self.proc.stdout.readline()
                return json.loads(line) if line else {"died": self.proc.wait()}

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """The worker's answer, or ``{"limit": ...}`` when it ran out of time or died (then it is restarted)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = self._read(self.timeout)
        if answer is None or "died" in answer:
            what = f"no answer in {self.timeout:g} s" if answer is None else f"the worker died ({answer['died']})"
            self.stop()
            return {"limit": what}
        return answer

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                if f is not None:
                    f.close()
            self.proc = None


if __name__ == "__main__":
    main(sys.argv[1])
