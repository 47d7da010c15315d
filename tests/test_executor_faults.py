"""Deploy faults against moto: no capacity anywhere, an unreachable node, Ctrl-C, a killed ccdsl process.

Each must end with a clear message and with nothing tagged left in the (moto) cloud.
"""

from __future__ import annotations

import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import ccdsl
import ccdsl.executor
from ccdsl.errors import CapacityError, ProviderError
from ccdsl.executor.config import Config
from ccdsl.executor.deploy import Plan
from ccdsl.executor.model import NodeRequest
from ccdsl.executor.state import State
from conftest import free_port
from fixtures_executor import aws_settings, data_dir, ec2, hooks, inject


def closed_port() -> str:
    return f"127.0.0.1:{free_port()}"  # nothing listens there: connection refused


def config_for(url: str, **aws) -> Config:
    return Config.from_dict({"aws": aws_settings(url, **aws), "ssh": {"ready_timeout": 2.0, "connect_timeout": 1.0}})


def plan(instance_type="t3.xlarge", count=2, region="us-east-1"):
    return Plan("aws", (NodeRequest("", "worker", instance_type, count, region=region,
                                    options={"contract": "faults"}),))


def all_tagged(ec2) -> list[str]:
    f = [{"Name": "tag-key", "Values": ["ccdsl:cluster"]}]
    inst = [i["InstanceId"] for r in ec2.describe_instances(Filters=f)["Reservations"] for i in r["Instances"]
            if i["State"]["Name"] != "terminated"]
    return inst + [g["GroupId"] for g in ec2.describe_security_groups(Filters=f)["SecurityGroups"]] + [
        k["KeyName"] for k in ec2.describe_key_pairs(Filters=f)["KeyPairs"]]


def only_record(state: State):
    (record,) = state.list_clusters(live_only=False)
    return record


def test_no_capacity_in_any_zone_nor_alternative(aws_env, data_dir, ec2, hooks):
    handler = inject(None, "InsufficientInstanceCapacity", "We currently do not have sufficient capacity")
    hooks.append(("before-send.ec2.RunInstances", handler))
    cfg = config_for(aws_env, zones=["us-east-1a", "us-east-1b", "us-east-1c"])
    with pytest.raises(CapacityError) as info:
        ccdsl.deploy([plan("t3.xlarge"), plan("m5.xlarge")], config=cfg)
    text = info.value.render()
    assert "t3.xlarge" in text and "m5.xlarge" in text and "us-east-1c" in text
    assert handler.sent == 6  # 3 zones x 2 plans, one RunInstances each
    assert all_tagged(ec2) == []
    record = only_record(State())
    assert record.status == "terminated" and "no capacity" in record.note.lower()


def test_unreachable_node_fails_clearly_and_leaks_nothing(aws_env, data_dir, ec2):
    cfg = config_for(aws_env, address_map={"0": closed_port()})
    with pytest.raises(ProviderError) as info:
        ccdsl.deploy(plan(count=1), config=cfg)
    assert "worker 0" in info.value.message and "gave up" in info.value.message
    assert all_tagged(ec2) == []
    assert only_record(State()).status == "terminated"
    assert ccdsl.clusters(config=cfg) == []


def test_ctrl_c_during_deploy_terminates_what_was_created(aws_env, data_dir, ec2):
    cfg = config_for(aws_env)
    seen = []

    def progress(role, index, state):
        seen.append(state)
        if state == "running":
            assert len(all_tagged(ec2)) == 4  # 2 instances, security group, key pair: really created
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ccdsl.deploy(plan(count=2), config=cfg, progress=progress)
    assert seen[:2] == ["requested", "requested"]
    assert all_tagged(ec2) == []
    record = only_record(State())
    assert record.status == "terminated" and "interrupted" in record.note
    phases = [e.phase for e in State().journal_of(record.handle)]
    assert phases.index("create") < phases.index("created") < phases.index("abort") < phases.index("cleanup")


