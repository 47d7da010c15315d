"""The autostop marker on node 0 is data from a node (issue 22 item 6): ``[]`` once made ``ccdsl clusters`` a
traceback, and ``{"reason": "\\u001b[2J"}`` cleared the user's terminal and marked the cluster interrupted.  A
marker counts only as an object carrying the token its watchdog was armed with and a reason of at most 200
characters; what a note says is printed through ``printable()``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ccdsl
from ccdsl.cli import main
from ccdsl.executor import state as st
from fixtures_executor import data_dir
from fixtures_netns import netns_hosts
from test_autostop import host_config, ssh_plan

pytest.importorskip("mpi4py")
__all__ = ["data_dir", "netns_hosts"]


def _toml(config_dict: dict) -> str:
    """The few shapes host_config uses (strings, numbers, lists of flat tables) as TOML."""
    def value(v):
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return json.dumps(v)
    return "".join(f"[{section}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in keys.items())
                   for section, keys in config_dict.items())


def _clusters(capsys) -> str:
    assert main(["clusters"]) == 0  # reconciliation reads the marker: no traceback, rc 0
    out = capsys.readouterr()
    assert "\x1b" not in out.out + out.err
    return out.out


@pytest.mark.netns
def test_only_the_armed_watchdogs_marker_stops_the_cluster(netns_hosts, data_dir, tmp_path, monkeypatch, capsys):
    config = host_config(netns_hosts, tmp_path)
    settings = {s: getattr(config, s) for s in ("ssh", "mpi", "autostop")}
    raw = {name: {k: v for k, v in vars(section).items() if k in
                  {"user", "key_path", "connect_timeout", "ready_timeout", "hosts", "python", "iface",
                   "authorized_keys", "remote_dir", "check_interval"}} for name, section in settings.items()}
    (tmp_path / "ccdsl.toml").write_text(_toml(raw))
    monkeypatch.setenv("CCDSL_CONFIG", str(tmp_path / "ccdsl.toml"))
    c = ccdsl.deploy(ssh_plan(), config=config, autostop="1h")  # the watchdog itself will not act
    try:
        token = c.record.settings.get("autostop_token")  # None before issue 22
        (home,) = [n for n in c.nodes() if n.index == 0]
        marker = Path(home.extra["ccdsl_dir"] + ".autostop")  # the hosts share this file system
        for text in ("[]", '{"reason": "\\u001b[2J"}', "[" * 5000, json.dumps({"token": "0" * 16, "reason": "x"}),
                     json.dumps({"token": token, "reason": "x" * 201}), json.dumps({"token": token, "reason": 3})):
            marker.write_text(text)
            _clusters(capsys)
            assert st.State().get_cluster(c.handle).status == "running", text
        marker.write_text(json.dumps({"token": token, "reason": "idle \x1b[2J for 1h"}))
        _clusters(capsys)
        record = st.State().get_cluster(c.handle)
        assert record.status == "interrupted" and "idle \\x1b[2J for 1h" in record.note
    finally:
        ccdsl.terminate(c.handle, config=config)
