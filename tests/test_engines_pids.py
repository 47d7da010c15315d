"""``terminate`` kills the engines' processes only while their pids still name them (issue 22 item 4): engines.json
keeps pids, and after a reboot or once the engines are gone the same numbers may be someone else's processes.
(That real engines are still stopped is test_engines.py's.)"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ccdsl.cli import main
from ccdsl.executor import engines
from fixtures_executor import data_dir

__all__ = ["data_dir"]


@pytest.mark.parametrize("recorded", ["none", "another-start", "another-boot"])
def test_terminate_leaves_a_process_whose_pid_engines_json_names(data_dir, tmp_path, capsys, recorded):
    contract = tmp_path / "c.ccc"
    contract.write_text("c = @cluster(node_provider => Local, node_count => 1)\n")
    assert main(["deploy", str(contract), "--quiet"]) == 0
    handle = capsys.readouterr().out.strip()
    other = subprocess.Popen(["sleep", "1000"], start_new_session=True)  # `setsid sleep 1000`: its own group
    try:
        start = Path(f"/proc/{other.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]  # field 22
        cmdline = Path(f"/proc/{other.pid}/cmdline").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        assert engines.identity(other.pid) == [start, cmdline, boot] if hasattr(engines, "identity") else True
        saved = {"mode": "local", "size": 1, "controller_pid": other.pid, "mpiexec_pid": other.pid,
                 "log": str(tmp_path / "engines.log"), "started": 0.0}  # as a reboot that reused the pids leaves it
        if recorded == "another-start":
            saved["identity"] = {str(other.pid): [str(int(start) - 1), cmdline, boot]}
        elif recorded == "another-boot":
            saved["identity"] = {str(other.pid): [start, cmdline, "0" * 32]}
        (engines.state_dir(handle, create=True) / "engines.json").write_text(json.dumps(saved))
        assert main(["terminate", handle]) == 0
        assert other.poll() is None  # still running: not the engines' process
    finally:
        other.kill()
        other.wait()


def test_a_command_line_recorded_before_exec_set_it_still_names_the_process():
    """Right after ``Popen``, /proc/PID/cmdline often reads empty (the new program's arguments are not set up yet):
    the identity recorded then names the process once its command line reads in full; start time and boot decide."""
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    running = ["1234", "mpiexec.gforker\x00-n\x002\x00", boot]
    assert engines.same_process(["1234", "", boot], running)
    assert engines.same_process(running, ["1234", "", boot])  # exiting: its memory, command line included, is gone
    assert engines.same_process(running, running)
    assert not engines.same_process(["1234", "", boot], ["1235", "mpiexec.gforker\x00", boot])  # a reused pid
    assert not engines.same_process(["1234", "", boot], ["1234", "x", "another-boot"])
    assert not engines.same_process(running, ["1234", "sleep\x00", boot])