def test_ctrl_c_right_after_the_record_is_written_leaves_no_record(data_dir):
    """A Ctrl-C between the record and the first provider call (here: as the deploy journals its start) leaves
    nothing: no record to warn about, nothing created.  The record used to be written before the deploy's
    clean-up guard and stayed 'deploying', then 'failed' once its process was gone."""
    class InterruptedState(State):
        def journal(self, handle, phase, **detail):
            super().journal(handle, phase, **detail)
            if phase == "deploy":
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=1), state=InterruptedState())
    assert State().list_clusters(live_only=False) == []


def test_cleanup_failure_leaves_a_failed_record_for_terminate(aws_env, data_dir, ec2, hooks):
    cfg = config_for(aws_env, address_map={"0": closed_port()})
    terminate_fails = inject(None, "InternalError", "injected", status=500)
    hooks.append(("before-send.ec2.TerminateInstances", terminate_fails))
    with pytest.raises(ProviderError):
        ccdsl.deploy(plan(count=1), config=cfg.replace(aws={"max_attempts": 1}))
    record = only_record(State())
    assert record.status == "failed" and "clean-up failed" in record.note
    assert len(all_tagged(ec2)) == 3
    hooks.clear()
    assert [c.handle for c in ccdsl.clusters(config=cfg)] == [record.handle]
    ccdsl.terminate(record.handle, config=cfg)
    assert all_tagged(ec2) == []
    assert ccdsl.clusters(config=cfg) == []


CONTRACT = "crashy = @cluster(node_count => 2, node_machinetype => EC2Type_T3_xLarge)\n"


def write_config(path: Path, url: str, **aws) -> None:
    s = aws_settings(url, **aws)
    lines = ["[aws]"] + [f"{k} = {json.dumps(v)}" for k, v in s.items() if not isinstance(v, dict)]
    lines += [f'image.{arch} = {json.dumps(ami)}' for arch, ami in s["image"].items()]
    lines += [f'address_map = {{ "0" = "{closed_port()}", "1" = "{closed_port()}" }}']
    lines += ["[ssh]", "ready_timeout = 120.0", "connect_timeout = 1.0"]
    path.write_text("\n".join(lines) + "\n")


def ccdsl_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ccdsl", *args], env=env, capture_output=True, text=True,
                          timeout=120)


# A fail-safe only (a hung child must not hang the suite): every wait below ends on an event first.
FAIL_SAFE = 120


