"""Cluster records in a SQLite database in the user data dir.

Why SQLite: several ``ccdsl`` processes (a notebook and a terminal, say) may deploy, list and terminate clusters at
the same time; SQLite in WAL mode with ``BEGIN IMMEDIATE`` write transactions and a busy timeout serializes them
without a server.  The cloud stays the source of truth where it has one (see ``deploy.reconcile``); these records
are what ccdsl knows locally: clusters, their nodes, the global worker-id counter (like process ids, never reused)
and a journal of deploy phases written *before* each cloud call, so a crashed deploy can be found and cleaned up.

The directory is ``platformdirs.user_data_dir("ccdsl")`` unless ``CCDSL_DATA_DIR`` says otherwise (tests use temporary
directories).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from ccdsl.errors import ClusterError, StateError
from ccdsl.executor.model import Node

T = TypeVar("T")

# Cluster statuses.  "deploying" while a deploy runs; "failed" when a deploy stopped half way and could not clean
# up (``terminate`` finishes the job); "interrupted" = nodes stopped; "terminated" records are kept as history.
DEPLOYING, RUNNING, INTERRUPTED, FAILED, TERMINATED = "deploying", "running", "interrupted", "failed", "terminated"
LIVE_STATUSES = (DEPLOYING, RUNNING, INTERRUPTED, FAILED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clusters (
    handle TEXT PRIMARY KEY,
    contract TEXT NOT NULL,
    provider TEXT NOT NULL,
    cluster_type TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    owner_pid INTEGER,
    owner_host TEXT,
    settings TEXT NOT NULL DEFAULT '{}',
    note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS nodes (
    handle TEXT NOT NULL REFERENCES clusters(handle) ON DELETE CASCADE,
    role TEXT NOT NULL,
    idx INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (handle, role, idx)
);
CREATE TABLE IF NOT EXISTS workers (
    worker_id INTEGER PRIMARY KEY,
    handle TEXT NOT NULL REFERENCES clusters(handle) ON DELETE CASCADE,
    slot INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    handle TEXT NOT NULL,
    phase TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_handle ON journal(handle);
CREATE TABLE IF NOT EXISTS prices (
    handle TEXT NOT NULL REFERENCES clusters(handle) ON DELETE CASCADE,
    role TEXT NOT NULL,
    instance_type TEXT NOT NULL,
    node_count INTEGER NOT NULL,
    price_per_node_hour REAL,
    source TEXT NOT NULL DEFAULT '',
    price_date TEXT NOT NULL DEFAULT '',
    recorded_at REAL NOT NULL,
    market TEXT,
    on_demand_price_per_node_hour REAL,
    price_zone TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (handle, role)
);
CREATE TABLE IF NOT EXISTS status_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    handle TEXT NOT NULL,
    status TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS status_log_handle ON status_log(handle);
"""

# Seconds a write waits for another process's write transaction.  ccdsl's own transactions take milliseconds, so a
# lock held longer is something else (a crashed tool, a sqlite3 shell): report it, with its holder, instead of
# making every command hang.
BUSY_TIMEOUT = 5.0

# Worker ids start at 2, as the seed's Distributed.jl pids do (1 is the user's own process).
FIRST_WORKER_ID = 2


def data_dir() -> Path:
    """Where ccdsl keeps its database and private keys (created with mode 0700)."""
    from ccdsl import datadir

    try:
        return datadir.ensure()
    except OSError as exc:
        raise _os_error(datadir.location(), exc) from None


@dataclass(frozen=True)
class ClusterRecord:
    """What ccdsl remembers about one cluster.  ``settings`` holds what later commands need to reach the provider
    again from another process (region, endpoint, user, key path, processes per node, ...)."""

    handle: str
    contract: str
    provider: str
    cluster_type: str
    status: str
    created_at: float
    updated_at: float
    owner_pid: int | None = None
    owner_host: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES


