"""A contract may narrow security, never widen it (issue 8, item 2): ``check``, ``resolve`` and ``deploy`` refuse
what ccdsl.toml does not allow, with line and column; ssh_cidr never widens; sshflags refused, tags applied."""

from __future__ import annotations

import pytest

import ccdsl
from ccdsl.cli import main
from ccdsl.errors import ConfigError, ContractError
from ccdsl.executor.config import Config, load
from ccdsl.security import network, violations
from fixtures_executor import data_dir, ec2, ec2_config

GUARDED = ["security_group_id", "subnet_id", "key_name", "image_id", "hosts", "mpi_flags", "python"]


def contract(text: str):
    return ccdsl.parse(f"c = @cluster(node_count => 2,\n             {text})", "c.ccc")["c"]


def refused(text: str, toml: dict | None = None) -> list[str]:
    return [d.message for d in violations(contract(text), Config.from_dict(toml or {}, "ccdsl.toml"))]


@pytest.mark.parametrize("key", GUARDED)
def test_guarded_keys_need_ccdsl_toml(key: str) -> None:
    text = f'{key} => "x"'
    (d,) = violations(contract(text), Config())
    assert (d.path, d.line, d.column) == ("c.ccc", 2, 14) and f"a contract may not set {key}" in d.message
    assert f'contract_may_set = ["{key}"]' in d.hint
    assert refused(text, {"security": {"contract_may_set": [key]}}) == []


@pytest.mark.parametrize("cidr,toml,ok", [
    ("0.0.0.0/0", "", False),                    # nothing configured: this machine's /32 only
    ("203.0.113.0/28", "203.0.113.0/24", True),  # narrower: fine
    ("203.0.113.0/24", "203.0.113.0/24", True),
    ("0.0.0.0/0", "203.0.113.0/24", False),      # wider
    ("198.51.100.0/24", "203.0.113.0/24", False),  # elsewhere
    ("2001:db8::/64", "203.0.113.0/24", False),
])
def test_a_contract_ssh_cidr_must_lie_inside_the_configured_range(cidr: str, toml: str, ok: bool) -> None:
    got = refused(f'ssh_cidr => "{cidr}"', {"aws": {"ssh_cidr": toml}} if toml else None)
    assert (got == []) is ok, got


@pytest.mark.parametrize("cidr", ["203.0.113.9/0", "10.1.2.3/8", "2001:db8::1/32"])
def test_host_bits_are_refused_not_widened(cidr: str, tmp_path) -> None:
    (msg,) = refused(f'ssh_cidr => "{cidr}"', {"security": {"contract_may_set": ["ssh_cidr"]}})
    assert "host bits" in msg
    assert network(cidr)[0] is None
    with pytest.raises(ConfigError, match="host bits"):
        Config.from_dict({"aws": {"ssh_cidr": cidr}})


def test_host_bits_are_refused_by_the_aws_provider_too() -> None:
    pytest.importorskip("boto3")
    import dataclasses

    from ccdsl.executor.providers import aws
    p = aws.make(dataclasses.replace(Config(), aws=dataclasses.replace(Config().aws, ssh_cidr="203.0.113.9/0")), {})
    with pytest.raises(ConfigError, match="host bits"):
        p.network.ssh_cidr()


def test_sshflags_are_refused_and_python_is_an_interpreter() -> None:
    allow_all = {"security": {"contract_may_set": GUARDED}}
    (msg,) = refused('sshflags => "-o ConnectTimeout=5"', allow_all)
    assert "not supported" in msg
    (msg,) = refused("python => 3.11", allow_all)
    assert "not a version number" in msg
    assert refused('python => "python3.11"', allow_all) == []
    assert refused('python => "/usr/bin/python3"', allow_all) == []


