"""``ccdsl deploy | sync | clusters | cost-report | nodes | run | autostop | interrupt | resume | restart |
terminate | reconnect``.

Cheap to import: the executor (and boto3/paramiko behind it) is imported inside the commands.  Progress goes to
stderr, one line per node and step (``FXqElAnSeTEpQAm worker 2 (i-0abc…): running``); results go to stdout, as
JSON with ``--json``.  Exit codes: 0 success, 1 a ccdsl error (rendered by :mod:`ccdsl.cli`), the program's own
exit code for ``run``, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

REPORT_DAYS = 30

def register(sub: Any) -> None:
    """The cluster commands, in the order ``ccdsl --help`` lists them."""
    _register_deploy(sub)
    _register_reports(sub)
    _register_run(sub)


def _register_deploy(sub: Any) -> None:
    """``deploy``, ``sync`` and ``autostop``: make a cluster and say how it is kept."""
    p = sub.add_parser("deploy", help="create a cluster from a contract and wait until it is ready")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--contract", metavar="NAME", help="the contract of the file to deploy (needed if several)")
    where = p.add_mutually_exclusive_group()  # the same choice of rows as `ccdsl resolve`
    where.add_argument("--region", metavar="R", help="default AWS region (else $CCDSL_REGION, else us-east-1)")
    where.add_argument("--any-region", action="store_true", help="let every region compete")
    p.add_argument("--catalog", metavar="PATH", action="append",
                   help="a catalog file (CSV/TOML) merged on top of the shipped and user catalogs; repeatable")
    p.add_argument("--spot", action="store_true", default=None,
                   help="put every node on spot, priced at spot prices (else the contract's spot => true, or "
                        "[aws] spot = true, decides)")
    p.add_argument("--json", action="store_true", help="print the cluster as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.add_argument("--workdir", metavar="DIR", help="the project's folder: copied to every node, where ranks start")
    p.add_argument("--setup", metavar="CMD", help="a shell command run in the folder on every node after the copy "
                                                  "(e.g. 'pip install -r requirements.txt')")
    _autostop_options(p)
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("sync", help="copy the project's folder to every node again (only what changed)")
    p.add_argument("handle", metavar="HANDLE")
    p.add_argument("dir", metavar="DIR", nargs="?", help="the folder (default: the deploy's --workdir)")
    p.add_argument("--setup", action="store_true", help="run the deploy's set-up command again on every node")
    p.add_argument("--replace", action="store_true",
                   help="DIR is another folder than the cluster's: replace the nodes' copy with it (deleting what "
                        "only the old folder has there) and make it the cluster's folder")
    p.add_argument("--json", action="store_true", help="print what was sent per node as JSON")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("autostop", help="stop a cluster after an idle period (30m, 1h, off), on the cluster itself")
    p.add_argument("handle", metavar="HANDLE")
    p.add_argument("idle", metavar="PERIOD|off", help="idle period (30m, 1h30m, 90s; a bare number is minutes)")
    p.add_argument("--down", action="store_true", help="terminate instead of stopping")
    p.add_argument("--max-cost", metavar="USD", type=_usd, default=None,
                   help="also stop when the estimated compute cost reaches USD (warns at 80%%)")
    p.set_defaults(func=cmd_autostop)


def _register_reports(sub: Any) -> None:
    """``clusters``, ``cost-report`` and ``nodes``: what there is and what it costs."""
    p = sub.add_parser("clusters", help="clusters that are not terminated (checked against the cloud)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="include terminated clusters")
    p.set_defaults(func=cmd_clusters)

    p = sub.add_parser("cost-report", help="estimated cost of each cluster, terminated ones included")
    p.add_argument("--all", action="store_true", help=f"every cluster ever recorded (default: live ones and those "
                                                       f"started in the last {REPORT_DAYS} days)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cost_report)

    p = sub.add_parser("nodes", help="the nodes of a cluster: id, instance id, addresses, state")
    p.add_argument("handle", metavar="HANDLE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_nodes)


def _register_run(sub: Any) -> None:
    """``run`` and the lifecycle commands."""
    p = sub.add_parser("run", help="run a program on every rank: python (a script, -c or -m) or any command",
                       description="Run a program on every rank of a cluster and stream its output.\n\n"
                                   "  python [OPTIONS] PROG.py|-c CODE|-m MODULE [ARGS]   runs under mpi4py; a script "
                                   "is shipped from here\n"
                                   "  PROGRAM [ARGS]   anything else runs as it is, once per rank, with the MPI "
                                   "environment set\n"
                                   "                   (PMI_RANK, PMI_SIZE)")
    p.add_argument("handle", metavar="HANDLE")
    p.add_argument("--np", type=int, default=None, help="number of ranks, at least 1 (default: every slot)")
    p.add_argument("--oversubscribe", action="store_true",
                   help="allow more ranks than the cluster has slots (they share cores)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object when the program ends: its exit code and each rank's output lines "
                        "(stdout and stderr), instead of streaming them")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS]",
                   help="after '--': python … or any program (its own options are passed to it untouched)")
    p.set_defaults(func=cmd_run, run_parser=p)

    for name, text in (("interrupt", "stop the nodes (no compute cost while stopped)"),
                       ("resume", "start an interrupted cluster, with fresh workers"),
                       ("restart", "kill the cluster's processes, with fresh workers"),
                       ("terminate", "release every resource of the cluster"),
                       ("reconnect", "attach to a cluster of an earlier session, with fresh workers")):
        p = sub.add_parser(name, help=text)
        p.add_argument("handle", metavar="HANDLE")
        p.add_argument("--json", action="store_true")
        if name == "terminate":
            p.add_argument("--forget", action="store_true",
                           help="only remove this machine's record (when the cloud cannot be reached); anything "
                                "the cluster still has there is no longer tracked")
        p.set_defaults(func=cmd_lifecycle, action=name)


def _usd(text: str) -> float:
    """``--max-cost``'s value: a positive number of US dollars (argparse names the option in its error)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"the spending cap is a positive number of US dollars (such as 50), "
                                         f"not {text!r}")
    return value