@dataclass(frozen=True)
class RolePrice:
    """The price of one role's nodes as the resolution gave it at deploy time.  It is a copy, never a reference
    into the catalog: a later catalog refresh (or a type that left the catalog) cannot change what a cluster
    cost.  ``price_per_node_hour`` is None when nobody knew the price (a deploy from a bare Plan).

    ``market`` is what the role was launched as ("spot" or "on-demand"; '' when not recorded: a record older than
    spot pricing, or a provider without markets).  For spot, the price, source and date are the spot price the
    resolution gave, ``zone`` is the zone it is the price of, and ``on_demand_price_per_node_hour`` the on-demand
    price beside it (None: unknown)."""

    role: str
    instance_type: str
    node_count: int
    price_per_node_hour: float | None
    source: str = ""
    date: str = ""
    recorded_at: float = 0.0
    market: str = ""
    on_demand_price_per_node_hour: float | None = None
    zone: str = ""


@dataclass(frozen=True)
class StatusChange:
    """The cluster entered ``status`` at ``at`` (one row per change: the time spent in each state)."""

    status: str
    at: float


@dataclass(frozen=True)
class JournalEntry:
    handle: str
    phase: str
    detail: Mapping[str, Any]
    at: float


def owner_alive(record: ClusterRecord) -> bool:
    """Is the process that owns this record (a deploy in progress) still alive on this machine?"""
    if record.owner_pid is None or record.owner_host != socket.gethostname():
        return False
    try:
        os.kill(record.owner_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


LIFECYCLE_VERBS = ("interrupt", "resume", "restart", "terminate")


def pending_verb(state: State, handle: str) -> str | None:
    """The lifecycle verb whose intent the journal holds without its ``<verb>-done``: one in progress, or one
    whose process died (see ``Cluster._intent``)."""
    for entry in reversed(state.journal_of(handle)):
        if entry.phase in LIFECYCLE_VERBS:
            return entry.phase
        if entry.phase.endswith("-done") or entry.phase.endswith("-interrupted"):
            return None
    return None


def node_to_json(node: Node) -> str:
    d = asdict(node)
    d["extra"] = dict(node.extra)
    return json.dumps(d, sort_keys=True)


_NODE_FIELDS = {f.name: f.type for f in fields(Node)}
_NODE_REQUIRED = {"index": int, "role": str, "instance_id": str, "instance_type": str}


def node_from_json(text: str, handle: str = "?") -> Node:
    """A stored node; keys this version does not know are ignored (a newer ccdsl may add some).  A row that is not
    a node is a :class:`StateError` naming the cluster: the commands that read it end with one line, and
    ``terminate --forget`` still removes the record."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k in _NODE_FIELDS}
        if all(isinstance(data.get(k), t) and not isinstance(data.get(k), bool) for k, t in _NODE_REQUIRED.items()) \
                and isinstance(data.get("extra", {}), dict):
            return Node(**data)
    raise _damaged_row(handle, "a node")


def _damaged_row(handle: str, what: str) -> StateError:
    return StateError(f"the record of cluster {handle} in ccdsl's state database is damaged ({what} cannot be read); "
                      f"'ccdsl terminate --forget {handle}' removes the record (check its provider for what it may "
                      "still have)")


class State:
    """The state database.  Every method is one short transaction; connections are opened per call so the object is
    safe to share between threads and cheap to create in every process."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.path = Path(path) if path is not None else data_dir() / "state.db"
        self.busy_timeout = busy_timeout
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            from ccdsl import datadir

            datadir.create_private_file(self.path)  # 0600 before SQLite creates it (its -wal and -shm files follow)
        except OSError as exc:
            raise _os_error(self.path.parent, exc) from None
        _patiently(self.path, self._create_tables)

    def _create_tables(self) -> None:
        with _writer(self.path):
            db = self._connect()
            try:
                db.executescript(_SCHEMA)  # idempotent DDL; executescript manages its own transaction
                _add_columns(db)
            finally:
                db.close()

    # -- plumbing ---------------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        db.row_factory = sqlite3.Row
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken with BEGIN IMMEDIATE: the write lock is acquired up front, so two processes
        never both read-then-write the same counter (no lost updates, no deadlock on lock upgrade).  This process's
        threads take their turn first (``_writer``)."""
        with _writer(self.path):
            db = self._connect()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            finally:
                db.close()

    # -- clusters ---------------------------------------------------------------------------------------------
    def add_cluster(self, record: ClusterRecord) -> None:
        with self._tx() as db:
            try:
                db.execute(
                    "INSERT INTO clusters (handle, contract, provider, cluster_type, status, created_at, updated_at,"
                    " owner_pid, owner_host, settings, note) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (record.handle, record.contract, record.provider, record.cluster_type, record.status,
                     record.created_at, record.updated_at, record.owner_pid, record.owner_host,
                     json.dumps(dict(record.settings), sort_keys=True), record.note))
            except sqlite3.IntegrityError:
                raise ClusterError(f"a cluster with handle {record.handle} already exists") from None
            db.execute("INSERT INTO status_log (handle, status, at) VALUES (?,?,?)",
                       (record.handle, record.status, record.created_at))

    def forget(self, handle: str) -> bool:
        """Delete every record of ``handle`` (cluster, nodes, workers, prices, journal); False if there was none.
        Used for a deploy that never reached a cloud, and by ``ccdsl terminate --forget``."""
        with self._tx() as db:
            found = db.execute("DELETE FROM clusters WHERE handle = ?", (handle,)).rowcount > 0
            for table in ("nodes", "workers", "prices", "journal", "status_log"):
                db.execute(f"DELETE FROM {table} WHERE handle = ?", (handle,))  # fixed names
        return found

    def get_cluster(self, handle: str, *, damaged_ok: bool = False) -> ClusterRecord | None:
        """The record of ``handle``; ``damaged_ok`` (for ``terminate --forget``): settings that cannot be read
        become empty instead of a :class:`StateError`."""
        db = self._connect()
        try:
            row = db.execute("SELECT * FROM clusters WHERE handle = ?", (handle,)).fetchone()
        finally:
            db.close()
        return _record(row, damaged_ok=damaged_ok) if row is not None else None

    def list_clusters(self, *, live_only: bool = True) -> list[ClusterRecord]:
        db = self._connect()
        try:
            rows = db.execute("SELECT * FROM clusters ORDER BY created_at, handle").fetchall()
        finally:
            db.close()
        records = [_record(r) for r in rows]
        return [r for r in records if r.live] if live_only else records

    def update_cluster(self, handle: str, **changes: Any) -> ClusterRecord:
        """Change fields of a cluster record (``settings`` is merged, not replaced)."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM clusters WHERE handle = ?", (handle,)).fetchone()
            if row is None:
                raise ClusterError(f"no cluster with handle {handle}")
            record = _record(row)
            if "settings" in changes:
                changes["settings"] = {**record.settings, **changes["settings"]}
            old_status = record.status
            record = replace(record, **changes, updated_at=time.time())
            if record.status != old_status:  # the time spent in each state is what costs are estimated from
                db.execute("INSERT INTO status_log (handle, status, at) VALUES (?,?,?)",
                           (handle, record.status, record.updated_at))
            db.execute(
                "UPDATE clusters SET contract=?, provider=?, cluster_type=?, status=?, updated_at=?, owner_pid=?,"
                " owner_host=?, settings=?, note=? WHERE handle=?",
                (record.contract, record.provider, record.cluster_type, record.status, record.updated_at,
                 record.owner_pid, record.owner_host, json.dumps(dict(record.settings), sort_keys=True),
                 record.note, handle))
        return record

    # -- nodes ------------------------------------------------------------------------------------------------
    def set_nodes(self, handle: str, nodes: Sequence[Node], *, replace_role: str | None = None) -> None:
        """Store nodes (upsert by role and index).  With ``replace_role``, that role's old nodes go first."""
        with self._tx() as db:
            if replace_role is not None:
                db.execute("DELETE FROM nodes WHERE handle = ? AND role = ?", (handle, replace_role))
            for n in nodes:
                db.execute("INSERT OR REPLACE INTO nodes (handle, role, idx, data) VALUES (?,?,?,?)",
                           (handle, n.role, n.index, node_to_json(n)))

    def clear_nodes(self, handle: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM nodes WHERE handle = ?", (handle,))

    def nodes(self, handle: str) -> list[Node]:
        """Nodes of a cluster, manager first, then by index."""
        db = self._connect()
        try:
            rows = db.execute("SELECT data FROM nodes WHERE handle = ? ORDER BY role != 'manager', role, idx",
                              (handle,)).fetchall()
        finally:
            db.close()
        return [node_from_json(r["data"], handle) for r in rows]

    # -- workers ----------------------------------------------------------------------------------------------
    def new_workers(self, handle: str, count: int) -> list[int]:
        """Replace the cluster's workers by ``count`` fresh ids from the global counter (never reused)."""
        with self._tx() as db:
            row = db.execute("SELECT value FROM counters WHERE name = 'worker'").fetchone()
            first = row["value"] if row is not None else FIRST_WORKER_ID
            ids = list(range(first, first + count))
            db.execute("INSERT OR REPLACE INTO counters (name, value) VALUES ('worker', ?)", (first + count,))
            db.execute("DELETE FROM workers WHERE handle = ?", (handle,))
            db.executemany("INSERT INTO workers (worker_id, handle, slot) VALUES (?,?,?)",
                           [(w, handle, i) for i, w in enumerate(ids)])
        return ids

    def clear_workers(self, handle: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM workers WHERE handle = ?", (handle,))

    def workers(self, handle: str) -> list[int]:
        db = self._connect()
        try:
            rows = db.execute("SELECT worker_id FROM workers WHERE handle = ? ORDER BY slot", (handle,)).fetchall()
        finally:
            db.close()
        return [r["worker_id"] for r in rows]

    # -- costs ------------------------------------------------------------------------------------------------
    def set_prices(self, handle: str, prices: Sequence[RolePrice]) -> None:
        """Record the price of each role (replacing earlier ones: a failover to another plan changes them)."""
        with self._tx() as db:
            db.execute("DELETE FROM prices WHERE handle = ?", (handle,))
            db.executemany(
                "INSERT INTO prices (handle, role, instance_type, node_count, price_per_node_hour, source, price_date,"
                " recorded_at, market, on_demand_price_per_node_hour, price_zone) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(handle, p.role, p.instance_type, p.node_count, p.price_per_node_hour, p.source, p.date,
                  p.recorded_at or time.time(), p.market or None, p.on_demand_price_per_node_hour, p.zone)
                 for p in prices])

    def prices(self, handle: str) -> list[RolePrice]:
        db = self._connect()
        try:
            rows = db.execute("SELECT * FROM prices WHERE handle = ? ORDER BY role != 'manager', role",
                              (handle,)).fetchall()
        finally:
            db.close()
        return [RolePrice(r["role"], r["instance_type"], r["node_count"], r["price_per_node_hour"], r["source"],
                          r["price_date"], r["recorded_at"], r["market"] or "", r["on_demand_price_per_node_hour"],
                          r["price_zone"]) for r in rows]

    def status_history(self, handle: str) -> list[StatusChange]:
        """Every status the cluster entered, oldest first (empty for records older than this log)."""
        db = self._connect()
        try:
            rows = db.execute("SELECT status, at FROM status_log WHERE handle = ? ORDER BY at, id",
                              (handle,)).fetchall()
        finally:
            db.close()
        return [StatusChange(r["status"], r["at"]) for r in rows]

    # -- journal ----------------------------------------------------------------------------------------------
    def journal(self, handle: str, phase: str, **detail: Any) -> None:
        """Record that ``phase`` is about to happen (or happened).  Deploy writes these BEFORE each cloud call."""
        with self._tx() as db:
            db.execute("INSERT INTO journal (handle, phase, detail, at) VALUES (?,?,?,?)",
                       (handle, phase, json.dumps(detail, sort_keys=True, default=str), time.time()))

    def journal_of(self, handle: str) -> list[JournalEntry]:
        db = self._connect()
        try:
            rows = db.execute("SELECT * FROM journal WHERE handle = ? ORDER BY id", (handle,)).fetchall()
        finally:
            db.close()
        return [JournalEntry(r["handle"], r["phase"], json.loads(r["detail"]), r["at"]) for r in rows]


