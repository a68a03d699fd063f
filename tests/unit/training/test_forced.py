"""Forced errors (docs/spec/forced.md): the draw, the selection, and a wrong checkpoint that
only a replay of segment j* shows, in exact and in tolerance mode."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
from sha3 import keccak_256

from veritrain import forced
from veritrain.checkpoint import checkpoint_hash, decode
from veritrain.spec import TaskKey
from veritrain.training import engine, judges, tolerance
from veritrain.training.sinks import MemorySink

TASK = TaskKey(round=0, shard=0)
SNAP = hashlib.sha256(b"the claim's block").digest()


def secret(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest()


def test_the_draw_is_keccak_of_secret_and_snapshot() -> None:
    s = secret(1)
    assert forced.seed_hash(s) == keccak_256(s).digest()
    assert forced.draw(s, SNAP) == int.from_bytes(keccak_256(s + SNAP).digest(), "big")
    with pytest.raises(ValueError, match="snap must be 32 bytes"):
        forced.draw(s, SNAP[:31])
    with pytest.raises(ValueError, match="secret must be 32 bytes"):
        forced.seed_hash(b"short")


def test_the_share_selected_is_the_rate_and_j_star_never_touches_the_model() -> None:
    """At 100 bps, 20,000 claims: the selected share within 4.5 sigma of 1 %; every j* in
    0..n-2, each reached, so checkpoint n (the model the requester takes) is never perturbed."""
    n, bps, trials = 6, 100, 20_000
    picks = [forced.select(secret(i), SNAP, bps=bps, redundancy=1, checkpoints=n) for i in range(trials)]
    chosen = [p for p in picks if p.selected]
    mean, sd = trials * bps / forced.BPS, math.sqrt(trials * 0.01 * 0.99)
    assert abs(len(chosen) - mean) < 4.5 * sd
    assert {p.segment for p in chosen} == set(range(n - 1))
    assert all(p.segments == (p.segment, p.segment + 1) and p.segment + 1 <= n - 1 for p in chosen)
    assert not any(p.selected or p.segment is not None for p in picks if p not in chosen)


@pytest.mark.parametrize(("snap", "redundancy", "n", "why"), [
    (bytes(32), 1, 6, "the key came after 256 blocks: blockhash is zero"),
    (SNAP, 2, 6, "co-workers' equal roots would give a forced result away"),
    (SNAP, 1, 1, "one segment: its end is the model itself"),
])
def test_never_selected(snap: bytes, redundancy: int, n: int, why: str) -> None:
    picks = [forced.select(secret(i), snap, bps=forced.BPS, redundancy=redundancy, checkpoints=n)
             for i in range(50)]
    assert not any(p.selected for p in picks), why


def test_the_rate_bounds() -> None:
    assert all(forced.select(secret(i), SNAP, bps=forced.BPS, redundancy=1, checkpoints=4).selected
               for i in range(50))
    assert not any(forced.select(secret(i), SNAP, bps=0, redundancy=1, checkpoints=4).selected
                   for i in range(50))
    with pytest.raises(ValueError, match="forced_error_bps must be 0..10000"):
        forced.select(secret(0), SNAP, bps=10_001, redundancy=1, checkpoints=4)


@pytest.fixture(scope="module")
def chain(make_spec, digits):  # type: ignore[no-untyped-def]
    spec = make_spec()
    x, y = digits[0][:600], digits[1][:600]
    sink = MemorySink()
    engine.train_task(spec, TASK, x, y, sink)
    return spec, x, y, [sink.data(i) for i in range(7)]


def _one_changed(real: bytes, wrong: bytes) -> tuple[str, float, float]:
    a, b = decode(real), decode(wrong)
    assert a.meta == b.meta and a.tensors.keys() == b.tensors.keys()
    changed = [(n, i) for n in a.tensors
               for i in np.flatnonzero(a.tensors[n].ravel() != b.tensors[n].ravel())]
    assert len(changed) == 1, changed
    name, i = changed[0]
    assert name.startswith("model/")
    return name, float(a.tensors[name].ravel()[i]), float(b.tensors[name].ravel()[i])


def test_exact_mode_one_ulp_that_only_the_replay_of_segment_j_star_shows(chain) -> None:  # type: ignore[no-untyped-def]
    spec, x, y, ckpts = chain
    d = forced.draw(secret(7), SNAP)
    j = 2
    wrong = forced.perturb(ckpts[j], ckpts[j + 1], d, judges.judge_for(spec).bound)
    name, w, moved = _one_changed(ckpts[j + 1], wrong)
    assert np.float32(moved) == np.nextafter(np.float32(w), np.float32(np.inf), dtype=np.float32)
    assert decode(wrong).tensors["rng/torch"].tobytes() == decode(ckpts[j + 1]).tensors["rng/torch"].tobytes()
    assert forced.perturb(ckpts[j], ckpts[j + 1], d, None) == wrong  # the same bytes every time
    # the replay of segment j* rejects it; the honest checkpoint it accepts
    assert not judges.verify_segment(spec, TASK, j, ckpts[j], wrong, x, y).accepted
    assert judges.verify_segment(spec, TASK, j, ckpts[j], ckpts[j + 1], x, y).accepted
    # a replay of segment j*+1 from the published checkpoint does not give the committed j*+2
    assert engine.replay_segment(spec, TASK, j + 1, wrong, x, y) != checkpoint_hash(ckpts[j + 2])


def test_the_weight_moved_is_the_draw_s_and_spreads_over_the_model(chain) -> None:  # type: ignore[no-untyped-def]
    spec, _, _, ckpts = chain
    state = decode(ckpts[2])
    sizes = {n: a.size for n, a in sorted(state.tensors.items()) if n.startswith("model/")}
    hit = {_one_changed(ckpts[2], forced.perturb(ckpts[1], ckpts[2], forced.draw(secret(i), SNAP), None))[0]
           for i in range(40)}
    assert len(hit) >= 2 and hit <= set(sizes)
    d = forced.draw(secret(3), SNAP)
    assert forced.weight_index(d, sum(sizes.values())) == ((d >> 64) & ((1 << 64) - 1)) % sum(sizes.values())


def test_tolerance_mode_moves_it_four_bounds_out_where_honest_divergence_stays_in(make_spec, digits) -> None:  # type: ignore[no-untyped-def]
    """The forced checkpoint is rejected by the tolerance judge of a verifier on another
    thread count (distance ~4x the bound), while the honest one, replayed there, passes."""
    x, y = digits[0][:600], digits[1][:600]
    base = make_spec(optimizer={"name": "adam", "lr": 1e-3})
    bound = 1e-5
    spec = make_spec(optimizer={"name": "adam", "lr": 1e-3},
                     replay={**base.replay.model_dump(), "tolerance": {"mode": "tolerance", "bound": bound}})
    sink = MemorySink()
    engine.train_task(spec, TASK, x, y, sink)
    ckpts = [sink.data(i) for i in range(7)]
    j = 3
    wrong = forced.perturb(ckpts[j], ckpts[j + 1], forced.draw(secret(11), SNAP), bound)
    d = tolerance.distance(ckpts[j], wrong, ckpts[j + 1])
    assert 3.9 * bound < d.value < 4.1 * bound and not d.mismatches
    torch.set_num_threads(2)
    try:
        caught = judges.verify_segment(spec, TASK, j, ckpts[j], wrong, x, y)
        honest = judges.verify_segment(spec, TASK, j, ckpts[j], ckpts[j + 1], x, y)
    finally:
        torch.set_num_threads(1)
    assert not caught.accepted and caught.distance.value > 3 * bound
    assert honest.accepted


def test_a_non_finite_weight_is_refused(chain) -> None:  # type: ignore[no-untyped-def]
    from veritrain.checkpoint import CheckpointState, encode

    _, _, _, ckpts = chain
    state = decode(ckpts[2])
    tensors = {n: (np.full_like(a, np.nan) if n.startswith("model/") else a)
               for n, a in state.tensors.items()}
    bad = encode(CheckpointState(meta=state.meta, tensors=tensors))
    with pytest.raises(ValueError, match="non-finite weight cannot be forced"):
        forced.perturb(ckpts[1], bad, forced.draw(secret(1), SNAP), None)


def test_a_float64_model_moves_by_one_float64_ulp() -> None:
    """A CUDA job may train in float64 (`default_dtype`): its weights move in their own dtype."""
    from veritrain.checkpoint import CheckpointState, encode

    meta = {"format": "example"}
    start = {"model/w": np.linspace(-1, 1, 12).reshape(3, 4), "rng/torch": np.arange(4, dtype=np.uint8)}
    end = {**start, "model/w": start["model/w"] + 0.125}
    a, b = encode(CheckpointState(meta, start)), encode(CheckpointState(meta, end))
    d = forced.draw(secret(5), SNAP)
    name, w, moved = _one_changed(b, forced.perturb(a, b, d, None))
    assert name == "model/w" and moved == np.nextafter(w, np.inf) and np.float32(moved) == np.float32(w)
    flat = decode(forced.perturb(a, b, d, 1e-3)).tensors["model/w"].ravel()
    i = forced.weight_index(d, 12)
    assert flat[i] == end["model/w"].ravel()[i] + 4 * 1e-3 * math.sqrt(12 * 0.125**2)