def _autostop_options(p: Any) -> None:
    p.add_argument("--autostop", metavar="PERIOD", help="stop the cluster after this idle period (30m, 1h, 90s): "
                                                        "no run, script, engine task or interactive SSH session")
    p.add_argument("--down", action="store_true", help="with --autostop/--max-cost: terminate instead of stopping")
    p.add_argument("--max-cost", metavar="USD", type=_usd, default=None,
                   help="spending cap: warn at 80%% of USD, stop the cluster when its estimated cost reaches it")


def progress_printer(handle_of: Any = None) -> Any:
    """A progress callback writing one line per node and step to stderr."""
    start = time.monotonic()

    def report(role: str, index: int, state: str) -> None:
        handle = handle_of() if handle_of else ""
        print(f"[{time.monotonic() - start:6.1f}s] {handle}{' ' if handle else ''}{role} {index}: {state}",
              file=sys.stderr, flush=True)

    return report


def _log_to_stderr() -> None:
    import logging

    logger = logging.getLogger("ccdsl")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _cluster_json(c: Any) -> dict[str, Any]:
    return {"handle": c.handle, "contract": c.contract, "provider": c.provider, "cluster_type": c.cluster_type,
            "status": c.status, "markets": c.markets or None, "workers": c.workers(),
            "nodes": [_node_json(n) for n in c.nodes()]}


def _node_json(n: Any) -> dict[str, Any]:
    return {"role": n.role, "index": n.index, "instance_id": n.instance_id, "instance_type": n.instance_type,
            "state": n.state, "address": n.address, "private_address": n.private_address, "port": n.port,
            "zone": n.zone}


