"""Deliberately dishonest behaviours, for the demo, the benchmarks and the tests -- never the product.

One place for every cheat, outside the ``veritrain`` package (nothing a user installs holds them):

- :mod:`adversary.cheats`: the falsified training itself (:class:`~adversary.cheats.SkipStep`,
  :class:`~adversary.cheats.PerturbWeight`, :class:`~adversary.cheats.OtherData`,
  :func:`~adversary.cheats.dishonest_train`), used in-process by tests and the engine benchmark;
- :mod:`adversary.worker`: the worker role run with a cheating trainer
  (``python -m adversary worker``: skip-step, perturb-weight);
- :mod:`adversary.standalone`: a cheater built on the core alone for cheats the worker loop cannot
  express (``python -m adversary standalone``: other-data, copy-root).

Processes started as ``python -m adversary ...`` need the checkout on ``sys.path`` (the demo and the
benchmarks run them from the repository root).
"""
