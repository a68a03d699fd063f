"""The deployed code is checked against the shipped artifacts (veritrain.deployments.code_problem,
used by `ape run deploy` before it writes a record): immutables (constructor arguments) may
differ, nothing else. The attack: a record pointing at contracts other than those the roles were
built for (another contract, or one byte of logic changed) is refused, naming the byte."""

from __future__ import annotations

from typing import Any

from veritrain.deployments import code_problem
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_local


def test_deployed_code_is_the_shipped_artifacts_and_a_changed_byte_is_refused(fresh_chain: Any) -> None:
    w3 = fresh_chain
    dep = deploy_local(w3, dev_account(0), mint_to=[])
    for name, address in dep.contracts.items():  # the resolver's immutables are filled: still its code
        assert code_problem(name, w3.eth.get_code(address)) is None, name
    resolver = dep.address("DisputeResolver")
    assert "bytes of code" in str(code_problem("JobMarket", w3.eth.get_code(resolver)))
    assert code_problem("JobMarket", b"") == "JobMarket: no code at the address"

    code = bytearray(w3.eth.get_code(dep.address("JobMarket")))
    at = next(i for i in range(len(code) // 4, len(code) // 2) if code[i] != 0)  # not the metadata
    code[at] ^= 0x01  # one byte of logic
    w3.provider.make_request("anvil_setCode", [dep.address("JobMarket"), "0x" + code.hex()])
    problem = code_problem("JobMarket", w3.eth.get_code(dep.address("JobMarket")))
    assert problem == f"JobMarket: the code differs from the shipped artifact at byte {at} (1 bytes)"
