"""What the resolver says about its answer: when on-premise rows compete and that one won, where the default
region came from, where a pinned type is when the region lacks it, and sizes rounded as users read them."""

from __future__ import annotations

import pytest

from ccdsl.errors import UnsatisfiableError
from ccdsl.resolution import Choice, quantity
from ccdsl.resolver import resolve, select
from test_resolver import C, contract, frame, gpu

LAB = frame(
    {"instance_type": "c5.large", "vcpus": 2, "price_per_hour": 0.085},
    {"instance_type": "c5.4xlarge", "vcpus": 16, "memory_gib": 32.0, "price_per_hour": 0.68},
    {"instance_type": "t3.xlarge", "region": "us-east-2", "vcpus": 4, "price_per_hour": 0.1664},
    {"instance_type": "t3.xlarge", "region": "eu-central-1", "vcpus": 4, "price_per_hour": 0.192},
    {"provider": "ssh", "region": "lab", "instance_type": "gpu01", "vcpus": 64, "memory_gib": 512.0,
     "price_per_hour": 0.0, "max_nodes": 1.0},
    {"provider": "local", "region": "local", "instance_type": "localhost", "vcpus": 2, "price_per_hour": 0.0},
)


# ------------------------------------------------------------------------------------------- on-premise rows

def test_free_lab_hosts_do_not_take_over_unrelated_contracts() -> None:
    r = resolve(contract(C("node_vcpus_count", "atleast", 8)), LAB)
    assert (r.provider, r.instance_type) == ("aws", "c5.4xlarge")
    assert all(c.provider == "aws" for c in select(contract(), LAB))


@pytest.mark.parametrize("clause", [C("node_provider", "just", "SSH"), C("cluster_locale", "just", "lab"),
                                    C("node_machinetype", "just", "gpu01"),
                                    C("node_provider", "oneof", "AmazonEC2", "SSH")])
def test_naming_the_provider_region_or_host_lets_them_compete(clause) -> None:
    r = resolve(contract(clause, C("node_vcpus_count", "atleast", 8)), LAB)
    assert (r.provider, r.region, r.instance_type, r.price_per_hour) == ("ssh", "lab", "gpu01", 0.0)
    note = [line for line in r.explanation if "on-premise" in line]
    assert note == [f"gpu01 is on-premise (ssh lab, from your catalog); it competes because {clause.text} names it"]


def test_a_priced_lab_host_competes_on_price_and_says_so() -> None:
    df = LAB.copy()
    df.loc[df.instance_type == "gpu01", "price_per_hour"] = 0.5
    r = resolve(contract(C("node_vcpus_count", "atleast", 8)), df)
    assert (r.provider, r.instance_type) == ("ssh", "gpu01")
    assert any("competes with the cloud on its catalog price" in line for line in r.explanation)


def test_a_cloud_answer_has_no_on_premise_note() -> None:
    r = resolve(contract(C("node_vcpus_count", "atleast", 8)), LAB)
    assert not any("on-premise" in line for line in r.explanation)


# ------------------------------------------------------------------------------------------- region label

def test_the_region_line_says_where_the_region_came_from(monkeypatch) -> None:
    monkeypatch.delenv("CCDSL_REGION", raising=False)
    pinned = contract(C("node_machinetype", "just", "t3.xlarge"))

    def line(**kw) -> str:
        (hit,) = [x for x in resolve(pinned, LAB, **kw).explanation if x.startswith("region ")]
        return hit

    assert line(region="eu-central-1") == \
        "region eu-central-1 (the region asked for; --any-region lets every region compete)"
    monkeypatch.setenv("CCDSL_REGION", "us-east-2")
    assert line() == "region us-east-2 (from $CCDSL_REGION; --any-region lets every region compete)"
    monkeypatch.delenv("CCDSL_REGION")
    c5 = contract(C("node_vcpus_count", "atleast", 2))
    assert "region us-east-1 (the default; --any-region lets every region compete)" in resolve(c5, LAB).explanation


# ------------------------------------------------------------------------------------------- pinned type elsewhere

def test_a_pinned_type_missing_from_the_region_says_where_it_is() -> None:
    with pytest.raises(UnsatisfiableError) as info:
        resolve(contract(C("node_count", "just", 4), C("node_machinetype", "just", "t3.xlarge", line=1)), LAB)
    e = info.value
    assert e.message == ("contract 'c' is unsatisfiable: the pinned type t3.xlarge has no row in the catalog for "
                         "region us-east-1; the catalog has it in other regions (2: eu-central-1, us-east-2)")
    assert e.near_misses == ()  # the region's other types are noise here
    assert e.hint.startswith("it resolves in other regions (cheapest: t3.xlarge × 4 in us-east-2")
    assert [c.parameter for c in e.conflict] == ["node_machinetype"]
    text = e.render()
    assert text.index("other regions") < text.index("these clauses") and "nearest misses" not in text


def test_a_type_that_is_nowhere_keeps_the_nearest_misses() -> None:
    with pytest.raises(UnsatisfiableError) as info:
        resolve(contract(C("node_machinetype", "just", "x9.huge")), LAB)
    assert info.value.near_misses and "pinned" not in info.value.message


# ------------------------------------------------------------------------------------------- rounding

def test_sizes_are_rounded_as_users_read_them() -> None:
    assert [quantity(x) for x in (22.3516, 768.0, 0.5, 15.25, 3.75, 0.613, 1536.004, 12345.678)] == \
        ["22.35", "768", "0.5", "15.25", "3.75", "0.61", "1536", "12345.68"]
    l4 = frame(gpu("g6.xlarge", "L4", "Ada Lovelace", 22.3516, 0.8048, vcpus=4, memory_gib=15.999999))
    r = resolve(contract(C("accelerator_memory", "atleast", 16.0)), l4)
    assert r.explanation[0] == "g6.xlarge × 1 (aws us-east-1): 4 vCPUs, 16 GiB, 1 × L4 (Ada Lovelace) 22.35 GiB"
    assert "accelerator_memory => @atleast(16): 22.35 GiB ≥ 16 GiB" in r.explanation[1:]
    assert Choice("aws", "r", "t", 1, 1.0, 1.0, memory_gib=3.75).describe().endswith("3.75 GiB")


def test_the_place_names_this_machine_once() -> None:
    local = C("node_provider", "just", "Local")
    r = resolve(contract(local), LAB)
    assert r.explanation[0].startswith("localhost × 1 (local): 2 vCPUs")
    assert f"localhost is this machine, on-premise; it competes because {local.text} names it" in r.explanation
