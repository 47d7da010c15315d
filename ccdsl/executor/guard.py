"""The spending guard, from ccdsl's side: autostop and cap settings, arming the watchdog on a cluster, and
turning what the watchdog did into the cluster's record.

The deciding happens on the cluster (:mod:`ccdsl.executor.watchdog`, a stdlib-only script on node 0 or the
manager), so a cluster stops with the user's laptop closed.  This module:

- parses ``autostop="30m"``, ``down``, ``max_cost`` into an :class:`Autostop` kept in the record's settings;
- :func:`arm` copies the watchdog to the nodes and starts it detached (re-armed after resume and reconnect,
  replaced by ``ccdsl autostop HANDLE ...``; an old watchdog exits when its config's token changes);
- on AWS, sets each instance's InstanceInitiatedShutdownBehavior (``stop``, or ``terminate`` with ``down``): at
  RunInstances for a deploy, by ModifyInstanceAttribute from this machine when changed later -- the nodes hold no
  AWS credentials;
- :func:`reconcile_record` (called from ``deploy.reconcile``) records an autostopped cluster as interrupted, or
  terminated with ``down``: on AWS from the instances' state, on SSH hosts from the marker the watchdog leaves;
  the local provider's watchdog updates the records itself (:func:`ccdsl.executor.cluster.local_stop`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccdsl.errors import ClusterError, ConfigError, printable
from ccdsl.executor import model
from ccdsl.executor import state as st
from ccdsl.executor.parallel import parallel

if TYPE_CHECKING:
    from ccdsl.executor.access import NodeAccess
    from ccdsl.executor.config import Config

log = logging.getLogger("ccdsl.executor")

WATCHDOG = Path(__file__).with_name("watchdog.py")
# What the local provider's watchdog runs to stop its cluster: the facade's lifecycle step, named here only as the
# command of another process (this module sits below the facade and never imports it).
_LOCAL_STOP = "import sys; from ccdsl.executor.cluster import local_stop_main; sys.exit(local_stop_main(sys.argv[1:]))"
# Shell that ends the watchdog named by the pid file, if that process is still a watchdog (pids are reused).
# The old watchdog is ended and waited for (until its command line is gone: exited, or a zombie; at most 10 s), so
# that once arm/disarm returns no old watchdog acts any more -- a check after "autostop off" sees none running.
_KILL_OLD = ("p=$(cat {d}/watchdog.pid 2>/dev/null); [ -n \"$p\" ] && grep -q watchdog.py /proc/$p/cmdline "
             "2>/dev/null && kill $p && for _ in $(seq 100); do grep -q watchdog.py /proc/$p/cmdline 2>/dev/null "
             "|| break; sleep 0.1; done")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Settings key: the stopped nodes still hold an arming older than the record's settings (a boot script and a config
# that cloud-init starts the old watchdog with); the next time they run, :func:`arm` replaces or removes it.
STALE = "autostop_stale"


def parse_duration(text: str | float | int) -> float:
    """``"30m"``, ``"1h30m"``, ``"90s"``, ``"2d"``; a bare number is minutes (as SkyPilot's ``-i``).  Seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text) * 60
    else:
        s = str(text).strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", s):
            seconds = float(s) * 60
        else:
            parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", s)
            if not s or "".join(n + u for n, u in parts) != s:
                raise ConfigError(f"autostop takes a duration like 30m, 1h30m, 90s or 2d, not {text!r}")
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f"the autostop period must be positive, not {text!r}", hint="turn it off with 'off'")
    return seconds


@dataclass(frozen=True)
class Autostop:
    """What the watchdog enforces: stop after ``idle_seconds`` without activity, and/or at ``max_cost`` USD;
    ``down`` terminates instead of stopping."""

    idle: str | None = None  # as the user wrote it ("30m")
    idle_seconds: float | None = None
    down: bool = False
    max_cost: float | None = None

    @property
    def active(self) -> bool:
        return self.idle_seconds is not None or self.max_cost is not None

    def to_settings(self) -> dict[str, Any] | None:
        return ({"idle": self.idle, "idle_seconds": self.idle_seconds, "down": self.down, "max_cost": self.max_cost}
                if self.active else None)

    @classmethod
    def from_settings(cls, d: Mapping[str, Any] | None) -> Autostop:
        if not d:
            return cls()
        return cls(d.get("idle"), d.get("idle_seconds"), bool(d.get("down")), d.get("max_cost"))

    def describe(self) -> str:
        parts = [f"after {self.idle} idle" if self.idle else "", f"at ${self.max_cost:g}" if self.max_cost else ""]
        what = "terminates" if self.down else "stops"
        return f"{what} " + " or ".join(p for p in parts if p) if self.active else "off"


