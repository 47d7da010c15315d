"""User catalogs: the user's own rows (on-premise hosts, corrected or refreshed cloud rows) in CSV or TOML.

A user file has the shipped catalog's columns; only ``provider``, ``instance_type``, ``vcpus`` and ``memory_gib``
are required (plus ``region`` and ``price_per_hour`` for cloud providers), the rest get the defaults below.
Symbols are checked against the taxonomy and stored as its labels, so ``cpu_microarchitecture = "zen4"`` becomes
``"Zen 4"`` and a typo fails with a did-you-mean instead of silently never matching a contract.  Every error names
the file, the line and the column.

TOML layout::

    [defaults]            # optional, merged into every instance
    provider = "ssh"

    [[instance]]
    instance_type = "node01"
    vcpus = 32
    memory_gib = 128

``max_nodes`` says how many nodes of a row exist.  An ``ssh`` row is one host unless it says otherwise: a row
whose ``instance_type`` is a host *class* (several ``[ssh] hosts`` entries with ``type = "<class>"`` in
ccdsl.toml) sets ``max_nodes`` to the number of those hosts.  Other rows default to NaN (unlimited).
"""

from __future__ import annotations

import datetime
import difflib
import math
import re
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccdsl import taxonomy
from ccdsl.catalog.schema import COLUMN_NAMES, DTYPES
from ccdsl.errors import CatalogError, CatalogRowError

if TYPE_CHECKING:
    import pandas as pd

REQUIRED = ("provider", "instance_type", "vcpus", "memory_gib")
CLOUD_REQUIRED = ("region", "price_per_hour")
ON_PREMISE = ("local", "ssh")

# column -> (taxonomy domain, accepted node levels)
SYMBOLS: dict[str, tuple[str, tuple[str, ...]]] = {
    "provider": ("provider", ("provider",)),
    "cpu_manufacturer": ("processor", ("manufacturer",)),
    "cpu_microarchitecture": ("processor", ("microarchitecture",)),
    "cpu_architecture": ("cpu_architecture", ("isa",)),
    "accelerator_type": ("accelerator_type", ("type",)),
    "accelerator_manufacturer": ("accelerator", ("manufacturer",)),
    "accelerator_architecture": ("accelerator", ("architecture",)),
    "accelerator_model": ("accelerator", ("model",)),
    "storage_type": ("storage_type", ("type",)),
}

# facts a user may not know
_NAN_OK = {"clock_ghz", "network_gbps", "spot_price_per_hour", "price_per_hour", "spot_interruption"}


def _default(column: str, row: dict[str, Any]) -> Any:
    if column == "max_nodes":  # an SSH host exists once; cloud types (and this machine's processes) do not run out
        return 1.0 if row.get("provider") == "ssh" else math.nan
    if column == "family":
        t = str(row["instance_type"])
        return t.split(".", 1)[0] if "." in t else ""
    if column == "cores":
        return row["vcpus"]
    if column == "single_thread":  # a host ccdsl cannot reconfigure: one thread per core only when it has no SMT
        return row["cores"] == row["vcpus"]
    if column == "region":
        return ""
    if column == "price_per_hour":
        return 0.0
    if column == "price_source":  # a price the user wrote; an unknown price has no source
        return "" if math.isnan(row["price_per_hour"]) else "user"
    if column == "spot_price_source":  # likewise for a spot price
        return "" if math.isnan(row.get("spot_price_per_hour", math.nan)) else "user"
    if column == "accelerator_memory_total_gib":
        return row["accelerator_count"] * row["accelerator_memory_gib"]
    if column == "accelerator_memory_usable_gib":  # one figure written: the card's
        return row["accelerator_memory_gib"]
    if column == "efa_interfaces":  # an EFA host has at least one
        return 1 if row.get("efa") is True else 0
    if column == "network_cards":
        return 1
    if column in _NAN_OK:
        return math.nan
    return {"string": "", "int64": 0, "float64": 0.0, "bool": False}[DTYPES[column]]


_INT_MAX = 2**53  # whole-number columns are int64 and compared as float64: exact up to here