def cmd_deploy(args: argparse.Namespace) -> int:
    from ccdsl.errors import ClusterError
    from ccdsl.executor import deploy
    from ccdsl.language import load

    contracts = load(args.file)
    if args.contract:
        if args.contract not in contracts:
            raise ClusterError(f"{args.file} has no contract named '{args.contract}'",
                               hint="contracts in it: " + ", ".join(contracts))
        contract = contracts[args.contract]
    elif len(contracts) == 1:
        contract = next(iter(contracts.values()))
    else:
        raise ClusterError(f"{args.file} has {len(contracts)} contracts; say which with --contract NAME",
                           hint="contracts in it: " + ", ".join(contracts))
    _log_to_stderr()
    from ccdsl.catalog import load as load_catalog
    from ccdsl.commands.contract import check_locales
    from ccdsl.executor import config as cfg
    from ccdsl.executor.deploy import spot_option
    from ccdsl.resolver import market, resolve
    from ccdsl.resolver.view import VIEW_COLUMNS

    # [aws] spot = true: resolved at spot prices, so that the nodes launched as spot are the ones priced as spot
    spot = args.spot or spot_option(contract, cfg.load())
    # resolved here with the same options as `ccdsl resolve`, so both commands pick the same rows
    columns = VIEW_COLUMNS + (market.SPOT_COLUMNS if market.spot_roles(contract, spot) else ())
    catalog = load_catalog(paths=args.catalog, columns=columns) if args.catalog else None
    check_locales([contract], catalog, args.file)
    resolution = resolve(contract, catalog, region=args.region, any_region=args.any_region, spot=spot)
    if not args.quiet:
        price = "price unknown" if resolution.price_per_hour is None else f"${resolution.price_per_hour:g}/h"
        print(f"deploying {resolution.choice.describe()}, {price}{_markets_text(resolution)}", file=sys.stderr)
    bar = None if args.quiet or not args.workdir else _sync_bar()
    try:
        cluster = deploy(resolution, progress=None if args.quiet else progress_printer(), workdir=args.workdir,
                         setup=args.setup, sync_progress=bar, autostop=args.autostop, down=args.down,
                         max_cost=args.max_cost)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(_cluster_json(cluster), indent=2))
    else:
        print(cluster.handle)
        print(f"{cluster.cluster_type} {cluster.handle} ready: workers {cluster.workers()}", file=sys.stderr)
    return 0


def _markets_text(resolution: Any) -> str:
    """``; workers spot (cheapest in us-east-1b), manager on-demand`` -- which market each role is launched in
    (empty for a resolution with no spot role: on-demand, as always)."""
    roles = [("workers", resolution.choice), *([("manager", resolution.manager)] if resolution.manager else [])]
    if all(getattr(c, "market", "on-demand") != "spot" for _, c in roles):
        return ""
    parts = []
    for name, c in roles:
        text = f"{name} {c.market}"
        if c.market == "spot" and c.spot_zone:
            text += f" (cheapest in {c.spot_zone})"
        parts.append(text)
    return "; " + ", ".join(parts)


def _sync_bar() -> Any:
    from ccdsl.executor.workdir import ProgressBar

    return ProgressBar(sys.stderr)


def cmd_sync(args: argparse.Namespace) -> int:
    from ccdsl.executor import get

    bar = _sync_bar()
    with get(args.handle) as c:
        try:
            synced = c.sync(args.dir, setup=args.setup, progress=bar, replace=args.replace)
        finally:
            bar.close()
    if args.json:
        print(json.dumps([{"node": s.node, "files": s.files, "bytes": s.bytes, "deleted": s.deleted}
                          for s in synced], indent=2))
    else:
        for s in synced:
            print(f"{s.node}: {s.files} file(s), {s.bytes} bytes sent, {s.deleted} deleted")
    return 0


def cmd_clusters(args: argparse.Namespace) -> int:
    from ccdsl.executor import clusters
    from ccdsl.executor.cost import NOT_COUNTED
    from ccdsl.executor.deploy import info_of
    from ccdsl.executor.state import State

    _log_to_stderr()
    infos = clusters()
    if args.all:
        live = {i.handle for i in infos}
        state = State()
        for r in state.list_clusters(live_only=False):
            if r.handle not in live:
                infos.append(info_of(r, state))
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
    else:
        if not infos:
            print("no clusters" + ("" if args.all else " (terminated ones: ccdsl clusters --all)")
                  + "; create one with `ccdsl deploy FILE`", file=sys.stderr)
        from ccdsl.errors import printable

        for i in infos:
            print(printable(i.describe()))  # notes come from nodes and the database: no terminal control
        if infos:
            print(f"(cost so far: running time x the price recorded at deploy; {NOT_COUNTED})", file=sys.stderr)
    return 0