def make(autostop: str | float | None = None, down: bool = False, max_cost: float | None = None) -> Autostop:
    """Validated settings (ConfigError for a bad duration or cap)."""
    if isinstance(autostop, str) and autostop.strip().lower() in ("off", "none", ""):
        autostop = None
    seconds = parse_duration(autostop) if autostop is not None else None
    idle = (autostop if isinstance(autostop, str) else f"{float(autostop):g}m") if autostop is not None else None
    if max_cost is not None:
        try:
            max_cost = float(max_cost)
        except (TypeError, ValueError):
            raise ConfigError(f"max_cost is a number of US dollars, not {max_cost!r}") from None
        if not max_cost > 0:
            raise ConfigError(f"max_cost must be positive, not {max_cost:g}")
    if down and seconds is None and max_cost is None:
        raise ConfigError("--down needs --autostop or --max-cost: it says what happens when the cluster stops")
    return Autostop(idle, seconds, bool(down), max_cost)


def shutdown_behavior(a: Autostop) -> str | None:
    """The EC2 InstanceInitiatedShutdownBehavior a deploy sets (None: leave EC2's default)."""
    return ("terminate" if a.down else "stop") if a.active else None


# -- arming ---------------------------------------------------------------------------------------------------------
def local_dir(handle: str) -> Path:
    d = st.data_dir() / "autostop" / handle
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def _record(state: st.State, handle: str) -> st.ClusterRecord:
    record = state.get_cluster(handle)
    if record is None:
        raise ClusterError(f"no cluster with handle {handle}", hint="'ccdsl clusters' lists the known ones")
    return record


def _watch_config(access: NodeAccess, state: st.State, a: Autostop, directory: str, action: str) -> dict[str, Any]:
    from ccdsl.executor import cost

    c = cost.estimate(state, _record(state, access.handle))
    return {"handle": access.handle, "dir": directory, "token": secrets.token_hex(8), "action": action,
            "idle": a.idle, "idle_seconds": a.idle_seconds, "down": a.down, "max_cost": a.max_cost,
            "price_per_hour": c.price_per_hour, "spent_before": c.cost_so_far or 0.0,
            "interval": access.config.autostop.check_interval,
            "shutdown_command": access.config.autostop.shutdown_command, "armed_at": time.time()}


def arm(access: NodeAccess, state: st.State, a: Autostop | None = None) -> None:
    """Start (or replace) the watchdog with ``a`` (default: the record's settings); stop it when ``a`` is off."""
    if a is None:
        a = Autostop.from_settings(_record(state, access.handle).settings.get("autostop"))
    if not a.active:
        disarm(access, state)
        return
    if access.local:
        token = _arm_local(access, state, a)
    else:
        token = _arm_remote(access, state, a)
    # the watchdog writes it into its marker: a marker without it is not this watchdog's (reconcile ignores it);
    # the new config and boot script replaced whatever an earlier arming left on the nodes
    stale = {STALE: None} if _record(state, access.handle).settings.get(STALE) else {}
    state.update_cluster(access.handle, settings={"autostop_token": token, **stale})
    state.journal(access.handle, "autostop-armed", **(a.to_settings() or {}))


def _arm_local(access: NodeAccess, state: st.State, a: Autostop) -> str:
    stop_local_watchdog(access.handle)
    d = local_dir(access.handle)
    cfg = _watch_config(access, state, a, str(d), "local")
    cfg.update(interactive=False, local_command=[sys.executable, "-c", _LOCAL_STOP, "local-stop",
                                                 access.handle])
    path = d / "autostop.json"
    path.write_text(json.dumps(cfg))
    os.chmod(path, 0o600)
    (d.parent / f"{access.handle}.autostop").unlink(missing_ok=True)
    env = {**os.environ, "CCDSL_DATA_DIR": str(st.data_dir())}
    if access.config.source:
        env["CCDSL_CONFIG"] = access.config.source
    with open(d / "watchdog.out", "ab") as out:  # the watchdog daemonizes: this returns at once
        subprocess.run([sys.executable, str(WATCHDOG), "run", str(path)], stdin=subprocess.DEVNULL, stdout=out,
                       stderr=out, env=env, start_new_session=True, close_fds=True, check=False, timeout=60)
    return str(cfg["token"])