def _parse_cell(column: str, value: Any) -> Any:
    """A raw cell (CSV text or TOML value) -> the column's Python type; ValueError with the reason."""
    dtype = DTYPES[column]
    if column == "max_nodes":
        return _max_nodes(value)
    if column == "spot_price_date" and isinstance(value, (datetime.date, datetime.time)):
        value = value.isoformat()  # a TOML date-time written without quotes; checked with the other spot columns
    if dtype == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "1"):
            return True
        if text in ("false", "no", "0"):
            return False
        raise ValueError(f"expected true or false, got {value!r}")
    if dtype == "int64":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"expected a whole number, got {value!r}")
        try:
            n = int(str(value).strip()) if not isinstance(value, (int, float)) else int(value)
        except ValueError:
            raise ValueError(f"expected a whole number, got {value!r}") from None
        if n < 0:
            raise ValueError(f"must not be negative, got {n}")
        if n > _INT_MAX:
            raise ValueError(f"is too large ({value!r}); at most {_INT_MAX}")
        return n
    if dtype == "float64":
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            x = float(str(value).strip()) if not isinstance(value, (int, float)) else float(value)
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
        if math.isnan(x) and column not in _NAN_OK:
            raise ValueError("must be a number, not NaN")
        if x < 0 or math.isinf(x):
            raise ValueError(f"must be a finite number >= 0, got {value!r}")
        return x
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    text = value.strip()
    if column in SYMBOLS and text:
        domain, levels = SYMBOLS[column]
        node = taxonomy.lookup(domain, text)
        if node is None or node.level not in levels:
            close = taxonomy.suggest(domain, text, levels)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            known = ", ".join(n.label for n in taxonomy.nodes(domain, levels)[:12])
            raise ValueError(f"unknown {column.replace('_', ' ')} {text!r}{hint}; known: {known}")
        return node.label
    return text


