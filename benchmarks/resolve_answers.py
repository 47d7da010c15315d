"""Every answer of bench_resolve's contracts, to show that a speed change leaves the answers as they were.

    python benchmarks/resolve_answers.py OUT.json            # write the answers of this checkout
    python benchmarks/resolve_answers.py OUT.json BEFORE.json  # ... and compare them with an earlier run's

Cases: every contract of ``bench_resolve`` (the typical and the spot ones) × one region and every region × the
shipped catalog and the copy with synthetic spot prices of the spot section; the spot contracts also with
``spot=False`` on that copy.  Per case: the resolution as printed, the SMT problem text and ``select()``'s list
(or the conflict of an unsatisfiable contract).  No timing: the answers only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def answers() -> dict[str, dict[str, str]]:
    import bench_resolve

    from ccdsl import UnsatisfiableError
    from ccdsl.catalog import load
    from ccdsl.language import parse
    from ccdsl.resolver import resolve, select
    from synthetic import SpotData, with_spot

    shipped = load(user=False)
    spotted = with_spot(shipped, SpotData(unpriced=0.05, unsupported=0.02, unknown_interruption=0.05), seed=14)
    contracts = {**parse(bench_resolve.TYPICAL), **parse(bench_resolve.SPOT)}
    spot_names = set(parse(bench_resolve.SPOT))
    out: dict[str, dict[str, str]] = {}
    for cname, catalog in (("shipped", shipped), ("synthetic-spot", spotted)):
        for name, contract in contracts.items():
            modes: list[bool | None] = [None, False] if name in spot_names and cname != "shipped" else [None]
            for spot in modes:
                for any_region in (False, True):
                    key = f"{cname}/{name}/{'all' if any_region else 'us-east-1'}" + ("/on-demand" if spot is False
                                                                                       else "")
                    try:
                        r = resolve(contract, catalog, any_region=any_region, spot=spot)
                        case = {"resolution": str(r), "problem": r.problem}
                    except UnsatisfiableError as e:
                        case = {"unsatisfiable": str(e)}
                    except Exception as e:  # an error is an answer too (an interruption bound with spot=False)
                        case = {"error": f"{type(e).__name__}: {e}"}
                    try:
                        case["select"] = "\n".join(repr(c) for c in select(contract, catalog, any_region=any_region,
                                                                              spot=spot))
                    except Exception as e:
                        case["select"] = f"{type(e).__name__}: {e}"
                    out[key] = case
    return out


def main() -> None:
    found = answers()
    Path(sys.argv[1]).write_text(json.dumps(found, indent=1, sort_keys=True))
    print(f"{len(found)} cases written to {sys.argv[1]}")
    if len(sys.argv) > 2:
        before = json.loads(Path(sys.argv[2]).read_text())
        differ = []
        for k in found:
            if found[k] != before.get(k):
                fields = sorted(f for f in set(found[k]) | set(before.get(k, {}))
                                if found[k].get(f) != before.get(k, {}).get(f))
                differ.append(f"{k} ({', '.join(fields)})")
        missing = sorted(set(before) - set(found))
        print(f"{len(found) - len(differ)} of {len(found)} cases identical to {sys.argv[2]}")
        for line in differ + [f"{k} (missing)" for k in missing]:
            print(f"  differs: {line}")
        if differ or missing:
            sys.exit(1)


if __name__ == "__main__":
    main()