def stop_local_watchdog(handle: str) -> None:
    """End the watchdog running on this machine for ``handle`` (the local provider's), if any."""
    d = st.data_dir() / "autostop" / handle
    (d / "autostop.json").unlink(missing_ok=True)  # a watchdog that survives the kill exits at its next check
    try:
        pid = int((d / "watchdog.pid").read_text())
    except (OSError, ValueError):
        return
    if pid in (os.getpid(), os.getppid()):
        return  # the watchdog itself is stopping the cluster
    try:
        if "watchdog.py" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
            os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass


def _home(access: NodeAccess) -> tuple[model.Node, list[model.Node], model.Node | None]:
    """(where the watchdog runs: the manager or worker 0, the other nodes, the manager)."""
    workers, manager = access.workers, access.manager
    if not workers and manager is None:
        raise ClusterError(f"cluster {access.handle} has no nodes to watch")
    home = manager or workers[0]
    others = [n for n in [*([manager] if manager else []), *workers] if n.instance_id != home.instance_id]
    return home, others, manager


def _arm_remote(access: NodeAccess, state: st.State, a: Autostop) -> str:
    from ccdsl.executor import nodedir, ssh

    home, others, _ = _home(access)
    action = "shutdown" if access.provider == "aws" else "release"
    source = WATCHDOG.read_bytes()
    pool = access.connections()
    try:
        def ship(node: model.Node) -> None:  # every node gets the script: the watchdog probes them with it
            ssh.put(pool.get(node), source, f"{_dir(node)}/watchdog.py", mode=0o644, node=node)

        parallel(ship, [home, *others])
        d = _dir(home)
        cfg = _watch_config(access, state, a, d, action)
        cfg["peers"] = [{"address": n.private_address or n.address, "port": n.port, "dir": _dir(n),
                         "python": n.extra.get("python", "python3")} for n in others]
        if action == "release":
            cfg["unauthorize_command"] = nodedir.authorize_command(access.config.mpi.authorized_keys,
                                                                   access.handle, None)
        client = pool.get(home)
        ssh.put(client, json.dumps(cfg).encode(), f"{d}/autostop.json", mode=0o600, node=home)
        q = shlex.quote
        python = home.extra.get("python", access.config.mpi.python)
        start = (f"{_KILL_OLD.format(d=q(d))}; rm -f {q(d + '.autostop')}; cd {q(d)} && {q(python)} "
                 f"{q(d)}/watchdog.py run {q(d)}/autostop.json >> {q(d)}/watchdog.out 2>&1 </dev/null")
        if action == "shutdown":  # EC2 nodes: EC2 restarts a stopped spot node by itself, cloud-init re-arms
            script = boot_script(access.handle, home.user or access.config.aws.user, d, python)
            ssh.put(client, script.encode(), f"{d}/autostop-boot.sh", mode=0o755, node=home)
            start = f"{_install_boot(access.config.autostop.boot_dir, access.handle, d)} && {start}"
        ssh.run(client, start, node=home, check=True, timeout=access.config.ssh.command_timeout)
    finally:
        pool.close()
    return str(cfg["token"])


# sudo where the login user is not root (EC2 images: passwordless sudo); cloud-init's per-boot folder is root's
_SUDO = 'S=; [ "$(id -u)" = 0 ] || S="sudo -n"; '


def boot_name(handle: str) -> str:
    return f"ccdsl-autostop-{handle}.sh"


def boot_script(handle: str, user: str, d: str, python: str) -> str:
    """The script cloud-init runs (as root) at every boot of the watchdog's node: it starts the watchdog again
    as the login user, with the config it was armed with (same token), a fresh idle clock and the money spent
    so far carried from ``autostop.status`` (``watchdog.py run CONFIG --boot``).  Without it a spot node EC2 stopped and
    started again would run unguarded."""
    q = shlex.quote
    run = (f"{_KILL_OLD.format(d=q(d))}; cd {q(d)} && exec {q(python)} {q(d)}/watchdog.py run "
           f"{q(d)}/autostop.json --boot >> {q(d)}/watchdog.out 2>&1 </dev/null")
    return ("#!/bin/sh\n"
            f"# ccdsl: the autostop watchdog of cluster {handle}, started again at every boot.\n"
            f"# 'ccdsl autostop {handle} off' deletes this file; so does 'ccdsl terminate {handle}' (with the node).\n"
            f"[ -f {q(d)}/autostop.json ] || exit 0\n"
            f'if [ "$(id -un)" = {q(user)} ]; then sh -c {q(run)}; else su {q(user)} -s /bin/sh -c {q(run)}; fi\n')