def _max_nodes(value: Any) -> float:
    """How many nodes of a row exist: a whole number ≥ 1 (stored as float64 so that NaN can mean unlimited)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number of hosts >= 1, got {value!r}")
    try:
        x = float(str(value).strip()) if not isinstance(value, (int, float)) else float(value)
    except ValueError:
        raise ValueError(f"expected a whole number of hosts >= 1, got {value!r}") from None
    if not (x >= 1 and math.isfinite(x) and x.is_integer()):
        raise ValueError(f"expected a whole number of hosts >= 1, got {value!r}")
    return x


def _fill_from_taxonomy(row: dict[str, Any]) -> tuple[str, str] | None:
    """Complete what a more specific symbol implies: a model names its architecture and manufacturer, a
    microarchitecture its manufacturer, an accelerator model its type, a CPU manufacturer its ISA.  Returns
    (column, message) when the row contradicts the taxonomy (an L40S that claims to be Hopper)."""
    # domain, columns by taxonomy level, most specific first
    chains = (("accelerator", (("model", "accelerator_model"), ("architecture", "accelerator_architecture"),
                               ("manufacturer", "accelerator_manufacturer"))),
              ("processor", (("model", "cpu_model"), ("microarchitecture", "cpu_microarchitecture"),
                             ("manufacturer", "cpu_manufacturer"))))
    for domain, levels in chains:
        # the most specific value the taxonomy knows (cpu_model is free text: a home-built host's CPU may not be)
        node = next((n for _, col in levels if row.get(col)
                     for n in [taxonomy.lookup(domain, row[col])] if n is not None), None)
        if node is None:
            continue
        by_level = dict(levels)
        for a in taxonomy.ancestors(node):
            col = by_level.get(a.level)
            if col and not row.get(col):
                row[col] = a.label
            elif col and row[col] != a.label:
                return col, f"{row[col]!r} contradicts {node.label!r}, which is {a.label}"
    if row.get("accelerator_model") and not row.get("accelerator_type"):
        from ccdsl.catalog.facts import ACCELERATORS

        node = taxonomy.lookup("accelerator", row["accelerator_model"])
        kinds = {f.kind for f in ACCELERATORS.values() if node is not None and f.node == node.name}
        if len(kinds) == 1:
            row["accelerator_type"] = kinds.pop()
    if row.get("cpu_manufacturer") and not row.get("cpu_architecture"):
        # Every manufacturer in the taxonomy makes one ISA: Intel/AMD x86_64, AWS Graviton/Apple arm64.
        row["cpu_architecture"] = "arm64" if row["cpu_manufacturer"] in ("AWS", "Apple") else "x86_64"
    return None


def validate_record(raw: dict[str, Any], path: str, line_of: Callable[[str | None], int | None]) -> dict[str, Any]:
    """One user record (column -> raw value) -> a complete, typed catalog row, or :class:`CatalogRowError`."""
    for key in raw:
        if key not in DTYPES:
            close = difflib.get_close_matches(key, COLUMN_NAMES, n=1)
            raise CatalogRowError(f"unknown column{f' (did you mean {close[0]!r}?)' if close else ''}",
                                  path=path, line=line_of(key), column=key)
    row: dict[str, Any] = {}
    for column, value in raw.items():
        if isinstance(value, str) and value.strip() == "":
            if column == "price_per_hour":  # the column is there, the cell empty: offered, price unknown
                row[column] = math.nan
            continue  # empty cell = default
        try:
            row[column] = _parse_cell(column, value)
        except ValueError as exc:
            raise CatalogRowError(str(exc), path=path, line=line_of(column), column=column) from None
    required = REQUIRED + (CLOUD_REQUIRED if row.get("provider") not in ON_PREMISE else ())
    for column in required:
        if column not in row or row[column] in ("",):
            raise CatalogRowError("required value is missing", path=path, line=line_of(column), column=column)
    if row["vcpus"] < 1:
        raise CatalogRowError("must be at least 1", path=path, line=line_of("vcpus"), column="vcpus")
    if row.get("provider") not in ON_PREMISE and row["price_per_hour"] <= 0:  # NaN (unknown) is allowed
        raise CatalogRowError("a cloud row's price must be > 0 (leave the cell empty when it is unknown)",
                              path=path, line=line_of("price_per_hour"), column="price_per_hour")
    if row.get("provider") in ON_PREMISE and math.isnan(row.get("price_per_hour", 0.0)):
        raise CatalogRowError("must be a number, not NaN", path=path, line=line_of("price_per_hour"),
                              column="price_per_hour")
    _check_spot(row, path, line_of)
    conflict = _fill_from_taxonomy(row)
    if conflict is not None:
        raise CatalogRowError(conflict[1], path=path, line=line_of(conflict[0]), column=conflict[0])
    for column in COLUMN_NAMES:
        if column not in row:
            row[column] = _default(column, row)
    if row["cores"] > row["vcpus"]:
        raise CatalogRowError("cores cannot exceed vcpus", path=path, line=line_of("cores"), column="cores")
    return row


def _check_spot(row: dict[str, Any], path: str, line_of: Callable[[str | None], int | None]) -> None:
    """The spot columns a user may write by hand, checked and completed: ``spot_zones`` is 'ZONE=PRICE ...',
    cheapest first, and names the cheapest zone's price and zone (filled in when only the zones are given);
    ``spot_interruption`` is a fraction in [0, 1]; a spot price is > 0; a zone, date or source needs a price."""
    from ccdsl.catalog import spot

    def fail(column: str, message: str) -> CatalogRowError:
        return CatalogRowError(message, path=path, line=line_of(column), column=column)

    price = row.get("spot_price_per_hour", math.nan)
    if price == 0:
        raise fail("spot_price_per_hour", "a spot price must be > 0 (leave the cell empty when it is unknown)")
    if row.get("spot_interruption", 0.0) > 1:
        raise fail("spot_interruption", f"is a fraction of instances interrupted per month, from 0 to 1 (0.05 for "
                                        f"<5%, 1.0 for >20%), got {row['spot_interruption']!r}")
    if row.get("spot_zones"):
        try:
            zones = spot.parse_zones(row["spot_zones"])
        except ValueError as exc:
            raise fail("spot_zones", str(exc)) from None
        best_zone, best_price = zones[0]
        if math.isnan(price):
            row["spot_price_per_hour"] = price = best_price
        elif not math.isclose(price, best_price, rel_tol=1e-9, abs_tol=1e-12):
            raise fail("spot_price_per_hour", f"is {spot.format_price(price)}, but spot_zones says the cheapest zone "
                                              f"is {best_zone}={spot.format_price(best_price)}; the row's spot price "
                                              "is the cheapest zone's")
        if not row.get("spot_zone"):
            row["spot_zone"] = best_zone
        elif row["spot_zone"] != best_zone:
            raise fail("spot_zone", f"is {row['spot_zone']}, but the cheapest zone in spot_zones is {best_zone}")
    if row.get("spot_price_date"):
        try:
            row["spot_price_date"] = spot.normalize_date(row["spot_price_date"])
        except ValueError as exc:
            raise fail("spot_price_date", str(exc)) from None
    if math.isnan(price):
        for column in ("spot_zone", "spot_price_date", "spot_price_source"):
            if row.get(column):
                raise fail(column, "is set but the row has no spot price: add spot_price_per_hour (or spot_zones)")


def _csv_records(path: Path, text: str) -> list[tuple[dict[str, Any], int | None]]:
    import csv
    import io

    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return []
    header = [h.strip() for h in header]
    rows: list[tuple[dict[str, Any], int | None]] = []
    for fields in reader:
        line = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if fields[0].lstrip().startswith("#"):
            continue
        if len(fields) != len(header):
            raise CatalogRowError(f"expected {len(header)} fields, found {len(fields)}", path=str(path),
                                  line=line, column=header[min(len(fields), len(header)) - 1] if header else None)
        record = dict(zip(header, fields))
        rows.append((validate_record(record, str(path), _at_line(line)), line))
    return rows


def _at_line(line: int) -> Callable[[str | None], int | None]:
    """Every column of a CSV row is on the row's line."""
    return lambda _column: line


