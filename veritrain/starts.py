"""Bound starts: the ``h_0`` every task of a round's job must start from, and the tree over
them that ``postJob`` binds as ``startsRoot`` (docs/spec/starts.md).

Leaf ``i`` is ``keccak256(abi.encode(uint256 i, bytes32 h_0 of task i))``, paired exactly like
the checkpoint tree (:mod:`veritrain.merkle`), so one helper builds both. A revealed root whose
leaf 0 is not its task's bound start is slashed by ``JobMarket.slashWrongStart`` with two
proofs: the worker's leaf 0 under its root and the bound leaf under ``startsRoot``.

Round 0 starts from the seeded model, round ``r > 0`` from the initial model the job document
publishes (the same plaintext for every shard; :func:`veritrain.jobdoc.open_initial_model`).
``h_0`` differs per task even so: checkpoint 0 records the task (spec §7.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veritrain import crypto, merkle
from veritrain.errors import SpecError
from veritrain.jobdoc import JobDocument, open_initial_model


def start_hashes(doc: JobDocument, initial_model: bytes | None = None) -> list[bytes]:
    """``h_0`` of every task of ``doc``'s job, in task order. ``initial_model`` is the round's
    published initial-model plaintext (required for ``doc.round > 0``, refused for round 0).

    Computed in this process under the job's replay profile: when torch has not loaded yet, the
    profile's environment is set first, so a long-running role that checks starts before it
    replays still replays in-process (otherwise every later replay would need a fresh process)."""
    from veritrain.training.runner import in_process_ok, model_state_of

    in_process_ok(doc.spec)  # sets the replay profile's environment while torch is unloaded
    from veritrain.training.engine import start_hash

    if (doc.round > 0) != (initial_model is not None):
        raise SpecError([f"round {doc.round}: the bound starts need "
                         + ("the round's published initial model" if doc.round else "no initial model")])
    state = model_state_of(initial_model) if initial_model is not None else None
    return [start_hash(doc.spec, doc.task_key(s), state) for s in range(doc.spec.num_shards)]


def fetch_initial_model(doc: JobDocument, storage: Any, data_key: bytes) -> bytes | None:
    """The published initial model of ``doc``'s round (copy 0, opened and checked), or None in
    round 0: what anyone holding the job's data key needs to compute the bound starts."""
    if doc.initial_model is None:
        return None
    ref = doc.initial_model.copy_for(0)
    return open_initial_model(doc, storage.get_bytes(ref.cid), crypto.shard_key(data_key, doc.binding, 0), 0)


@dataclass(frozen=True)
class BoundStarts:
    """A job's bound starts: the tree ``postJob`` commits to, and the proofs that open it."""

    hashes: tuple[bytes, ...]

    @classmethod
    def of(cls, doc: JobDocument, initial_model: bytes | None = None) -> BoundStarts:
        return cls(tuple(start_hashes(doc, initial_model)))

    @property
    def root(self) -> bytes:
        """``startsRoot``: what ``postJob`` binds."""
        return merkle.root(self.hashes)

    def proof(self, index: int) -> list[bytes]:
        return merkle.MerkleTree(self.hashes).proof(index)

    def wrong_start(self, index: int, started: bytes, started_proof: list[bytes]) -> tuple[Any, ...] | None:
        """``slashWrongStart``'s arguments after the task id and worker when ``started`` (a
        worker's proven ``h_0``) is not task ``index``'s bound start; None when it is."""
        bound = self.hashes[index]
        if started == bound:
            return None
        return (started, list(started_proof), bound, self.proof(index))