def _install_boot(boot_dir: str, handle: str, d: str) -> str:
    q = shlex.quote
    target = q(f"{boot_dir.rstrip('/')}/{boot_name(handle)}")
    return (f"{{ {_SUDO}$S mkdir -p {q(boot_dir)} && $S cp {q(d)}/autostop-boot.sh {target}.tmp && "
            f"$S chmod 755 {target}.tmp && $S mv -f {target}.tmp {target}; }}")


def _dir(node: model.Node) -> str:
    d = node.extra.get("ccdsl_dir")
    if not d:
        raise ClusterError(f"{node.role} {node.index} ({node.instance_id}) was not prepared by ccdsl: no cluster "
                           "directory to run the watchdog in")
    return str(d)


def disarm(access: NodeAccess, state: st.State) -> None:
    """Stop the watchdog (it also exits by itself at its next check once its config is gone) and delete its config
    and boot script.  Stopped nodes cannot be reached: they are marked stale (:data:`STALE`), else their boot script
    would start the old watchdog when they run again; :func:`arm` (at resume, reconnect) then disarms them."""
    if access.local:
        stop_local_watchdog(access.handle)
        return
    if _record(state, access.handle).status != st.RUNNING:
        mark_stale(access, state)
        return
    from ccdsl.executor import ssh

    home, _, _ = _home(access)
    d = shlex.quote(_dir(home))
    boot = shlex.quote(f"{access.config.autostop.boot_dir.rstrip('/')}/{boot_name(access.handle)}")
    unboot = f"{_SUDO}$S rm -f {boot}; " if access.provider == "aws" else ""
    pool = access.connections()
    try:
        ssh.run(pool.get(home), f"rm -f {d}/autostop.json; {unboot}{_KILL_OLD.format(d=d)}; true", node=home,
                timeout=access.config.ssh.command_timeout)
    finally:
        pool.close()
    if _record(state, access.handle).settings.get(STALE):
        state.update_cluster(access.handle, settings={STALE: None})


def stale_note(handle: str) -> str:
    """What reconcile adds to the note of a cluster whose stale nodes EC2 started by itself (a spot restart): their
    boot script started the old watchdog, and only a command that reaches them can replace it."""
    return (f"their autostop watchdog runs with the settings it had when they stopped: 'ccdsl reconnect {handle}' "
            "applies the current ones")


def mark_stale(access: NodeAccess, state: st.State) -> None:
    """Record that the cluster's (unreachable, stopped) nodes hold an arming its settings no longer say."""
    if not access.local and not _record(state, access.handle).settings.get(STALE):
        state.update_cluster(access.handle, settings={STALE: True})
        state.journal(access.handle, "autostop-stale")


def set_autostop(access: NodeAccess, state: st.State, a: Autostop) -> None:
    """Change a cluster's autostop: record it, set the AWS shutdown behaviour to match, re-arm the watchdog."""
    record = _record(state, access.handle)
    if record.status not in (st.RUNNING, st.INTERRUPTED):
        raise ClusterError(f"cannot set autostop on cluster {access.handle}: it is {record.status}")
    if access.provider == "aws":  # off, or without down: back to 'stop', so a shutdown never terminates
        from ccdsl.executor.providers import base

        _check_spot(a, deployed_spot(record, access.config))
        provider: Any = base.get(access.provider, access.config, dict(record.settings))  # aws: has call()
        for n in access.nodes():
            provider.call("modify_instance_attribute", InstanceId=n.instance_id,
                          Attribute="instanceInitiatedShutdownBehavior", Value=shutdown_behavior(a) or "stop")
    state.update_cluster(access.handle, settings={"autostop": a.to_settings()})
    if record.status == st.RUNNING:
        arm(access, state, a)
    else:  # the stopped nodes keep the old config and boot script until they run again
        mark_stale(access, state)


