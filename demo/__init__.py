"""The end-to-end demo (``make demo``, ``python -m demo``): the whole product once, on real data.

Not part of the ``veritrain`` package: it orchestrates the product's own command lines as separate
processes (:mod:`demo.run`), follows them through the chain (:mod:`demo.chain`), evaluates the
model (:mod:`demo.evaluate`) and prints who was paid and slashed (:mod:`demo.summary`). Its child
processes are started and stopped by :mod:`demo.children`.
"""
