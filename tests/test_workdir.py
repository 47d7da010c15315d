"""The project's folder on every node (issue 9, part 1): what is sent, what is left out, where ranks start, the
set-up command; on the local provider and on SSH hosts in network namespaces (PeerWorkers and ManagerWorkers).

The namespace hosts share one filesystem, so the folder is kept under ``netns_hosts.private``, which every host
sees as a disk of its own: a test can tell whether *each* node got its copy."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

import ccdsl
from ccdsl.cli import main
from ccdsl.errors import ClusterError, ConfigError, SetupError
from ccdsl.executor import _tree
from fixtures_executor import data_dir
from fixtures_netns import netns_hosts

pytest.importorskip("mpi4py")


def make_project(root: Path) -> Path:
    """A small project: a package, a data file, an executable script, and things that must stay behind."""
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "mod.py").write_text("X = 41\n")
    (root / "data.txt").write_text("hello\n")
    (root / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    os.chmod(root / "tool.sh", 0o750)
    for d in (".git", "__pycache__", ".venv", "out"):
        (root / d).mkdir()
        (root / d / "x").write_text("not sent\n")
    (root / "big.log").write_text("not sent\n")
    (root / ".ccdslignore").write_text("# outputs\nout/\n*.log\n")
    return root


def where(comm):
    """On every rank: working directory, the module's value, the data file, and whether ignored things came."""
    import os
    from pathlib import Path

    import pkg.mod

    seen = (os.getcwd(), pkg.mod.X, Path("data.txt").read_text().strip(), os.access("tool.sh", os.X_OK),
            sorted(n for n in (".git", "__pycache__", ".venv", "out", "big.log") if os.path.exists(n)))
    return comm.gather(seen, root=0)


# -- the tree logic -----------------------------------------------------------------------------------------------
def test_ignore_rules(tmp_path):
    make_project(tmp_path)
    files, dirs = _tree.scan(str(tmp_path), _tree.ignore_patterns(str(tmp_path)))
    assert sorted(files) == [".ccdslignore", "data.txt", "pkg/__init__.py", "pkg/mod.py", "tool.sh"]
    assert dirs == {"pkg"}
    assert files["tool.sh"][2] == 0o750
    assert _tree.is_ignored("a/b/__pycache__", True, list(_tree.ALWAYS_IGNORED))
    assert not _tree.is_ignored("out", False, ["out/"])  # a trailing / matches folders only
    assert _tree.is_ignored("sub/data.bin", False, ["sub/*.bin"])


def test_compare_sends_changes_deletes_and_chmods():
    src = ({"a": (1, 10, 0o644), "b": (2, 10, 0o755), "d/c": (3, 10, 0o644)}, {"d"})
    dst = ({"a": (1, 10, 0o644), "b": (2, 10, 0o644), "old": (5, 1, 0o644), "e/f": (1, 1, 0o644)}, {"e"})
    changes = _tree.compare(src, dst)
    assert changes == {"send": ["d/c"], "chmod": {"b": 0o755}, "delete": ["old", "e/f"], "rmdirs": ["e"],
                       "mkdirs": ["d"]}
    # same size, same second: only the nanosecond stamps recorded at the last sync tell the edit apart
    assert _tree.compare(src, src, {"a": 2, "b": 1, "d/c": 1}, {"a": 1, "b": 1, "d/c": 1})["send"] == ["a"]


# -- local provider -----------------------------------------------------------------------------------------------
def test_local_folder_setup_run_resync(data_dir, tmp_path):
    proj = make_project(tmp_path / "proj")
    lines: list[tuple[str, str]] = []
    bars: list[tuple[int, int, int, int]] = []
    c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=2), workdir=proj,
                     setup="echo set up in $(basename $(pwd)); python -c 'import pkg.mod; print(pkg.mod.X)'",
                     setup_stream=lambda node, line: lines.append((node, line)),
                     sync_progress=lambda *p: bars.append(p))
    try:
        copy = data_dir / "local" / c.handle / "work"
        assert lines == [("this machine", "set up in work"), ("this machine", "41")]
        assert bars[-1] == (5, 5, bars[-1][3], bars[-1][3]) and bars[-1][3] == sum(
            (proj / f).stat().st_size for f in (".ccdslignore", "data.txt", "pkg/__init__.py", "pkg/mod.py", "tool.sh"))
        seen = c.run(where)
        assert seen == [(str(copy), 41, "hello", True, [])] * 2
        # an edit of equal size within the same second, a deletion, a mode change: all arrive, nothing else
        (proj / "pkg" / "mod.py").write_text("X = 42\n")
        (proj / "data.txt").unlink()
        os.chmod(proj / "tool.sh", 0o640)
        (proj / "data.txt").write_text("again\n")
        synced = c.sync()
        assert [(s.files, s.deleted) for s in synced] == [(2, 0)]
        assert stat.S_IMODE((copy / "tool.sh").stat().st_mode) == 0o640
        assert c.run(where)[0][1:3] == (42, "again")
        (proj / "data.txt").unlink()
        assert [(s.files, s.deleted) for s in c.sync()] == [(0, 1)]
        assert not (copy / "data.txt").exists()
        assert [(s.files, s.deleted) for s in c.sync()] == [(0, 0)]
        # scripts start in the folder too
        script = tmp_path / "prog.py"
        script.write_text("import os, pkg.mod\nprint('script', pkg.mod.X, os.path.basename(os.getcwd()))\n")
        out: list[str] = []
        assert c.run_script(str(script), stream=lambda line, s: out.append(line)) == 0
        assert out == ["script 42 work", "script 42 work"]
    finally:
        c.terminate()
    assert not (data_dir / "local" / c.handle).exists()


