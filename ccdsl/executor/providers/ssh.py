"""The ``ssh`` provider: bring-your-own hosts (an on-premise cluster) listed in ``[ssh] hosts``.

The resolver picks hosts from the user's catalog (rows with provider ``ssh``; ``instance_type`` is a host name,
or a host class that several hosts share through their ``type`` key).  The machines are not ours: creating a
cluster *claims* free hosts of the chosen type and checks they answer; stop and start leave them running (the
cluster's processes are killed by the caller); terminate undoes what ccdsl installed and releases the claim.

Claims live in ``ssh_hosts.json`` in the data dir, changed under a file lock, so two ``ccdsl`` processes never
hand one host to two clusters, and a cluster created by a crashed session is still found (``discover``).

Host entries, strings or tables::

    [ssh]
    user = "hpc"
    key_path = "~/.ssh/id_ed25519"
    hosts = ["node01", "hpc@node02:2222",
             { name = "gpu1", address = "10.0.0.7", private_address = "192.168.1.7", type = "gpu-rack" }]
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccdsl.errors import CapacityError, ConfigError, ProviderError
from ccdsl.executor import model
from ccdsl.executor.config import Config
from ccdsl.executor.model import Node, NodeRequest, Progress
from ccdsl.executor.providers.base import split_host_port

if TYPE_CHECKING:
    from ccdsl.executor.ssh import SshOptions

log = logging.getLogger("ccdsl")

HOST_KEYS = ("name", "address", "private_address", "user", "port", "key_path", "type")


@dataclass(frozen=True)
class Host:
    """One configured host.  ``type`` is the catalog instance type it belongs to (default: its name)."""

    name: str
    address: str
    private_address: str
    user: str
    port: int
    key_path: str | None
    type: str


def parse_hosts(config: Config) -> list[Host]:
    """``[ssh] hosts`` as :class:`Host` values; malformed entries are ConfigErrors naming the entry."""
    s = config.ssh
    where = config.source or "ccdsl.toml"
    default_user = s.user or getpass.getuser()
    default_key = os.path.expanduser(s.key_path) if s.key_path else None
    hosts: list[Host] = []
    for i, entry in enumerate(s.hosts):
        what = f"{where}: [ssh] hosts[{i}]"
        if isinstance(entry, str):
            user, _, rest = entry.rpartition("@")
            address, port = _host_port(rest, s.port, what)
            table: Mapping[str, Any] = {"address": address, "port": port, **({"user": user} if user else {})}
        elif isinstance(entry, Mapping):
            table = entry
            unknown = [k for k in table if k not in HOST_KEYS]
            if unknown:
                raise ConfigError(f"{what}: unknown key '{unknown[0]}'", hint="host keys: " + ", ".join(HOST_KEYS))
            if not isinstance(table.get("address"), str) or not table["address"]:
                raise ConfigError(f"{what}: 'address' (a string) is required")
        else:
            raise ConfigError(f"{what} must be a string 'user@host:port' or a table, not {entry!r}")
        for key in ("name", "private_address", "user", "key_path", "type"):
            if key in table and not isinstance(table[key], str):
                raise ConfigError(f"{what}: '{key}' must be a string")
        port = table.get("port", s.port)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"{what}: 'port' must be a port number, not {port!r}")
        name = table.get("name") or table["address"]
        key_path = table.get("key_path")
        hosts.append(Host(name=name, address=table["address"], private_address=table.get("private_address") or
                          table["address"], user=table.get("user") or default_user, port=port,
                          key_path=os.path.expanduser(key_path) if key_path else default_key,
                          type=table.get("type") or name))
    names = [h.name for h in hosts]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ConfigError(f"{where}: [ssh] hosts names '{dup}' twice", hint="give the entries distinct 'name's")
    return hosts


def _host_port(text: str, default: int, what: str) -> tuple[str, int]:
    try:
        return split_host_port(text, default)
    except ValueError:
        raise ConfigError(f"{what}: '{text}' is not 'host' or 'host:port'") from None


# -- claims -------------------------------------------------------------------------------------------------------
class Claims:
    """Which cluster holds which host: a JSON file changed under an exclusive lock, written atomically."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "ssh_hosts.json"
        self.lock_path = directory / "ssh_hosts.lock"

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, dict[str, Any]]]:
        """The claims, locked; changes to the yielded dict are saved when the block ends without error."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = self._read()
                yield data
                self._write(data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> dict[str, dict[str, Any]]:
        with self.locked() as data:
            return dict(data)

    def release(self, handle: str) -> list[str]:
        """Free every host ``handle`` holds, for other clusters; the names of those hosts."""
        with self.locked() as data:
            names = sorted(n for n, c in data.items() if c.get("handle") == handle)
            for name in names:
                del data[name]
        return names

    def _read(self) -> dict[str, dict[str, Any]]:
        """The claims; a file that is not ``{host: {"handle": …, "role": …}, …}`` is a ProviderError naming it."""
        hint = ("it is ccdsl's record of which SSH hosts clusters hold: if no SSH cluster is running, move it "
                "away and ccdsl starts a new one")
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as exc:
            raise ProviderError(f"{self.path}:{exc.lineno}: not valid JSON: {exc.msg}", hint=hint) from None
        except (OSError, ValueError) as exc:
            raise ProviderError(f"cannot read the ssh host claims {self.path}: {exc}", hint=hint) from None
        if not isinstance(data, dict):
            raise ProviderError(f"{self.path}:1: expected an object of host claims, found {type(data).__name__} "
                                f"{json.dumps(data)[:40]}", hint=hint)
        for name, claim in data.items():
            if not isinstance(claim, dict) or not isinstance(claim.get("handle"), str):
                raise ProviderError(f"{self.path}: the claim of host {name!r} is not an object with a 'handle' "
                                    f"({json.dumps(claim)[:40]})", hint=hint)
        return data

    def _write(self, data: dict[str, dict[str, Any]]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".ssh_hosts.")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def make(config: Config, settings: Mapping[str, Any]) -> SshProvider:
    return SshProvider(config)


class SshProvider:
    name = "ssh"
    authoritative = True  # the claims file is the truth about which hosts a cluster holds

    def __init__(self, config: Config, data_dir: Path | None = None) -> None:
        from ccdsl.executor import state

        self.config = config
        self.claims = Claims(data_dir or state.data_dir())

    def settings(self) -> dict[str, Any]:
        return {}

    def check(self) -> None:
        """Refuse before a deploy makes its record: a claims file or host list that cannot be read would otherwise
        fail the create and the clean-up alike, and leave a failed record behind."""
        self.claims.read()
        self.hosts()

    def hosts(self) -> list[Host]:
        return parse_hosts(self.config)

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def create(self, request: NodeRequest, progress: Progress) -> list[Node]:
        """Claim ``request.count`` free hosts of ``request.instance_type`` and check that they answer over SSH.
        Hosts that do not answer are skipped for other free hosts of the type; the claim is dropped on failure."""
        hosts = self.hosts()
        if not hosts:
            raise ProviderError("the ssh provider has no hosts", hint="list them in ccdsl.toml: [ssh] hosts = [...]")
        wanted = request.instance_type
        matching = [h for h in hosts if not wanted or wanted in (h.type, h.name)]
        if not matching:
            raise ProviderError(f"no host of type '{wanted}' in [ssh] hosts",
                                hint="types: " + ", ".join(sorted({h.type for h in hosts})))
        tried_dead: list[str] = []
        claimed: list[Host] = []
        try:
            while len(claimed) < request.count:
                batch = self._claim(request, matching, request.count - len(claimed), dead=tried_dead,
                                    taken=[h.name for h in claimed])
                nodes = self._nodes(request, batch, start=len(claimed))
                for n in nodes:
                    progress(n.role, n.index, model.REQUESTED)
                dead = self._unreachable(request.handle, nodes)
                for host, node in zip(batch, nodes):
                    if host.name in dead:
                        tried_dead.append(host.name)
                        self._release([host.name], request.handle)
                        log.warning("ssh host %s does not answer (%s); trying another host", host.name, dead[host.name])
                    else:
                        claimed.append(host)
                        progress(node.role, node.index, model.REACHABLE)
        except BaseException:
            self._release([h.name for h in claimed], request.handle)
            raise
        with self.claims.locked() as data:  # remember each host's index so describe() rebuilds the same nodes
            for i, h in enumerate(claimed):
                data[h.name]["index"] = i
        return self._nodes(request, claimed, state=model.RUNNING)

    def _claim(self, request: NodeRequest, matching: list[Host], count: int, dead: list[str],
               taken: list[str]) -> list[Host]:
        """Claim ``count`` more hosts: first those this cluster already holds (an idempotent retry), then free ones;
        never the ``dead`` ones nor those ``taken`` by this create already."""
        exclude = [*dead, *taken]
        with self.claims.locked() as data:
            mine = [h for h in matching if data.get(h.name, {}).get("handle") == request.handle
                    and data[h.name].get("role") == request.role and h.name not in exclude]
            free = [h for h in matching if h.name not in data and h.name not in exclude]
            pick = (mine + free)[:count]
            if len(pick) < count:
                busy = sorted({data[h.name]["handle"] for h in matching if h.name in data
                               and data[h.name]["handle"] != request.handle})
                detail = [f"{len(matching)} configured"]
                if busy:
                    detail.append(f"others held by cluster(s) {', '.join(busy)}")
                if dead:
                    detail.append(f"not answering: {', '.join(dead)}")
                raise CapacityError(f"{request.count} ssh host(s) of type '{request.instance_type}' wanted, not "
                                    f"enough available ({'; '.join(detail)})",
                                    hint="a catalog row's instance_type names one host, or a class of hosts: give "
                                         "several [ssh] hosts the same 'type' to deploy more than one node of it")
            for h in pick:
                data[h.name] = {"handle": request.handle, "role": request.role, "type": h.type}
            return pick

    def _release(self, names: Sequence[str], handle: str) -> None:
        with self.claims.locked() as data:
            for name in names:
                if data.get(name, {}).get("handle") == handle:
                    del data[name]

    def _nodes(self, request: NodeRequest, hosts: Sequence[Host], *, start: int = 0,
               state: str = model.RUNNING) -> list[Node]:
        return [Node(index=start + i, role=request.role, instance_id=h.name, instance_type=h.type, state=state,
                     address=h.address, private_address=h.private_address, port=h.port, user=h.user,
                     key_path=h.key_path) for i, h in enumerate(hosts)]

    def _ssh_options(self, handle: str, deploying: bool) -> SshOptions:
        from ccdsl.executor.access import known_hosts_path, ssh_options

        return ssh_options(self.config, known_hosts=known_hosts_path(handle, self.name), deploying=deploying)

    def _unreachable(self, handle: str, nodes: Sequence[Node]) -> dict[str, str]:
        """host name -> why, for the nodes that do not answer (one attempt each, all at once)."""
        from ccdsl.executor import ssh
        from ccdsl.executor.parallel import parallel

        options = self._ssh_options(handle, deploying=True)

        def check(node: Node) -> tuple[str, str] | None:
            try:
                ssh.connect(node, options).close()
                return None
            except ProviderError as exc:
                if isinstance(exc, ssh.HostKeyError):
                    raise
                return node.instance_id, exc.message

        return dict(r for r in parallel(check, list(nodes)) if r)

    def start(self, handle: str, nodes: Sequence[Node]) -> list[Node]:
        """Hosts are never stopped: pick up address changes from the config, nothing else."""
        by_name = {h.name: h for h in self.hosts()}
        out = []
        for n in nodes:
            h = by_name.get(n.instance_id)
            if h is None:
                raise ProviderError(f"host {n.instance_id} of cluster {handle} is no longer in [ssh] hosts")
            out.append(replace(n, state=model.RUNNING, address=h.address, private_address=h.private_address,
                               port=h.port, user=h.user, key_path=h.key_path))
        return out

    def stop(self, handle: str, nodes: Sequence[Node]) -> list[Node]:
        """Bring-your-own hosts keep running; the caller killed the cluster's processes.  The claim stays."""
        return [replace(n, state=model.STOPPED) for n in nodes]

    def terminate(self, handle: str, nodes: Sequence[Node]) -> None:
        """Remove what ccdsl installed on the hosts (processes, cluster dir, internal key), release the claim.
        A host that cannot be cleaned is named in a warning; its claim is released all the same."""
        from ccdsl.executor import nodedir

        sopts = self._ssh_options(handle, deploying=False)
        for node in nodes:  # one by one: a dead host must not keep the others from being cleaned
            if node.state == model.TERMINATED:
                continue
            try:
                nodedir.release_cluster(handle, [node], options=self.config.mpi, ssh_options=sopts)
            except Exception as exc:  # reported; the release goes on
                log.warning("could not clean ssh host %s of cluster %s: %s", node.instance_id, handle,
                            getattr(exc, "message", exc))
        self.claims.release(handle)

    def leftovers(self, handle: str) -> list[str]:
        return sorted(n for n, c in self.claims.read().items() if c.get("handle") == handle)

    def describe(self, handle: str) -> list[Node]:
        """The hosts the claims file gives ``handle``, as running nodes (indices in host-list order per role)."""
        claims = self.claims.read()
        by_name = {h.name: h for h in self.hosts()}
        nodes: list[Node] = []
        mine = {n: c for n, c in claims.items() if c.get("handle") == handle}
        order = {n: i for i, n in enumerate(by_name)}
        for role in sorted({c["role"] for c in mine.values()}):
            names = sorted((n for n, c in mine.items() if c["role"] == role),
                           key=lambda n: (mine[n].get("index", 1 << 30), order.get(n, 1 << 30), n))
            for i, name in enumerate(names):
                h = by_name.get(name)
                nodes.append(Node(index=i, role=role, instance_id=name, instance_type=mine[name].get("type", name),
                                  state=model.RUNNING, address=h.address if h else None,
                                  private_address=h.private_address if h else None, port=h.port if h else 22,
                                  user=h.user if h else None, key_path=h.key_path if h else None))
        return nodes

    def discover(self) -> list[str]:
        return sorted({c["handle"] for c in self.claims.read().values()})
