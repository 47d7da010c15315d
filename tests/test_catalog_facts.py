"""The reviewed fact table covers every model string in the installed sources.

These tests scan *all* of moto's instance types (not only the priced ones) and every libcloud processor string,
so a package upgrade that brings a new GPU or CPU fails here until a person adds a reviewed line.
"""

from __future__ import annotations

import pytest

from ccdsl import taxonomy
from ccdsl.catalog import facts

pytest.importorskip("moto")
pytest.importorskip("libcloud")

from catalog_sources import raw_processors, raw_specs

SECTIONS = (("GpuInfo", "Gpus"), ("NeuronInfo", "NeuronDevices"), ("InferenceAcceleratorInfo", "Accelerators"),
            ("FpgaInfo", "Fpgas"), ("MediaAcceleratorInfo", "Accelerators"))


def source_accelerators() -> set[tuple[str, str, str]]:
    out = set()
    for spec in raw_specs().values():
        for section, key in SECTIONS:
            for e in (spec.get(section) or {}).get(key) or []:
                out.add((section, e.get("Manufacturer", ""), e["Name"]))
    # any accelerator section we do not know about at all is a new kind of hardware
    known_sections = {s for s, _ in SECTIONS}
    for spec in raw_specs().values():
        for k in spec:
            if k.endswith("AcceleratorInfo") or k in ("GpuInfo", "NeuronInfo", "FpgaInfo"):
                assert k in known_sections, f"new accelerator section {k} in the sources"
    return out


def test_every_accelerator_in_the_sources_is_mapped() -> None:
    missing = sorted(source_accelerators() - set(facts.ACCELERATORS))
    assert not missing, f"unmapped accelerators (add them to ccdsl/catalog/facts.py): {missing}"


def test_every_processor_string_in_the_sources_is_mapped() -> None:
    missing = sorted(set(raw_processors().values()) - set(facts.PROCESSOR_STRINGS) - {""})
    assert not missing, f"unmapped processor strings (add them to ccdsl/catalog/facts.py): {missing}"


def test_every_source_manufacturer_is_a_taxonomy_label() -> None:
    manufacturers = {s["ProcessorInfo"]["Manufacturer"] for s in raw_specs().values()}
    labels = {n.label for n in taxonomy.nodes("processor", ("manufacturer",))}
    assert manufacturers <= labels


def test_fact_nodes_exist_and_are_consistent() -> None:
    for key, fact in facts.ACCELERATORS.items():
        node = taxonomy.node("accelerator", fact.node)
        assert node.level == "model", key
        assert fact.kind in {n.label for n in taxonomy.nodes("accelerator_type")}
        manufacturer = [a for a in taxonomy.ancestors(node) if a.level == "manufacturer"]
        assert manufacturer and (key[1] in ("", manufacturer[0].label)), key
    model_nodes: dict[str, str] = {}
    for text, fact in [*facts.PROCESSOR_STRINGS.items(), *facts.FAMILY_PROCESSORS.items()]:
        if fact is None:
            continue
        node = taxonomy.node("processor", fact.node)
        assert node.level in ("microarchitecture", "group"), text
        top = [a for a in [node, *taxonomy.ancestors(node)] if a.level == "manufacturer"]
        assert top[0].label == fact.manufacturer, text
        # one model label, one microarchitecture
        assert model_nodes.setdefault(fact.model, fact.node) == fact.node, fact.model
        # the model is a leaf of the processor tree that its microarchitecture (and manufacturer) covers
        assert taxonomy.lookup("processor", fact.model).label == fact.model
        assert fact.model in taxonomy.covered_labels("processor", fact.node)
        assert fact.model in taxonomy.covered_labels("processor", top[0].name)


def test_catalog_symbols_are_taxonomy_labels() -> None:
    """Every symbol value in the shipped catalog is a label of the right level, so contracts can match it."""
    from ccdsl.catalog import load
    from ccdsl.catalog.user import SYMBOLS

    df = load(user=False)
    for column, (domain, levels) in SYMBOLS.items():
        labels = {n.label for n in taxonomy.nodes(domain, levels)}
        values = set(df[column]) - {""}
        assert values <= labels, (column, values - labels)
    models = set(df["cpu_model"]) - {""}
    assert models <= set(taxonomy.PROCESSOR_MODELS)


def test_unmapped_model_stops_the_build(monkeypatch) -> None:
    from ccdsl.catalog import convert
    from ccdsl.errors import CatalogError

    spec = dict(raw_specs()["g6e.xlarge"])
    spec["GpuInfo"] = {"Gpus": [{"Count": 1, "Manufacturer": "NVIDIA", "Name": "X9000",
                                 "MemoryInfo": {"SizeInMiB": 1024}}]}
    with pytest.raises(CatalogError, match=r"X9000.*not in the fact table"):
        convert.type_facts(spec, None)
    with pytest.raises(CatalogError, match="Intel Xeon 9999"):
        convert.known_processors({"zz1.large": "Intel Xeon 9999 (Future Lake)"})


@pytest.mark.parametrize("rating,gbps", [("Up to 25 Gigabit", 25.0), ("100 Gigabit", 100.0),
                                         ("4x 100 Gigabit", 400.0), ("12.5 Gigabit", 12.5), ("High", 1.0),
                                         ("Very Low", 0.05), ("Low to Moderate", 0.3), ("3200 Gigabit", 3200.0)])
def test_network_ratings(rating: str, gbps: float) -> None:
    from ccdsl.catalog.convert import network_gbps

    assert network_gbps(rating) == gbps


def test_unknown_network_rating_is_an_error() -> None:
    from ccdsl.catalog.convert import network_gbps
    from ccdsl.errors import CatalogError

    with pytest.raises(CatalogError, match="Blazing"):
        network_gbps("Blazing")
