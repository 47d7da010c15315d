"""A bad state database: one line that says what to do, exit 2, for every command, ``terminate`` included
(issue 8, item 7).  Corrupt file, a directory in its place, a read-only mount, a held write lock, a data dir
under a file.  A damaged database is moved aside and kept, never overwritten."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

HANDLE = "AAAAAAAAAAAAAAA"
COMMANDS = [["clusters"], ["terminate", HANDLE]]


def ccdsl(data: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CCDSL_DATA_DIR": data}
    env.pop("CCDSL_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "ccdsl", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def assert_one_line_exit_2(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def fresh(tmp_path) -> str:
    data = str(tmp_path / "data")
    assert ccdsl(data, "clusters").returncode == 0  # creates the database
    return data


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
@pytest.mark.parametrize("damage", ["garbage", "overwritten-pages"])
def test_damaged_database_is_moved_aside_and_kept(tmp_path, args, damage):
    data = fresh(tmp_path)
    db = os.path.join(data, "state.db")
    if damage == "garbage":
        blob = os.urandom(8192)
    else:  # a real database whose pages after the header were overwritten
        subprocess.run([sys.executable, "-c", f"import sqlite3; d = sqlite3.connect({db!r}); "
                        "d.execute('PRAGMA wal_checkpoint(TRUNCATE)'); d.close()"], check=True)
        blob = Path(db).read_bytes()
        blob = blob[:100] + b"\xff" * (len(blob) - 100)
    with open(db, "wb") as f:
        f.write(blob)
    line = assert_one_line_exit_2(ccdsl(data, *args), "damaged", "moved to state.db.damaged-", "(kept)")
    kept = [n for n in os.listdir(data) if n.startswith("state.db.damaged-") and not n.endswith(("-wal", "-shm"))]
    assert len(kept) == 1 and kept[0] in line
    assert Path(data, kept[0]).read_bytes() == blob  # kept as it was
    assert ccdsl(data, "clusters").returncode == 0  # the next command starts a new one
    with open(db, "wb") as f:  # damaged again the same second: the first copy is not overwritten
        f.write(b"x" * 4096)
    assert_one_line_exit_2(ccdsl(data, *args), "damaged")
    assert Path(data, kept[0]).read_bytes() == blob
    assert len([n for n in os.listdir(data) if n.startswith("state.db.damaged-") and "-wal" not in n
                and "-shm" not in n]) == 2


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_directory_in_place_of_the_database(tmp_path, args):
    data = tmp_path / "data"
    (data / "state.db").mkdir(parents=True)
    assert_one_line_exit_2(ccdsl(str(data), *args), "is a directory", "CCDSL_DATA_DIR")
    assert (data / "state.db").is_dir()


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_data_dir_under_a_file(tmp_path, args):
    (tmp_path / "afile").write_text("x")
    assert_one_line_exit_2(ccdsl(str(tmp_path / "afile" / "data"), *args), f"{tmp_path / 'afile'} is a file")


@pytest.fixture()
def read_only_mount(tmp_path):
    """A tmpfs mounted read-only (root only): the real thing, not a chmod that root ignores."""
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_read_only_mount(read_only_mount, args):
    data = str(read_only_mount / "data")
    assert ccdsl(data, "clusters").returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_mount)], check=True)
    assert_one_line_exit_2(ccdsl(data, *args), "read-only", "writable")
    assert_one_line_exit_2(ccdsl(str(read_only_mount / "other"), *args), "cannot be written", "writable")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_held_write_lock_is_reported_promptly_with_its_holder(tmp_path, args):
    data = fresh(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"db = sqlite3.connect({os.path.join(data, 'state.db')!r}, isolation_level=None)\n"
        "db.execute('PRAGMA locking_mode = EXCLUSIVE'); db.execute('BEGIN EXCLUSIVE')\n"
        "db.execute(\"INSERT INTO counters VALUES ('held', 1)\")\n"
        "print('held', flush=True); time.sleep(120)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        start = time.monotonic()
        proc = ccdsl(data, *args)
        waited = time.monotonic() - start
        assert_one_line_exit_2(proc, "is locked by process", str(holder.pid), "wait for it")
        print(f"reported after {waited:.1f} s")  # the wait itself is a setting (state.BUSY_TIMEOUT), not asserted
    finally:
        holder.kill()
        holder.wait()
    assert ccdsl(data, *args).returncode in (0, 1)  # usable again once the holder is gone

