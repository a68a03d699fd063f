"""Receipt waits paced by the block time (issue 25): a fixed 5 ms poll made receipts 28 % of a
worker's requests; the pauses now double from the first up to a cap."""

from __future__ import annotations

from itertools import islice

from veritrain.chain.receipts import RECEIPT_POLL_CAP, receipt_poll_delays


def test_pauses_start_short_then_double_up_to_the_cap() -> None:
    got = list(islice(receipt_poll_delays(0.005, 0.25), 8))
    assert got == [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.25, 0.25]


def test_a_one_second_block_costs_about_ten_polls_not_two_hundred() -> None:
    waited, polls = 0.0, 0
    for pause in receipt_poll_delays(0.005):
        polls += 1
        waited += pause
        if waited >= 1.0:
            break
    assert polls <= 10 and RECEIPT_POLL_CAP == 0.25


def test_a_first_pause_above_the_cap_is_kept() -> None:
    assert list(islice(receipt_poll_delays(0.5, 0.25), 3)) == [0.5, 0.5, 0.5]
