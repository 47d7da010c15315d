"""SSH hosts for tests: one network namespace per host, joined by a bridge, each running its own ``sshd``.

Why namespaces: the executor must be tested against real ``sshd`` and a real multi-host ``mpiexec`` without any
network beyond this machine.  Every namespace shares the filesystem, so the venv's python and ``mpiexec`` exist
on every "host", exactly like nodes built from one image.

Several test sessions may run at once on one machine, so every name (bridge, namespaces, veths) and the subnet
are derived from this process' pid and checked against what already exists.  Inside each namespace the
interface is called ``eth0`` so ``mpiexec -iface eth0`` works on every node.

Usable without pytest (``python tests/netns_hosts.py 3`` builds three hosts and prints them until Ctrl-C).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"
IFACE = "eth0"


def missing_requirements() -> str | None:
    """Why hosts cannot be built here, or None when they can."""
    if os.name != "posix" or os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed"
    if not os.path.exists(SSHD):
        return f"openssh-server is not installed ({SSHD} missing)"
    if shutil.which("ssh-keygen") is None or shutil.which("ssh") is None:
        return "openssh-client (ssh, ssh-keygen) is not installed"
    return None


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {res.returncode}): {res.stderr.strip()}")
    return res


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


@dataclass
class Host:
    """One test host: ``address`` is reachable from the root namespace and from every other host."""

    index: int
    name: str
    netns: str
    address: str
    veth: str
    sshd_config: Path
    host_key: Path
    log: Path
    proc: subprocess.Popen | None = None


@dataclass
class NetnsHosts:
    """N hosts on a private /24.  ``client_key`` logs in as root on every host (``authorized_keys`` is shared)."""

    count: int
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ccdsl-netns-")))
    hosts: list[Host] = field(default_factory=list)
    bridge: str = ""
    subnet: str = ""
    gateway: str = ""
    tag: str = ""

    @property
    def client_key(self) -> Path:
        return self.workdir / "client_key"

    @property
    def authorized_keys(self) -> Path:
        return self.workdir / "authorized_keys"

    @property
    def user(self) -> str:
        return "root"

    @property
    def private(self) -> Path:
        """A folder each host sees as its own disk: host i's processes find ``private_of(i)`` mounted here.  The
        rest of the filesystem is shared (one image on every node); tests that must tell the nodes' copies of
        something apart (the synced project folder) keep it under this path."""
        return self.workdir / "private"

    def private_of(self, i: int) -> Path:
        """Host i's private folder, as seen from the test (the root namespace)."""
        return self.workdir / f"private{i}"

    # -- building -----------------------------------------------------------------------------------------------
    def _pick_subnet(self, attempt: int = 0) -> int:
        used = _run("ip", "-4", "-o", "addr", "show").stdout
        start = (os.getpid() + 37 * attempt) % 200 + 20
        for k in [*range(start, 250), *range(20, start)]:
            if f"10.213.{k}." not in used:
                return k
        raise RuntimeError("no free 10.213.K.0/24 subnet for test hosts")

    def build(self, attempts: int = 3) -> NetnsHosts:
        """Build the hosts; another session racing for the same names or subnet gets a retry with new ones."""
        for attempt in range(attempts):
            try:
                self._build(attempt)
                return self
            except BaseException:
                self.teardown()
                if attempt == attempts - 1:
                    raise
                self.hosts, self.bridge, self.tag = [], "", ""
                self.workdir = Path(tempfile.mkdtemp(prefix="ccdsl-netns-"))
                time.sleep(0.2 * (attempt + 1))
        return self

    def _build(self, attempt: int = 0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o700)
        self.tag = _b36(os.getpid() * 3 + attempt)[-5:]
        links = _run("ip", "-o", "link", "show").stdout
        netns = _run("ip", "netns", "list").stdout
        while f"ccb{self.tag}:" in links or f"ccn{self.tag}h" in netns:
            self.tag = _b36(int(self.tag, 36) + 1)[-5:]
        k = self._pick_subnet(attempt)
        self.subnet, self.gateway, self.bridge = f"10.213.{k}.0/24", f"10.213.{k}.1", f"ccb{self.tag}"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ccdsl-test-client", "-f", str(self.client_key))
        self.authorized_keys.write_text(Path(str(self.client_key) + ".pub").read_text())
        os.chmod(self.authorized_keys, 0o600)
        self.private.mkdir()
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for i in range(self.count):
            host = self._add_host(i, k)
            self.hosts.append(host)
            self.start_sshd(i, wait=False)
        for i in range(self.count):
            self.wait_listening(i)

    def _add_host(self, i: int, k: int, *, bridge: str | None = None, prefix: str = "10.213",
                  gateway: str | None = None, iface: str = IFACE) -> Host:
        """Host i at ``<prefix>.k.(10+i)`` on ``bridge`` (default: the bridge the root namespace is on), its
        default route via ``gateway`` (default: the root namespace's address there; "": no default route)."""
        ns, veth, peer = f"ccn{self.tag}h{i}", f"ccv{self.tag}h{i}", f"ccp{self.tag}h{i}"
        address = f"{prefix}.{k}.{10 + i}"
        _run("ip", "netns", "add", ns)
        host = Host(i, f"host{i}", ns, address, veth, self.workdir / f"sshd_config{i}",
                    self.workdir / f"host_key{i}", self.workdir / f"sshd{i}.log")
        self._plug(ns, veth, peer, iface, bridge or self.bridge, address)
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        gateway = self.gateway if gateway is None else gateway
        if gateway:
            _run("ip", "-n", ns, "route", "add", "default", "via", gateway)
        self.new_host_key(i)
        self.private_of(i).mkdir()
        self._write_sshd_config(host, [address])
        return host

    @staticmethod
    def _plug(ns: str, veth: str, peer: str, iface: str, bridge: str, address: str) -> None:
        """A veth pair from ``bridge`` into namespace ``ns``, named ``iface`` there, with ``address``/24."""
        _run("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
        _run("ip", "link", "set", veth, "master", bridge)
        _run("ip", "link", "set", veth, "up")
        _run("ip", "link", "set", peer, "netns", ns)
        _run("ip", "-n", ns, "link", "set", peer, "name", iface)
        _run("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", iface)
        _run("ip", "-n", ns, "link", "set", iface, "up")

    def _write_sshd_config(self, host: Host, listen: list[str]) -> None:
        host.sshd_config.write_text("\n".join([
            "Port 22", *(f"ListenAddress {a}" for a in listen), f"HostKey {host.host_key}",
            f"AuthorizedKeysFile {self.authorized_keys}", "UsePAM no", "StrictModes no", "PidFile none",
            "PermitRootLogin yes", "PasswordAuthentication no",
            "PubkeyAuthentication yes", "UseDNS no", "MaxStartups 200", "MaxSessions 100",
            "Subsystem sftp internal-sftp", "LogLevel ERROR", "",
        ]))

    def new_host_key(self, i: int) -> None:
        """(Re)generate host i's host key; takes effect at the next ``start_sshd``."""
        key = self.workdir / f"host_key{i}"
        for p in (key, Path(str(key) + ".pub")):
            p.unlink(missing_ok=True)
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))

    # -- controlling sshd ---------------------------------------------------------------------------------------
    def start_sshd(self, i: int, *, wait: bool = True) -> None:
        host = self.hosts[i]
        if host.proc is not None and host.proc.poll() is None:
            return
        # 'ip netns exec' gives the command a mount namespace of its own: bind the host's private folder there
        # (sshd and every session it starts see it; the root namespace and the other hosts do not)
        script = (f"mount --bind {shlex.quote(str(self.private_of(i)))} {shlex.quote(str(self.private))} && "
                  f"exec {SSHD} -D -e -f {shlex.quote(str(host.sshd_config))}")
        with open(host.log, "ab") as log:  # sshd keeps its own copy of the descriptor
            host.proc = subprocess.Popen(["ip", "netns", "exec", host.netns, "sh", "-c", script],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        if wait:
            self.wait_listening(i)

    def wait_listening(self, i: int, timeout: float = 120.0) -> None:  # a fail-safe: ends on the banner
        host = self.hosts[i]
        deadline = time.monotonic() + timeout
        while True:
            if host.proc is not None and host.proc.poll() is not None:
                raise RuntimeError(f"sshd of {host.name} exited: {host.log.read_text()[-2000:]}")
            try:
                with socket.create_connection((host.address, 22), timeout=1.0) as s:
                    if s.recv(4).startswith(b"SSH"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd of {host.name} not listening on {host.address}:22")
            time.sleep(0.05)

    def stop_sshd(self, i: int) -> None:
        """Stop host i's listening sshd (sessions already open keep running, as with a real sshd restart)."""
        host = self.hosts[i]
        if host.proc is not None and host.proc.poll() is None:
            host.proc.terminate()
            try:
                host.proc.wait(5)
            except subprocess.TimeoutExpired:
                host.proc.kill()
                host.proc.wait(5)
        host.proc = None

    def kill_host(self, i: int) -> None:
        """Simulate a dead machine: SIGKILL every process in host i's namespace (sshd, sessions, MPI ranks)."""
        host = self.hosts[i]
        pids = _run("ip", "netns", "pids", host.netns, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        if host.proc is not None:
            host.proc.wait(5)
            host.proc = None

    def partition(self, i: int) -> None:
        """Cut host i off the network without closing anything (packets are dropped, no RST): a lost machine."""
        _run("ip", "link", "set", self.hosts[i].veth, "down")

    def heal(self, i: int) -> None:
        _run("ip", "link", "set", self.hosts[i].veth, "up")

    def pids(self, i: int) -> list[int]:
        return [int(p) for p in _run("ip", "netns", "pids", self.hosts[i].netns, check=False).stdout.split()]

    # -- teardown -----------------------------------------------------------------------------------------------
    def teardown(self) -> None:
        """Remove everything built; tolerant of half-built state so it can run after any failure."""
        for host in self.hosts:
            try:
                self.kill_host(host.index)
            except Exception:
                pass
            _run("ip", "link", "del", host.veth, check=False)
            _run("ip", "netns", "del", host.netns, check=False)
        for i in range(len(self.hosts), self.count):  # a namespace created before its Host was recorded
            if self.tag:
                _run("ip", "link", "del", f"ccv{self.tag}h{i}", check=False)
                _run("ip", "netns", "del", f"ccn{self.tag}h{i}", check=False)
        if self.bridge:
            _run("ip", "link", "del", self.bridge, check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- views for the code under test --------------------------------------------------------------------------
    def node(self, i: int, *, role: str = "worker", index: int | None = None, reachable: bool = True):
        """Host i as an executor :class:`Node` (``reachable=False`` leaves out the public address)."""
        from ccdsl.executor.model import RUNNING, Node

        host = self.hosts[i]
        return Node(index=i if index is None else index, role=role, instance_id=host.name, instance_type="netns",
                    state=RUNNING, address=host.address if reachable else None, private_address=host.address,
                    port=22, user=self.user, key_path=str(self.client_key))

    def nodes(self, indices=None, **kw) -> list:
        indices = range(self.count) if indices is None else indices
        return [self.node(i, index=j, **kw) for j, i in enumerate(indices)]


@dataclass
class JumpHosts(NetnsHosts):
    """Private hosts behind a jump host: ``count`` hosts on an inner bridge the root namespace has no address on
    (and an ``unreachable`` route to, so a connection from here fails at once and no packet leaves this machine),
    plus ``jump`` (the last of ``hosts``) on both bridges: ``address`` on the outer bridge, reachable from here,
    ``inner`` on the inner one, where it is ``eth0`` as on the other hosts (MPI's interface); sshd listens on both.

    Private hosts are reached only through the jump host: ``node(i)`` has no ``address``."""

    inner_bridge: str = ""
    inner_subnet: str = ""
    inner: str = ""  # the jump host's address on the inner bridge

    @property
    def jump(self) -> Host:
        return self.hosts[-1]

    def _build(self, attempt: int = 0) -> None:
        count, self.count = self.count, 0  # the outer bridge alone (no host on it yet)
        try:
            super()._build(attempt)
        finally:
            self.count = count
        k = self._pick_inner()
        self.inner_bridge, self.inner_subnet = f"cci{self.tag}", f"10.214.{k}.0/24"
        _run("ip", "link", "add", self.inner_bridge, "type", "bridge")
        _run("ip", "link", "set", self.inner_bridge, "up")
        _run("ip", "route", "add", "unreachable", self.inner_subnet)
        for i in range(count):
            self.hosts.append(self._add_host(i, k, bridge=self.inner_bridge, prefix="10.214", gateway=""))
        outer_k = int(self.subnet.split(".")[2])
        jump = self._add_host(count, outer_k, iface="eth1")  # the outer leg, its default route there
        self.inner = f"10.214.{k}.5"
        self._plug(jump.netns, f"ccv{self.tag}j", f"ccp{self.tag}j", IFACE, self.inner_bridge, self.inner)
        jump.name = "jump"
        self._write_sshd_config(jump, [jump.address, self.inner])
        self.hosts.append(jump)
        self.count = count + 1
        for i in range(len(self.hosts)):
            self.start_sshd(i, wait=False)
        for i in range(len(self.hosts)):
            self.wait_listening(i)

    def _pick_inner(self) -> int:
        routes = _run("ip", "-4", "route", "show").stdout + _run("ip", "-4", "-o", "addr", "show").stdout
        start = os.getpid() % 200 + 20
        for k in [*range(start, 250), *range(20, start)]:
            if f"10.214.{k}." not in routes:
                return k
        raise RuntimeError("no free 10.214.K.0/24 subnet for private test hosts")

    def wait_listening(self, i: int, timeout: float = 120.0) -> None:  # a fail-safe: ends on the banner
        """Wait from inside host i's namespace (the root namespace cannot reach the private hosts)."""
        host = self.hosts[i]
        probe = ("import socket, sys, time\n"
                 "end = time.monotonic() + float(sys.argv[2])\n"
                 "while True:\n"
                 "    try:\n"
                 "        with socket.create_connection((sys.argv[1], 22), timeout=1.0) as s:\n"
                 "            if s.recv(4).startswith(b'SSH'):\n"
                 "                break\n"
                 "    except OSError:\n"
                 "        pass\n"
                 "    if time.monotonic() > end:\n"
                 "        sys.exit(1)\n"
                 "    time.sleep(0.05)\n")
        res = _run("ip", "netns", "exec", host.netns, sys.executable, "-c", probe, host.address, str(timeout),
                   check=False)
        if res.returncode != 0:
            log = host.log.read_text()[-2000:] if host.log.exists() else ""
            raise RuntimeError(f"sshd of {host.name} not listening on {host.address}:22: {log}")

    def teardown(self) -> None:
        super().teardown()
        if self.inner_subnet:
            _run("ip", "route", "del", "unreachable", self.inner_subnet, check=False)
        if self.inner_bridge:
            _run("ip", "link", "del", self.inner_bridge, check=False)
        self.inner_bridge = self.inner_subnet = ""

    def node(self, i: int, *, role: str = "worker", index: int | None = None, reachable: bool = True):
        """Host i as a :class:`Node`: a private host without ``address``, the jump host with both."""
        from dataclasses import replace

        node = super().node(i, role=role, index=index, reachable=reachable)
        if self.hosts[i] is self.jump:
            return replace(node, private_address=self.inner)
        return replace(node, address=None)


def main() -> int:
    reason = missing_requirements()
    if reason:
        print(f"cannot build hosts: {reason}", file=sys.stderr)
        return 1
    hosts = NetnsHosts(int(sys.argv[1]) if len(sys.argv) > 1 else 3).build()
    try:
        for h in hosts.hosts:
            print(f"{h.name}: ssh -i {hosts.client_key} root@{h.address}  (netns {h.netns})")
        print("Ctrl-C to tear down")
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        hosts.teardown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