# Columns added after a table was first shipped: a database made by an older ccdsl gets them on first open.
_ADDED_COLUMNS = (("prices", "market", "TEXT"), ("prices", "on_demand_price_per_node_hour", "REAL"),
                  ("prices", "price_zone", "TEXT NOT NULL DEFAULT ''"))


def _add_columns(db: sqlite3.Connection) -> None:
    for table, column, kind in _ADDED_COLUMNS:
        have = {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}  # fixed names
        if column not in have:
            try:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError as exc:  # another process added it in the meantime
                if "duplicate column" not in str(exc).lower():
                    raise


# -- what goes wrong with the database, in one line that says what to do --------------------------------------------
_DAMAGED = ("file is not a database", "malformed", "disk image", "not a database", "file is encrypted")


@contextmanager
def _translated(path: Path) -> Iterator[None]:
    """SQLite and file-system failures of the state database as :class:`StateError`; a damaged database is moved
    aside (kept, never overwritten) so that the next command starts a new one."""
    try:
        yield
    except sqlite3.Error as exc:
        raise _sqlite_error(path, exc) from None


# This process's writers of each database, one at a time: threads queue here instead of in SQLite's busy handler,
# which polls (a thread can lose every poll to the others for the whole busy timeout) and cannot tell this
# process's lock from another process's.
_WRITERS: dict[str, threading.Lock] = {}
_WRITERS_LOCK = threading.Lock()


