"""Executor inputs a user can get wrong end in ccdsl errors with file and line, never a traceback (issue 8,
item 8): a damaged ``ssh_hosts.json`` and ``ccdsl run H -- python /bin/ls``."""

from __future__ import annotations

import pytest

import ccdsl
from ccdsl.cli import main
from ccdsl.errors import ExecutionError, ProviderError
from ccdsl.executor.providers.ssh import Claims
from fixtures_executor import data_dir


@pytest.mark.parametrize("text,where", [
    ("[]", ":1: expected an object of host claims, found list"),
    ('{"gpu01": 1}', "the claim of host 'gpu01'"),
    ('{"gpu01": {"role": "worker"}}', "the claim of host 'gpu01'"),
    ('{\n  "gpu01": {"handle": "x",\n', ":3: not valid JSON"),
    ("null", ":1: expected an object of host claims, found NoneType"),
])
def test_damaged_ssh_host_claims_name_the_file(tmp_path, text: str, where: str) -> None:
    (tmp_path / "ssh_hosts.json").write_text(text)
    with pytest.raises(ProviderError) as e:
        Claims(tmp_path).read()
    assert f"{tmp_path / 'ssh_hosts.json'}{where}" in e.value.message or where in e.value.message
    assert "move it away" in e.value.hint


def test_running_a_binary_as_a_script_is_an_error_with_its_line(data_dir, capsys, tmp_path) -> None:
    pytest.importorskip("mpi4py")
    c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=1))
    try:
        with pytest.raises(ExecutionError, match=r"/bin/ls:\d+: not a Python script"):
            c.run_script("/bin/ls")
        latin = tmp_path / "latin.py"
        latin.write_bytes(b"print('ok')\n# caf\xe9\n")
        with pytest.raises(ExecutionError, match=r"latin.py:2: not a Python script: not UTF-8 text \(byte 0xe9\)"):
            c.run_script(str(latin))
        assert main(["run", c.handle, "--", "python", "/bin/ls"]) != 0
        err = capsys.readouterr().err
        assert "not a Python script" in err and "Traceback" not in err
    finally:
        ccdsl.terminate(c)