def test_bad_folder_and_setup_without_folder_create_nothing(data_dir, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=1), workdir=tmp_path / "nope")
    with pytest.raises(ClusterError, match="give workdir"):
        ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=1), setup="true")
    assert ccdsl.clusters() == []


def test_local_failing_setup_leaves_cluster_failed_and_terminate_cleans(data_dir, tmp_path):
    proj = make_project(tmp_path / "proj")
    with pytest.raises(SetupError, match=r"failed on this machine \(exit 3\)") as info:
        ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=1), workdir=proj, setup="echo no; exit 3",
                     setup_stream=lambda node, line: None)
    assert info.value.exit_code == 3 and info.value.node == "this machine"
    [failed] = ccdsl.clusters()
    assert failed.status == "failed" and "set-up failed" in failed.note
    ccdsl.terminate(failed.handle)
    assert ccdsl.clusters() == [] and not (data_dir / "local" / failed.handle).exists()


def test_cli_deploy_workdir_setup_and_sync(data_dir, tmp_path, capsys):
    proj = make_project(tmp_path / "proj")
    contract = tmp_path / "c.ccc"
    contract.write_text("c = @cluster(node_provider => Local, node_count => 1)\n")
    assert main(["deploy", str(contract), "--workdir", str(proj), "--setup", "echo ready"]) == 0
    out = capsys.readouterr()
    handle = out.out.strip()
    assert "[this machine] ready" in out.err and "sync [" in out.err and "5/5 files" in out.err
    try:
        (proj / "new.txt").write_text("n\n")
        assert main(["sync", handle, "--setup", "--json"]) == 0
        out = capsys.readouterr()
        assert json.loads(out.out)[0]["files"] == 1 and "[this machine] ready" in out.err
        script = tmp_path / "prog.py"
        script.write_text("import os\nprint(open('new.txt').read().strip(), os.path.basename(os.getcwd()))\n")
        assert main(["run", handle, "--", "python", str(script)]) == 0  # ccdsl run starts in the folder too
        assert capsys.readouterr().out.split("\n")[0] == "n work"
    finally:
        assert main(["terminate", handle]) == 0


# -- SSH hosts ----------------------------------------------------------------------------------------------------
def ssh_config(netns_hosts, *, manager: bool = False):
    from ccdsl.executor.config import Config

    return Config.from_dict(ssh_settings(netns_hosts, manager=manager))


def ssh_settings(netns_hosts, *, manager: bool = False) -> dict:
    """The ccdsl.toml settings (as a dict) for the namespace hosts, host3 the manager if ``manager``."""
    hosts = [{"name": h.name, "address": h.address, "type": "mgr" if manager and h.index == 3 else "rack"}
             for h in netns_hosts.hosts]
    return ({
        "ssh": {"user": "root", "key_path": str(netns_hosts.client_key), "connect_timeout": 5.0,
                "ready_timeout": 30.0, "hosts": hosts},
        "mpi": {"python": sys.executable, "iface": "eth0", "authorized_keys": str(netns_hosts.authorized_keys),
                "remote_dir": str(netns_hosts.private / "remote")}})


def ssh_deploy(netns_hosts, *, manager: bool = False, **kw):
    from ccdsl.executor.deploy import Plan, Spec, deploy
    from ccdsl.executor.model import NodeRequest

    requests = ((NodeRequest("", "manager", "mgr", 1),) if manager else ()) + (NodeRequest("", "worker", "rack", 3),)
    spec = Spec("proj", "ManagerWorkers" if manager else "PeerWorkers", (Plan("ssh", requests),))
    return deploy(spec, config=ssh_config(netns_hosts, manager=manager), **kw)