def _toml_line_finder(text: str) -> Callable[[int, str | None], int | None]:
    """(instance index, key) -> line number: tomllib gives no positions, so find the key below the header."""
    lines = text.splitlines()
    headers = [i for i, s in enumerate(lines) if re.match(r"\s*\[\[\s*instance\s*\]\]", s)]
    defaults = next((i for i, s in enumerate(lines) if re.match(r"\s*\[\s*defaults\s*\]", s)), None)

    def block_find(start: int, key: str | None) -> int | None:
        if key is None:
            return start + 1
        for j in range(start + 1, len(lines)):
            if re.match(r"\s*\[", lines[j]):
                break
            if re.match(rf"\s*\"?{re.escape(key)}\"?\s*=", lines[j]):
                return j + 1
        return None

    def find(index: int, key: str | None) -> int | None:
        if index < len(headers):
            hit = block_find(headers[index], key)
            if hit is not None:
                return hit
            if defaults is not None and key is not None:
                hit = block_find(defaults, key)
                if hit is not None:
                    return hit
            return headers[index] + 1
        return None

    return find


def _toml_records(path: Path, text: str) -> list[tuple[dict[str, Any], int | None]]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise CatalogRowError(f"not valid TOML: {exc}", path=str(path), line=int(m.group(1)) if m else None,
                              column=None) from None
    unknown = [k for k in data if k not in ("instance", "defaults")]
    if unknown:
        raise CatalogRowError(f"unknown table {unknown[0]!r}; use [[instance]] (and optionally [defaults])",
                              path=str(path), line=None, column=None)
    defaults = data.get("defaults", {})
    instances = data.get("instance", [])
    if not isinstance(instances, list) or not isinstance(defaults, dict):
        raise CatalogRowError("[[instance]] must be an array of tables and [defaults] a table", path=str(path),
                              line=None, column=None)
    find = _toml_line_finder(text)
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict):
            raise CatalogRowError(f"instance {i + 1} is {type(inst).__name__} {inst!r:.40}, not a table; write each "
                                  "instance as an [[instance]] table", path=str(path),
                                  line=_key_line(text, "instance"), column=None)
    return [(validate_record({**defaults, **inst}, str(path), partial(find, i)), find(i, None))
            for i, inst in enumerate(instances)]