@contextmanager
def _writer(path: Path) -> Iterator[None]:
    key = os.path.realpath(path)
    with _WRITERS_LOCK:
        lock = _WRITERS.setdefault(key, threading.Lock())
    with lock:
        yield


# How many calls of this process use each database right now: a 'database is locked' met while another one runs
# may be this process's own lock (a checkpoint when a connection closes, a write), which is no one to report.
_ACTIVE: dict[str, int] = {}


def _patiently(path: Path, fn: Callable[[], T]) -> T:
    """``fn()`` (one transaction), run again when the database was locked while another call of this process was
    using it and no other process has it open: that lock is this process's own, and ends soon.  Any other lock is
    reported, with the processes that have the database open (``_sqlite_error``)."""
    key = os.path.realpath(path)
    with _WRITERS_LOCK:
        _ACTIVE[key] = _ACTIVE.get(key, 0) + 1
    try:
        with _translated(path):
            while True:
                try:
                    return fn()
                except sqlite3.OperationalError as exc:
                    lowered = str(exc).lower()
                    with _WRITERS_LOCK:
                        ours = _ACTIVE[key] > 1
                    if not (ours and ("locked" in lowered or "busy" in lowered)) or _holders(path):
                        raise  # not a lock, or one another process may hold: reported with its name
                time.sleep(0.05)  # SQLite may answer at once (no busy wait when it sees a deadlock): no spinning
    finally:
        with _WRITERS_LOCK:
            _ACTIVE[key] -= 1


