"""Thin wrappers named after contract functions, generated from the shipped ABIs.

``client.bind("JobMarket").claim(task_id, pubkey)`` sends a transaction (returns the receipt);
``view``/``pure`` functions are calls returning their decoded outputs. Each wrapper carries
the ABI signature in its docstring; ``events(...)`` builds an EventPoller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from veritrain.artifacts import ARTIFACTS_DIR
from veritrain.chain.client import ChainClient
from veritrain.chain.events import EventPoller


class BoundContract:
    """One deployed contract bound to a client; functions are attributes."""

    def __init__(self, client: ChainClient, name: str, address: str | None = None,
                 folder: Path = ARTIFACTS_DIR) -> None:
        self.client = client
        self.name = name
        self.web3_contract = client.contract(name, address, folder)
        self.address: str = self.web3_contract.address
        self._fns = {f["name"]: f for f in self.web3_contract.abi if f.get("type") == "function"}

    @property
    def function_names(self) -> list[str]:
        return sorted(self._fns)

    def __getattr__(self, fn: str) -> Any:
        abi = self.__dict__.get("_fns", {}).get(fn)
        if abi is None:
            raise AttributeError(f"{self.__dict__.get('name', 'contract')} has no function {fn}")
        sig = f"{fn}({', '.join(i['type'] + ' ' + i['name'] for i in abi['inputs'])})"
        if abi.get("stateMutability") in ("view", "pure"):

            def call(*args: Any, block: int | str = "latest") -> Any:
                return self.client.call(self.web3_contract, fn, *args, block=block)

            call.__doc__ = f"call {self.name}.{sig}"
            return call

        def transact(*args: Any, gas: int | None = None, value: int = 0, wait: bool = True) -> Any:
            return self.client.transact(self.web3_contract, fn, *args, gas=gas, value=value, wait=wait)

        transact.__doc__ = f"transact {self.name}.{sig}"
        return transact

    def events(self, from_block: int, names: list[str] | None = None,
               confirmations: int = 0, step: int | None = None,
               quiet_after: float | None = None) -> EventPoller:
        return EventPoller(self.client, self.web3_contract, from_block, names=names,
                           confirmations=confirmations, step=step, quiet_after=quiet_after)


def bind(client: ChainClient, name: str, address: str | None = None,
         folder: Path = ARTIFACTS_DIR) -> BoundContract:
    return BoundContract(client, name, address, folder)
