"""A verifier undoes what it derived from dispute events a reorg dropped (VerifierService.undo).

The attack: a referee seat from a committee draw that a reorg dropped. Kept, the verifier would
commit and reveal votes in a dispute whose committee is drawn again, perhaps without it, and a
dispute the chain no longer has would still be driven. The chain is a stand-in answering only
``dispute(id).status``; the result side is tested on a real reorg in test_remote_like_chain.py.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from verifier.service import VerifierService
from veritrain.chain.events import Event
from veritrain.chain.states import DisputeStatus
from veritrain.journal import Journal

ME = "0x" + "aa" * 20
OTHER = "0x" + "bb" * 20


class _Chain:
    address = ME

    def __init__(self) -> None:
        self.status = DisputeStatus.VOTING

    def dispute(self, dispute_id: int) -> Any:
        return SimpleNamespace(status=self.status)


def _service(tmp_path: Path) -> tuple[VerifierService, _Chain, Journal]:
    service = VerifierService.__new__(VerifierService)  # only the journal and the chain are used here
    chain, journal = _Chain(), Journal(tmp_path / "j.sqlite")
    service.chain, service.journal = chain, journal  # type: ignore[assignment]
    return service, chain, journal


def _event(name: str, block: int, **args: Any) -> Event:
    return Event(name=name, args=args, address=OTHER, block_number=block, tx_hash="0x" + "cd" * 32,
                 log_index=0)


def _drawn(referees: list[str], block: int) -> Event:
    return _event("CommitteeDrawn", block, disputeId=5, referees=referees, commitDeadline=100,
                  revealDeadline=200)


def _opened(block: int) -> Event:
    return _event("DisputeOpened", block, disputeId=5, taskId=(1 << 32), accused=OTHER, accuser=OTHER,
                  accuserIsWorker=False, segment=2, accusedNext="0x" + "11" * 32,
                  accuserNext="0x" + "22" * 32, bond=10, drawBlock=40)


def test_a_dropped_draw_gives_up_the_seat_until_a_draw_on_the_current_chain_seats_it(tmp_path: Path) -> None:
    service, chain, journal = _service(tmp_path)
    service._on_DisputeOpened(_opened(10))
    service._on_CommitteeDrawn(_drawn([ME, OTHER], 41))
    journal.put("dispute:5", "voting", duty="committed")  # it had committed a vote
    assert journal.get("dispute:5").data["duty"] == "committed"  # type: ignore[union-attr]

    chain.status = DisputeStatus.DRAWING  # the reorg took the draw: the chain is drawing again
    poller = SimpleNamespace(retracted=[_drawn([ME, OTHER], 41)])
    assert service.undo(poller) == 1 and poller.retracted == []
    item = journal.get("dispute:5")
    assert item is not None and item.phase == "drawing"
    assert item.data["duty"] == "retracted" and item.data["referees"] is None  # no duty left

    chain.status = DisputeStatus.VOTING  # drawn again, this time without this verifier
    service._on_CommitteeDrawn(_drawn([OTHER], 43))
    assert journal.get("dispute:5").data["duty"] == "retracted"  # type: ignore[union-attr]
    service._on_CommitteeDrawn(_drawn([OTHER, ME], 44))  # and a draw that seats it: a fresh duty
    assert journal.get("dispute:5").data["duty"] == "pending"  # type: ignore[union-attr]


def test_a_dispute_the_chain_no_longer_has_is_set_aside_and_taken_again_when_reopened(tmp_path: Path) -> None:
    service, chain, journal = _service(tmp_path)
    service._on_DisputeOpened(_opened(10))
    assert journal.get("dispute:5").phase == "drawing"  # type: ignore[union-attr]

    chain.status = DisputeStatus.NONE
    service.undo(SimpleNamespace(retracted=[_opened(10)]))
    assert journal.get("dispute:5").phase == "retracted"  # type: ignore[union-attr]
    # housekeeping drives only answering, drawing and voting disputes: this one is left alone
    assert [i.key for i in journal.items("dispute:", phases=("answering", "drawing", "voting"))] == []

    reopened = _opened(12)
    reopened.args["segment"] = 3  # the same id, now another challenge
    service._on_DisputeOpened(reopened)
    item = journal.get("dispute:5")
    assert item is not None and item.phase == "drawing" and item.data["segment"] == 3


def test_events_not_derived_from_are_left_alone(tmp_path: Path) -> None:
    service, chain, journal = _service(tmp_path)
    journal.put("result:4294967296:" + OTHER, "verified", tx="0x" + "ef" * 32, task_id=1 << 32)
    service.undo(SimpleNamespace(retracted=[_event("ResultRevealed", 9, taskId=1 << 32, worker=OTHER)]))
    assert journal.get("result:4294967296:" + OTHER).phase == "verified"  # type: ignore[union-attr]


def test_the_key_service_forgets_seats_and_deliveries_a_reorg_dropped() -> None:
    """The requester's side: a referee whose key delivery was dropped is served again (not
    counted as served), and the seats of a dropped draw are not served until drawn again."""
    from requester.keyservice import KeyService

    ks = KeyService.__new__(KeyService)  # only its dispute bookkeeping is used here
    ks.job_id = 1
    ks._ours, ks._seats, ks._served = {5: 1 << 32}, {5: [ME, OTHER]}, {(5, ME.lower())}
    delivered = _event("RefereeKeyDelivered", 42, disputeId=5, referee=ME, envelope="0x00")
    ks._disputes = SimpleNamespace(poll=lambda: [], retracted=[_drawn([ME, OTHER], 41), delivered])
    assert ks._referees() == []  # no seats left to serve: nothing is sent
    assert ks._seats == {} and ks._served == set() and ks._ours == {5: 1 << 32}
    assert ks._disputes.retracted == []


def test_a_quiet_chain_costs_no_journal_write_per_tick(tmp_path: Path) -> None:
    """The pollers' states are journaled when they change, not on every tick: each write is a
    synchronous SQLite commit, four per tick before."""
    service, _chain, journal = _service(tmp_path)
    state = {"cursor": 7, "hashes": {}, "recent": []}
    poller = SimpleNamespace(poll=lambda: [], retracted=[], cursor=7, state=lambda: dict(state))
    service._market_events = service._resolver_events = poller  # type: ignore[assignment]
    service._saved = {}
    writes: list[str] = []
    journal_set = journal.set
    journal.set = lambda key, value: (writes.append(key), journal_set(key, value))  # type: ignore[method-assign]
    service.ingest()
    assert sorted(writes) == ["last_block", "poller:market", "poller:resolver"]
    writes.clear()
    service.ingest()
    service.ingest()
    assert writes == []  # nothing changed, nothing written
    state["cursor"] = poller.cursor = 9  # a new block: its state is journaled again
    service.ingest()
    assert sorted(writes) == ["last_block", "poller:market", "poller:resolver"]
    assert journal.value("last_block") == 8 and journal.value("poller:market")["cursor"] == 9
