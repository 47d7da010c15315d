"""The autostop watchdog: a small process on node 0 (or the manager) that stops an idle or over-budget cluster.

Why on the cluster: the user's laptop may be closed; a cluster that forgets to stop costs until someone notices.
This file is shipped to the nodes as it is and run with their python (standard library only, no ccdsl import):

    python3 watchdog.py run  <cluster dir>/autostop.json    # watch, then act (detaches from the SSH session)
    python3 watchdog.py run  <cluster dir>/autostop.json --boot   # at a node's boot: the money spent is carried
    python3 watchdog.py probe <cluster dir> <handle>         # print this node's activity as JSON and exit
    python3 watchdog.py kill  <cluster dir>                  # end ccdsl's processes on this node

**Busy** means any of, on this node: a ccdsl run or script (a process whose command line names the cluster's
rank bootstrap ``/<handle>/ccdsl_rank_``), an interactive SSH session (a process on a pseudo-terminal whose
ancestor is ``sshd``, in this node's network namespace), or an activity marker: a file in ``<cluster
dir>/activity/`` (anything a ccdsl component touches while working -- engine tasks, local runs).  A marker
named ``<pid>.busy`` counts while that process lives; any other marker counts from its modification time.
Before acting on idleness the other nodes are probed once (over the cluster's internal SSH), so an interactive
session on worker 3 keeps the cluster alive too.

**Acting** (``action`` in the config):

- ``shutdown`` (AWS): run ``shutdown_command`` (default ``sudo shutdown -h now``) on every other node, then here.
  EC2 stops or terminates each instance as its InstanceInitiatedShutdownBehavior, set at launch, says: no AWS
  credentials live on the nodes.
- ``release`` (SSH hosts, never shut down): end ccdsl's processes on every node; with ``down`` also remove the
  cluster's files and internal key.  The machines keep running.
- ``local``: run ``local_command`` (ccdsl's own interrupt/terminate of the cluster on this machine).

Before acting it writes ``<handle>.autostop`` (JSON: reason, time) next to the cluster dir, for reconciliation.
The spending cap: ``spent_before`` + ``price_per_hour`` × hours since the watchdog started; a warning is written
to the status file at 80 %, and it acts when the estimate reaches ``max_cost``.
"""

# annotations stay strings, never evaluated by the nodes' python, which may be older than ccdsl's: this file
# needs 3.7 (subprocess.run's capture_output)
from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:  # typing's newer names exist only for the type checker, never at run time on a node
    from collections.abc import Callable
    from typing import Literal, Required, TypedDict

    # a process: (ppid, tty_nr, comm, cmdline)
    Process = tuple[int, int, str, str]

    class Peer(TypedDict):
        """Another node, as ``guard`` writes it into the config: where to reach it and where its files are."""

        address: str
        port: int
        dir: str
        python: str

    class Config(TypedDict, total=False):
        """``autostop.json`` as ``guard`` writes it (a hand-edited one is read defensively all the same)."""

        handle: Required[str]
        dir: Required[str]
        token: Required[str]
        action: Required[str]  # shutdown, release or local
        idle: str | None  # as the user wrote it ("30m")
        idle_seconds: float | None
        down: bool
        max_cost: float | None
        price_per_hour: float | None
        spent_before: float
        interval: float
        armed_at: float
        shutdown_command: str
        peers: list[Peer]  # shutdown and release
        unauthorize_command: str  # release
        interactive: bool  # local: False
        local_command: list[str]  # local

    Log = Callable[[str], None]

WARN_FRACTION = 0.8


# -- activity -----------------------------------------------------------------------------------------------------
@overload
def _read(path: str) -> str | None: ...
@overload
def _read(path: str, mode: Literal["rb"]) -> bytes | None: ...
def _read(path: str, mode: str = "r") -> str | bytes | None:
    try:
        with open(path, mode) as f:
            data: str | bytes = f.read()
            return data
    except OSError:
        return None


def _processes() -> dict[int, Process]:
    """pid -> (ppid, tty_nr, comm, cmdline) of every process we may read."""
    out: dict[int, Process] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = _read(f"/proc/{name}/stat")
        if not stat:
            continue
        try:
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            ppid, tty = int(fields[1]), int(fields[4])
        except (ValueError, IndexError):
            continue
        raw = _read(f"/proc/{name}/cmdline", "rb") or b""
        out[int(name)] = (ppid, tty, comm, raw.replace(b"\0", b" ").decode("utf-8", "replace"))
    return out


