"""Fixtures for the contract tests: the protocol deployed once per session on the session's
Anvil, every test starting from that snapshot.

Roles (dev accounts): 0 owner/deployer, 1 requester, 2-4 workers, 5-11 registered verifiers
(the referee pool), 12-19 unregistered outsiders.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from eth_utils import keccak

from contracts.helpers import Chain, ErrorDecoder, Tree, commitment, hashes, pubkey
from veritrain.artifacts import artifact
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import REGISTRY_MIN_STAKE, deploy_local

E18 = 10**18
#: h_0 of every task in the contract tests (leaf 0 of ``helpers.hashes``)
GENESIS = keccak(b"genesis")
#: the bound starts of a 2-task job whose tasks both start at GENESIS
STARTS = Tree([GENESIS, GENESIS])
MAX = 2**256 - 1
TEST_ARTIFACTS = os.path.join(os.path.dirname(__file__), "..", "artifacts")

DEFAULT_JOB: dict[str, Any] = {
    "specCid": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    "shardsRoot": b"\x11" * 32,
    "taskCount": 2,
    "redundancy": 1,
    "checkpointCount": 9,
    "rewardPerTask": 50 * E18,
    "stakePerTask": 40 * E18,
    "griefingFee": 5 * E18,
    "refereeFeePool": 10 * E18,
    "keyWindow": 100,
    "submissionWindow": 1000,
    "revealWindow": 200,
    "challengeWindow": 500,
    "startsRoot": STARTS.root,
    "startsKeyed": False,
}
JOB_FIELDS = list(DEFAULT_JOB)


def job_tuple(**overrides: Any) -> tuple[Any, ...]:
    p = {**DEFAULT_JOB, **overrides}
    return tuple(p[k] for k in JOB_FIELDS)


class Env:
    """The deployed protocol plus scenario shortcuts used across the contract tests."""

    def __init__(self, w3: Any, deployment: Any) -> None:
        self.w3 = w3
        names = ["DevToken", "JobMarket", "VerifierRegistry", "DisputeResolver"]
        c = {n: w3.eth.contract(address=deployment.address(n), abi=artifact(n)["abi"]) for n in names}
        self.token, self.market = c["DevToken"], c["JobMarket"]
        self.registry, self.resolver = c["VerifierRegistry"], c["DisputeResolver"]
        abis = [artifact(n)["abi"] for n in names]
        for extra in ("ReentrantToken", "ReentrantReceiver", "SilentRequester"):
            path = os.path.join(TEST_ARTIFACTS, f"{extra}.json")
            if os.path.exists(path):
                from pathlib import Path

                abis.append(artifact(extra, Path(TEST_ARTIFACTS))["abi"])
        self.chain = Chain(w3, ErrorDecoder(abis))
        self.owner = dev_account(0)
        self.requester = dev_account(1)
        self.workers = [dev_account(i) for i in (2, 3, 4)]
        self.verifiers = [dev_account(i) for i in range(5, 12)]
        self.outsiders = [dev_account(i) for i in range(12, 20)]

    # ------------------------------------------------------------------ shortcuts
    def send(self, account: Any, call: Any, **kw: Any) -> Any:
        return self.chain.send(account, call, **kw)

    def revert_with(self, account: Any, call: Any, name: str, *args: Any) -> tuple[Any, ...]:
        return self.chain.expect_revert(account, call, name, *args)

    def balance(self, who: Any) -> int:
        addr = who if isinstance(who, str) else who.address
        return self.token.functions.balanceOf(addr).call()

    def owed(self, who: Any) -> int:
        addr = who if isinstance(who, str) else who.address
        return self.market.functions.owed(addr).call()

    def assert_solvent(self) -> None:
        assert self.balance(self.market.address) == self.market.functions.liabilities().call()

    def post_job(self, requester: Any = None, **overrides: Any) -> int:
        requester = requester or self.requester
        r = self.send(requester, self.market.functions.postJob(job_tuple(**overrides)))
        return self.chain.events(self.market, "JobPosted", r)[0]["args"]["jobId"]

    def task_id(self, job_id: int, index: int = 0) -> int:
        return (job_id << 32) | index

    def claim(self, worker: Any, task_id: int) -> Any:
        return self.send(worker, self.market.functions.claim(task_id, pubkey(worker), bytes(32)))

    def deliver(self, task_id: int, worker: Any, requester: Any = None) -> Any:
        return self.send(
            requester or self.requester,
            self.market.functions.deliverKey(task_id, worker.address, b"\xee" * 129),
        )

    def commit(self, worker: Any, task_id: int, root: bytes, salt: bytes = b"\x05" * 32) -> Any:
        c = commitment(root, worker.address, salt)
        return self.send(worker, self.market.functions.commit(task_id, c))

    def reveal(
        self, worker: Any, task_id: int, root: bytes, salt: bytes = b"\x05" * 32, cid: str = "bafymanifest"
    ) -> Any:
        return self.send(worker, self.market.functions.reveal(task_id, root, salt, cid))

    def revealed(self, worker: Any, task_id: int, tree: Tree) -> None:
        """Claim, key, commit and reveal ``tree``'s root (reveals open at once for r=1)."""
        self.claim(worker, task_id)
        self.deliver(task_id, worker)
        self.commit(worker, task_id, tree.root)
        self.reveal(worker, task_id, tree.root)

    def challenge(self, challenger: Any, task_id: int, worker: Any, j: int, claimed_next: bytes) -> int:
        """Open a challenge of segment ``j`` (no proofs: the worker must answer); the dispute id."""
        addr = worker if isinstance(worker, str) else worker.address
        r = self.send(challenger, self.resolver.functions.challenge(task_id, addr, j, claimed_next))
        return int(self.chain.events(self.resolver, "DisputeOpened", r)[0]["args"]["disputeId"])

    def answer(self, dispute_id: int, tree: Tree, sender: Any = None) -> Any:
        """The accused's answer: its leaves j, j+1 of ``tree`` and their proofs."""
        j = self.dispute(dispute_id)["segment"]
        return self.send(
            sender or self.outsiders[7], self.resolver.functions.answer(dispute_id, tree.segment(j))
        )

    def claim_status(self, task_id: int, worker: Any) -> int:
        return self.market.functions.getClaim(task_id, worker.address).call()[0]

    def job(self, job_id: int) -> dict[str, Any]:
        fields = [o["name"] for o in _outputs(self.market, "getJob")]
        return dict(zip(fields, self.market.functions.getJob(job_id).call(), strict=True))

    def dispute(self, dispute_id: int) -> dict[str, Any]:
        fields = [o["name"] for o in _outputs(self.resolver, "getDispute")]
        return dict(zip(fields, self.resolver.functions.getDispute(dispute_id).call(), strict=True))


