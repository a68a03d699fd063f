"""The well-known development accounts Anvil funds: never use them on a real network."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

#: Anvil's (and Hardhat's, and Ape's) default test mnemonic.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
#: How many accounts the dev stack's Anvil funds (`--accounts`).
DEV_ACCOUNT_COUNT = 20


@cache
def dev_account(index: int) -> LocalAccount:
    """Account ``index`` of the dev mnemonic (m/44'/60'/0'/0/index)."""
    if not 0 <= index < DEV_ACCOUNT_COUNT:
        raise ValueError(f"dev account index must be in [0, {DEV_ACCOUNT_COUNT}), got {index}")
    from eth_account import Account  # lazy: keeps `veritrain dev status` fast

    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