def sigint_at_default() -> None:
    """``preexec_fn``: SIGINT at its default in the child, whatever this process inherited.  A shell without job
    control (``bash .ci/run > log &``, nohup, many CI runners) starts background jobs with SIGINT *ignored*, an
    ignored signal stays ignored across exec, and Python then installs no KeyboardInterrupt handler: the child
    would never see the Ctrl-C these tests send (issue 19: the 'deploy got no further for 60 s' of full runs)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Child:
    """``ccdsl ARGS`` in a child process whose output is read line by line by threads, so that a test can wait
    for a stage line on stderr (an event) and still read everything afterwards."""

    def __init__(self, args: list[str], env: dict) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "ccdsl", *args], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, preexec_fn=sigint_at_default)
        self.out: list[str] = []
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.out, None), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.lines, self._new),
                                          daemon=True)]
        for t in self._readers:
            t.start()

    @staticmethod
    def _read(pipe, into: list[str], new: queue.Queue | None) -> None:
        for line in pipe:
            into.append(line)
            if new is not None:
                new.put(line)
        if new is not None:
            new.put(None)  # end of stderr: the child exited

    def wait_for(self, text: str) -> str:
        """The first stderr line containing ``text``; fails (and kills the child) if it exits without one."""
        while True:
            try:
                line = self._new.get(timeout=FAIL_SAFE)
            except queue.Empty:
                line = None
            if line is None:
                self.proc.kill()
                raise AssertionError(f"no line with {text!r} before the child ended:\n{self.stderr}")
            if text in line:
                return line

    def finish(self) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) once the child has exited."""
        try:
            self.proc.wait(timeout=FAIL_SAFE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the child did not exit:\n{self.stderr}") from None
        for t in self._readers:
            t.join(FAIL_SAFE)
        return self.proc.returncode, "".join(self.out), self.stderr

    @property
    def stderr(self) -> str:
        return "".join(self.lines)


def cli_deploy(aws_env, data_dir, tmp_path) -> tuple[Child, dict]:
    """Start ``ccdsl deploy`` of the two-node CONTRACT in a child process: its nodes never become reachable (the
    readiness wait lasts ``ready_timeout = 120``), so an interrupt finds it in the stage the test waited for."""
    (tmp_path / "c.ccc").write_text(CONTRACT)
    write_config(tmp_path / "ccdsl.toml", aws_env)
    env = {**os.environ, "CCDSL_CONFIG": str(tmp_path / "ccdsl.toml"), "CCDSL_DATA_DIR": str(data_dir)}
    return Child(["deploy", str(tmp_path / "c.ccc")], env), env


def cli_deploy_past_run_instances(aws_env, data_dir, ec2, tmp_path) -> tuple[subprocess.Popen, dict]:
    """Start ``ccdsl deploy`` of the two-node CONTRACT in a child process and return (child, env) once
    RunInstances has happened (its answer printed 'requested' for both nodes: both tagged in moto)."""
    child, env = cli_deploy(aws_env, data_dir, tmp_path)
    child.wait_for("worker 1: requested")
    assert len([x for x in all_tagged(ec2) if x.startswith("i-")]) == 2
    return child.proc, env


def test_killed_ccdsl_process_is_found_and_terminated(aws_env, data_dir, ec2, tmp_path):
    child, env = cli_deploy_past_run_instances(aws_env, data_dir, ec2, tmp_path)
    try:
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    listed = ccdsl_cli("clusters", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    (info,) = json.loads(listed.stdout)
    assert info["status"] == "failed" and "interrupted" in info["note"] and info["nodes"] == 2
    handle = info["handle"]
    assert len(all_tagged(ec2)) == 4
    done = ccdsl_cli("terminate", handle, env=env)
    assert done.returncode == 0, done.stderr
    assert all_tagged(ec2) == []
    assert json.loads(ccdsl_cli("clusters", "--json", env=env).stdout) == []


def test_cluster_known_only_by_tags_is_adopted_and_terminated(aws_env, data_dir, ec2, tmp_path):
    """Records lost (another machine, deleted data dir): the cloud's tags still find the cluster."""
    cfg = config_for(aws_env)
    from ccdsl.executor.providers import aws

    p = aws.make(cfg, {})
    req = NodeRequest("QwErTyUiOpAsDfG", "worker", "t3.xlarge", 2, region="us-east-1", options={"contract": "lost"})
    p.wait_running(req.handle, p.create(req, lambda *a: None), lambda *a: None)
    (info,) = ccdsl.clusters(config=cfg)
    assert (info.handle, info.contract, info.nodes, info.status) == ("QwErTyUiOpAsDfG", "lost", 2, "running")
    assert "found in the cloud" in info.note
    ccdsl.terminate("QwErTyUiOpAsDfG", config=cfg)
    assert all_tagged(ec2) == []


def test_cluster_terminated_outside_ccdsl_is_marked_terminated(aws_env, data_dir, ec2):
    cfg = config_for(aws_env)
    state = State()
    from ccdsl.executor.state import ClusterRecord

    now = time.time()
    state.add_cluster(ClusterRecord("ZxCvBnMaSdFgHjK", "gone", "aws", "PeerWorkers", "running", now, now,
                                    settings={"endpoint_url": aws_env, "resolved_region": "us-east-1"}))
    assert ccdsl.clusters(config=cfg) == []
    assert "outside ccdsl" in state.get_cluster("ZxCvBnMaSdFgHjK").note


@pytest.mark.parametrize("stage", ["deploying t3.xlarge", "worker 1: requested", "worker 1: running"])
def test_ctrl_c_on_the_cli_deploy_removes_everything(aws_env, data_dir, ec2, tmp_path, stage):
    """SIGINT as soon as the deploy printed each stage line: resolved (the cloud calls starting), instances
    launched (waiting for them to run), running (the readiness wait).  Each exits 130, having removed what it
    created."""
    child, env = cli_deploy(aws_env, data_dir, tmp_path)
    child.wait_for(stage)
    child.proc.send_signal(signal.SIGINT)
    code, _, err = child.finish()
    assert code == 130, err
    assert "interrupted" in err
    assert all_tagged(ec2) == []
    assert json.loads(ccdsl_cli("clusters", "--json", env=env).stdout) == []


def test_ctrl_c_during_a_local_set_up_ends_it(data_dir, tmp_path):
    """SIGINT while the set-up command runs (the deploy's last stage): rc 130, the set-up and what it started
    are gone, and nothing is left to terminate."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "data.txt").write_text("x\n")
    env = {**os.environ, "CCDSL_DATA_DIR": str(data_dir)}
    env.pop("CCDSL_CONFIG", None)
    child = Child(["deploy", str(Path(__file__).parents[1] / "examples" / "local.ccc"), "--workdir", str(project),
                   "--setup", "sleep 600 & echo setup-pid $!; wait"], env)
    pid = int(child.wait_for("setup-pid").split()[-1])
    ended = os.pidfd_open(pid)  # readable once that process has exited: an event, not a poll
    try:
        child.proc.send_signal(signal.SIGINT)
        code, _, err = child.finish()
        assert code == 130, err
        assert select.select([ended], [], [], FAIL_SAFE)[0], "the set-up's child outlived the interrupted deploy"
    finally:
        os.close(ended)
    assert json.loads(ccdsl_cli("clusters", "--json", env=env).stdout) == []


AFTER_RESOLVE = """
import os, sys
import ccdsl
ccdsl.resolve(ccdsl.cluster(node_count=2, node_vcpus_count=4))
try:
    ccdsl.resolve(ccdsl.cluster(node_vcpus_count=100000))  # unsat: the conflict's core is solved too
except ccdsl.errors.UnsatisfiableError:
    pass
r, _ = os.pipe()
try:  # the line inside: a Ctrl-C that lands before the read starts (a loaded machine) is still this process's
    print("resolved", file=sys.stderr, flush=True)
    os.read(r, 1)  # blocks: nothing is ever written
except KeyboardInterrupt:
    sys.exit(130)
sys.exit(1)
"""


def test_a_resolve_leaves_ctrl_c_able_to_interrupt_a_blocking_read(data_dir):
    """Z3 put Python's SIGINT handler back with SA_RESTART after every check: a read that blocks later (a
    deploy's set-up output, an SSH answer) was restarted by the kernel and the KeyboardInterrupt never came."""
    proc = subprocess.Popen([sys.executable, "-c", AFTER_RESOLVE], stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_at_default)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("resolved"):
                break
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=FAIL_SAFE) == 130, proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


# ``python -m`` a module that runs ``ccdsl check x.ccc`` through the real entry point, with ``check`` replaced by
# COMMAND: each sends this process SIGINT itself (an event the kernel delivers at once, no timing) at a chosen moment.
VIA_ENTRYPOINT = """
import atexit, os, signal, sys
import ccdsl.commands.contract as contract
from ccdsl import cli

def ctrl_c(then="while True: pass"):  # SIGINT in code run by exec() of a string; then work until it raises
    exec("os.kill(os.getpid(), signal.SIGINT)\\n" + then)

COMMAND

contract.cmd_check = command
sys.argv = ["ccdsl", "check", "x.ccc"]
cli.entrypoint()
"""

CTRL_C_MOMENTS = {
    # in code run by exec() of a string, as dataclasses and namedtuples build their methods (a deploy imports boto3
    # then): CPython remembered the KeyboardInterrupt and, under python -m, killed itself with SIGINT at exit (-2)
    "once": (130, """
def command(args):
    ctrl_c()
"""),
    # a second Ctrl-C while the first one's clean-up runs: the clean-up is abandoned, still 130
    "twice": (130, """
def command(args):
    try:
        ctrl_c()
    finally:
        ctrl_c()
"""),
    # once the command has returned the process only exits: its result stands, no traceback
    "while exiting": (0, """
def command(args):
    atexit.register(lambda: ctrl_c("for _ in range(10 ** 6): pass"))
    return 0
"""),
}


@pytest.mark.parametrize("moment", CTRL_C_MOMENTS)
def test_ctrl_c_at_any_moment_exits_130_without_a_traceback(tmp_path, moment):
    """``python -m ccdsl``: a Ctrl-C during a command exits 130 and says so, however many come and wherever
    they land; one after the command returned changes nothing."""
    expected, command = CTRL_C_MOMENTS[moment]
    (tmp_path / "ctrl_c_probe.py").write_text(VIA_ENTRYPOINT.replace("COMMAND", command))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run([sys.executable, "-m", "ctrl_c_probe"], env=env, capture_output=True, text=True,
                          timeout=FAIL_SAFE, preexec_fn=sigint_at_default)
    assert done.returncode == expected, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert ("interrupted" in done.stderr) == (expected == 130), done.stderr


def test_parallel_work_lets_ctrl_c_through_at_once():
    """A Ctrl-C while nodes are worked on in parallel (readiness, set-up, sync) raises in the caller at once, not
    when the slowest node is done: the caller must clean up (issue 19).  A ThreadPoolExecutor's ``with`` block
    joined every worker first."""
    from ccdsl.executor.parallel import parallel

    started, release = threading.Event(), threading.Event()
    fail_safe = threading.Timer(FAIL_SAFE, release.set)  # ends the workers if the interrupt never got through

    def work(_):
        started.set()
        release.wait()

    def interrupt():
        started.wait()
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # even if this run ignores SIGINT
    fail_safe.start()
    try:
        threading.Thread(target=interrupt, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            parallel(work, [1, 2, 3])
        assert not release.is_set(), "the interrupt waited for the workers"
    finally:
        signal.signal(signal.SIGINT, previous)
        release.set()
        fail_safe.cancel()


def test_nodes_stopped_outside_ccdsl_make_the_cluster_interrupted(aws_env, data_dir, ec2):
    """Cloud truth wins: a cluster whose instances someone stopped in the console is shown interrupted."""
    cfg = config_for(aws_env)
    from ccdsl.executor.providers import aws

    p = aws.make(cfg, {})
    req = NodeRequest("StOpPeDoUtSiDeX", "worker", "t3.xlarge", 2, region="us-east-1", options={"contract": "s"})
    nodes = p.wait_running(req.handle, p.create(req, lambda *a: None), lambda *a: None)
    (info,) = ccdsl.clusters(config=cfg)  # adopted, running
    assert info.status == "running"
    ec2.stop_instances(InstanceIds=[n.instance_id for n in nodes])
    (info,) = ccdsl.clusters(config=cfg)
    assert info.status == "interrupted" and "outside ccdsl" in info.note
    ccdsl.terminate(req.handle, config=cfg)
    assert all_tagged(ec2) == []


def test_a_deploy_refused_before_anything_is_created_leaves_nothing_to_terminate(aws_env, data_dir, ec2, hooks):
    """Bad or missing credentials fail the first call (the zones): there is nothing to clean up, so no record is
    left (issue 8 item 18), not a failed cluster whose terminate would be refused the same way."""
    refused = inject(None, "AuthFailure", "AWS was not able to validate the provided access credentials")
    hooks.append(("before-send.ec2", refused))
    cfg = config_for(aws_env)
    with pytest.raises(ProviderError, match="AuthFailure"):
        ccdsl.deploy(plan(count=2), config=cfg.replace(aws={"max_attempts": 1}))
    assert State().list_clusters(live_only=False) == []
    hooks.clear()
    assert all_tagged(ec2) == [] and ccdsl.clusters(config=cfg) == []


def test_deploy_that_never_reached_the_cloud_leaves_no_record(aws_env, data_dir, ec2, monkeypatch, tmp_path):
    """No AWS credentials: nothing can have been created, so nothing is recorded (a record could not be terminated
    without the credentials that are missing, and every 'ccdsl clusters' would warn about it)."""
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    cfg = config_for(aws_env)
    with pytest.raises(ProviderError, match="no AWS credentials"):
        ccdsl.deploy(plan(count=1), config=cfg)
    assert State().list_clusters(live_only=False) == []
    assert all_tagged(ec2) == []


def test_terminate_forget_removes_a_record_with_a_warning(aws_env, data_dir, ec2):
    from ccdsl.executor.state import ClusterRecord

    state, now = State(), time.time()
    state.add_cluster(ClusterRecord("StUcKrEcOrDaBcD", "gone", "aws", "PeerWorkers", "failed", now, now,
                                    settings={"resolved_region": "eu-north-1"}, note="deploy failed"))
    state.journal("StUcKrEcOrDaBcD", "deploy")
    env = {**os.environ, "CCDSL_DATA_DIR": str(data_dir)}
    done = ccdsl_cli("terminate", "--forget", "StUcKrEcOrDaBcD", env=env)
    assert done.returncode == 0, done.stderr
    assert "no longer tracked" in done.stderr and "aws eu-north-1" in done.stderr
    assert "ccdsl:cluster=StUcKrEcOrDaBcD" in done.stderr
    assert State().get_cluster("StUcKrEcOrDaBcD") is None and State().journal_of("StUcKrEcOrDaBcD") == []
    again = ccdsl_cli("terminate", "--forget", "StUcKrEcOrDaBcD", env=env)
    assert again.returncode == 1 and "no cluster with handle" in again.stderr


# -- SIGKILL right after the cloud call of each lifecycle verb (deploy: test_killed_ccdsl_process_is_found_...) ----
KILL_AFTER = """
import json, os, signal, sys
import ccdsl
import ccdsl.executor
from ccdsl.executor.config import Config
from ccdsl.executor.providers import aws
operation, verb, handle, settings = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
if operation == "kill_processes":  # restart's call to the nodes (over SSH; none on the local provider)
    from ccdsl.executor.cluster import Cluster
    real = Cluster._kill_processes
    def killed_after(self):
        real(self)
        os.kill(os.getpid(), signal.SIGKILL)
    Cluster._kill_processes = killed_after
else:
    aws.EVENT_HOOKS.append((f"after-call.ec2.{operation}", lambda **kw: os.kill(os.getpid(), signal.SIGKILL)))
getattr(ccdsl, verb)(handle, config=Config.from_dict(settings))
"""


def kill_right_after(operation: str, verb: str, handle: str, settings: dict, data_dir) -> None:
    """Run ``ccdsl.<verb>(handle)`` in a child process that SIGKILLs itself right after ``operation`` returned."""
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER, operation, verb, handle, json.dumps(settings)],
                          env={**os.environ, "CCDSL_DATA_DIR": str(data_dir)}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def running_cluster(aws_env, handle: str) -> tuple[Config, dict]:
    """A 2-node cluster in moto, known to the records as running (adopted by its tags: no SSH needed)."""
    settings = {"aws": aws_settings(aws_env)}
    cfg = Config.from_dict(settings)
    from ccdsl.executor.providers import aws

    p = aws.make(cfg, {})
    req = NodeRequest(handle, "worker", "t3.xlarge", 2, region="us-east-1", options={"contract": "lc"})
    p.wait_running(handle, p.create(req, lambda *a: None), lambda *a: None)
    (info,) = ccdsl.clusters(config=cfg)
    assert info.status == "running"
    return cfg, settings


def ec2_states(ec2, handle: str) -> set[str]:
    f = [{"Name": "tag:ccdsl:cluster", "Values": [handle]}]
    return {i["State"]["Name"] for r in ec2.describe_instances(Filters=f)["Reservations"] for i in r["Instances"]}


def test_sigkill_right_after_stop_instances(aws_env, data_dir, ec2):
    cfg, settings = running_cluster(aws_env, "KiLlInTeRrUpTaA")
    kill_right_after("StopInstances", "interrupt", "KiLlInTeRrUpTaA", settings, data_dir)
    assert State().get_cluster("KiLlInTeRrUpTaA").owner_pid is not None  # the intent, left by the dead process
    (info,) = ccdsl.clusters(config=cfg)
    assert ec2_states(ec2, "KiLlInTeRrUpTaA") <= {"stopping", "stopped"}
    assert info.status == "interrupted" and "'interrupt' was interrupted" in info.note
    assert State().get_cluster("KiLlInTeRrUpTaA").owner_pid is None
    ccdsl.terminate("KiLlInTeRrUpTaA", config=cfg)
    assert all_tagged(ec2) == []


def test_sigkill_right_after_start_instances_shows_the_running_nodes(aws_env, data_dir, ec2):
    """The issue's case: a resume killed after StartInstances left 'interrupted' while EC2 ran the instances."""
    cfg, settings = running_cluster(aws_env, "KiLlReSuMeAaAaA")
    ccdsl.interrupt("KiLlReSuMeAaAaA", config=cfg)
    assert State().get_cluster("KiLlReSuMeAaAaA").status == "interrupted"
    kill_right_after("StartInstances", "resume", "KiLlReSuMeAaAaA", settings, data_dir)
    assert ec2_states(ec2, "KiLlReSuMeAaAaA") <= {"pending", "running"}
    (info,) = ccdsl.clusters(config=cfg)
    assert info.status == "running" and "'resume' was interrupted" in info.note
    assert len(ccdsl.executor.get("KiLlReSuMeAaAaA", config=cfg).workers()) == 2
    ccdsl.interrupt("KiLlReSuMeAaAaA", config=cfg)  # usable: the lifecycle goes on from the cloud's truth
    ccdsl.terminate("KiLlReSuMeAaAaA", config=cfg)
    assert all_tagged(ec2) == []


def test_sigkill_half_way_through_a_resume_never_shows_running_nodes_as_stopped(aws_env, data_dir, ec2):
    cfg, _settings = running_cluster(aws_env, "KiLlHaLfWaYaAaA")
    ccdsl.interrupt("KiLlHaLfWaYaAaA", config=cfg)
    nodes = ccdsl.executor.get("KiLlHaLfWaYaAaA", config=cfg).nodes()
    ec2.start_instances(InstanceIds=[nodes[0].instance_id])  # what a resume killed between two calls leaves
    state = State()
    state.update_cluster("KiLlHaLfWaYaAaA", owner_pid=2**22 + 7, owner_host=__import__("socket").gethostname())
    state.journal("KiLlHaLfWaYaAaA", "resume")
    (info,) = ccdsl.clusters(config=cfg)
    assert info.status == "failed" and "1 of 2 nodes are running" in info.note
    ccdsl.interrupt("KiLlHaLfWaYaAaA", config=cfg)
    assert ec2_states(ec2, "KiLlHaLfWaYaAaA") == {"stopped"}
    ccdsl.terminate("KiLlHaLfWaYaAaA", config=cfg)


def test_sigkill_right_after_terminate_instances(aws_env, data_dir, ec2):
    cfg, settings = running_cluster(aws_env, "KiLlTeRmInAtEaA")
    kill_right_after("TerminateInstances", "terminate", "KiLlTeRmInAtEaA", settings, data_dir)
    (info,) = ccdsl.clusters(config=cfg)
    assert info.status == "failed" and "'terminate' was interrupted" in info.note
    assert "ccdsl terminate KiLlTeRmInAtEaA" in info.note
    ccdsl.terminate("KiLlTeRmInAtEaA", config=cfg)
    assert all_tagged(ec2) == []
    assert ccdsl.clusters(config=cfg) == []


def test_sigkill_right_after_restart_kills_gives_fresh_workers(data_dir):
    c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=2))
    try:
        before = c.workers()
        kill_right_after("kill_processes", "restart", c.handle, {}, data_dir)
        (info,) = ccdsl.clusters()
        assert info.status == "running" and "'restart' was interrupted" in info.note
        after = c.workers()
        assert len(after) == 2 and min(after) > max(before)
        assert c.run(lambda comm: comm.allreduce(1)) == 2
    finally:
        ccdsl.terminate(c)
