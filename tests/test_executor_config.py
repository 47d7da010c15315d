"""ccdsl.toml: defaults, search order, unknown keys and wrong types."""

from __future__ import annotations

import pytest

from ccdsl.errors import ConfigError
from ccdsl.executor import config
from fixtures_executor import data_dir


def test_no_file_means_documented_defaults(data_dir, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(data_dir / "nothing"))
    cfg = config.load()
    assert cfg.source is None
    assert cfg.aws.ssh_cidr == "" and cfg.aws.user == "ubuntu" and cfg.mpi.processes_per_node == 1
    assert set(cfg.aws.image) == {"x86_64", "arm64"}


def test_every_key_is_documented_in_the_reference():
    import dataclasses

    ref = config.reference()
    for name, cls in config.SECTIONS.items():
        assert f"[{name}]" in ref
        for f in dataclasses.fields(cls):
            assert f.metadata["doc"] and f"\n{f.name} = " in ref


def test_reference_is_valid_toml_that_loads_back(tmp_path):
    import tomllib

    path = tmp_path / "ccdsl.toml"
    path.write_text(config.reference())
    assert tomllib.loads(path.read_text())
    assert config.load(path).aws == config.AwsConfig()


def test_search_order(data_dir, tmp_path, monkeypatch):
    user = tmp_path / "xdg" / "ccdsl"
    user.mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (user / "ccdsl.toml").write_text('[aws]\nregion = "eu-west-1"\n')
    assert config.load().aws.region == "eu-west-1"
    (tmp_path / "ccdsl.toml").write_text('[aws]\nregion = "us-west-2"\n')  # cwd wins
    assert config.load().aws.region == "us-west-2"
    other = tmp_path / "other.toml"
    other.write_text('[aws]\nregion = "ap-south-1"\nimage.arm64 = "ami-1"\n')
    monkeypatch.setenv("CCDSL_CONFIG", str(other))  # env wins
    cfg = config.load()
    assert cfg.aws.region == "ap-south-1" and cfg.source == str(other)
    assert cfg.aws.image["arm64"] == "ami-1" and cfg.aws.image["x86_64"].startswith("resolve:ssm:")
    monkeypatch.setenv("CCDSL_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        config.load()


@pytest.mark.parametrize("text, match, hint", [
    ('[aws]\nsecuirty_group_id = "sg-1"\n', "unknown key 'secuirty_group_id' in \\[aws\\]", "security_group_id"),
    ('[azure]\nregion = "x"\n', "unknown section \\[azure\\]", None),
    ('[aws]\nimage.riscv = "ami-1"\n', "image.riscv", None),
    ('[aws]\nspot = "yes"\n', "spot must be a boolean", None),
    ('[mpi]\nprocesses_per_node = true\n', "processes_per_node must be an integer", None),
    ('[ssh]\nhosts = "a,b"\n', "hosts must be a list", None),
    ('[aws\n', "not valid TOML", None),
])
def test_bad_files_name_key_and_file(tmp_path, text, match, hint):
    path = tmp_path / "ccdsl.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        config.load(path)
    assert str(path) in info.value.message
    if hint:
        assert hint in info.value.hint


def test_numbers_widen_and_replace_validates():
    cfg = config.Config.from_dict({"aws": {"poll_interval": 1}})
    assert cfg.aws.poll_interval == 1.0 and isinstance(cfg.aws.poll_interval, float)
    assert cfg.replace(aws={"region": "x"}).aws.poll_interval == 1.0
    with pytest.raises(ConfigError, match="regoin"):
        cfg.replace(aws={"regoin": "x"})


from hypothesis import given, settings
from hypothesis import strategies as st

_KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(section=st.sampled_from(sorted(config.SECTIONS)), key=_KEYS)
def test_any_unknown_key_is_named(section, key):
    import dataclasses

    known = {f.name for f in dataclasses.fields(config.SECTIONS[section])}
    if key in known:
        return
    with pytest.raises(ConfigError) as info:
        config.Config.from_dict({section: {key: 1}}, "my.toml")
    assert f"'{key}'" in info.value.message and "my.toml" in info.value.message


# Keys whose values are checked beyond their type: well-formed values only.
VALIDATED = {
    ("aws", "ssh_cidr"): st.sampled_from(["", "203.0.113.0/24", "10.0.0.0/8", "2001:db8::/32", "198.51.100.7/32"]),
    ("aws", "cpu_credits"): st.sampled_from(["standard", "unlimited"]),
    ("aws", "efa"): st.sampled_from(["auto", "on", "off"]),
    ("aws", "scratch"): st.sampled_from(["", "/scratch", "/mnt/nvme-0"]),
    ("aws", "shared"): st.sampled_from(["nfs", "efs", "none"]),
    ("aws", "shared_dir"): st.sampled_from(["/shared", "/mnt/team", "/data/shared-1"]),
    ("aws", "instance_profile"): st.sampled_from(["", "ccdsl-nodes", "arn:aws:iam::123456789012:instance-profile/x"]),
    ("aws", "jump_host"): st.sampled_from(["", "ubuntu@203.0.113.9:2222", "root@bastion.example.org",
                                           "ec2-user@[2001:db8::7]:22"]),
    ("security", "contract_may_set"): st.lists(st.sampled_from(["mpi_flags", "python", "hosts", "ssh_cidr"]),
                                               max_size=3),
}


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_valid_values_round_trip_through_toml(tmp_path_factory, data):
    """Any well-typed setting written as TOML reads back as the same Config."""
    import dataclasses
    import json

    chosen = {}
    for name, cls in config.SECTIONS.items():
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if isinstance(default, dict) or not data.draw(st.booleans()):
                continue
            low, high = config.LIMITS.get((name, f.name), (0, 10**6))
            if f.name == "processes_per_node":
                high = 256  # never above the default max_processes_per_node, which may be drawn too
            elif f.name == "max_processes_per_node":
                low = 256
            high = 10**6 if high is None else high
            strategy = {bool: st.booleans(), int: st.integers(int(low), int(high)), float: st.floats(low, high),
                        str: st.text(alphabet="abc-/.:09", min_size=1, max_size=12) if f.name == "remote_dir"
                        else st.sampled_from(["accept-new", "strict"]) if f.name == "host_key_policy"
                        else st.text(alphabet="abc-/.:09 ", max_size=12),
                        list: st.lists(st.text(alphabet="xyz", max_size=4), max_size=3)}[type(default)]
            strategy = VALIDATED.get((name, f.name), strategy)
            chosen.setdefault(name, {})[f.name] = data.draw(strategy)
    text = "\n".join(f"[{name}]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in keys.items())
                     for name, keys in chosen.items())
    path = tmp_path_factory.mktemp("cfg") / "ccdsl.toml"
    path.write_text(text + "\n")
    assert config.load(path) == dataclasses.replace(config.Config.from_dict(chosen), source=str(path))
    loaded = config.load(path)
    for name, keys in chosen.items():
        for k, v in keys.items():
            assert getattr(getattr(loaded, name), k) == v


@pytest.mark.parametrize("text, match", [
    ("[mpi]\nprocesses_per_node = -3\n", r"\[mpi\] processes_per_node must be 1 to 256, not -3"),
    ("[mpi]\nprocesses_per_node = 0\n", r"processes_per_node must be 1 to 256, not 0"),
    ("[mpi]\nprocesses_per_node = 100000\n", r"processes_per_node must be 1 to 256, not 100000"),
    ("[mpi]\nmax_processes_per_node = 0\n", r"max_processes_per_node must be at least 1"),
    ("[local]\nmax_nodes = -1\n", r"\[local\] max_nodes must be at least 1"),
    ("[ssh]\nport = 0\n", r"\[ssh\] port must be 1 to 65535"),
    ("[ssh]\nconnect_timeout = nan\n", r"connect_timeout must be a finite number"),
    ("[aws]\nmax_attempts = 0\n", r"\[aws\] max_attempts must be 1 to 100"),
    ("[mpi]\ntimeout = -1\n", r"\[mpi\] timeout must be at least 0"),
    ('[mpi]\nremote_dir = "my dir"\n', r"remote_dir 'my dir' contains ' '"),
    ('[mpi]\nremote_dir = ".c$(touch x)"\n', r"remote_dir '.c\$\(touch x\)' contains '\$'"),
])
def test_numbers_out_of_range_are_refused_with_the_key(tmp_path, text, match):
    path = tmp_path / "ccdsl.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        config.load(path)
    assert str(path) in info.value.message


def test_the_processes_per_node_cap_can_be_raised_on_purpose(tmp_path):
    path = tmp_path / "ccdsl.toml"
    path.write_text("[mpi]\nprocesses_per_node = 1000\n")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert "max_processes_per_node" in info.value.hint
    path.write_text("[mpi]\nprocesses_per_node = 1000\nmax_processes_per_node = 1024\n")
    assert config.load(path).mpi.processes_per_node == 1000
    with pytest.raises(ConfigError, match="contract 'big': \\[mpi\\] processes_per_node must be 1 to 256"):
        config.Config().replace("contract 'big'", mpi={"processes_per_node": 100000})


@pytest.mark.parametrize("text, target", [
    ("auto", None), ("ubuntu@bastion.example.org", ("ubuntu", "bastion.example.org", 22)),
    ("root@203.0.113.9:2222", ("root", "203.0.113.9", 2222)), ("a@[2001:db8::7]:23", ("a", "2001:db8::7", 23))])
def test_jump_host_is_auto_or_user_at_host_port(text, target):
    assert config.jump_target(text) == target


@pytest.mark.parametrize("text", ["bastion.example.org", "u@host:0", "u@host:99999", "u@host:ssh", "@host",
                                  "u@", "u@ho st"])
def test_a_jump_host_that_is_not_user_at_host_is_refused(text):
    with pytest.raises(ConfigError, match="neither 'auto' nor 'user@host:port'"):
        config.Config.from_dict({"aws": {"jump_host": text}}, "ccdsl.toml")


def test_auto_jump_needs_private_nodes():
    with pytest.raises(ConfigError, match="private is false"):
        config.Config.from_dict({"aws": {"jump_host": "auto"}}, "ccdsl.toml")
    assert config.Config.from_dict({"aws": {"jump_host": "auto", "private": True}}).aws.jump_host == "auto"


def test_the_pool_routes_every_node_as_jump_host_says():
    """``[aws] jump_host`` reaches the transport as ``SshOptions.jump``; the pool alone turns it into hops."""
    pytest.importorskip("paramiko")
    from ccdsl.executor import mpi, ssh
    from ccdsl.executor.model import Node

    def node(role, index):
        return Node(index=index, role=role, instance_id=f"i-{role}{index}", instance_type="t3.micro")

    manager, w0, w1 = node("manager", 0), node("worker", 0), node("worker", 1)
    cfg = config.Config.from_dict({"aws": {"private": True, "jump_host": "auto"}})
    _, auto = mpi.options_from_config(cfg, known_hosts="/nonexistent/known_hosts")
    assert [ssh.Connections(auto, members=[w0, w1]).route(n) for n in (w0, w1)] == [None, w0]
    assert [ssh.Connections(auto, manager, members=[w0, w1]).route(n) for n in (manager, w0)] == [None, manager]
    cfg = cfg.replace(aws={"jump_host": "ec2-user@bastion.example.org:2222", "jump_key_path": "/k.pem"})
    _, behind = mpi.options_from_config(cfg, known_hosts="/nonexistent/known_hosts")
    bastion = behind.jump.bastion
    assert (bastion.user, bastion.address, bastion.port, bastion.key_path) == (
        "ec2-user", "bastion.example.org", 2222, "/k.pem")
    pool = ssh.Connections(behind, manager, members=[w0, w1])
    assert [pool.route(n) for n in (manager, w0, w1, bastion)] == [bastion, bastion, bastion, None]
    _, direct = mpi.options_from_config(config.Config(), known_hosts="/nonexistent/known_hosts")
    assert direct.jump is None and ssh.Connections(direct, members=[w0, w1]).route(w1) is None
    _, hosts = mpi.options_from_config(cfg, known_hosts="/nonexistent/ssh-hosts")  # the ssh provider's hosts
    assert hosts.jump is None
