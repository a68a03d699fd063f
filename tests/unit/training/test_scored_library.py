"""veritrain.scored: assignment, compression, scoring and the aggregation rule, on the digits
MLP in this process (no chain, no IPFS)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from veritrain.scored import aggregate, assign, compress, score
from veritrain.scored.commitments import score_commitment, update_commitment
from veritrain.scored.train import ScoredModel, make_update

N = 1400
SALT_V = "validator-salt"


@pytest.fixture(scope="module")
def world(digits: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    from conftest import _make_spec

    spec = _make_spec()
    m = ScoredModel(spec, torch.tensor(digits[0][:N]), torch.tensor(digits[1][:N]))
    start = m.initial_state()
    return {"spec": spec, "m": m, "start": start, "hash": aggregate.model_hash(start).hex(),
            "held": assign.eval_batches(spec.seed, 0, SALT_V, N, 64, 4)}


def _update(w: dict[str, Any], addr: str, batches: list[list[int]], **kw: Any) -> compress.CompressedUpdate:
    return make_update(w["m"], kw.pop("start", w["start"]), kw.pop("base", w["hash"]), batches * 4,
                       window=0, worker=addr, chunk=256, k=64, **kw)


def _verdict(w: dict[str, Any], addr: str, u: compress.CompressedUpdate | None,
             assigned: list[list[int]]) -> score.Verdict:
    return score.verdict(w["m"].loss, w["m"].losses, w["start"], w["hash"], u, seed=w["spec"].seed, window=0,
                         worker=addr,
                         assigned=assigned, held_out=w["held"])


# ---------------------------------------------------------------------------- assignment


def test_assignment_depends_on_seed_window_and_address_only() -> None:
    a = assign.assigned_batches(7, 3, "0xAbC", 100, 10, 2)
    assert a == assign.assigned_batches(7, 3, "0xabc", 100, 10, 2)  # address case does not matter
    assert a != assign.assigned_batches(7, 3, "0xabd", 100, 10, 2)
    assert a != assign.assigned_batches(7, 4, "0xabc", 100, 10, 2)
    assert a != assign.assigned_batches(8, 3, "0xabc", 100, 10, 2)
    assert all(len(b) == 10 and len(set(b)) == 10 and max(b) < 100 for b in a)
    assert assign.eval_batches(7, 3, "s1", 100, 10, 2) != assign.eval_batches(7, 3, "s2", 100, 10, 2)
    # the validators' salt: every revealed update hash counts, in index order
    h1, h2 = b"\x01" * 32, b"\x02" * 32
    assert assign.eval_salt([h1, h2]) != assign.eval_salt([h2, h1]) != assign.eval_salt([h1])
    with pytest.raises(ValueError, match="examples"):
        assign.assigned_batches(7, 3, "0xabc", 0, 10, 2)


# ---------------------------------------------------------------------------- compression


def test_twelve_bit_packing_round_trips_and_refuses_wide_indices() -> None:
    idx = np.array([0, 4095, 17, 2048, 1], dtype=np.int64)
    packed = compress.pack12(idx)
    assert packed.size == 9  # 5 values -> 3 pairs -> 9 bytes
    assert compress.unpack12(packed, 5).tolist() == idx.tolist()
    with pytest.raises(ValueError, match="4096"):
        compress.pack12(np.array([4096]))
    with pytest.raises(compress.UpdateFormatError):
        compress.unpack12(packed[:-1], 5)


def test_top_k_per_chunk_keeps_the_largest_magnitudes_and_round_trips_through_bytes() -> None:
    g = torch.Generator().manual_seed(1)
    delta = {"w": torch.randn(10, 30, generator=g), "b": torch.randn(7, generator=g)}
    u = compress.compress(delta, chunk=64, k=5, meta={"base": "ab"})
    dense = compress.decompress(u)
    flat = delta["w"].reshape(-1)
    for c in range(5):  # 300 values = 4 full chunks + 44
        part = flat[c * 64:(c + 1) * 64]
        kept = dense["w"].reshape(-1)[c * 64:(c + 1) * 64]
        top = set(torch.topk(part.abs(), min(5, part.numel())).indices.tolist())
        assert set(torch.nonzero(kept).reshape(-1).tolist()) == top
        assert torch.equal(kept[list(top)], part[list(top)])
    assert int(torch.count_nonzero(dense["b"])) == 5
    data = compress.to_bytes(u)
    back = compress.from_bytes(data)
    assert back.meta == {"base": "ab"} and back.shapes == u.shapes
    assert all(torch.equal(compress.decompress(back)[k], dense[k]) for k in dense)
    assert compress.to_bytes(back) == data  # canonical
    with pytest.raises(compress.UpdateFormatError):
        compress.from_bytes(data[:-3])
    with pytest.raises(compress.UpdateFormatError, match="kind"):
        compress.from_bytes(aggregate.model_bytes({"w": torch.zeros(2)}))


# ---------------------------------------------------------------------------- scoring


def test_honest_update_scores_positive_and_cheats_score_nothing(world: dict[str, Any]) -> None:
    """Free-rider (noise), stale worker (old model), data swapper (other data), copier: each
    gets a score of zero or less, the honest worker a positive one."""
    w, seed = world, world["spec"].seed
    honest_addr = "0x" + "11" * 20
    mine = assign.assigned_batches(seed, 0, honest_addr, N, 32, 2)
    honest = _update(w, honest_addr, mine)
    v = _verdict(w, honest_addr, honest, mine)
    assert v.synced and v.score > 0 and v.assigned_improvement >= score.INDICATOR_RATIO * v.random_improvement

    g = torch.Generator().manual_seed(5)
    noise = {k: 0.5 * torch.randn(t.shape, generator=g) for k, t in w["start"].items()}
    rider = "0x" + "22" * 20
    free = make_update(w["m"], w["start"], w["hash"], [], window=0, worker=rider, chunk=256, k=64,
                       trained=score.apply(w["start"], noise))
    assert _verdict(w, rider, free, assign.assigned_batches(seed, 0, rider, N, 32, 2)).score <= 0

    stale_addr = "0x" + "33" * 20
    old = {k: v + 0.05 for k, v in w["start"].items()}
    old_hash = aggregate.model_hash(old).hex()
    stale_mine = assign.assigned_batches(seed, 0, stale_addr, N, 32, 2)
    stale = _update(w, stale_addr, stale_mine, start=old, base=old_hash)
    sv = _verdict(w, stale_addr, stale, stale_mine)
    assert not sv.synced and sv.score == 0
    # lying about the base hash does not help: the probes give the old model away
    stale.meta["base"] = w["hash"]
    assert not _verdict(w, stale_addr, stale, stale_mine).synced

    swap_addr = "0x" + "44" * 20
    swap_mine = assign.assigned_batches(seed, 0, swap_addr, N, 32, 2)
    swapped = _update(w, swap_addr, assign.assigned_batches(seed, 0, "0xelsewhere", N, 32, 2))
    sw = _verdict(w, swap_addr, swapped, swap_mine)
    assert sw.random_improvement > 0 and sw.score == 0  # helps, but not on what it was given

    assert _verdict(w, "0x" + "55" * 20, None, mine).score == 0


def test_copies_are_found_by_index_overlap_and_the_later_one_is_flagged(world: dict[str, Any]) -> None:
    w, seed = world, world["spec"].seed
    a_addr, b_addr = "0x" + "11" * 20, "0x" + "66" * 20
    a = _update(w, a_addr, assign.assigned_batches(seed, 0, a_addr, N, 32, 2))
    b = _update(w, b_addr, assign.assigned_batches(seed, 0, b_addr, N, 32, 2))
    copy = compress.from_bytes(compress.to_bytes(a))
    copy.values = {k: v * 1.01 for k, v in copy.values.items()}  # rescaled, same indices
    assert score.overlap(a, copy) == 1.0
    assert score.overlap(a, b) < score.COPY_THRESHOLD
    flags = score.copy_flags([a, b, None, copy])
    assert flags == [False, False, False, True]
    assert score.copier_mask(flags) == 0b1000


def test_final_score_rules() -> None:
    t = score.INDICATOR_T
    assert score.final_score(0.1, 0.3, True, t) == 100_000
    assert score.final_score(0.1, 0.11, True, t) == 0  # indicator fails: not 1.2 times more
    assert score.final_score(0.001, 0.005, True, t) == 0  # 5 times more, but by less than the gap
    assert score.final_score(0.001, 0.02, True, t) == 1_000
    assert score.final_score(0.1, 0.3, True, t - 0.01) == 0  # the set means pass, the t-test does not
    assert score.final_score(0.1, 0.3, False, t) == 0  # out of sync
    assert score.final_score(-0.2, 0.5, True, 0.0) == -200_000  # made things worse: reported as is
    assert score.final_score(5.0, 9.0, True, t) == score.SCALE  # clamped


def test_next_global_takes_the_mean_of_the_top_positive_non_copies(world: dict[str, Any]) -> None:
    assert aggregate.select([50, -3, 80, 80, 0, 90], [False, False, False, False, False, True], 2) == [2, 3]
    assert aggregate.select([0, -1], [False, False], 3) == []
    start = {"w": torch.zeros(4)}
    u1 = compress.compress({"w": torch.tensor([1.0, 0, 0, 0])}, chunk=4, k=1)
    u2 = compress.compress({"w": torch.tensor([0, 3.0, 0, 0])}, chunk=4, k=1)
    new = aggregate.next_global(start, [u1, u2])
    assert new["w"].tolist() == [0.5, 1.5, 0.0, 0.0]
    assert aggregate.model_hash(aggregate.next_global(start, [])) == aggregate.model_hash(start)
    assert aggregate.model_hash(new) != aggregate.model_hash(start)
    assert torch.equal(aggregate.model_from_bytes(aggregate.model_bytes(new))["w"], new["w"])


def test_commitment_encodings() -> None:
    from eth_abi import encode
    from sha3 import keccak_256

    v = "0x" + "ab" * 20
    assert update_commitment(b"\x01" * 32, v, b"\x02" * 32) == keccak_256(
        encode(["bytes32", "address", "bytes32"], [b"\x01" * 32, v, b"\x02" * 32])).digest()
    assert score_commitment(1, 0, [5, -1], 2, b"\x03" * 32, v, b"\x04" * 32) != score_commitment(
        1, 0, [5, -2], 2, b"\x03" * 32, v, b"\x04" * 32)


def test_the_per_example_t_test_keeps_out_most_data_swappers_the_set_means_let_through(
        world: dict[str, Any]) -> None:
    """Data swappers (trained on batches assigned to someone else), 40 addresses: the two
    set-mean rules alone let several through by chance (9 here); with the per-example t-test a
    third of those at most (3), while every honest update still passes. (Under no training on
    the assigned examples t is about standard normal, so t ≥ 1.5 alone passes ~7%.)"""
    w, seed = world, world["spec"].seed
    means_only = with_t = 0
    for n in range(40):
        addr = f"0x{n:040x}"
        mine = assign.assigned_batches(seed, 0, addr, N, 32, 2)
        other = assign.assigned_batches(seed, 0, f"0xother{n}", N, 32, 2)
        swapped = _verdict(w, addr, _update(w, addr, other), mine)
        means = score.final_score(swapped.random_improvement, swapped.assigned_improvement, True, 99.0)
        means_only += means > 0
        with_t += swapped.score > 0
        honest = _verdict(w, addr, _update(w, addr, mine), mine)
        assert honest.score > 0, honest
    assert means_only >= 4 and with_t <= means_only // 3, (means_only, with_t)