def _outputs(contract: Any, fn: str) -> list[dict[str, Any]]:
    item = next(i for i in contract.abi if i.get("name") == fn and i["type"] == "function")
    return item["outputs"][0]["components"]


@pytest.fixture(scope="session")
def deployed(w3: Any) -> Iterator[dict[str, Any]]:
    owner = dev_account(0)
    before = w3.provider.make_request("evm_snapshot", [])["result"]
    deployment = deploy_local(w3, owner)
    env = Env(w3, deployment)
    for i in range(20):
        env.send(dev_account(i), env.token.functions.approve(env.market.address, MAX))
    for v in env.verifiers:
        env.send(v, env.registry.functions.register(pubkey(v), REGISTRY_MIN_STAKE * 2))
    state = {"env": env, "snap": env.chain.snapshot()}
    yield state
    w3.provider.make_request("evm_revert", [before])


@pytest.fixture
def env(deployed: dict[str, Any]) -> Iterator[Env]:
    """The deployed protocol; the chain returns to the deployment snapshot afterwards."""
    e: Env = deployed["env"]
    e.chain.reset_nonces()
    yield e
    e.chain.revert(deployed["snap"])
    # anvil consumes a snapshot when reverting to it: take it again for the next test
    deployed["snap"] = e.chain.snapshot()


__all__ = ["Env", "Tree", "commitment", "hashes", "job_tuple", "E18"]
