"""The dev clock's pace (issue 25): an idle dev chain must not add a block every second for ever
(its state file grew 41 MB in 21,000 blocks), yet time must move while anyone works."""

from __future__ import annotations

from veritrain.dev.clock import Pace


def _idle(pace: Pace, head: int, start: float, looks: int) -> tuple[int, float, list[float]]:
    """The clock alone makes blocks: each look mines one."""
    now, pauses = start, []
    for _ in range(looks):
        p = pace.next(head, head + 1, now)
        head, now = head + 1, now + p
        pauses.append(p)
    return head, now, pauses


def test_pauses_stay_short_for_the_first_minute_then_grow_to_the_cap() -> None:
    pace = Pace(1.0, idle_after=60, max_interval=30)
    head, now, pauses = _idle(pace, 10, 0.0, 200)
    assert pauses[:60] == [1.0] * 60  # the first minute: a block a second, as before
    assert pauses[60:66] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    day = (86_400 - now) / 30 + 200  # blocks in a day of idling at the cap
    assert day < 3_000  # instead of 86,400


def test_a_block_made_by_somebody_else_brings_the_pace_back() -> None:
    pace = Pace(0.5, idle_after=5, max_interval=30)
    head, now, pauses = _idle(pace, 0, 0.0, 40)
    assert pauses[-1] == 30
    assert pace.next(head + 3, head + 3, now) == 0.5  # three transactions landed meanwhile
    assert pace.next(head + 3, head + 4, now + 0.5) == 0.5