def cmd_cost_report(args: argparse.Namespace) -> int:
    from ccdsl.executor.cost import NOT_COUNTED, age
    from ccdsl.executor.deploy import cost_report

    _log_to_stderr()
    infos = cost_report(all=args.all, days=REPORT_DAYS)
    known = [i.cost.cost_so_far for i in infos if i.cost is not None and i.cost.cost_so_far is not None]
    total = round(sum(known), 6)
    unknown = sum(1 for i in infos if i.cost is None or i.cost.cost_so_far is None)
    if args.json:
        print(json.dumps({"clusters": [i.to_dict() for i in infos], "total_cost": total,
                          "clusters_with_unknown_price": unknown, "not_counted": NOT_COUNTED}, indent=2))
        return 0
    print(f"{'HANDLE':15}  {'CONTRACT':18}  {'PROVIDER':8}  {'STATUS':11}  {'NODES':22}  {'MARKET':9}  "
          f"{'STARTED':16}  {'RUNNING':>8}  {'$/HOUR':>9}  {'TOTAL':>10}")
    for i in infos:
        c = i.cost
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.started_at)) if c else "-"
        rate = f"{c.price_per_hour:.4f}" if c and c.price_per_hour is not None else "?"
        spent = f"{c.cost_so_far:.2f}" if c and c.cost_so_far is not None else "?"
        print(f"{i.handle:15}  {i.contract[:18]:18}  {i.provider:8}  {i.status:11}  "
              f"{(i.instance_type + ' x ' + str(i.nodes))[:22]:22}  {_market_cell(i.market):9}  {started:16}  "
              f"{age(c.running_seconds) if c else '-':>8}  {rate:>9}  {spent:>10}")
    tail = f" ({unknown} cluster(s) with an unknown price not included)" if unknown else ""
    print(f"total: ${total:.2f}{tail}")
    print(f"(estimates: running time x the price recorded at deploy; {NOT_COUNTED})")
    return 0


def _market_cell(market: str) -> str:
    """The market in a table cell: ``spot``, ``on-demand``, ``mixed`` (``ccdsl nodes`` shows it per node)."""
    return (market if "," not in market else "mixed") or "-"


def cmd_nodes(args: argparse.Namespace) -> int:
    from ccdsl.executor import get
    from ccdsl.executor import state as st
    from ccdsl.resolution import table

    c = get(args.handle)
    nodes = c.nodes()
    status = c.status
    if args.json:
        print(json.dumps([_node_json(n) for n in nodes], indent=2))
        return 0
    markets = c.markets
    print(f"{c.handle}: {c.cluster_type} on {c.provider}, {status}")
    if not nodes:
        print("  no nodes" + (f" ({c.record.note})" if c.record.note else ""))
        return 0
    rows = [[n.role, str(n.index), n.instance_id, n.instance_type, n.address or "-", n.private_address or "-",
             n.zone or "-", *([markets.get(n.role, "-")] if markets else []), node_state(n.state, status)]
            for n in nodes]
    print(table(["role", "index", "instance_id", "instance_type", "address", "private_address", "zone",
                 *(["market"] if markets else []), "state"], rows, indent=2))
    if status in (st.FAILED, st.TERMINATED):
        print(f"  (the cluster is {status}: node states are as last recorded"
              + (f"; `ccdsl terminate {c.handle}` removes what is left)" if status == st.FAILED else ")"))
    return 0


def node_state(state: str, status: str) -> str:
    """A node's state as shown: no node of a failed or terminated cluster is ``ready`` to run anything."""
    from ccdsl.executor import model
    from ccdsl.executor import state as st

    if status in (st.FAILED, st.TERMINATED) and state in (model.READY, model.REACHABLE):
        return f"not ready (cluster {status})"
    return state