def _key_line(text: str, key: str) -> int | None:
    """The 1-based line where ``key = …`` is written at the top level of a TOML text (None if not found)."""
    m = re.search(rf"^[ \t]*{re.escape(key)}[ \t]*=", text, re.MULTILINE)
    return text.count("\n", 0, m.start()) + 1 if m else None


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Validated rows of a user catalog file (CSV or TOML)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"cannot read user catalog {path}: {exc}") from None
    if path.suffix == ".toml":
        located = _toml_records(path, text)
    elif path.suffix == ".csv":
        located = _csv_records(path, text)
    else:
        raise CatalogError(f"{path}: user catalogs are .csv or .toml files")
    seen: dict[tuple[str, str, str], int | None] = {}
    for r, line in located:
        key = (r["provider"], r["region"], r["instance_type"])
        if key in seen:
            raise CatalogRowError(f"duplicate row for {'/'.join(key)} (first at line {seen[key]})",
                                  path=str(path), line=line, column="instance_type")
        seen[key] = line
    return [r for r, _ in located]


def read_user_catalog(path: str | Path) -> pd.DataFrame:
    """A user catalog file as a DataFrame with the schema's dtypes."""
    from ccdsl.catalog.store import frame_from_rows

    return frame_from_rows(read_records(path))


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _plain_name(name: str) -> str:
    """A file name inside the user catalog directory: no directories, no ``..``, no absolute path (``--name``
    must never write outside the catalog directory)."""
    if not _PLAIN_NAME.fullmatch(name) or name in (".", ".."):
        raise CatalogError(f"--name {name!r} is not a plain file name",
                           hint="use letters, digits, '_', '-' and '.', e.g. --name lab-hosts.csv")
    return name


def add(path: str | Path, name: str | None = None) -> Path:
    """Validate a user catalog and copy it (atomically) into the user catalog directory; return the new path."""
    from ccdsl.catalog import places
    from ccdsl.catalog.store import atomic_write

    src = Path(path)
    rows = read_records(src)
    if not rows:
        raise CatalogError(f"{src}: no rows to add")
    from ccdsl import datadir

    file_name = _plain_name(name or src.name)
    datadir.ensure()
    dest = places.user_catalog_dir() / file_name
    if dest.suffix != src.suffix:
        raise CatalogError(f"the destination name must keep the suffix {src.suffix}")
    atomic_write(dest, src.read_bytes(), mode=0o600)
    places.changed()
    return dest


def remove(name: str) -> list[Path]:
    """Delete the user catalog ``name`` (its file name in the user catalog directory, with or without the suffix)
    and a refresh's ``.json`` sidecar; return the paths removed.  An unknown name is an error that lists the
    installed catalogs, so a typo never passes silently."""
    from ccdsl.catalog import places

    files = places.user_files()
    hits = [p for p in files if name in (p.name, p.stem)]
    if len(hits) != 1:
        names = [p.name for p in files]
        if not names:
            raise CatalogError(f"no user catalog named {name!r}: there are none in {places.user_catalog_dir()}")
        close = difflib.get_close_matches(name, names + [p.stem for p in files], n=1)
        why = "matches several installed user catalogs" if hits else "is not an installed user catalog"
        raise CatalogError(f"{name!r} {why}",
                           hint=(f"did you mean {close[0]!r}? " if close and not hits else "")
                           + f"installed: {', '.join(names)}")
    path = hits[0]
    removed = [path]
    path.unlink()
    sidecar = path.with_suffix(".json")
    if sidecar.exists():
        sidecar.unlink()
        removed.append(sidecar)
    places.changed()
    return removed


def installed() -> list[tuple[Path, int | None]]:
    """The user catalogs in the data directory with their row counts (None when a file no longer reads)."""
    from ccdsl.catalog.places import user_files

    out: list[tuple[Path, int | None]] = []
    for p in user_files():
        try:
            out.append((p, len(read_records(p))))
        except CatalogError:
            out.append((p, None))
    return out
