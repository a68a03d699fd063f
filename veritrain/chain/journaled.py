"""The one journaled send: every role that journals its transactions sends through it.

A transaction goes intent -> sent (with its hash) -> mined | failed | dropped in the journal
(:class:`veritrain.journal.Journal`). The hash is written *before* the signed transaction
leaves (``ChainClient``'s ``on_signed`` hook), so a process killed between broadcasting and
mining finds the hash on restart (:meth:`JournaledSender.pending`) and waits for it
(:meth:`JournaledSender.send_once`) instead of sending the same action twice.

Every hash sent for one action is journaled: a stuck transaction's replacement (same nonce,
bumped fee) and a transaction signed again after a reorg dropped it (``ChainClient.wait``)
each get a record of their own for the same (item, action), written before they leave. When
one is mined, the others of the action are marked dropped; a restarted role looks through all
of them (newest first), so it waits for whichever version the node still has. A revert at
estimation (nothing sent, no nonce used) or a mined revert is recorded as failed with the
decoded error's name and re-raised; any other failure is recorded with its message.

``transact(on_signed)`` is whatever signs and broadcasts one transaction without waiting for
it (``ChainClient.transact(..., wait=False, on_signed=on_signed)``, or a typed facade method
given ``wait=False``) and returns its hash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from veritrain.errors import ChainError, ContractRevert
from veritrain.journal import Journal, TxStatus

#: Signs and broadcasts one transaction, calling ``on_signed(hash)`` before it leaves; returns the hash.
Transact = Callable[[Callable[[str], None]], Any]


def _failure(exc: BaseException) -> str:
    return exc.name if isinstance(exc, ContractRevert) else str(exc)[:200]


class JournaledSender:
    """Journaled sends through one :class:`veritrain.chain.ChainClient`."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def send(self, journal: Journal, item: str, action: str, transact: Transact, *,
             detail: str | None = None) -> Any:
        """Send one transaction, journaled; wait for its receipt and return it."""
        tx_id = journal.tx_intent(item, action, detail=detail)
        sent: list[str] = []

        def record(tx_hash: str) -> None:  # runs before the signed transaction leaves
            sent.append(tx_hash)
            journal.tx_update(tx_id, TxStatus.SENT, tx_hash)

        try:
            transact(record)
        except Exception as exc:
            journal.tx_update(tx_id, TxStatus.FAILED, detail=_failure(exc))
            raise
        return self.wait(sent[-1], journal, tx_id, action, item=item)

    @staticmethod
    def _recorder(journal: Journal, tx_id: int, item: str, action: str) -> tuple[dict[str, int],
                                                                               Callable[[str], None]]:
        """``on_signed`` for the later versions of one send (replacements, re-sends after a
        reorg): each hash gets a sent record of its own before it leaves. Returns (record id by
        hash, the hook)."""
        ids: dict[str, int] = {}

        def record(tx_hash: str) -> None:
            if tx_hash.lower() in ids:  # the same signed bytes again (same nonce and price): one record
                return
            new_id = journal.tx_intent(item, action, detail=f"another version of journal tx {tx_id}")
            journal.tx_update(new_id, TxStatus.SENT, tx_hash)
            ids[tx_hash.lower()] = new_id

        return ids, record

    def _settle(self, journal: Journal, ids: dict[str, int], receipt: Any) -> None:
        """Mark the version that was mined ``mined`` and every other version ``dropped``."""
        mined = "0x" + bytes(receipt["transactionHash"]).hex()
        for h, rec_id in ids.items():
            journal.tx_update(rec_id, TxStatus.MINED if h == mined else TxStatus.DROPPED)

    def wait(self, tx_hash: str, journal: Journal | None = None, tx_id: int | None = None,
             action: str = "transaction", *, item: str | None = None) -> Any:
        """The receipt; a reverted transaction raises its decoded error (e.g. a lost race).

        Replacements and re-sends after a reorg (``ChainClient.wait``) are journaled as they go."""
        ids: dict[str, int] = {}
        hook: Callable[[str], None] | None = None
        if journal is not None and tx_id is not None:
            if item is None:
                item = next((r.item for r in journal.txs(action=action) if r.id == tx_id), "?")
            ids, hook = self._recorder(journal, tx_id, item, action)
            ids[str(tx_hash).lower()] = tx_id
        try:
            receipt = self.client.wait(tx_hash, what=action, on_signed=hook)
        except ChainError as exc:  # reverted (decoded, or not), or not mined in time
            if isinstance(exc, ContractRevert):
                exc.tx = tx_hash
            if journal is not None and tx_id is not None and (isinstance(exc, ContractRevert)
                                                              or " reverted " in str(exc)):
                for rec_id in ids.values():
                    journal.tx_update(rec_id, TxStatus.FAILED, detail=_failure(exc))
            raise
        if journal is not None and tx_id is not None:
            self._settle(journal, ids, receipt)
        return receipt

    def pending(self, journal: Journal, item: str, action: str) -> str | None:
        """Hash of a ``sent`` transaction for (item, action) the node still knows, not yet mined;
        a hash the node has forgotten is marked dropped."""
        for rec in reversed(journal.txs(item, action)):
            if rec.status != TxStatus.SENT or not rec.tx_hash:
                continue
            if self.client.find_transaction(rec.tx_hash) is None:
                journal.tx_update(rec.id, TxStatus.DROPPED)
                continue
            return rec.tx_hash
        return None

    def send_once(self, journal: Journal, item: str, action: str, transact: Transact, *,
                  detail: str | None = None) -> Any:
        """Wait for a still-pending earlier attempt of (item, action), or send it now."""
        earlier = self.pending(journal, item, action)
        if earlier is not None:
            return self.wait(earlier, action=action)
        return self.send(journal, item, action, transact, detail=detail)
