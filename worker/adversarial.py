"""DEV ONLY: run the worker with a cheating trainer from :mod:`veritrain.adversary`.

    python -m worker.adversarial --behaviour skip-step --segment 2 [--once] [--max-tasks N]
    python -m worker.adversarial --behaviour perturb-weight --segment 1 --delta 0.001

For tests and the demo (a verifier must catch this worker). The ``veritrain worker`` CLI
never reaches this module; it plugs in through the one documented hook,
``run_worker(..., trainer=...)``. Settings and the password come from the same
``VERITRAIN_WORKER_*`` variables as the real worker.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from worker.tasks import Progress, Trainer

BEHAVIOURS = ("skip-step", "perturb-weight")


def cheating_trainer(behaviour: str, segment: int, *, delta: float = 1e-3, offset: int = 0) -> Trainer:
    """A trainer that falsifies ``segment`` (and trains honestly elsewhere); no resume."""
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour {behaviour!r}; choose from {', '.join(BEHAVIOURS)}")

    def train(spec: Any, task: Any, features: Any, labels: Any, directory: Path,
              progress: Progress | None, initial_model: bytes | None = None) -> list[bytes]:
        # a round > 0 initial model is ignored: this cheater also starts from the seeded model,
        # so its h_0 is wrong too (the requester's h_0 check and verifiers catch it)
        from veritrain.training import profile

        profile.preset_environment(spec.replay)  # before torch loads, as the honest runner does
        from veritrain import adversary
        from veritrain.training.sinks import DirectorySink

        cheat: Any = (adversary.SkipStep(segment, offset) if behaviour == "skip-step"
                      else adversary.PerturbWeight(segment, delta))
        return adversary.dishonest_train(spec, task, features, labels, cheat, DirectorySink(directory))

    return train


def main(argv: list[str] | None = None) -> int:
    from veritrain import lifeline

    lifeline.from_env()  # run by the demo or the benchmarks: die with them
    parser = argparse.ArgumentParser(prog="python -m worker.adversarial", description=__doc__.splitlines()[0])
    parser.add_argument("--behaviour", choices=BEHAVIOURS, required=True)
    parser.add_argument("--segment", type=int, required=True, help="the segment j to falsify")
    parser.add_argument("--delta", type=float, default=1e-3, help="perturb-weight: the change")
    parser.add_argument("--offset", type=int, default=0, help="skip-step: which step of the segment")
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--max-tasks", type=int, default=None)
    args = parser.parse_args(argv)

    from veritrain.errors import VeritrainError
    from worker.cli import _account, _settings
    from worker.loop import run_worker
    from worker.report import Reporter, install_stop_handlers

    print(f"WARNING: dishonest worker ({args.behaviour} in segment {args.segment}); dev and demo only",
          file=sys.stderr)
    try:
        settings = _settings()
        account = _account(settings)
        trainer = cheating_trainer(args.behaviour, args.segment, delta=args.delta, offset=args.offset)
        with Reporter(sys.stderr) as rep:
            summary = run_worker(settings, account, once=args.once, max_tasks=args.max_tasks, trainer=trainer,
                                 say=rep.say, progress=rep.progress, stop=install_stop_handlers())
    except VeritrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for task_id, phase in sorted(summary.phases.items()):
        print(f"task {task_id}: {phase}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
