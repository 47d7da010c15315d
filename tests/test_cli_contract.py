"""``ccdsl check``, ``ccdsl resolve`` and ``ccdsl select`` through ``ccdsl.cli.main`` (and two real processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ccdsl.cli import main
from ccdsl.resolution import JSON_FIELDS

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = str(ROOT / "examples" / "tutorial.ccc")
INFEASIBLE = str(ROOT / "examples" / "infeasible.ccc")


@pytest.fixture(autouse=True)
def no_user_catalogs(tmp_path, monkeypatch):
    """Only the shipped catalog (and what a test passes with --catalog): the user's data dir stays out."""
    monkeypatch.setenv("CCDSL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CCDSL_REGION", raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_accepts_a_good_file(capsys) -> None:
    code, out, _err = run(capsys, "check", TUTORIAL)
    assert code == 0
    assert "ok (3 contracts: my_first_cluster_contract, my_second_cluster_contract, mw)" in out


def test_check_reports_every_error_with_a_caret(capsys, tmp_path) -> None:
    bad = tmp_path / "bad.ccc"
    bad.write_text("a = @cluster(node_count => @between(8, 2))\nb = @cluster(acelerator_count => 1)\n")
    code, _out, err = run(capsys, "check", str(bad))
    assert code == 2
    assert f"{bad}:1:" in err and f"{bad}:2:" in err and "^" in err
    assert "2 errors" in err


def test_resolve_prints_a_table_and_explanation(capsys) -> None:
    code, out, _err = run(capsys, "resolve", TUTORIAL)
    assert code == 0
    assert "my_first_cluster_contract: t3.xlarge × 4 in aws us-east-1" in out
    assert "instance_type" in out and "$/h (cluster)" in out
    assert "manager  t3.xlarge" in out  # the ManagerWorkers contract shows its manager row


def test_resolve_json_has_exactly_the_documented_fields(capsys) -> None:
    code, out, _ = run(capsys, "resolve", TUTORIAL, "--json", "--top", "2")
    assert code == 0
    objects = json.loads(out)
    assert [o["contract"] for o in objects] == ["my_first_cluster_contract", "my_second_cluster_contract", "mw"]
    first, second, mw = objects
    assert (first["instance_type"], first["node_count"]) == ("t3.xlarge", 4)
    assert first["price_per_hour"] == pytest.approx(4 * first["price_per_node_hour"])
    assert set(second) == {"contract", *JSON_FIELDS, "efa", "alternatives"}  # efa: issue 23, the fabric decision
    assert len(second["alternatives"]) == 2 and all(set(a) == set(JSON_FIELDS) for a in second["alternatives"])
    assert set(mw["manager"]) == set(JSON_FIELDS) and mw["manager"]["instance_type"] == "t3.xlarge"
    assert mw["price_per_hour"] == pytest.approx(
        mw["node_count"] * mw["price_per_node_hour"] + mw["manager"]["price_per_hour"], abs=1e-6)


def test_resolve_one_contract_prints_one_object(capsys) -> None:
    code, out, _ = run(capsys, "resolve", TUTORIAL, "--contract", "my_first_cluster_contract", "--json",
                       "--region", "us-west-2")
    assert code == 0
    obj = json.loads(out)
    assert (obj["contract"], obj["region"], obj["instance_type"]) == ("my_first_cluster_contract", "us-west-2",
                                                                      "t3.xlarge")


def test_resolve_any_region_is_never_dearer(capsys) -> None:
    _, here, _ = run(capsys, "resolve", TUTORIAL, "--contract", "my_second_cluster_contract", "--json")
    _, anywhere, _ = run(capsys, "resolve", TUTORIAL, "--contract", "my_second_cluster_contract", "--json",
                         "--any-region")
    assert json.loads(anywhere)["price_per_hour"] <= json.loads(here)["price_per_hour"]


def test_region_and_any_region_exclude_each_other(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["resolve", TUTORIAL, "--region", "us-east-1", "--any-region"])
    assert e.value.code == 2


def test_unknown_contract_name_is_a_contract_error(capsys) -> None:
    code, _, err = run(capsys, "resolve", TUTORIAL, "--contract", "my_frist_cluster_contract")
    assert code == 2
    assert "no contract named 'my_frist_cluster_contract'" in err and "did you mean 'my_first_cluster_contract'" in err


def test_infeasible_contract_json_names_the_conflict(capsys) -> None:
    code, out, _ = run(capsys, "resolve", INFEASIBLE, "--json")
    assert code == 1
    (obj,) = json.loads(out)
    assert obj["contract"] == "infeasible" and obj["error"] == "unsatisfiable"
    assert [(c["parameter"], c["line"], c["column"]) for c in obj["conflict"]] == [
        ("accelerator_architecture", 4, 23), ("accelerator_memory", 5, 23)]
    assert obj["conflict"][1]["text"] == "accelerator_memory => @atleast(32G)"


def test_infeasible_contract_human_output(capsys) -> None:
    code, _out, err = run(capsys, "resolve", INFEASIBLE)
    assert code == 1
    assert "line 5, column 23: accelerator_memory => @atleast(32G)" in err
    assert "accelerator_memory 16 GiB < 32 GiB" in err


def test_bad_file_exits_2_with_diagnostics(capsys, tmp_path) -> None:
    bad = tmp_path / "bad.ccc"
    bad.write_text("c = @cluster(node_count => 4 node_machinetype => EC2Type_T3_xLarge\n")
    code, out, err = run(capsys, "resolve", str(bad))
    assert code == 2 and out == "" and "^" in err
    code, _, err = run(capsys, "resolve", str(tmp_path / "missing.ccc"))
    assert code == 2 and "cannot read" in err


def test_select_lists_every_match(capsys) -> None:
    code, out, _ = run(capsys, "select", TUTORIAL, "--contract", "my_second_cluster_contract", "--json")
    assert code == 0
    obj = json.loads(out)
    types = [m["instance_type"] for m in obj["matches"]]
    assert "g4dn.xlarge" in types and len(types) == len(set(types))  # one region: one row per type
    prices = [m["price_per_hour"] for m in obj["matches"]]
    assert prices == sorted(prices) and all(m["node_count"] == 8 for m in obj["matches"])
    code, out, _ = run(capsys, "select", TUTORIAL)
    assert code == 0 and "my_second_cluster_contract:" in out and "matches" in out
    code, _, _ = run(capsys, "select", INFEASIBLE)
    assert code == 1


def test_a_user_catalog_competes_when_named(capsys, tmp_path) -> None:
    hosts = tmp_path / "hosts.csv"
    hosts.write_text("provider,instance_type,vcpus,memory_gib,max_nodes\nssh,node01,32,128,\nssh,node02,64,256,2\n")
    contract = tmp_path / "c.ccc"
    contract.write_text("c = @cluster(node_count => 2, node_vcpus_count => @atleast(48))\n"
                        "mine = @cluster(node_provider => SSH, node_count => 2, node_vcpus_count => @atleast(48))\n")
    code, out, _ = run(capsys, "resolve", str(contract), "--catalog", str(hosts), "--json")
    assert code == 0
    unnamed, named = json.loads(out)
    assert unnamed["provider"] == "aws"  # free hosts do not take over a contract that does not ask for them
    assert (named["provider"], named["instance_type"], named["price_per_hour"]) == ("ssh", "node02", 0.0)
    code, out, _ = run(capsys, "resolve", str(contract), "--catalog", str(hosts), "--contract", "mine")
    assert code == 0 and "node02 is on-premise (ssh, from your catalog); it competes because node_provider => SSH" \
        " names it" in out


def test_resolve_in_a_real_process() -> None:
    proc = subprocess.run([sys.executable, "-m", "ccdsl", "resolve", "examples/tutorial.ccc", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    objects = json.loads(proc.stdout)
    assert objects[0]["instance_type"] == "t3.xlarge" and objects[1]["node_count"] == 8


def test_resolve_imports_no_cloud_ssh_mpi_or_engine_package() -> None:
    code = ("import io, json, sys, contextlib\n"
            "from ccdsl.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    rc = main(['resolve', 'examples/tutorial.ccc', '--json'])\n"
            "heavy = ('boto3', 'botocore', 'paramiko', 'mpi4py', 'ipyparallel', 'zmq')\n"
            "print(json.dumps([rc, [m for m in heavy if m in sys.modules]]))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [0, []]


def test_cold_resolve_reuses_the_saved_view_without_pandas(tmp_path) -> None:
    env = {**__import__("os").environ, "CCDSL_DATA_DIR": str(tmp_path / "data")}
    code = ("import io, json, sys, contextlib\n"
            "from ccdsl.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    rc = main(['resolve', 'examples/tutorial.ccc', '--json'])\n"
            "print(json.dumps([rc, 'pandas' in sys.modules, json.loads(out.getvalue())]))\n")
    runs = [json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                                      text=True, timeout=120, check=True).stdout) for _ in range(2)]
    assert [r[0] for r in runs] == [0, 0]
    assert [r[1] for r in runs] == [True, False]  # the first run reads the catalog with pandas and saves the view
    assert runs[0][2] == runs[1][2]
    assert list((tmp_path / "data" / "cache").glob("resolver-view-*.npz"))


def test_a_new_user_catalog_invalidates_the_saved_view(capsys, tmp_path) -> None:
    contract = tmp_path / "c.ccc"
    contract.write_text("c = @cluster(node_vcpus_count => @atleast(48), node_provider => SSH)\n")
    code, _, err = run(capsys, "resolve", str(contract))
    assert code == 1 and "no 'ssh' rows" in err
    user = tmp_path / "data" / "catalogs"  # CCDSL_DATA_DIR is tmp_path/data (autouse fixture)
    user.mkdir(parents=True)
    (user / "hosts.csv").write_text("provider,instance_type,vcpus,memory_gib\nssh,node07,64,256\n")
    code, out, _ = run(capsys, "resolve", str(contract), "--json")
    assert code == 0 and json.loads(out)[0]["instance_type"] == "node07"


def test_smt_prints_the_problem_z3_minimized(capsys) -> None:
    code, out, _ = run(capsys, "resolve", TUTORIAL, "--contract", "my_second_cluster_contract", "--smt")
    assert code == 0
    assert "(declare-const k Int)" in out
    assert "(declare-const c1 Bool) ; accelerator_architecture => Turing" in out
    assert "; k = 0: g5g.xlarge (aws us-east-1, $0.42/h)" in out


def test_a_manager_of_the_workers_type_warns_of_their_old_price_once(capsys, tmp_path) -> None:
    """The manager and the workers of one type, region and market share a price row: `resolve` warns that its
    price is old once, not once per role; a manager of another type still gets its own warning."""
    contract = tmp_path / "mw.ccc"
    where = 'cluster_type => ManagerWorkers, node_count => 2, cluster_locale => "eu-west-1"'
    contract.write_text(f"same = @cluster({where})\n"
                        f"other = @cluster({where}, manager.node_vcpus_count => @atleast(4))\n")
    code, out, _ = run(capsys, "resolve", str(contract), "--contract", "same")
    chosen = out.split(": ", 1)[1].split(" × ", 1)[0]  # `same: a1.medium × 2 in aws eu-west-1 — …`
    assert code == 0 and f"manager  {chosen} " in out and "(libcloud-3.9.1, 2025-03-02)" in out, out
    assert sum(line.strip().startswith(f"warning: the price of {chosen} in eu-west-1 is") for line in
               out.splitlines()) == 1, out
    code, out, _ = run(capsys, "resolve", str(contract), "--contract", "other")
    warned = [line.strip() for line in out.splitlines() if line.strip().startswith("warning: the price of")]
    assert code == 0 and len(warned) == 2 and warned[0] != warned[1], out