def _guarded(method: Any) -> Any:
    import functools

    @functools.wraps(method)
    def call(self: State, *args: Any, **kwargs: Any) -> Any:
        return _patiently(self.path, lambda: method(self, *args, **kwargs))  # each method is one transaction

    return call


for _name, _method in list(vars(State).items()):
    if callable(_method) and not _name.startswith("_"):
        setattr(State, _name, _guarded(_method))


def _sqlite_error(path: Path, exc: sqlite3.Error) -> StateError:
    text = str(exc)
    lowered = text.lower()
    where = f"ccdsl's state database {path}"
    if any(k in lowered for k in _DAMAGED):
        aside = _move_aside(path)
        if aside is None:
            return StateError(f"{where} is damaged ({text}) and could not be moved aside; move it away yourself "
                              "(keep it for inspection) and run the command again")
        return StateError(f"{where} is damaged ({text}); it was moved to {aside.name} (kept) and the next command "
                          "starts a new one, in which 'ccdsl clusters' finds your clusters again by their cloud tags")
    if "locked" in lowered or "busy" in lowered:
        return StateError(f"{where} is locked by {_holder(path)}; wait for it to finish, or end it, and run the "
                          "command again")
    if path.is_dir():
        return StateError(f"{where} is a directory, not a database; move it away, or set CCDSL_DATA_DIR to "
                          "another directory")
    if "readonly" in lowered or "read-only" in lowered or _read_only(path.parent):
        return StateError(f"{where} cannot be written ({text}): its directory is read-only; make it writable, or set "
                          "CCDSL_DATA_DIR to a writable directory")
    return StateError(f"{where} cannot be used ({text}); check the file and its directory, or set CCDSL_DATA_DIR to "
                      "another directory")


