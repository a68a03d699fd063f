"""Scored mode (Templar-style, docs/scored.md): the pure parts every role shares.

- :mod:`.assign`: which examples a worker must train on in a window (from the job seed, the
  window and its address), and the held-out batches a validator samples.
- :mod:`.compress`: top-k per chunk compression of a pseudo-gradient, indices packed in 12 bits,
  in the canonical checkpoint encoding.
- :mod:`.score`: loss improvement, the assigned-versus-random indicator, the sync check, copy
  detection by top-k index overlap, and the integer score a validator commits.
- :mod:`.aggregate`: the rule anyone can recompute for the next global model and its hash.
- :mod:`.commitments`: the encodings ScoredRounds checks.

torch is imported inside the functions that need it.
"""