def test_tags_are_checked_and_added_to_the_files() -> None:
    from ccdsl.executor.deploy import _with_file_tags, contract_overrides

    assert refused('tags => "team=ml, project=weather"') == []
    assert "key=value" in refused('tags => "oops"')[0]
    assert "reserved" in refused('tags => "ccdsl:cluster=x"')[0]
    c = contract('tags => "team=ml, project=weather"')
    merged = _with_file_tags(contract_overrides(c), Config.from_dict({"aws": {"tags": {"owner": "me", "team": "a"}}}))
    assert merged["aws"]["tags"] == {"owner": "me", "team": "ml", "project": "weather"}


def test_tags_from_a_contract_reach_the_instances(ec2_config, ec2) -> None:
    from ccdsl.executor.deploy import _with_file_tags, contract_overrides
    from test_executor_aws import create

    c = contract('tags => "team=ml"')
    cfg = ec2_config.replace(**_with_file_tags(contract_overrides(c), ec2_config))
    from ccdsl.executor.providers import aws

    nodes, _ = create(aws.make(cfg, {}), count=1)
    (r,) = ec2.describe_instances(InstanceIds=[nodes[0].instance_id])["Reservations"]
    assert {t["Key"]: t["Value"] for t in r["Instances"][0]["Tags"]}["team"] == "ml"


@pytest.fixture()
def pwned(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CCDSL_CONFIG", raising=False)
    monkeypatch.setenv("CCDSL_DATA_DIR", str(tmp_path / "data"))
    f = tmp_path / "bad.ccc"
    f.write_text('c = @cluster(node_provider => Local,\n             mpi_flags => "/bin/sh -c id>pwned :")\n')
    return f


@pytest.mark.parametrize("command", ["check", "resolve", "select", "deploy"])
def test_check_resolve_and_deploy_refuse_with_line_and_column(pwned, capsys, command: str) -> None:
    assert main([command, str(pwned)]) == 2
    err = capsys.readouterr().err
    assert f"{pwned}:2:14: error: mpi_flags" in err and "Traceback" not in err
    assert not (pwned.parent / "pwned").exists()


def test_library_deploy_refuses_before_creating_anything(pwned) -> None:
    c = ccdsl.load(pwned)["c"]
    with pytest.raises(ContractError) as e:
        ccdsl.deploy(c)
    assert e.value.diagnostics[0].line == 2
    assert ccdsl.clusters() == [] and not (pwned.parent / "pwned").exists()


def test_ccdsl_toml_with_a_bad_byte_names_the_line(tmp_path) -> None:
    f = tmp_path / "ccdsl.toml"
    f.write_bytes(b'[aws]\nuser = "\xe9"\n')
    with pytest.raises(ConfigError, match=r"ccdsl.toml:2: not UTF-8 text \(byte 0xe9\)"):
        load(f)


def test_unknown_contract_may_set_entries_are_config_errors() -> None:
    with pytest.raises(ConfigError) as e:
        Config.from_dict({"security": {"contract_may_set": ["mpi_flag"]}})
    assert "did you mean 'mpi_flags'" in e.value.render()


def test_deploy_of_a_spec_or_plans_skips_the_contract_check(data_dir) -> None:
    """A Spec names its contract (a string) and plans carry none: nothing to check, deploy goes on."""
    from ccdsl.executor.deploy import Plan, Spec
    from ccdsl.executor.model import NodeRequest

    pytest.importorskip("mpi4py")
    plan = Plan("local", (NodeRequest(handle="", role="worker", instance_type="local", count=1),))
    c = ccdsl.deploy(Spec("named", "PeerWorkers", (plan,)))
    try:
        assert c.status == "running"
    finally:
        ccdsl.terminate(c)


def test_role_scoped_configuration_is_refused_not_dropped() -> None:
    text = 'c = @cluster(cluster_type => ManagerWorkers, node_count => 2,\n             manager.user => "admin")'
    (d,) = violations(ccdsl.parse(text, "c.ccc")["c"], Config())
    assert (d.line, d.column) == (2, 14) and "manager.user would be ignored" in d.message
