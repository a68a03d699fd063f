"""Portable bitwise training: operators whose results are the same bits on any CPU or GPU.

``replay.mode: portable`` in a JobSpec builds the zoo model from these operators
(:func:`modules.convert`), trains it with :mod:`optim`'s updates and the portable
cross-entropy, so a segment replays bitwise on any thread count, CPU kernel level or IEEE
device. The pieces, bottom up (each documented in docs/spec/portable.md):

- :mod:`arith`: float32 elementwise arithmetic, subnormal flushing, exp/log/erf/tanh;
- :mod:`fixed`: exact order-free sums and matrix products by fixed-point integers;
- :mod:`functions`: autograd operators (linear, matmul, layer norm, softmax, cross-entropy,
  GELU, tanh, embedding);
- :mod:`rng` and :class:`modules.PortableDropout`: a counter-based generator for dropout;
- :mod:`optim`: SGD, Adam, AdamW.

The engine's one entry point is :mod:`mode`.
"""
