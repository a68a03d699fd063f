"""``ChainClient``: locally signed transactions with managed nonces, retries and typed reverts.

- Signs with an eth-account ``LocalAccount``; the node holds no keys.
- Nonces: :class:`veritrain.chain.nonce.NonceManager` (threads and processes of one account).
- Gas: estimated once per transaction, times ``gas_margin``; or pass ``gas=``.
- Fees: the :class:`~veritrain.netprofile.FeePolicy` of the selected network (EIP-1559 from
  ``eth_feeHistory``, legacy ``eth_gasPrice`` where blocks have no base fee), capped; a price
  above the cap is refused (ChainError), never sent.
- RPC URLs: ``rpc_url`` may list several (``"a,b"`` or a list): a dead one fails over to the
  next, rate limits are waited out (:class:`veritrain.chain.provider.FailoverProvider`).
- Transient RPC failures (connection refused, timeouts) are retried with backoff for
  ``retry_seconds``, then raise ChainError naming the RPC URL.
- Reverts with a custom error raise the same-named subclass of ContractRevert
  (:mod:`veritrain.chain.errors`), from estimation, calls, or a mined failed transaction.
- Journaling: ``on_signed(tx_hash)`` runs after signing and before the transaction leaves,
  so a caller can record the hash first; :meth:`ChainClient.find_transaction` tells whether
  the node still knows a recorded hash (wait for it rather than send again).
- Confirmations and reorgs: with ``confirmations`` > 0 (the network profile's), a receipt is
  returned only once that many blocks are on top of it and it is still on the chain; a
  transaction a reorg dropped (the node no longer knows it) is signed again (the next free
  nonce, the current price) and sent again, and ``stats["resent"]`` counts it. A reorg deeper
  than ``confirmations`` after that is not seen here (the profile must be deeper than any reorg).

web3 is imported inside this module only; import it lazily from CLI start-up paths.
"""

from __future__ import annotations

import functools
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import requests
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from veritrain.artifacts import ARTIFACTS_DIR, artifact
from veritrain.chain import errors as chain_errors
from veritrain.chain.nonce import NonceManager
from veritrain.chain.provider import FailoverProvider
from veritrain.deployments import Deployment
from veritrain.errors import ChainError, ContractRevert
from veritrain.netprofile import FeePolicy, NetworkProfile, split_urls
from veritrain.retry import with_backoff

T = TypeVar("T")
#: ``on_signed("0x<tx hash>")``: called after signing, before the transaction is sent.
OnSigned = Callable[[str], None]
_NONCE_ERRORS = ("nonce too low", "nonce too high", "already known", "replacement transaction",
                 "invalid nonce", "nonce has already been used")


#: Words of a provider's "block range too wide" error (Alchemy, Infura, QuickNode, our proxy).
_RANGE_WORDS = ("block range", "range too", "range is too", "query returned more than", "too many blocks")


class _Pin(threading.local):
    """A thread's shared read of the latest block inside :meth:`ChainClient.one_head`."""

    on = False
    block: Any = None
    at = 0.0
    max_age = 1.0


class _Dropped(Exception):
    """Neither the chain nor the node's pool has the transaction any more (a reorg took it)."""


class RangeTooWide(Exception):
    """The provider refused an eth_getLogs block range as too wide."""


def is_range_error(exc: BaseException) -> bool:
    return any(w in str(exc).lower() for w in _RANGE_WORDS)