def node_copy(netns_hosts, i: int, handle: str) -> Path:
    """Host i's copy of the folder, as seen from here."""
    return netns_hosts.private_of(i) / "remote" / handle / "work"


@pytest.mark.netns
@pytest.mark.parametrize("manager", [False, True], ids=["PeerWorkers", "ManagerWorkers"])
def test_ssh_folder_on_every_node(netns_hosts, data_dir, tmp_path, manager):
    proj = make_project(tmp_path / "proj")
    lines: list[tuple[str, str]] = []
    c = ssh_deploy(netns_hosts, manager=manager, workdir=proj, setup="echo setup; hostname -I",
                   setup_stream=lambda node, line: lines.append((node, line.strip())))
    try:
        hosts = range(4) if manager else range(3)
        names = {f"worker {i}" for i in range(3)} | ({"manager 0"} if manager else set())
        assert {n for n, _ in lines} == names
        addresses = {n: line for n, line in lines if line != "setup"}
        assert addresses["worker 1"] == netns_hosts.hosts[1].address  # streamed with the node it ran on
        for i in hosts:  # every node has its own copy, with modes kept and nothing ignored
            copy = node_copy(netns_hosts, i, c.handle)
            assert (copy / "pkg" / "mod.py").read_text() == "X = 41\n", i
            assert stat.S_IMODE((copy / "tool.sh").stat().st_mode) == 0o750
            assert not any((copy / n).exists() for n in (".git", "__pycache__", ".venv", "out", "big.log"))
        cwd = str(netns_hosts.private / "remote" / c.handle / "work")
        assert c.run(where) == [(cwd, 41, "hello", True, [])] * 3
        (proj / "pkg" / "mod.py").write_text("X = 42\n")  # same size, same second
        (proj / "data.txt").write_text("changed\n")
        (proj / "tool.sh").unlink()
        synced = c.sync()
        assert sorted((s.files, s.deleted) for s in synced) == [(2, 1)] * len(hosts)
        assert [s[1:3] for s in c.run(where)] == [(42, "changed")] * 3
        assert not any((node_copy(netns_hosts, i, c.handle) / "tool.sh").exists() for i in hosts)
        assert all(s.files == 0 for s in c.sync())
    finally:
        c.terminate()
    assert not any((netns_hosts.private_of(i) / "remote" / c.handle).exists() for i in range(4))


@pytest.mark.netns
@pytest.mark.parametrize("manager", [False, True], ids=["PeerWorkers", "ManagerWorkers"])
def test_ssh_failing_setup_names_the_node(netns_hosts, data_dir, tmp_path, manager):
    """On ManagerWorkers the folder reaches worker 2 through the manager, and the set-up still fails there by
    name."""
    proj = make_project(tmp_path / "proj")
    bad = netns_hosts.hosts[2].address
    with pytest.raises(SetupError, match=rf"failed on worker 2 \(host2 at {bad}\) exit 7") as info:
        ssh_deploy(netns_hosts, manager=manager, workdir=proj,
                   setup=f"case \"$(hostname -I)\" in *{bad}*) exit 7;; esac", setup_stream=lambda node, line: None)
    assert info.value.exit_code == 7
    config = ssh_config(netns_hosts, manager=manager)
    [failed] = ccdsl.clusters(config=config)
    assert failed.status == "failed"
    assert (node_copy(netns_hosts, 2, failed.handle) / "data.txt").exists()  # left for a look
    ccdsl.terminate(failed.handle, config=config)
    assert ccdsl.clusters(config=config) == []
    assert not any((netns_hosts.private_of(i) / "remote" / failed.handle).exists() for i in range(4))


@pytest.mark.netns
def test_ssh_folder_survives_restart_and_a_replaced_node_gets_it_again(netns_hosts, data_dir, tmp_path, capfd):
    proj = make_project(tmp_path / "proj")
    lines: list[tuple[str, str]] = []
    c = ssh_deploy(netns_hosts, workdir=proj, setup="echo setup",
                   setup_stream=lambda node, line: lines.append((node, line)))
    try:
        c.restart()
        assert c.run(where)[0][1] == 41
        import shutil

        shutil.rmtree(node_copy(netns_hosts, 1, c.handle))  # node 1 comes back with an empty disk
        capfd.readouterr()
        c.interrupt()
        c.resume()
        assert (node_copy(netns_hosts, 1, c.handle) / "pkg" / "mod.py").exists()
        err = capfd.readouterr().err  # the set-up ran again on the replaced node only
        assert "[worker 1] setup" in err and "[worker 0] setup" not in err and "[worker 2] setup" not in err
        assert c.run(where) == [(str(netns_hosts.private / "remote" / c.handle / "work"), 41, "hello", True, [])] * 3
    finally:
        c.terminate()