def _os_error(directory: Path, exc: OSError) -> StateError:
    import errno

    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, (NotADirectoryError, FileExistsError)):
        blocker = next((p for p in [directory, *directory.parents] if p.exists() and not p.is_dir()), directory)
        return StateError(f"ccdsl's data dir {directory} cannot be created: {blocker} is a file, not a directory; "
                          "move it away, or set CCDSL_DATA_DIR to a directory")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StateError(f"ccdsl's data dir {directory} cannot be written ({reason}); make it writable, or set "
                          "CCDSL_DATA_DIR to a writable directory")
    return StateError(f"ccdsl's data dir {directory} cannot be used ({reason}); set CCDSL_DATA_DIR to a writable "
                      "directory")


def _read_only(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY) or not os.access(directory, os.W_OK)
    except OSError:
        return False


def _move_aside(path: Path) -> Path | None:
    """Rename the damaged database (and its -wal/-shm files) to ``state.db.damaged-<time>[-n]``; never overwrite."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for n in range(100):
        aside = path.with_name(f"{path.name}.damaged-{stamp}" + (f"-{n}" if n else ""))
        if not any(os.path.lexists(f"{aside}{suffix}") for suffix in ("", "-wal", "-shm")):
            break
    else:
        return None
    try:
        for suffix in ("-wal", "-shm", ""):  # the database last: its name is what marks the move as done
            if os.path.lexists(f"{path}{suffix}"):
                os.rename(f"{path}{suffix}", f"{aside}{suffix}")
    except OSError:
        return None
    return aside


def _holder(path: Path) -> str:
    """The processes that have the database open (Linux /proc), as 'process 123 (sqlite3 state.db)'; else a
    general phrase.  Only processes of this user are visible, which are the ones that can hold ccdsl's lock."""
    found = _holders(path)
    return ", ".join(found[:3]) if found else "another process"


def _holders(path: Path) -> list[str]:
    """Every other process (not this one) that has the database open, as 'process 123 (its command line)'."""
    names = {os.path.realpath(f"{path}{suffix}") for suffix in ("", "-wal", "-shm")}
    found: list[str] = []
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
    except OSError:
        return found
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if not any(os.readlink(f"/proc/{pid}/fd/{fd}") in names for fd in fds):
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = " ".join(f.read().replace(b"\0", b" ").decode(errors="replace").split())
        except OSError:
            continue
        found.append(f"process {pid} ({cmd[:80] + ('…' if len(cmd) > 80 else '')})")
    return found


def _record(row: sqlite3.Row, *, damaged_ok: bool = False) -> ClusterRecord:
    try:
        settings = json.loads(row["settings"])
    except (ValueError, TypeError, RecursionError):
        settings = None
    if not isinstance(settings, dict):
        if not damaged_ok:
            raise _damaged_row(row["handle"], "its settings")
        settings = {}
    return ClusterRecord(
        handle=row["handle"], contract=row["contract"], provider=row["provider"], cluster_type=row["cluster_type"],
        status=row["status"], created_at=row["created_at"], updated_at=row["updated_at"],
        owner_pid=row["owner_pid"], owner_host=row["owner_host"], settings=settings,
        note=row["note"])