class ChainClient:
    def __init__(
        self,
        rpc_url: str | list[str],
        account: Any,
        deployment: Deployment | None = None,
        *,
        gas_margin: float = 1.25,
        retry_seconds: float = 15.0,
        backoff: float = 0.1,
        receipt_timeout: float = 120.0,
        poll_latency: float = 0.005,
        nonce_dir: Path | None = None,
        request_timeout: float = 30.0,
        fees: FeePolicy | None = None,
        log_range: int | None = None,
        network: NetworkProfile | None = None,
        confirmations: int | None = None,
    ) -> None:
        from veritrain import netprofile

        # the given network, else VERITRAIN_NETWORK (set by `veritrain --network NAME`)
        profile = network or netprofile.selected()
        self.profile = profile
        self.fees = fees or (profile.fees if profile else FeePolicy())
        #: The provider's eth_getLogs block-range limit (EventPoller pages within it).
        self.log_range = log_range or (profile.log_range if profile else 2000)
        #: Blocks on top of a receipt before a send returns it (re-sent if a reorg drops it).
        self.confirmations = (confirmations if confirmations is not None
                              else profile.confirmations if profile else 0)
        self.provider = FailoverProvider(split_urls(rpc_url), request_timeout=request_timeout,
                                         backoff=backoff)
        self.rpc_url = ",".join(self.provider.urls)
        #: Replaced (stuck) transactions; the provider's ``stats`` count rate limits and failovers.
        self.stats = {"replaced": 0, "resent": 0}
        self._pin = _Pin()
        self.account = account
        self.address: str = account.address
        self.deployment = deployment
        self.gas_margin = gas_margin
        self.retry_seconds = retry_seconds
        self.backoff = backoff
        self.receipt_timeout = receipt_timeout
        self.poll_latency = poll_latency
        self.w3 = Web3(self.provider)
        # web3's validation middleware asks the node for eth_chainId before every call, estimate
        # and send (half of a worker's requests, issue 25); the chain id is checked once here
        # (``chain_id`` against the profile and the deployment) and signed into every transaction
        self.w3.middleware_onion.remove("validation")
        self._chain_id: int | None = None
        self._nonce_dir = nonce_dir or Path(tempfile.gettempdir()) / "veritrain-nonces"
        self._nonces: NonceManager | None = None
        self._fees: tuple[float, dict[str, int]] | None = None
        #: What this client signed, by hash: a transaction a reorg dropped is re-sent from it.
        self._signed: dict[bytes, dict[str, Any]] = {}

    # ------------------------------------------------------------------------- basics
    def retry(self, fn: Callable[[], T], what: str) -> T:
        """Run ``fn``; retry connection failures and timeouts, then raise ChainError."""

        def give_up(exc: BaseException, attempts: int) -> ChainError:
            return ChainError(
                f"{what}: the RPC node at {self.rpc_url} did not answer after {attempts} "
                f"attempts over {self.retry_seconds:.0f} s ({type(exc).__name__}); is the "
                "node running and VERITRAIN_RPC_URL right?"
            )

        return with_backoff(
            fn,
            transient=(requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError),
            seconds=self.retry_seconds,
            backoff=self.backoff,
            give_up=give_up,
        )

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.retry(lambda: self.w3.eth.chain_id, "reading the chain id"))
            if self.profile and self.profile.chain_id != self._chain_id:
                raise ChainError(f"the RPC node at {self.rpc_url} is chain {self._chain_id}, but "
                                 f"network {self.profile.name} is chain {self.profile.chain_id}")
            if self.deployment and self.deployment.chain_id != self._chain_id:
                raise ChainError(
                    f"the RPC node at {self.rpc_url} is chain {self._chain_id}, but the deployment "
                    f"{self.deployment.network} is for chain {self.deployment.chain_id}"
                )
        return self._chain_id

    @property
    def nonces(self) -> NonceManager:
        if self._nonces is None:
            self._nonces = NonceManager(self.address, self.chain_id, self._nonce_dir, self._pending)
        return self._nonces

    def _pending(self) -> int:
        addr: Any = self.address
        return int(self.retry(lambda: self.w3.eth.get_transaction_count(addr, "pending"),
                              "reading the pending nonce"))

    def block_number(self) -> int:
        if self._pin.on:
            return int(self.head()["number"])
        return int(self.retry(lambda: self.w3.eth.block_number, "reading the block number"))

    def timestamp(self) -> int:
        """Chain time: the latest block's timestamp (what the next transaction is checked against)."""
        return int(self.head()["timestamp"])

    def head(self) -> Any:
        """The latest block (header). Inside :meth:`one_head` one read serves every reader."""
        pin = self._pin
        if pin.on and pin.block is not None and time.monotonic() - pin.at < pin.max_age:
            return pin.block
        block = self.retry(lambda: self.w3.eth.get_block("latest"), "reading the latest block")
        if pin.on:
            pin.block, pin.at = block, time.monotonic()
        return block

    @contextmanager
    def one_head(self, max_age: float = 1.0) -> Iterator[None]:
        """One pass of a role's loop: its readers of the latest block (chain time, the block
        number, every :class:`~veritrain.chain.events.EventPoller`) share one read, instead of a
        request each (issue 25: a verifier's pass read the latest block five times). The shared
        read is dropped when this client sends a transaction (its block is newer) and after
        ``max_age`` seconds (a pass that trains or waits sees time move). Per thread; nests."""
        pin = self._pin
        if pin.on:
            yield
            return
        pin.on, pin.block, pin.at, pin.max_age = True, None, 0.0, max_age
        try:
            yield
        finally:
            pin.on, pin.block = False, None

    def logs(self, event: Any, from_block: int, to_block: int | None = None,
             **filters: Any) -> list[Any]:
        """Decoded logs of a web3 contract ``event`` from ``from_block`` to ``to_block`` (default:
        the head) whose indexed arguments match ``filters``, read in pages of at most
        :attr:`log_range` blocks (halved while the provider refuses a page as too wide)."""
        end = self.block_number() if to_block is None else to_block
        step, start = self.log_range, from_block
        out: list[Any] = []
        while start <= end:
            stop = min(start + step - 1, end)
            try:
                page: list[Any] = self.retry(functools.partial(self._page, event, start, stop, filters),
                                             f"reading {event.event_name} events")
                out += page
            except RangeTooWide:
                if step == 1:
                    raise ChainError(f"the node at {self.rpc_url} refuses even a 1-block log range") from None
                step = max(1, step // 2)
                continue
            start = stop + 1
        return out

    @staticmethod
    def _page(event: Any, start: int, stop: int, filters: dict[str, Any]) -> list[Any]:
        try:
            return list(event.get_logs(from_block=start, to_block=stop, argument_filters=filters))
        except Web3RPCError as exc:
            if is_range_error(exc):
                raise RangeTooWide(str(exc)) from None
            raise

    def find_transaction(self, tx_hash: str | bytes) -> Any | None:
        """The transaction ``tx_hash`` if the node knows it (pending or mined), else None."""
        from web3.exceptions import TransactionNotFound

        h: Any = tx_hash
        try:
            return self.retry(lambda: self.w3.eth.get_transaction(h), "looking up a transaction")
        except TransactionNotFound:
            return None

    def contract(self, name: str, address: str | None = None, folder: Path = ARTIFACTS_DIR) -> Any:
        """A web3 contract for ``name`` (ABI from artifacts, address from the deployment)."""
        art = artifact(name, folder)
        chain_errors.register_abi(art["abi"])
        if address is None:
            if self.deployment is None:
                raise ChainError(f"no address for {name}: pass address= or a deployment")
            address = self.deployment.address(name)
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=art["abi"])

    # -------------------------------------------------------------------- calls and txs
    def call(self, contract: Any, fn: str, *args: Any, block: int | str = "latest") -> Any:
        func = contract.functions[fn](*args)
        return self.retry(lambda: self._reverts(lambda: func.call({"from": self.address},
                                                                 block_identifier=block)),
                          f"calling {fn}")

    def transact(self, contract: Any, fn: str, *args: Any, gas: int | None = None,
                 value: int = 0, wait: bool = True, on_signed: OnSigned | None = None,
                 last_look: Callable[[], None] | None = None) -> Any:
        """Send ``fn(*args)``; returns the receipt (or the tx hash when ``wait=False``)."""
        data = contract.encode_abi(fn, args=list(args))
        return self.send({"to": contract.address, "data": data, "value": value}, gas=gas,
                         wait=wait, what=fn, on_signed=on_signed, last_look=last_look)

    def estimate(self, contract: Any, fn: str, *args: Any, value: int = 0) -> int:
        """The gas limit :meth:`transact` would use for ``fn(*args)`` now (estimate × margin); a
        revert raises its decoded ContractRevert."""
        tx = {"from": self.address, "chainId": self.chain_id, "to": contract.address,
              "data": contract.encode_abi(fn, args=list(args)), "value": value}
        return self._gas_limit(tx, fn)

    def _gas_limit(self, tx: dict[str, Any], what: str) -> int:
        estimate = self.retry(lambda: self._reverts(lambda: self.w3.eth.estimate_gas(tx)),  # type: ignore[arg-type]
                              f"estimating gas for {what}")
        return int(estimate * self.gas_margin)

    def send(self, tx: dict[str, Any], *, gas: int | None = None, wait: bool = True,
             what: str = "transaction", on_signed: OnSigned | None = None,
             last_look: Callable[[], None] | None = None) -> Any:
        """Estimate, sign, send. ``on_signed("0x<hash>")`` runs before the transaction leaves
        (again with the new hash if a nonce error makes it re-sign). ``last_look()`` runs after
        it, right before the signed bytes leave; an exception it raises stops the send (the
        nonce stays unused)."""
        tx = {"from": self.address, "chainId": self.chain_id, **tx}
        tx["gas"] = self._gas_limit(tx, what) if gas is None else gas
        tx.update(self._fee_fields())
        tx_hash = self._sign_and_send(tx, what, on_signed, last_look)
        if not wait:
            return tx_hash
        return self.wait(tx_hash, tx, what, on_signed)

    def _sign_and_send(self, tx: dict[str, Any], what: str, on_signed: OnSigned | None = None,
                       last_look: Callable[[], None] | None = None) -> Any:
        for attempt in range(3):
            try:
                with self.nonces.reserve() as nonce:
                    signed = self.account.sign_transaction({**tx, "nonce": nonce})
                    tx["nonce"] = nonce  # for a replacement (same nonce, bumped fee) in wait()
                    self._remember(bytes(signed.hash), tx)
                    if on_signed is not None:
                        on_signed("0x" + bytes(signed.hash).hex())
                    if last_look is not None:
                        last_look()
                    self._pin.block = None  # a shared head read before this transaction is stale
                    return self.retry(functools.partial(self._send_raw, signed), f"sending {what}")
            except (Web3RPCError, ValueError) as exc:
                if attempt < 2 and any(s in str(exc).lower() for s in _NONCE_ERRORS):
                    self.nonces.resync()
                    continue
                self.nonces.resync()
                raise ChainError(
                    f"{what}: the node at {self.rpc_url} rejected the transaction: {exc}"
                ) from exc
        raise AssertionError("unreachable")

    def _send_raw(self, signed: Any) -> Any:
        try:
            return self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except (Web3RPCError, ValueError) as exc:
            if "already known" in str(exc).lower():  # our own earlier attempt got through
                return signed.hash
            raise

    def wait(self, tx_hash: Any, tx: dict[str, Any] | None = None, what: str = "transaction",
             on_signed: OnSigned | None = None) -> Any:
        """The receipt of ``tx_hash``; a failed transaction raises its decoded revert.

        With ``fees.replace_after`` set, a transaction not mined within that many seconds is
        replaced: the same nonce, re-signed at the current price but at least ``bump_percent``
        above the last (what nodes require of a replacement); whichever version is mined is the
        receipt returned. ``stats["replaced"]`` counts replacements.

        With :attr:`confirmations`, the receipt is returned once it has that many blocks on top
        and is still on the chain; a transaction a reorg dropped is signed and sent again
        (``stats["resent"]``). ``on_signed(hash)`` runs before each replacement or re-send
        leaves, so a journal knows every hash sent for the action."""
        if isinstance(tx_hash, str):
            tx_hash = bytes.fromhex(tx_hash.removeprefix("0x"))
        if tx is None:
            tx = self._signed.get(bytes(tx_hash))
        deadline = time.monotonic() + self.receipt_timeout
        while True:
            try:
                if self.fees.replace_after or self.confirmations > 0:
                    receipt = self._wait_replacing(tx_hash, tx, what, on_signed)
                else:
                    receipt = self._wait_one(tx_hash, what)
                if self.confirmations <= 0 or self._confirmed(receipt, deadline, what):
                    break
                # a reorg took the block: still in the node's pool (wait again), or dropped (send again)
                mined = bytes(receipt["transactionHash"])
                if self.find_transaction(mined) is not None:
                    tx_hash = mined
                    continue
            except _Dropped as gone:
                mined = gone.args[0]
            original = tx if tx is not None else self._signed.get(mined)
            if original is None:
                raise ChainError(f"{what} {mined.hex()} was dropped by a reorg and this process did "
                                 "not sign it, so it cannot send it again")
            again = {k: v for k, v in original.items()
                     if k not in ("nonce", "maxFeePerGas", "maxPriorityFeePerGas", "gasPrice")}
            again.update(self._fee_fields())
            tx_hash = bytes(self._sign_and_send(again, f"{what} (again, after a reorg)", on_signed))
            tx = again
            self.stats["resent"] += 1
        if receipt["status"] != 1:
            raise self._failed(bytes(receipt["transactionHash"]), tx, receipt, what)
        return receipt

    def _confirmed(self, receipt: Any, deadline: float, what: str) -> bool:
        """Wait for :attr:`confirmations` blocks on top of ``receipt``; False if a reorg took it
        (the transaction is no longer in the block it was mined in)."""
        target = int(receipt["blockNumber"]) + self.confirmations
        block_hash = bytes(receipt["blockHash"])
        while self.block_number() < target:
            if time.monotonic() > deadline:
                raise ChainError(f"{what}: {self.confirmations} confirmations did not come within "
                                 f"{self.receipt_timeout:.0f} s on {self.rpc_url}")
            time.sleep(max(self.poll_latency, 0.2))
        now = self._receipt(bytes(receipt["transactionHash"]))
        return now is not None and bytes(now["blockHash"]) == block_hash

    def _remember(self, tx_hash: bytes, tx: dict[str, Any]) -> None:
        self._signed[tx_hash] = dict(tx)
        while len(self._signed) > 256:  # only recent sends can still be taken by a reorg
            self._signed.pop(next(iter(self._signed)))

    def _wait_one(self, tx_hash: bytes, what: str) -> Any:
        """Poll for the receipt, paced by the block time (``receipts.receipt_poll_delays``)."""
        from veritrain.chain.receipts import receipt_poll_delays

        deadline = time.monotonic() + self.receipt_timeout
        cap = self.profile.poll_interval / 4 if self.profile else None
        for delay in receipt_poll_delays(self.poll_latency, *([cap] if cap else [])):
            receipt = self._receipt(tx_hash)
            if receipt is not None:
                return receipt
            if time.monotonic() + delay > deadline:
                break
            time.sleep(delay)
        self.nonces.resync()  # a stuck (e.g. queued, gapped) nonce must not block later sends
        raise ChainError(f"{what} {tx_hash.hex()} was not mined within {self.receipt_timeout:.0f} s "
                         f"on {self.rpc_url}")

    def _receipt(self, tx_hash: bytes) -> Any | None:
        from web3.exceptions import TransactionNotFound

        try:
            h: Any = tx_hash
            return self.retry(lambda: self.w3.eth.get_transaction_receipt(h), "reading a receipt")
        except TransactionNotFound:
            return None

    def _wait_replacing(self, tx_hash: bytes, tx: dict[str, Any] | None, what: str,
                        on_signed: OnSigned | None = None) -> Any:
        """Poll the receipts of ``tx_hash`` and its replacements (``fees.replace_after``); with
        :attr:`confirmations`, raise :class:`_Dropped` once the node has lost every version
        twice in a row, 2 s apart (a reorg took it before its receipt was read)."""
        hashes = [tx_hash]
        start = last_sent = last_look = time.monotonic()
        current = dict(tx) if tx is not None and "nonce" in tx else None
        missing = 0
        while time.monotonic() - start < self.receipt_timeout:
            for h in reversed(hashes):
                receipt = self._receipt(h)
                if receipt is not None:
                    return receipt
            if self.confirmations > 0 and time.monotonic() - last_look >= 2.0:
                last_look = time.monotonic()
                known = any(self.find_transaction(h) is not None for h in hashes)
                missing = 0 if known else missing + 1
                if missing >= 2:
                    raise _Dropped(hashes[-1])
            if self.fees.replace_after and time.monotonic() - last_sent >= self.fees.replace_after:
                current = current or self._as_sent(hashes[0])
                if current is not None:
                    current, new_hash = self._replace(current, what, on_signed)
                    if new_hash is not None:
                        hashes.append(new_hash)
                last_sent = time.monotonic()
            time.sleep(max(self.poll_latency, 0.1))
        self.nonces.resync()
        raise ChainError(f"{what} {tx_hash.hex()} was not mined within {self.receipt_timeout:.0f} s "
                         f"on {self.rpc_url}, replaced {len(hashes) - 1} time(s)")

    def _as_sent(self, tx_hash: bytes) -> dict[str, Any] | None:
        """The transaction as the node has it (for a hash recorded by an earlier call)."""
        found = self.find_transaction(tx_hash)
        if found is None:
            return None
        out = {"from": found["from"], "to": found["to"], "data": found["input"], "value": found["value"],
               "gas": found["gas"], "nonce": found["nonce"], "chainId": self.chain_id}
        for k in ("maxFeePerGas", "maxPriorityFeePerGas", "gasPrice"):
            if found.get(k) is not None and (k == "gasPrice") == ("maxFeePerGas" not in found):
                out[k] = int(found[k])
        return out

    def _replace(self, tx: dict[str, Any], what: str,
                 on_signed: OnSigned | None = None) -> tuple[dict[str, Any], bytes | None]:
        """``tx`` re-signed with the same nonce and a bumped fee, sent; (new tx, its hash or None
        when the node says the nonce is already used: an earlier version was mined)."""
        self._fees = None
        fresh = self.price()
        bump = 1 + self.fees.bump_percent / 100
        # keep the transaction's fee type; each field: the current price or the bumped old one
        fields: dict[str, int] = {k: max(int(fresh.get(k, 0)), int(int(tx[k]) * bump) + 1)
                  for k in ("maxFeePerGas", "maxPriorityFeePerGas", "gasPrice") if k in tx}
        if max(fields.values()) > self.fees.max_fee_wei:
            return tx, None  # the cap forbids a higher bid: keep waiting for the one sent
        new: dict[str, Any] = {**tx, **fields}
        signed = self.account.sign_transaction(new)
        self._remember(bytes(signed.hash), new)
        if on_signed is not None:
            on_signed("0x" + bytes(signed.hash).hex())
        try:
            self.retry(functools.partial(self._send_raw, signed), f"replacing {what}")
        except (Web3RPCError, ValueError) as exc:
            if any(s in str(exc).lower() for s in _NONCE_ERRORS):
                return tx, None
            raise
        self.stats["replaced"] += 1
        return new, bytes(signed.hash)

    def _failed(self, tx_hash: Any, tx: dict[str, Any] | None, receipt: Any, what: str) -> ChainError:
        """Replay a failed tx at its block to recover the revert reason."""
        h = "0x" + bytes(tx_hash).hex()
        if tx is None:  # a hash recorded earlier (e.g. by a restarted process): ask the node
            found = self.find_transaction(h)
            tx = {"from": found["from"], "to": found["to"], "data": found["input"],
                  "value": found["value"], "gas": found["gas"]} if found else None
        if tx:
            replay = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}
            try:
                self.w3.eth.call(replay, receipt["blockNumber"] - 1)  # type: ignore[arg-type]
            except ContractLogicError as exc:
                err = chain_errors.decode_revert(exc.data if isinstance(exc.data, str) else None, h)
                if err is not None:
                    return err
            except Exception:  # noqa: S110 - best effort; fall through to a plain error
                pass
        return ChainError(f"{what} {h} reverted (gas used {receipt['gasUsed']} of {tx and tx.get('gas')})")

    def _reverts(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except ContractLogicError as exc:
            data = exc.data if isinstance(exc.data, str) else None
            err = chain_errors.decode_revert(data)
            if err is not None:
                raise err from None
            raise ContractRevert("Unknown", {"message": str(exc), "data": data}) from None
        except Web3RPCError as exc:
            raise ChainError(f"the node at {self.rpc_url} refused: {exc}") from None

    def _fee_fields(self) -> dict[str, int]:
        now = time.monotonic()
        if self._fees is None or now - self._fees[0] > 2.0:
            self._fees = (now, self.price())
        return self._fees[1]

    def price(self) -> dict[str, int]:
        """The fee fields of the next transaction under :attr:`fees` (see the module doc)."""
        policy = self.fees
        cap = policy.max_fee_wei
        if policy.mode != "legacy":
            hist = self.retry(lambda: self.w3.eth.fee_history(policy.history_blocks, "latest",
                                                              [policy.reward_percentile]),
                              "reading the fee history")
            bases = [int(b) for b in hist.get("baseFeePerGas") or []]
            if bases and bases[-1] > 0:
                base = bases[-1]  # the next block's base fee
                rewards = sorted(int(r[0]) for r in hist.get("reward") or [] if r)
                tip = max(rewards[len(rewards) // 2] if rewards else 0, policy.min_priority_fee_wei)
                if base + tip > cap:
                    raise ChainError(f"the network's fee ({(base + tip) / 1e9:.2f} gwei: base "
                                     f"{base / 1e9:.2f} + tip {tip / 1e9:.2f}) exceeds the cap of "
                                     f"{policy.max_fee_gwei} gwei (fees.max_fee_gwei); not sending")
                return {"maxFeePerGas": min(2 * base + tip, cap), "maxPriorityFeePerGas": tip}
            if policy.mode == "eip1559":
                raise ChainError(f"the chain at {self.rpc_url} has no base fee: set fees.mode = "
                                 "\"legacy\" (or \"auto\") in its network profile")
        price = int(self.retry(lambda: self.w3.eth.gas_price, "reading the gas price"))
        if price > cap:
            raise ChainError(f"the network's gas price ({price / 1e9:.2f} gwei) exceeds the cap of "
                             f"{policy.max_fee_gwei} gwei (fees.max_fee_gwei); not sending")
        return {"gasPrice": price}
