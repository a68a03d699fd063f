"""The explorer's charts as Chart.js configurations (drawn in the browser by the vendored
Chart.js, static/chart.umd.min.js): training loss per checkpoint (from the manifests), a job's
progress over time (from the events), detection odds against the sampling rate (the formula
of design/protocol.md), and gas per action (from the receipts).

Each chart is ``{"id", "title", "summary", "config", "table"}``: ``table`` (header row, then
rows) is the same data as text, for screen readers and for anyone who would rather read.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from veritrain.explorer.index import ChainIndex
from veritrain.tasks import split_task_id

#: Events that move a task forward, as the progress chart counts them.
_PROGRESS = {"TaskClaimed": "claimed", "ResultRevealed": "revealed", "ClaimFinalized": "finalized"}


def _chart(cid: str, title: str, kind: str, labels: list[Any], datasets: list[dict[str, Any]],
           x_title: str, y_title: str, summary: str, **options: Any) -> dict[str, Any]:
    table = [[x_title, *(d["label"] for d in datasets)]]
    table += [[lab, *(d["data"][i] for d in datasets)] for i, lab in enumerate(labels)]
    scales = {"x": {"title": {"display": True, "text": x_title}},
              "y": {"title": {"display": True, "text": y_title}}}
    scales["x"].update(options.pop("x", {}))
    scales["y"].update(options.pop("y", {}))
    config = {"type": kind, "data": {"labels": labels, "datasets": datasets},
              "options": {"responsive": True, "maintainAspectRatio": False, "animation": False,
                          "scales": scales, **options}}
    return {"id": cid, "title": title, "summary": summary, "config": config, "table": table}


def loss_curves(index: ChainIndex, manifests: list[tuple[str, str]], cid: str, title: str) -> dict[str, Any]:
    """One line per (worker, manifest CID): the loss the worker published per checkpoint."""
    datasets: list[dict[str, Any]] = []
    steps: list[int] = []
    for worker, mcid in manifests:
        m = index.manifest(mcid).value
        if m is None or not m.losses:
            continue
        s = [i * m.k for i in range(len(m.losses))]
        steps = s if len(s) > len(steps) else steps
        datasets.append({"label": f"{worker[:8]}… ({split_task_id(m.task_id)[1]})",
                         "data": [round(x, 6) for x in m.losses]})
    n = len(steps)
    for d in datasets:
        d["data"] = d["data"] + [None] * (n - len(d["data"]))
    summary = (f"{len(datasets)} curve(s) over {n} checkpoints" if datasets
               else "no manifest with losses yet")
    return _chart(cid, title, "line", steps, datasets, "step", "loss", summary)


def progress(index: ChainIndex, job_id: int | None) -> dict[str, Any]:
    """Cumulative claims, reveals and finalizations over chain time (one job, or all)."""
    counts = {v: 0 for v in _PROGRESS.values()}
    labels: list[int] = []
    series: dict[str, list[int]] = {v: [] for v in _PROGRESS.values()}
    t0: int | None = None
    for e in index.of(*_PROGRESS):
        if job_id is not None and split_task_id(int(e.args["taskId"]))[0] != job_id:
            continue
        t = index.block_time(e.block_number)
        t0 = t if t0 is None else t0
        counts[_PROGRESS[e.name]] += 1
        labels.append(t - t0)
        for k in series:
            series[k].append(counts[k])
    datasets = [{"label": k, "data": v, "stepped": True} for k, v in series.items()]
    scope = f"job {job_id}" if job_id is not None else "the market"
    summary = (f"{counts['claimed']} claims, {counts['revealed']} reveals, {counts['finalized']} "
               f"finalized in {scope}")
    return _chart(f"progress-{job_id or 'all'}", f"Progress of {scope} over time", "line", labels,
                  datasets, "seconds since the first claim", "tasks", summary)


def detection_odds(segments: int, rates: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5,
                                                               0.75, 1.0)) -> dict[str, Any]:
    """``1 - (1 - p)^f``: the chance a verifier replaying each segment with probability ``p``
    catches a worker that falsified ``f`` of the ``segments`` segments (design/protocol.md)."""
    fs = sorted({1, min(2, segments), max(1, segments // 2), segments})
    datasets = [{"label": f"{f} of {segments} segment(s) falsified",
                 "data": [round(1 - (1 - p) ** f, 4) for p in rates]} for f in fs]
    return _chart("detection", "Detection odds against the sampling rate", "line", list(rates), datasets,
                  "sampling rate p", "probability the cheat is caught",
                  f"a verifier replaying each of {segments} segments with probability p",
                  y={"min": 0, "max": 1})


def gas_per_action(index: ChainIndex) -> dict[str, Any]:
    """Mean gas used per protocol action, over every transaction the index has seen."""
    used: dict[str, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for e in index.events:
        if e.tx_hash in seen:
            continue
        seen.add(e.tx_hash)
        action = index.action_of(e.tx_hash)
        if action is not None:
            used[action].append(index.gas_used(e.tx_hash))
    labels = sorted(used)
    data = [round(sum(used[a]) / len(used[a])) for a in labels]
    return _chart("gas", "Gas per action (mean)", "bar", labels,
                  [{"label": "gas used", "data": data}], "action", "gas",
                  f"{len(seen)} transactions, {len(labels)} kinds of action", indexAxis="x")
