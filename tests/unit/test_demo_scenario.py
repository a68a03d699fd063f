"""The demo's scenarios: each honest worker is sure of a paid task, and no task is left undone."""

from __future__ import annotations

import itertools

import pytest

from demo.run import FULL, QUICK, Scenario


@pytest.mark.parametrize("sc", [FULL, QUICK], ids=lambda sc: sc.name)
def test_every_way_the_tasks_can_fall_pays_every_honest_worker(sc: Scenario) -> None:
    """Whatever order the honest workers finish in, each takes tasks until its cap or until
    none is left: every task is done by someone (the cheater's one reopens and is redone),
    and every honest worker does at least one."""
    caps = sc.caps()
    assert len(caps) == sc.honest and sum(caps) == sc.shards
    for order in itertools.product(range(sc.honest), repeat=sc.shards):  # who is free for each task
        done = [0] * sc.honest
        for w in order:  # the free worker takes it, or the next one with room does
            w = next(v for v in (*range(w, sc.honest), *range(w)) if done[v] < caps[v])
            done[w] += 1
        assert sum(done) == sc.shards and min(done) >= 1, (order, done)


def test_more_honest_workers_than_tasks_is_refused() -> None:
    with pytest.raises(ValueError, match="3 honest workers cannot each have one of 2 tasks"):
        Scenario(**{**QUICK.__dict__, "honest": 3, "shards": 2}).caps()
