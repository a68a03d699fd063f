"""Membership-inference audit of a trained model (``veritrain audit membership``).

Two attacks, each scoring every candidate example (higher = "was in the training set"):

- **loss threshold** (Yeom et al. 2018): the score is minus the model's loss on the example.
- **LiRA, online** (Carlini et al. 2022): ``shadows`` models are trained with the job's own
  recipe (model, optimizer, batch size, steps x rounds, DP-SGD with a fresh random key when the
  job used it) on random halves of the candidate pool (members and non-members together); each
  candidate is IN for about half of them and OUT for the rest. Its statistic is the logit of the
  model's confidence in the true label, ``log(p / (1 - p))``; the score is the log-likelihood
  ratio of the target model's statistic under a Gaussian fitted to the IN shadows versus one
  fitted to the OUT shadows (with fewer than 16 shadows, one variance pooled over every
  example: LiRA's fixed-variance variant, steadier when per-example variances rest on 2 draws).

Reported per attack: ROC AUC and the true-positive rate at a false-positive rate of 0.1%
(``tpr_at_0.1%_fpr``, the largest TPR whose FPR is at most 0.001), and the ROC curves drawn in
one SVG image (no plotting library needed).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from veritrain.errors import DataError

LOW_FPR = 0.001
#: Below this many shadow models LiRA uses one variance for every example.
FIXED_VARIANCE_BELOW = 16


@dataclass(frozen=True)
class Roc:
    fpr: np.ndarray
    tpr: np.ndarray

    @property
    def auc(self) -> float:
        return float(np.trapz(self.tpr, self.fpr))

    def tpr_at(self, fpr: float) -> float:
        ok = self.fpr <= fpr
        return float(self.tpr[ok].max()) if ok.any() else 0.0


def roc(scores: np.ndarray, is_member: np.ndarray) -> Roc:
    """The ROC curve of ``scores`` (ties handled as one threshold)."""
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(is_member, dtype=bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        raise DataError("the audit needs at least one member and one non-member")
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # the end of each run of equal scores
    tp, fp = np.cumsum(y)[last], np.cumsum(~y)[last]
    return Roc(np.r_[0.0, fp / neg], np.r_[0.0, tp / pos])


def per_example(model: Any, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """(loss, logit of the confidence in the true label) of every example."""
    import torch
    import torch.nn.functional as F

    model.eval()
    with torch.no_grad():
        logits = model(x).double()
        logp = F.log_softmax(logits, dim=-1).gather(1, y.view(-1, 1)).squeeze(1)
    loss = -logp
    p = logp.exp().clamp(1e-12, 1 - 1e-12)
    return loss.numpy(), (torch.log(p) - torch.log1p(-p)).numpy()


def train_shadow(spec: Any, x: Any, y: Any, seed: int) -> Any:
    """A model trained on (x, y) with ``spec``'s recipe (DP-SGD under a random key when the
    job used it); ``seed`` picks its initial weights and batch order."""
    from veritrain.spec import TaskKey
    from veritrain.training import engine, state

    shadow = spec.model_copy(update={"seed": seed})
    task = TaskKey(round=0, shard=0)
    key = os.urandom(32) if spec.privacy.dp_sgd is not None else None
    live = state.initial(shadow, task, dp_key=key)
    order = engine.order_for(shadow, task, len(x))
    for _ in range(spec.steps_per_task * spec.rounds):
        engine.train_step(live, order, x, y)
    return live.model


def _gauss_logpdf(v: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return -0.5 * ((v - mu) / sd) ** 2 - np.log(sd)


def membership(spec: Any, model: Any, members: Any, non_members: Any, *, shadows: int = 8,
               seed: int = 0) -> dict[str, Any]:
    """Both attacks on ``model`` over the candidates; returns the report (and the curves).
    ``shadows`` 0 runs the loss-threshold attack only; LiRA needs at least 2."""
    import torch

    if shadows == 1:
        raise DataError("--shadows 1: LiRA needs at least 2 shadow models (or 0 to skip it)")

    from veritrain.training import engine

    xm, ym = engine.as_tensors(spec, members.features, members.labels)
    xn, yn = engine.as_tensors(spec, non_members.features, non_members.labels)
    x, y = torch.cat([xm, xn]), torch.cat([ym, yn])
    truth = np.r_[np.ones(len(xm), bool), np.zeros(len(xn), bool)]
    loss, stat = per_example(model, x, y)
    curves = {"loss_threshold": roc(-loss, truth)}
    if shadows >= 2:
        rng = np.random.default_rng(seed)
        inside = np.zeros((shadows, len(x)), bool)
        stats = np.zeros((shadows, len(x)))
        for k in range(shadows):
            inside[k] = rng.random(len(x)) < 0.5
            idx = torch.from_numpy(np.nonzero(inside[k])[0])
            shadow = train_shadow(spec, x[idx], y[idx], int(rng.integers(0, 2**31)))
            stats[k] = per_example(shadow, x, y)[1]
        score = np.zeros(len(x))
        # per-example variances need many shadows; with few, one variance for all (LiRA's
        # "fixed variance", Carlini et al. 2022) is the steadier estimate
        fixed = shadows < FIXED_VARIANCE_BELOW
        n_in, n_out = inside.sum(0), (~inside).sum(0)
        mu_in = np.where(inside, stats, 0.0).sum(0) / np.maximum(n_in, 1)
        mu_out = np.where(~inside, stats, 0.0).sum(0) / np.maximum(n_out, 1)
        resid = np.where(inside, stats - mu_in, stats - mu_out)
        sd_all = max(float(np.sqrt((resid**2).sum() / max(resid.size - len(x) * 2, 1))), 1e-3)
        for i in range(len(x)):
            a, b = stats[inside[:, i], i], stats[~inside[:, i], i]
            if len(a) == 0 or len(b) == 0:
                continue  # no evidence either way: score 0
            pooled = np.sqrt((a.var() * len(a) + b.var() * len(b)) / (len(a) + len(b)))
            sd = sd_all if fixed else max(pooled, 1e-3)
            score[i] = float(_gauss_logpdf(np.array(stat[i]), a.mean(), np.array(sd))
                             - _gauss_logpdf(np.array(stat[i]), b.mean(), np.array(sd)))
        curves["lira"] = roc(score, truth)
    report = {"members": int(truth.sum()), "non_members": int((~truth).sum()), "shadows": shadows,
              "attacks": {name: {"auc": c.auc, "tpr_at_0.1%_fpr": c.tpr_at(LOW_FPR),
                                 "advantage": float(np.max(c.tpr - c.fpr))}
                          for name, c in curves.items()}}
    report["_curves"] = curves
    return report


def roc_svg(curves: dict[str, Roc], title: str) -> str:
    """The ROC curves on linear axes, one polyline each, with AUC in the legend."""
    w, h, m = 420, 420, 50
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]

    def pt(f: float, t: float) -> str:
        return f"{m + f * (w - 2 * m):.1f},{h - m - t * (h - 2 * m):.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
             'font-size="12">', f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w / 2}" y="20" text-anchor="middle">{title}</text>',
             f'<polyline points="{pt(0, 0)} {pt(1, 0)} {pt(1, 1)} {pt(0, 1)} {pt(0, 0)}" '
             'fill="none" stroke="black"/>',
             f'<polyline points="{pt(0, 0)} {pt(1, 1)}" fill="none" stroke="#999" stroke-dasharray="4"/>',
             f'<text x="{w / 2}" y="{h - 15}" text-anchor="middle">false-positive rate</text>',
             f'<text x="15" y="{h / 2}" text-anchor="middle" transform="rotate(-90 15 {h / 2})">'
             'true-positive rate</text>']
    for i, (name, c) in enumerate(curves.items()):
        colour = colours[i % len(colours)]
        points = " ".join(pt(float(f), float(t)) for f, t in zip(c.fpr, c.tpr, strict=True))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{w - m - 5}" y="{h - m - 10 - 16 * i}" text-anchor="end" fill="{colour}">'
                     f'{name}: AUC {c.auc:.3f}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def load_model(path: Path, spec_path: Path | None = None) -> tuple[Any, Any, Any, dict[str, Any]]:
    """(spec, model, transform or None, metadata) of a ``.safetensors`` model saved by
    ``veritrain job fetch``; ``spec_path`` for a file whose metadata lacks the spec."""
    import torch
    from safetensors import safe_open

    from veritrain.data import Transform
    from veritrain.spec import load_spec
    from veritrain.training import state

    if not path.exists():
        raise DataError(f"{path}: no such model file")
    try:
        with safe_open(str(path), "pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iter)
    except Exception as exc:  # safetensors raises its own error types for a bad header
        raise DataError(f"{path}: not a safetensors model ({exc})") from None
    if spec_path is not None:
        import yaml

        spec = load_spec(yaml.safe_load(spec_path.read_text()))
    elif "veritrain.spec" in meta:
        spec = load_spec(json.loads(meta["veritrain.spec"]))
    else:
        raise DataError(f"{path} does not carry its JobSpec in its metadata: pass --spec")
    model = state.build_model(spec)
    try:
        model.load_state_dict({k: torch.as_tensor(v) for k, v in tensors.items()})
    except RuntimeError as exc:
        raise DataError(f"{path}: its weights do not fit the spec's model: {exc}") from None
    t = json.loads(meta["veritrain.transform"]) if "veritrain.transform" in meta else None
    transform = Transform(t["kind"], tuple(t["offset"]), tuple(t["scale"])) if t else None
    return spec, model, transform, meta