def _same_netns(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net")
    except OSError:
        return True  # another user's process on a real node: it is on this node


def _mine() -> set[int]:
    """This process and its ancestors (their command lines name the cluster dir too)."""
    pids: set[int] = set()
    pid = os.getpid()
    procs = _processes()
    while pid and pid not in pids:
        pids.add(pid)
        pid = procs.get(pid, (0,))[0]
    return pids


def activity(directory: str, handle: str, interactive: bool = True) -> tuple[list[str], float]:
    """Why this node is busy now (a list of reasons; empty: idle) and the newest marker time.  ``interactive``:
    count interactive SSH sessions (not on the local provider, where they are the user's own terminals)."""
    reasons: list[str] = []
    newest = 0.0
    procs = _processes()
    mine = _mine()
    needle = f"/{handle}/ccdsl_rank_"
    for pid, (_ppid, tty, comm, cmd) in procs.items():
        if pid in mine:
            continue
        if needle in cmd:
            reasons.append(f"ccdsl run (pid {pid})")
            continue
        if interactive and tty and _under_sshd(pid, procs) and _same_netns(pid):
            reasons.append(f"interactive SSH session (pid {pid} {comm})")
    marks = os.path.join(directory, "activity")
    try:
        names = os.listdir(marks)
    except OSError:
        names = []
    for name in names:
        path = os.path.join(marks, name)
        if name.endswith(".busy"):
            stem = name[:-5]
            if stem.isdigit() and not _alive(int(stem)):
                continue
            reasons.append(f"busy marker {name}")
        try:
            newest = max(newest, os.path.getmtime(path))
        except OSError:
            pass
    return reasons, newest


def _under_sshd(pid: int, procs: dict[int, Process]) -> bool:
    seen: set[int] = set()
    pid = procs.get(pid, (0,))[0]
    while pid and pid not in seen:
        seen.add(pid)
        entry = procs.get(pid)
        if entry is None:
            return False
        if entry[2].startswith("sshd"):
            return True
        pid = entry[0]
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- the other nodes ----------------------------------------------------------------------------------------------
def _ssh(config: Config, peer: Peer, command: str, timeout: float = 30) -> tuple[int, str]:
    argv = ["ssh", "-F", os.path.join(config["dir"], "ssh_config"), "-p", str(peer.get("port", 22)),
            peer["address"], command]
    try:
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        out = res.stdout.decode("utf-8", "replace")
        return res.returncode, out if res.returncode == 0 else out + res.stderr.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return -1, str(exc)


def peers_busy(config: Config) -> list[str]:
    """Reasons any other node is busy (its own probe, over the cluster's internal SSH)."""
    reasons: list[str] = []
    idle = config.get("idle_seconds")
    for peer in config.get("peers", []):
        script = os.path.join(peer["dir"], "watchdog.py")
        code, out = _ssh(config, peer, "{} {} probe {} {}".format(_q(peer.get("python") or "python3"), _q(script),
                                                              _q(peer["dir"]), _q(config["handle"])))
        if code != 0:
            continue  # a node that does not answer is not busy
        try:
            found = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            continue
        reasons += ["{} on {}".format(r, peer["address"]) for r in found.get("reasons", [])]
        since = found.get("marker_age")  # seconds since the peer's newest marker, on the peer's own clock
        if since is not None and idle is not None and since < float(idle):
            reasons.append("activity marker {:.0f} s ago on {}".format(since, peer["address"]))
    return reasons


def _q(text: object) -> str:
    return "'" + str(text).replace("'", "'\\''") + "'"


# -- acting ---------------------------------------------------------------------------------------------------------
def _kill_ours(directory: str) -> None:
    """End every process of this node whose command line names the cluster dir, except this one, its ancestors and
    a running watchdog.  Where nodes share a process table (the test hosts: network namespaces of one machine),
    only this node's network namespace counts, and a peer never ends node 0's watchdog."""
    needle = directory.rstrip("/") + "/"
    spare = _mine()
    for pid, (_, _, _, cmd) in _processes().items():
        if pid not in spare and needle in cmd and "watchdog.py run" not in cmd and _same_netns(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass


def act(config: Config, reason: str, log: Log) -> None:
    """Stop the cluster the way its provider allows.  Returns after the commands ran (a real shutdown does not
    let it return)."""
    directory = config["dir"]
    marker = directory.rstrip("/") + ".autostop"
    with open(marker + ".tmp", "w") as f:
        json.dump({"handle": config["handle"], "token": config.get("token"), "reason": reason[:200], "at": time.time(),
                   "action": config["action"],
                   "down": bool(config.get("down"))}, f)
    os.replace(marker + ".tmp", marker)
    action = config["action"]
    log(f"acting ({action}): {reason}")
    if action == "shutdown":
        command = config.get("shutdown_command") or "sudo shutdown -h now"
        pause = min(_interval(config.get("interval")), 10.0)
        for peer in config.get("peers", []):
            _until_done(functools.partial(_ssh, config, peer, command), f"peer {peer['address']}: {command}", log,
                        pause)
        _until_done(lambda: _here(command), f"here: {command}", log, pause)
    elif action == "release":  # hosts that are not ours: end our processes; with down, remove our files too
        for peer in config.get("peers", []):
            script = os.path.join(peer["dir"], "watchdog.py")
            code, out = _ssh(config, peer, "{} {} kill {}".format(_q(peer.get("python") or "python3"), _q(script),
                                                              _q(peer["dir"])))
            log("peer {}: ccdsl's processes ended -> {} {}".format(peer["address"], code, out.strip()[-300:]))
        _kill_ours(directory)
        log("here: ccdsl's processes ended")
        if config.get("down"):
            unauthorize = config.get("unauthorize_command") or "true"
            for peer in config.get("peers", []):
                code, out = _ssh(config, peer, "rm -rf {}; {}".format(_q(peer["dir"]), unauthorize))
                log("peer {}: files removed -> {}".format(peer["address"], code))
            subprocess.run(f"rm -rf {_q(directory)}; {unauthorize}", shell=True, stdin=subprocess.DEVNULL)
            log("here: files removed")
    elif action == "local":
        res = subprocess.run(config["local_command"], stdin=subprocess.DEVNULL)
        log("local: {} -> {}".format(" ".join(config["local_command"]), res.returncode))
    else:
        log(f"unknown action {action!r}: nothing done")


SHUTDOWN_ATTEMPTS = 5
SSH_FAILED = 255  # ssh's own exit code: the connection failed or dropped


def _until_done(attempt: Callable[[], tuple[int, str]], what: str, log: Log, pause: float,
                attempts: int = SHUTDOWN_ATTEMPTS) -> bool:
    """Run a shutdown ``attempt`` until it worked (exit 0) or its node stopped answering (ssh could not connect,
    or the connection dropped as the node went down; a timeout): a command that failed by itself (sudo, a busy
    package manager holding a lock) is tried again, ``pause`` seconds apart, at most ``attempts`` times.  A node
    that stays up would run, and be paid for, unguarded."""
    for number in range(1, attempts + 1):
        code, out = attempt()
        log(f"{what} -> {code} {out.strip()[-200:]}")
        if code in (0, SSH_FAILED, -1):
            return True
        if number < attempts:
            log(f"{what} failed; trying again in {pause:g} s (attempt {number + 1} of {attempts})")
            time.sleep(pause)
    log(f"{what} failed {attempts} times: giving up on it")
    return False


def _here(command: str) -> tuple[int, str]:
    try:
        res = subprocess.run(command, shell=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return res.returncode, (res.stdout + res.stderr).decode("utf-8", "replace")


# -- the loop -------------------------------------------------------------------------------------------------------
def _write_json(path: str, data: object) -> None:
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except OSError:
        pass  # the cluster dir is gone (released): nothing to report into


def carried_spent(config: Config) -> float | None:
    """What the last watchdog armed with this config (same token) had spent, from its status file; None when
    there is none.  A node that was stopped spent nothing meanwhile: its watchdog goes on from that sum."""
    try:
        with open(os.path.join(config["dir"], "autostop.status")) as f:
            status = json.load(f)
        spent = float(status["spent"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return spent if status.get("token") == config.get("token") and spent == spent and spent >= 0 else None


def watch(config_path: str, spent_before: float | None = None) -> int:
    """Watch until disarmed or acted.  ``spent_before``: carried from an earlier watchdog (a restart): the idle
    clock starts fresh, the money does not."""
    with open(config_path) as f:
        config: Config = json.load(f)
    if spent_before is not None:
        config["spent_before"] = spent_before
    directory, token = config["dir"], config["token"]
    status_path = os.path.join(directory, "autostop.status")
    log_path = os.path.join(directory, "watchdog.log")

    def log(text: str) -> None:
        try:  # opened per line: the watchdog logs rarely, and a line is on disk when log() returns
            with open(log_path, "a") as log_file:
                log_file.write("{} {}\n".format(time.strftime("%Y-%m-%dT%H:%M:%S"), text))
        except (OSError, ValueError):
            pass

    def still_armed() -> bool:
        current = _read(config_path)
        try:
            return current is not None and json.loads(current).get("token") == token
        except ValueError:
            return False

    idle = config.get("idle_seconds")
    cap, rate = config.get("max_cost"), config.get("price_per_hour")
    interval = _interval(config.get("interval"))
    start = time.time()
    last_active = start
    warned = False
    restarted = "" if spent_before is None else f", restarted at boot with ${spent_before:.4f} spent"
    log("watching {}: idle {} s, cap {}, ${}/h{}".format(config["handle"], idle, cap, rate, restarted))
    while True:
        done: Literal[True] | tuple[float, bool] | None
        try:
            done = _check(config, still_armed, log, status_path, start, last_active, warned)
        except Exception as exc:  # one failed check (a full disk, a peer that hangs up) must not end the guard
            log(f"check failed, trying again in {interval:g} s: {type(exc).__name__}: {exc}")
            done = None
        if done is True:
            return 0
        if done:
            last_active, warned = done
        time.sleep(interval)


def _interval(value: float | None) -> float:
    """The seconds between checks, 1..86,400 (ccdsl.toml refuses others; a hand-edited config is clamped)."""
    try:
        seconds = float(value or 60.0)
    except (TypeError, ValueError):
        return 60.0
    return min(max(seconds, 1.0), 86400.0) if seconds == seconds else 60.0


def _check(config: Config, still_armed: Callable[[], bool], log: Log, status_path: str, start: float,
           last_active: float, warned: bool) -> Literal[True] | tuple[float, bool]:
    """One check: True when the watchdog is done (disarmed, or it acted); else (last_active, warned)."""
    directory, token = config["dir"], config["token"]
    idle = config.get("idle_seconds")
    cap, rate = config.get("max_cost"), config.get("price_per_hour")
    if not still_armed():
        log("disarmed")
        return True
    spent_before = float(config.get("spent_before") or 0.0)
    now = time.time()
    reasons, newest = activity(directory, config["handle"], config.get("interactive", True))
    if reasons:
        last_active = now
    last_active = max(last_active, min(newest, now))
    spent = spent_before + (float(rate) * (now - start) / 3600.0 if rate is not None else 0.0)
    if cap is not None and rate is not None and not warned and spent >= WARN_FRACTION * float(cap):
        warned = True
        log(f"spending warning: ${spent:.4f} of the ${cap} cap")
    _write_json(status_path, {"pid": os.getpid(), "token": token, "checked_at": now, "last_active": last_active,
                              "busy": reasons, "spent": spent, "warned": warned})
    why = None
    if cap is not None and rate is not None and spent >= float(cap):
        why = f"spending cap reached (${spent:.2f} of ${float(cap):.2f})"
    elif idle is not None and now - last_active >= float(idle):
        others = peers_busy(config)
        if others:
            last_active = time.time()
            log("idle here, but busy elsewhere: {}".format("; ".join(others)))
        else:
            why = "idle for {} (no run, script, engine task or interactive SSH session)".format(config.get(
                "idle", f"{idle}s"))
    if why:
        act(config, why, log)
        _write_json(status_path, {"pid": os.getpid(), "token": token, "checked_at": time.time(),
                                  "acted": why, "spent": spent, "warned": warned})
        return True
    return last_active, warned


def _daemonize(directory: str) -> None:
    """Leave the caller: fork twice with a new session in between and SIGHUP ignored, so the SSH session that
    started the watchdog returns at once, and a dropped connection does not end it.  Returns in the daemon only."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if os.fork() > 0:
        os._exit(0)
    _write_json(os.path.join(directory, "watchdog.pid"), os.getpid())


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[1] == "probe":
        reasons, newest = activity(argv[2], argv[3] if len(argv) > 3 else "")
        print(json.dumps({"reasons": reasons, "marker_age": time.time() - newest if newest else None}))
        return 0
    if len(argv) == 3 and argv[1] == "kill":
        _kill_ours(argv[2])
        return 0
    if argv[1:2] == ["run"] and (len(argv) == 3 or argv[3:] == ["--boot"]):
        with open(argv[2]) as f:
            config = json.load(f)
        carried = carried_spent(config) if argv[3:] == ["--boot"] else None
        _daemonize(config["dir"])
        return watch(argv[2], spent_before=carried)
    sys.stderr.write("usage: watchdog.py run CONFIG [--boot] | probe DIR HANDLE | kill DIR\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