# -- symbolic links and special files (issue 22, item 1) ---------------------------------------------------------
def linked_project(root: Path, secret: Path) -> Path:
    """A project with links inside it (relative, absolute, to a folder), a FIFO, and a secret next to it."""
    make_project(root)
    secret.write_text("aws_secret_access_key = hunter2\n")
    (root / "pkg" / "alias.txt").symlink_to("../data.txt")
    (root / "absolute.txt").symlink_to(root / "data.txt")  # absolute, but inside: sent as a relative link
    (root / "lib").symlink_to("pkg")
    os.mkfifo(root / "pipe")  # opened, it would wait for a writer forever
    return root


def test_links_inside_stay_links_outside_ones_fail_the_sync(tmp_path):
    from ccdsl.executor import workdir

    proj = linked_project(tmp_path / "proj", tmp_path / "credentials")
    target = tmp_path / "copy"
    workdir.sync_local(proj, target, workdir.Counter(None))
    assert os.readlink(target / "pkg" / "alias.txt") == "../data.txt"
    assert os.readlink(target / "absolute.txt") == "data.txt"
    assert os.readlink(target / "lib") == "pkg" and (target / "lib" / "mod.py").read_text() == "X = 41\n"
    assert not (target / "pipe").exists()
    assert [s.files for s in [workdir.sync_local(proj, target, workdir.Counter(None))]] == [0]  # links compare equal
    (proj / "creds").symlink_to(tmp_path / "credentials")
    (proj / "pkg" / "env").symlink_to("/proc/self/environ")
    (proj / "data.txt").write_text("changed\n")
    fresh = tmp_path / "fresh"
    for dst in (target, fresh):
        with pytest.raises(ConfigError, match=r"creds, pkg/env") as info:
            workdir.sync_local(proj, dst, workdir.Counter(None))
        assert ".ccdslignore" in info.value.hint
    assert not fresh.exists() and (target / "data.txt").read_text() == "hello\n"  # nothing was sent
    (proj / ".ccdslignore").write_text("creds\npkg/env\n")
    workdir.sync_local(proj, fresh, workdir.Counter(None))
    assert not os.path.lexists(fresh / "creds") and (fresh / "data.txt").read_text() == "changed\n"


def test_a_file_replaced_by_a_fifo_or_grown_after_the_scan_is_not_read_past_its_size(tmp_path):
    (tmp_path / "f").write_bytes(b"12345")
    with _tree.open_regular(str(tmp_path / "f")) as f:
        assert b"".join(_tree.read_upto(f, 3)) == b"123"
    os.mkfifo(tmp_path / "p")
    with pytest.raises(OSError, match="no longer a regular file"):
        _tree.open_regular(str(tmp_path / "p"))  # O_NONBLOCK: no writer, no wait
    (tmp_path / "l").symlink_to(tmp_path / "f")
    with pytest.raises(OSError):
        _tree.open_regular(str(tmp_path / "l"))
    assert not _tree.link_ok("a/b", "../../x") and not _tree.link_ok("a", "/etc/passwd")
    assert _tree.link_ok("a/b", "../x")


@pytest.mark.netns
@pytest.mark.parametrize("manager", [False, True], ids=["PeerWorkers", "ManagerWorkers"])
def test_ssh_links_stay_links_and_outside_ones_are_never_sent(netns_hosts, data_dir, tmp_path, manager):
    proj = linked_project(tmp_path / "proj", tmp_path / "credentials")
    c = ssh_deploy(netns_hosts, manager=manager, workdir=proj)
    try:
        hosts = range(4) if manager else range(3)
        for i in hosts:
            copy = node_copy(netns_hosts, i, c.handle)
            assert os.readlink(copy / "pkg" / "alias.txt") == "../data.txt", i
            assert os.readlink(copy / "absolute.txt") == "data.txt" and os.readlink(copy / "lib") == "pkg"
            assert not os.path.lexists(copy / "pipe")
        assert all(s.files == 0 for s in c.sync())
        (proj / "creds").symlink_to(tmp_path / "credentials")
        (proj / "data.txt").write_text("changed\n")
        with pytest.raises(ConfigError, match="creds"):
            c.sync()
        for i in hosts:
            copy = node_copy(netns_hosts, i, c.handle)
            assert not os.path.lexists(copy / "creds") and (copy / "data.txt").read_text() == "hello\n"
    finally:
        c.terminate()
