"""Issue 20, item 2: accelerator_memory compares the memory a GPU is sold with; the usable figure EC2 reports is
shown beside it in answers and in `catalog show`."""

from __future__ import annotations

import json


def test_done_when_the_24g_contract_answers_the_l4(tmp_path, capsys, monkeypatch) -> None:
    from ccdsl.cli import main

    monkeypatch.setenv("CCDSL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CCDSL_REGION", raising=False)
    f = tmp_path / "m.ccc"
    f.write_text("m = @cluster(accelerator_type => GPU, accelerator_count => @just(1), "
                 "accelerator_memory => @atleast(24G))\n")
    assert main(["resolve", str(f), "--json"]) == 0
    (d,) = json.loads(capsys.readouterr().out)
    assert (d["instance_type"], d["region"], d["price_per_hour"]) == ("g6.xlarge", "us-east-1", 0.8048)
    assert main(["resolve", str(f)]) == 0
    out = capsys.readouterr().out
    assert "1 × L4 (Ada Lovelace) 24 GiB (22.35 GiB usable)" in out
    assert "g5.xlarge" in out and "g6e.xlarge" not in out  # the 24 GB A10G competes; the 48 GB L40S is far behind
    assert main(["catalog", "show", "g6.xlarge"]) == 0
    show = capsys.readouterr().out.splitlines()
    assert show[1] == "1 × L4, 24 GiB (22.35 GiB usable)"
    assert any(line.split() == ["accelerator_memory_usable_gib", "22.35"] for line in show)
    assert any(line.split() == ["accelerator_memory_gib", "24"] for line in show)


def test_a_catalog_with_one_memory_figure_reads_it_as_both(tmp_path) -> None:
    """A user catalog (or an older one) without the usable column: its one figure is the card's, shown once."""
    from ccdsl.contract import Clause, Contract
    from ccdsl.resolver import resolve
    from test_resolver import frame, gpu

    df = frame(gpu("x1.gpu", "L4", "Ada Lovelace", 24.0, 0.5)).drop(columns=["accelerator_memory_usable_gib"])
    r = resolve(Contract("c", (Clause("accelerator_memory", "atleast", (24.0,)),)), df)
    assert r.choice.accelerator_memory_usable_gib == 24.0
    assert r.choice.describe().endswith("1 × L4 (Ada Lovelace) 24 GiB")
