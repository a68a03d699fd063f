"""The typed facades match the shipped ABIs: each method named after a contract function takes
that function's inputs, and the standard ERC-20 ABI agrees with the dev token's selectors."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from veritrain.artifacts import artifact
from veritrain.chain import facades
from veritrain.chain.states import VerifierKeyStatus


def _functions(abi: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in abi if f.get("type") == "function"}


def _methods(cls: type) -> dict[str, Any]:
    return {n: m for n, m in vars(cls).items() if inspect.isfunction(m) and not n.startswith("_")}


@pytest.mark.parametrize("cls", [facades.JobMarket, facades.DisputeResolver, facades.VerifierRegistry,
                                 facades.DevToken])
def test_every_facade_method_is_a_contract_function_with_its_inputs(cls: type) -> None:
    abi = _functions(artifact(cls.ARTIFACT)["abi"])
    methods = {n: m for n, m in _methods(cls).items() if n not in ("events", "logs")}
    assert methods, cls
    for name, method in methods.items():
        assert name in abi, f"{cls.__name__}.{name} is no function of {cls.ARTIFACT}"
        params = [p for p in inspect.signature(method).parameters if p != "self"]
        assert len(params) == len(abi[name]["inputs"]), f"{cls.__name__}.{name}{params} vs the ABI"


def test_the_standard_erc20_abi_matches_the_dev_token() -> None:
    standard = _functions(facades.IERC20_ABI)
    dev = _functions(artifact("DevToken")["abi"])
    for name, fn in standard.items():
        assert [i["type"] for i in fn["inputs"]] == [i["type"] for i in dev[name]["inputs"]], name
        assert [o["type"] for o in fn["outputs"]] == [o["type"] for o in dev[name]["outputs"]], name
    for name in _methods(facades.ERC20):  # the ERC-20 facade uses the standard interface only
        assert name in standard, name


class _Client:
    def __init__(self, result: Any) -> None:
        self.result, self.calls = result, []  # type: ignore[var-annotated]

    def call(self, contract: Any, fn: str, *args: Any) -> Any:
        self.calls.append((fn, args))
        return self.result

    def transact(self, contract: Any, fn: str, *args: Any, **kw: Any) -> Any:
        self.calls.append((fn, args, kw))
        return "0xhash"


def _bare(cls: type, client: _Client) -> Any:
    f = cls.__new__(cls)
    f.client, f.web3_contract, f.address = client, object(), "0x" + "11" * 20
    return f


def test_views_return_typed_values_and_writes_return_a_prepared_transaction() -> None:
    client = _Client(2)
    market = _bare(facades.JobMarket, client)
    status = market.verifierKeyStatus(3, "0xv")
    assert status is VerifierKeyStatus.DELIVERED and client.calls == [("verifierKeyStatus", (3, "0xv"))]
    tx = market.claim(7, b"pub", bytes(32))
    assert isinstance(tx, facades.Tx) and len(client.calls) == 1  # nothing sent yet
    seen: list[str] = []
    assert tx.transact(seen.append) == "0xhash"
    assert client.calls[-1] == ("claim", (7, b"pub", bytes(32)), {
        "gas": None, "wait": False, "on_signed": seen.append, "last_look": None})
    tx.send(gas=90_000)
    assert client.calls[-1] == ("claim", (7, b"pub", bytes(32)), {"gas": 90_000, "value": 0})


def test_the_resolver_reads_jobs_in_the_market_s_own_layout() -> None:
    """DisputeResolver reads getJob through IJobMarketJobs (contracts/interfaces): its JobView
    must stay JobMarket.Job, field for field, or the resolver decodes another job's rewards."""
    def fields(name: str) -> list[tuple[str, str]]:
        [fn] = [f for f in artifact(name)["abi"] if f.get("name") == "getJob"]
        return [(c["name"], c["type"]) for c in fn["outputs"][0]["components"]]

    assert fields("IJobMarketJobs") == fields("JobMarket")