def deployed_spot(record: st.ClusterRecord, config: Config) -> bool:
    """Whether any role of the cluster was launched as spot: the markets recorded at deploy, per role (a cluster
    recorded before markets were: ``[aws] spot``, with the contract's own parameters)."""
    markets = record.settings.get("markets")
    if isinstance(markets, Mapping) and markets:
        return any(m == "spot" for m in markets.values())
    return bool(config.aws.spot)


def _check_spot(a: Autostop, spot: bool) -> None:
    if a.down and spot:
        raise ConfigError("--down is not available for spot clusters: their persistent spot requests would launch "
                          "replacements for terminated instances", hint="use autostop without --down (stop)")


def check_deploy(a: Autostop, provider: str, *, spot: bool) -> None:
    """Before anything is created: ``spot`` says whether any role of the plan launches as spot."""
    if provider == "aws":
        _check_spot(a, spot)


# -- activity from ccdsl's side --------------------------------------------------------------------------------------
@contextlib.contextmanager
def busy(record: st.ClusterRecord) -> Iterator[None]:
    """Mark the cluster busy during a run (or an engine start) on the local provider; remote runs are seen by
    their processes."""
    if record.provider != "local" or not record.settings.get("autostop"):
        yield
        return
    marks = local_dir(record.handle) / "activity"
    marks.mkdir(exist_ok=True)
    mark = marks / f"{os.getpid()}.busy"
    mark.touch()
    try:
        yield
    finally:
        mark.unlink(missing_ok=True)
        (marks / "last-run").touch()


def warn_near_cap(state: st.State, record: st.ClusterRecord) -> str | None:
    """The 80 % warning of the spending cap, logged before a run (None when below)."""
    from ccdsl.executor import cost

    if not (record.settings.get("autostop") or {}).get("max_cost"):
        return None
    warning = cost.estimate(state, record).warning
    if warning:
        log.warning("cluster %s %s", record.handle, warning)
    return warning


# -- reconciliation -------------------------------------------------------------------------------------------------
def stopped_note(record: st.ClusterRecord) -> str:
    """Why all nodes of a running cluster are stopped, when nobody asked ccdsl to stop them."""
    a = Autostop.from_settings(record.settings.get("autostop"))
    if not a.active:
        return "its nodes were stopped outside ccdsl"
    return f"autostopped: its watchdog shut the nodes down (it {a.describe()})"


def reconcile_record(record: st.ClusterRecord, provider: Any, state: st.State, config: Config) -> bool:
    """Record what the watchdog of a running cluster did; True when the record was changed here."""
    a = Autostop.from_settings(record.settings.get("autostop"))
    if not a.active or record.status != st.RUNNING:
        return False
    if provider.name == "aws":
        ours = [n for n in state.nodes(record.handle) if n.instance_id.startswith("i-")]
        if ours and not provider.describe(record.handle):  # every instance terminated: the watchdog's --down
            provider.terminate(record.handle, ours)  # the security group and key pair go too
            _ended(record, state, st.TERMINATED, f"autostopped and terminated (--down): its watchdog shut the "
                                                 f"nodes down (it {a.describe()}); the rest was removed")
            return True
        return False
    if provider.name == "ssh":
        reason = marker_reason(_ssh_marker(record, state, config), record.settings.get("autostop_token"),
                               record.handle)
        if reason is None:
            return False
        if a.down:
            provider.terminate(record.handle, state.nodes(record.handle))
            _ended(record, state, st.TERMINATED, f"autostopped and released (--down): {reason}")
        else:
            _ended(record, state, st.INTERRUPTED, f"autostopped: {reason}; ccdsl's processes were ended (the hosts "
                                                  "are not ours to stop)")
        return True
    return False


def _ended(record: st.ClusterRecord, state: st.State, status: str, note: str) -> None:
    node_state = model.TERMINATED if status == st.TERMINATED else model.STOPPED
    state.set_nodes(record.handle, [replace(n, state=node_state) for n in state.nodes(record.handle)])
    state.clear_workers(record.handle)
    state.update_cluster(record.handle, status=status, note=note)
    state.journal(record.handle, "autostopped", status=status, note=note)
    log.warning("%s: %s", record.handle, note)


def _ssh_marker(record: st.ClusterRecord, state: st.State, config: Config) -> dict[str, Any] | None:
    """The ``<handle>.autostop`` marker the watchdog left beside the cluster dir on its node, if any."""
    out = _read_home(record, state, config, lambda d: f"cat {shlex.quote(d + '.autostop')} 2>/dev/null")
    try:
        return json.loads(out) if out and out.strip() else None
    except (ValueError, RecursionError):
        log.warning("%s: the autostop marker on its node is not JSON; ignored", record.handle)
        return None


