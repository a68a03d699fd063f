"""Protocol parameters per network: what the contracts are deployed with, from a file a deployer edits.

``veritrain/networks/<network>.toml`` holds one network's bonds, fees, windows and committee size
(``local.toml`` is the local defaults that the dev stack, the tests and ``ape run deploy`` on the
local network use). :func:`load_params` validates a file completely before anything is deployed:
every problem is listed with its path in one :class:`~veritrain.errors.ConfigError`.

Adding a contract parameter is one field here (in the contract's order, for the resolver's
``Params`` tuple) and one line in each network file; the deploy code reads the model, never the keys.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from veritrain.errors import ConfigError

#: The network files shipped with the package (``local.toml``).
NETWORKS_DIR = Path(__file__).parent / "networks"

UINT32_MAX = 2**32 - 1
BPS = 10_000
MAX_COMMITTEE = 13  # DisputeResolver.MAX_COMMITTEE

Seconds = int


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RegistryParams(_Section):
    min_stake: Decimal = Field(ge=0, description="tokens a verifier stakes")
    unbonding_delay: Seconds = Field(gt=0, le=2**64 - 1)


class ResolverParams(_Section):
    """``DisputeResolver.Params``: fields in the contract's order (:meth:`abi_tuple` relies on it)."""


    committee_size: int = Field(ge=1, le=MAX_COMMITTEE)
    challenge_bond: Decimal = Field(ge=0, description="tokens")
    draw_window: Seconds = Field(gt=0, le=UINT32_MAX)
    commit_window: Seconds = Field(gt=0, le=UINT32_MAX)
    reveal_window: Seconds = Field(gt=0, le=UINT32_MAX)
    bounty_bps: int = Field(ge=0, le=BPS)
    referee_fee_bps: int = Field(ge=0, le=BPS)
    referee_slash_bps: int = Field(ge=0, le=BPS)
    response_window: Seconds = Field(gt=0, le=UINT32_MAX, description="time an accused worker has to "
                                     "answer a challenge with its leaves and proofs")
    forced_error_bps: int = Field(ge=0, le=BPS, description="share of redundancy-1 claims that must "
                                  "reveal a forced error (docs/spec/forced.md)")
    jackpot_fee_bps: int = Field(ge=0, le=BPS, description="share of a redundancy-1 job's rewards its "
                                 "requester pays into the jackpot pool; a forced error's catcher gets "
                                 "reward x jackpot_fee_bps / forced_error_bps")

    @model_validator(mode="after")
    def _contract_rules(self) -> ResolverParams:
        if self.committee_size % 2 == 0:
            raise ValueError("committee_size: must be odd (a majority must exist)")
        if self.bounty_bps + self.referee_fee_bps > BPS:
            raise ValueError(f"bounty_bps: bounty_bps + referee_fee_bps must be <= {BPS}")
        if self.forced_error_bps == 0 and self.jackpot_fee_bps != 0:
            raise ValueError("jackpot_fee_bps: must be 0 when forced_error_bps is 0 "
                             "(nothing would pay it out)")
        return self

    @property
    def longest_dispute(self) -> int:
        return self.response_window + self.draw_window + self.commit_window + self.reveal_window


class DevTokenParams(_Section):
    mint_per_account: Decimal = Field(ge=0, description="tokens")
    funded_accounts: int = Field(ge=0, le=1000)


class NetworkParams(_Section):
    """One network's parameters; token amounts in whole tokens, converted by :meth:`wei`."""

    token_decimals: int = Field(default=18, ge=0, le=36)
    registry: RegistryParams
    resolver: ResolverParams
    dev_token: DevTokenParams | None = None

    @model_validator(mode="after")
    def _outlives_a_dispute(self) -> NetworkParams:
        if self.registry.unbonding_delay <= self.resolver.longest_dispute:
            raise ValueError(
                f"registry.unbonding_delay: must exceed response + draw + commit + reveal windows "
                f"({self.resolver.longest_dispute} s), so a referee's stake outlives its duty")
        self._units("registry.min_stake", self.registry.min_stake)
        if self.dev_token is not None:
            self._units("dev_token.mint_per_account", self.dev_token.mint_per_account)
        if self._units("resolver.challenge_bond", self.resolver.challenge_bond) >= 2**96:
            raise ValueError("resolver.challenge_bond: must be below 2**96 token units (uint96)")
        return self

    def _units(self, path: str, tokens: Decimal) -> int:
        units = tokens * (Decimal(10) ** self.token_decimals)
        if units != units.to_integral_value():
            raise ValueError(f"{path}: {tokens} tokens is not a whole number of units "
                             f"at {self.token_decimals} decimals")
        return int(units)

    def wei(self, tokens: Decimal) -> int:
        """A token amount of this file in the token's smallest units."""
        return self._units("amount", tokens)

    @property
    def min_stake(self) -> int:
        return self.wei(self.registry.min_stake)

    @property
    def unbonding_delay(self) -> int:
        return self.registry.unbonding_delay

    def resolver_params(self) -> dict[str, int]:
        """The resolver's ``Params`` by the contract's field names, amounts in units, in ABI order."""
        r = self.resolver
        return {to_camel(name): (self.wei(value) if isinstance(value, Decimal) else int(value))
                for name, value in ((n, getattr(r, n)) for n in ResolverParams.model_fields)}


def _problems(exc: ValidationError) -> list[str]:
    from veritrain.training.model_entry import format_error

    return [format_error(err) for err in exc.errors()]


def parse_params(raw: dict[str, Any], source: str) -> NetworkParams:
    try:
        return NetworkParams.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid protocol parameters in {source}: " + "; ".join(_problems(exc))) from None


def load_params(path: Path) -> NetworkParams:
    """Read and validate one network file; :class:`ConfigError` saying what is wrong and where."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no protocol parameter file at {path}: copy {NETWORKS_DIR / 'local.toml'} "
                          "and edit it for this network") from None
    except (tomllib.TOMLDecodeError, InvalidOperation) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse_params(raw, str(path))


def network_params(network: str) -> NetworkParams:
    """The shipped parameters of ``network`` (``veritrain/networks/<network>.toml``)."""
    if not network.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"network name {network!r} is not a plain name")
    path = NETWORKS_DIR / f"{network}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in NETWORKS_DIR.glob("*.toml")))
        raise ConfigError(f"no protocol parameters for network {network!r} (known: {known}): write "
                          f"{path} (copy local.toml) or pass a parameter file")
    return load_params(path)
