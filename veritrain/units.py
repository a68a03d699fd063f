"""Token amounts as people read and type them: decimals and the token's symbol.

Contracts count base units (``10**decimals`` per token); every command takes amounts in
tokens (``--reward 2.5``) and shows them the same way (``2.5 VTD``), never as raw integers.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from veritrain.errors import ConfigError


def parse_tokens(text: str, what: str, decimals: int, *, allow_zero: bool = False) -> int:
    """``"2.5"`` tokens as base units; ConfigError naming ``what`` for anything else."""
    try:
        value = Decimal(str(text).strip()) * (Decimal(10) ** decimals)
    except InvalidOperation:
        raise ConfigError(f"{what} {text!r} is not a number of tokens") from None
    whole = value.is_finite() and value == value.to_integral_value()
    if not whole or value < 0 or (value == 0 and not allow_zero):
        kind = "a non-negative" if allow_zero else "a positive"
        raise ConfigError(f"{what} {text!r} must be {kind} amount with at most {decimals} decimals")
    return int(value)


def format_tokens(amount: int, decimals: int = 18, symbol: str = "") -> str:
    """Base units as tokens: ``format_tokens(1_200_000 * 10**18, 18, "VTD") == "1,200,000 VTD"``;
    fractions keep every significant digit (``0.000001 VTD``), never rounding money away."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(int(amount)), 10**decimals)
    text = f"{sign}{whole:,}"
    if frac:
        text += "." + f"{frac:0{decimals}d}".rstrip("0")
    return f"{text} {symbol}".rstrip() if symbol else text


class TokenFormat:
    """One token's decimals and symbol, read once from the chain (``token`` is a web3 contract)."""

    def __init__(self, decimals: int = 18, symbol: str = "") -> None:
        self.decimals = decimals
        self.symbol = symbol

    @classmethod
    def of(cls, token: object) -> TokenFormat:
        fns = token.functions  # type: ignore[attr-defined]
        return cls(int(fns.decimals().call()), str(fns.symbol().call()))

    def __call__(self, amount: int) -> str:
        return format_tokens(amount, self.decimals, self.symbol)

    def parse(self, text: str, what: str, *, allow_zero: bool = False) -> int:
        return parse_tokens(text, what, self.decimals, allow_zero=allow_zero)