def cmd_run(args: argparse.Namespace) -> int:
    from ccdsl.executor import get

    np, command = _run_options(args, list(args.command))
    from ccdsl.executor.program import parse

    parse(command)  # a command line that cannot run is an error before the cluster is even looked up
    _log_to_stderr()  # the spending cap's warning, among others
    with get(args.handle) as c:
        if not args.json:
            return c.run_program(command, np=np, oversubscribe=args.oversubscribe)
        ranks = np or len(c.workers())
        lines: dict[int, dict[str, list[str]]] = {r: {"stdout": [], "stderr": []} for r in range(ranks)}
        other: dict[str, list[str]] = {"stdout": [], "stderr": []}

        def collect(line: str, stream: str) -> None:
            from ccdsl.executor.mpi import RANK_LABEL

            label = RANK_LABEL.match(line)
            rank = int(label.group(1)) if label else None
            if rank is not None and rank in lines:
                lines[rank][stream].append(line[label.end():] if label else line)
            else:
                other[stream].append(line)

        code = c.run_program(command, np=np, oversubscribe=args.oversubscribe, stream=collect, label_ranks=True)
    print(json.dumps({"handle": args.handle, "command": command, "np": ranks, "rc": code,
                      "ranks": [{"rank": r, **out} for r, out in sorted(lines.items())],
                      "mpiexec": other}, indent=2))
    return code


def _run_options(args: argparse.Namespace, command: list[str]) -> tuple[int | None, list[str]]:
    """``ccdsl run``'s own options, read up to ``--`` or the program (argparse leaves those after HANDLE to the
    command): --np N, --oversubscribe and --json.  Any other option there is a mistake of ours to report, never
    one to hand to mpiexec (``-n 8`` would reach it as a duplicate, ``--json`` as an unknown argument)."""
    np = args.np
    while command:
        token = command[0]
        if token == "--":
            return np, command[1:]
        if token == "--oversubscribe":
            args.oversubscribe, command = True, command[1:]
        elif token == "--json":
            args.json, command = True, command[1:]
        elif token == "--np" or token.startswith("--np="):
            if token == "--np" and len(command) < 2:
                args.run_parser.error("argument --np: expected a number of ranks")
            value, command = (token[5:], command[1:]) if "=" in token else (command[1], command[2:])
            try:
                np = int(value)
            except ValueError:
                args.run_parser.error(f"argument --np: a whole number of ranks, not {value!r}")
        elif token.startswith("-") and token != "-":
            args.run_parser.error(f"unknown option {token!r} before the program: ccdsl run takes --np N (the "
                                  "number of ranks), --oversubscribe and --json; the program and its own options go "
                                  "after '--'")
        else:
            return np, command
    return np, command


def cmd_autostop(args: argparse.Namespace) -> int:
    from ccdsl.executor import get, guard

    _log_to_stderr()
    with get(args.handle) as c:
        c.autostop(args.idle, down=args.down, max_cost=args.max_cost)
        a = guard.Autostop.from_settings(c.record.settings.get("autostop"))
        print(f"{c.handle}: autostop {a.describe()}")
    return 0


def cmd_lifecycle(args: argparse.Namespace) -> int:
    import ccdsl.executor as ex

    _log_to_stderr()
    if args.action == "terminate" and args.forget:
        from ccdsl.executor.state import State

        record = State().get_cluster(args.handle, damaged_ok=True)
        text = ex.forget(args.handle)  # a local cluster leaves nothing behind to warn about
        print(("" if record is not None and record.provider == "local" else "warning: ") + text, file=sys.stderr)
        if args.json:
            print(json.dumps({"handle": args.handle, "status": "forgotten"}))
        return 0
    if args.action == "terminate":
        c = ex.get(args.handle)
        if c.status == "terminated":  # terminating twice is not a mistake: the cluster is gone, as asked
            if args.json:
                print(json.dumps(_cluster_json(c), indent=2))
            else:
                print(f"{c.handle}: already terminated" + (f" ({c.record.note})" if c.record.note else ""))
            return 0
    if args.action == "reconnect":
        c = ex.reconnect(args.handle, progress=progress_printer())
    elif args.action == "resume":
        c = ex.resume(args.handle, progress=progress_printer())
    else:
        c = getattr(ex, args.action)(args.handle) or ex.get(args.handle)
    if args.json:
        print(json.dumps(_cluster_json(c), indent=2))
    else:
        workers = c.workers()
        print(f"{c.handle}: {c.status}" + (f", workers {workers}" if workers else ""))
    return 0