def _read_home(record: st.ClusterRecord, state: st.State, config: Config, command: Any) -> str | None:
    """The output of ``command(cluster dir)`` run on the watchdog's node; None when it cannot be asked."""
    from dataclasses import replace as dc_replace

    from ccdsl.executor import ssh
    from ccdsl.executor.access import known_hosts_path, split_roles, ssh_options

    workers, manager = split_roles(state.nodes(record.handle))
    home = manager or (workers[0] if workers else None)
    if home is None or not home.extra.get("ccdsl_dir"):
        return None
    options = ssh_options(config, known_hosts=known_hosts_path(record.handle, record.provider))
    options = dc_replace(options, connect_timeout=min(options.connect_timeout, 5.0))
    try:
        with ssh.Connections(options) as pool:
            res = ssh.run(pool.get(home), command(home.extra["ccdsl_dir"]), node=home, timeout=15)
    except Exception as exc:  # a host that does not answer: nothing learned
        log.debug("cannot read the autostop files of %s: %s", record.handle, exc)
        return None
    return res.stdout if res.code == 0 else None


MAX_REASON = 200


def marker_reason(marker: Any, token: Any, handle: str) -> str | None:
    """The reason a watchdog's marker gives, or None when it is not one: a marker is an object carrying the token
    its watchdog was armed with (when the record has one) and a reason of at most 200 characters.  Anything else
    on node 0 (a user's file, another watchdog's) must not mark the cluster stopped."""
    if marker is None:
        return None
    ok = isinstance(marker, dict) and isinstance(marker.get("reason", ""), str) \
        and len(marker.get("reason", "")) <= MAX_REASON and (token is None or marker.get("token") == token)
    if not ok:
        log.warning("%s: the autostop marker on its node is not its watchdog's; ignored", handle)
        return None
    return printable(str(marker.get("reason", "")))


_SEPARATOR = "\n--ccdsl--\n"


def stale_watchdog(record: st.ClusterRecord, state: st.State | None = None,
                   config: Config | None = None) -> str | None:
    """A warning when the watchdog of a running cluster has not checked for 3 intervals (it died, or was killed,
    or its node was restarted without it): the record still says autostop, but nothing would act.  None when it
    checks, or cannot be asked.  The local provider's files are on this machine; a remote watchdog's are read
    on its node (with the node's clock), which needs ``state`` and ``config``."""
    a = Autostop.from_settings(record.settings.get("autostop"))
    if record.status != st.RUNNING or not a.active:
        return None
    if record.provider == "local":
        d = st.data_dir() / "autostop" / record.handle
        config_text, status_text = _text(d / "autostop.json"), _text(d / "autostop.status")
        now = time.time()
    elif state is None or config is None:
        return None
    else:
        q = shlex.quote
        out = _read_home(record, state, config, lambda d: (
            f"date +%s; cat {q(d)}/autostop.json 2>/dev/null; printf {q(_SEPARATOR)}; "
            f"cat {q(d)}/autostop.status 2>/dev/null; true"))
        if out is None or _SEPARATOR not in out:
            return None
        head, status_text = out.split(_SEPARATOR, 1)
        clock, _, config_text = head.partition("\n")
        try:
            now = float(clock)
        except ValueError:
            return None
    return _staleness(record, a, config_text, status_text, now)


def _text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _staleness(record: st.ClusterRecord, a: Autostop, config_text: str | None, status_text: str | None,
               now: float) -> str | None:
    try:
        config = json.loads(config_text or "")
        interval = float(config.get("interval") or 60.0)
        armed = float(config.get("armed_at") or 0.0)
    except (ValueError, TypeError, AttributeError, RecursionError):
        return None  # not armed (being armed, or disarmed)
    try:
        checked = float(json.loads(status_text or "").get("checked_at") or 0.0)
    except (ValueError, TypeError, AttributeError, RecursionError):
        checked = armed  # not checked yet: counted from when it was armed
    age = now - max(checked, armed)
    if age <= 3 * interval:
        return None
    return (f"{record.handle}: its autostop watchdog last checked {age:.0f} s ago (it checks every {interval:g} s): "
            f"it is not running, so autostop ({a.describe()}) will not act; 'ccdsl autostop {record.handle} "
            "<period>' arms it again")
