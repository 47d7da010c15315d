"""Issue 20, item 1 at deploy: a burstable type is launched with ``CpuCredits: standard`` (EC2 on a moto server),
``[aws] cpu_credits = "unlimited"`` opts out, and then the cost record counts the worst-case surplus."""

from __future__ import annotations

import pytest

import ccdsl
from ccdsl.errors import ConfigError, ProviderError
from ccdsl.executor import cost
from ccdsl.executor import state as st
from fixtures_executor import aws_settings, data_dir, ec2, hooks

LIST_PRICE = 0.1664  # t3.xlarge, us-east-1, the shipped catalog (karpenter@6fc13b52)


def closed_port() -> str:
    from conftest import free_port

    return f"127.0.0.1:{free_port()}"  # nothing listens there: the deploy gives up after RunInstances


def run_instances(hooks) -> list[dict]:
    """The parameters of every RunInstances the provider sends."""
    calls: list[dict] = []
    hooks.append(("before-parameter-build.ec2.RunInstances", lambda params, **_: calls.append(dict(params))))
    return calls


def deploy_failing_after_launch(aws_env, contract_text: str, count: int, **aws) -> str:
    """Resolve ``contract_text`` on the shipped catalog and deploy it on moto; its nodes are unreachable, so the
    deploy fails after the launch (and cleans up).  Returns the cluster's handle."""
    from ccdsl.executor.config import Config
    from ccdsl.language import parse

    contract = next(iter(parse(contract_text).values()))
    addresses = {str(i): closed_port() for i in range(count)}
    cfg = Config.from_dict({"aws": aws_settings(aws_env, address_map=addresses, **aws),
                            "ssh": {"ready_timeout": 2.0, "connect_timeout": 1.0}})
    with pytest.raises(ProviderError, match="gave up"):
        ccdsl.deploy(ccdsl.resolve(contract), config=cfg)
    (record,) = st.State().list_clusters(live_only=False)
    return record.handle


TUTORIAL = "t = @cluster(node_count => 2, node_machinetype => EC2Type_T3_xLarge)\n"


def test_a_burstable_type_launches_with_standard_credits_at_its_list_price(aws_env, data_dir, ec2, hooks):
    calls = run_instances(hooks)
    handle = deploy_failing_after_launch(aws_env, TUTORIAL, 2)
    assert [(c["InstanceType"], c["CreditSpecification"]) for c in calls] == [
        ("t3.xlarge", {"CpuCredits": "standard"})]
    (price,) = st.State().prices(handle)
    assert price.price_per_node_hour == LIST_PRICE and "unlimited" not in price.source
    notes = [e.detail["text"] for e in st.State().journal_of(handle) if e.phase == "credits"]
    assert any("t3.xlarge: CPU credits standard: each vCPU sustains 40%" in n for n in notes), notes


def test_unlimited_credits_are_sent_and_priced_at_the_worst_case_surplus(aws_env, data_dir, ec2, hooks):
    calls = run_instances(hooks)
    handle = deploy_failing_after_launch(aws_env, TUTORIAL, 2, cpu_credits="unlimited")
    assert [c["CreditSpecification"] for c in calls] == [{"CpuCredits": "unlimited"}]
    (price,) = st.State().prices(handle)
    surplus = 4 * (1 - 0.40) * 0.05  # vCPUs × (1 − baseline) × rate
    assert price.price_per_node_hour == pytest.approx(LIST_PRICE + surplus)
    assert "unlimited CPU credits at most $0.1200/node-hour" in price.source
    assert cost.price_per_hour([price]) == pytest.approx(2 * (LIST_PRICE + surplus))
    notes = [e.detail["text"] for e in st.State().journal_of(handle) if e.phase == "credits"]
    assert any("CPU credits unlimited" in n and "$0.05 per vCPU-hour" in n for n in notes), notes


def test_a_type_that_is_not_burstable_gets_no_credit_specification(aws_env, data_dir, ec2, hooks):
    calls = run_instances(hooks)
    deploy_failing_after_launch(aws_env, "m = @cluster(node_machinetype => \"m5.large\")\n", 1,
                                cpu_credits="unlimited")
    assert [c["InstanceType"] for c in calls] == ["m5.large"] and "CreditSpecification" not in calls[0]


def test_cpu_credits_takes_standard_or_unlimited(data_dir):
    from ccdsl.executor.config import Config

    with pytest.raises(ConfigError, match="cpu_credits must be 'standard' or 'unlimited'"):
        Config.from_dict({"aws": {"cpu_credits": "fast"}})


def test_the_surplus_is_added_once_and_only_in_unlimited_mode():
    opts = {"price_per_node_hour": 0.0052, "price_source": "karpenter@x"}
    once = cost.with_credit_surplus(opts, "t3.nano", "unlimited")
    assert once["price_per_node_hour"] == pytest.approx(0.0052 + 2 * 0.95 * 0.05)
    assert cost.with_credit_surplus(once, "t3.nano", "unlimited") == once  # a second plan attempt adds nothing
    assert cost.with_credit_surplus(opts, "t3.nano", "standard") == opts
    assert cost.with_credit_surplus(opts, "t1.micro", "unlimited") == opts  # no credits, no surplus
    assert cost.with_credit_surplus({"price_per_node_hour": None}, "t3.nano", "unlimited") == {
        "price_per_node_hour": None}
