"""DEV ONLY: the worker role with a cheating trainer from :mod:`adversary.cheats`.

    python -m adversary worker --behaviour skip-step --segment 2 [--once] [--max-tasks N]
    python -m adversary worker --behaviour perturb-weight --segment 1 --delta 0.001
    python -m adversary worker --behaviour wrong-start --segment 0 --delta 0.01

For tests and the demo (a verifier must catch this worker). The ``veritrain worker`` CLI
never reaches this module; it plugs in through the one documented hook,
``run_worker(..., trainer=...)``. Settings and the password come from the same
``VERITRAIN_WORKER_*`` variables as the real worker.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from worker.tasks import Progress, Trainer

BEHAVIOURS = ("skip-step", "perturb-weight", "wrong-start")


def cheating_trainer(behaviour: str, segment: int, *, delta: float = 1e-3, offset: int = 0) -> Trainer:
    """A trainer that falsifies ``segment`` (and trains honestly elsewhere); no resume."""
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour {behaviour!r}; choose from {', '.join(BEHAVIOURS)}")
    if behaviour == "wrong-start" and segment != 0:
        raise ValueError("wrong-start falsifies no segment (only h_0): --segment must be 0")

    def train(spec: Any, task: Any, features: Any, labels: Any, directory: Path,
              progress: Progress | None, initial_model: bytes | None = None,
              dp_key: bytes | None = None) -> list[bytes]:
        # a round > 0 initial model is ignored: this cheater also starts from the seeded model,
        # so its h_0 is wrong too (the requester's h_0 check and verifiers catch it)
        from veritrain.training import profile

        profile.preset_environment(spec.replay)  # before torch loads, as the honest runner does
        from adversary import cheats as adversary
        from veritrain.training.sinks import DirectorySink

        cheats: dict[str, Any] = {"skip-step": lambda: adversary.SkipStep(segment, offset),
                                  "perturb-weight": lambda: adversary.PerturbWeight(segment, delta),
                                  "wrong-start": lambda: adversary.WrongStart(delta)}
        cheat = cheats[behaviour]()
        return adversary.dishonest_train(spec, task, features, labels, cheat, DirectorySink(directory),
                                         dp_key)

    return train


def run(behaviour: str, segment: int, *, delta: float = 1e-3, offset: int = 0, once: bool = False,
        max_tasks: int | None = None) -> int:
    """Run the worker loop with :func:`cheating_trainer`; the exit code."""
    from veritrain import lifeline

    lifeline.from_env()  # run by the demo or the benchmarks: die with them
    from veritrain.errors import VeritrainError
    from worker.cli import _account, _settings
    from worker.loop import run_worker
    from worker.report import Reporter, install_stop_handlers

    print(f"WARNING: dishonest worker ({behaviour} in segment {segment}); dev and demo only",
          file=sys.stderr)
    try:
        settings = _settings()
        account = _account(settings)
        trainer = cheating_trainer(behaviour, segment, delta=delta, offset=offset)
        with Reporter(sys.stderr) as rep:
            summary = run_worker(settings, account, once=once, max_tasks=max_tasks, trainer=trainer,
                                 say=rep.say, progress=rep.progress, stop=install_stop_handlers())
    except VeritrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for task_id, phase in sorted(summary.phases.items()):
        print(f"task {task_id}: {phase}")
    return 0
