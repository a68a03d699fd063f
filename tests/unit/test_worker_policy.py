from __future__ import annotations

from dataclasses import replace

from worker.policy import Machine, Offer, Policy, choose, decide

MACHINE = Machine(torch_version="2.13.0", cpu_isas=frozenset({"default", "avx2"}), cpus=2)


def offer(**kw: object) -> Offer:
    base = Offer(job_id=1, task_index=0, task_id=1 << 32, reward=1000, stake=10, steps=100, model="mlp",
                 memory_mb=300, torch_version="2.13.0", cpu_isa="avx2", balance=100)
    return replace(base, **kw)  # type: ignore[arg-type]


def test_a_matching_offer_is_taken() -> None:
    d = decide(offer(), Policy(min_reward_per_step=10, allowed_models=("mlp",)), MACHINE)
    assert d.take and str(d) == "take"


def test_each_policy_rule_refuses_with_its_reason() -> None:
    p = Policy(min_reward_per_step=11, allowed_models=("cnn",), max_memory_mb=200, max_stake=5)
    d = decide(offer(), p, MACHINE)
    assert not d.take
    text = str(d)
    for needle in ("below the minimum 11/step", "'mlp' is not in allowed models", "more than the 200 MB",
                   "stake 10 exceeds the maximum 5"):
        assert needle in text


def test_too_few_tokens_and_unhonourable_profile_are_refused() -> None:
    d = decide(offer(balance=9, torch_version="2.1.0", cpu_isa="avx512", device="cuda"), Policy(), MACHINE)
    text = str(d)
    assert "too few tokens to stake: have 9, the job needs 10" in text
    assert "pins torch 2.1.0; this machine has 2.13.0" in text
    assert "CPU ISA avx512" in text and "device 'cuda'" in text


def test_multi_round_taken_unless_refused_and_document_problems_block() -> None:
    assert decide(offer(rounds=2), Policy(), MACHINE).take
    refused = decide(offer(rounds=2), Policy(allow_multi_round=False), MACHINE)
    assert not refused.take and "ALLOW_MULTI_ROUND" in str(refused)
    d = decide(offer(problems=("the job's shardsRoot does not match",)), Policy(), MACHINE)
    assert not d.take and "shardsRoot" in str(d)


def test_choose_prefers_reward_per_step_then_oldest_job_and_skips_known_tasks() -> None:
    a = offer(job_id=2, task_id=(2 << 32), reward=2000)
    b = offer(job_id=1, task_id=(1 << 32) | 1, task_index=1, reward=2000)
    c = offer(job_id=1, task_id=1 << 32, reward=500)
    best, decisions = choose([a, b, c], Policy(), MACHINE)
    assert best == b and len(decisions) == 3
    best, _ = choose([a, b, c], Policy(), MACHINE, exclude=[b.task_id, a.task_id])
    assert best == c
    best, decisions = choose([c], Policy(min_reward_per_step=6), MACHINE)
    assert best is None and not decisions[0][1].take
