"""``veritrain audit``: checks a requester runs on a model before publishing it (docs/privacy.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

audit_app = typer.Typer(help="Audit a trained model before publishing it (membership inference).",
                        no_args_is_help=True)


@audit_app.command("membership")
def membership(
    model: Annotated[Path, typer.Argument(help="The model (.safetensors from `veritrain job fetch`).")],
    members: Annotated[Path, typer.Option("--members", help="Examples that were in the training set "
                                          "(.npz, .csv, .pt: as the job's data).")],
    non_members: Annotated[Path, typer.Option("--non-members", help="Examples of the same population "
                                              "that were not (e.g. the held-out set).")],
    spec: Annotated[Optional[Path], typer.Option("--spec", help="The JobSpec, when the model file "  # noqa: UP045
                                                 "does not carry it.")] = None,
    shadows: Annotated[int, typer.Option("--shadows", min=0, help="Shadow models for the LiRA "
                                         "attack (0: loss threshold only).")] = 8,
    plot: Annotated[Path, typer.Option("--plot", help="Where to write the ROC curves (SVG).")]
    = Path("membership-roc.svg"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the shadows' splits.")] = 0,
) -> None:
    """Loss-threshold and LiRA-style attacks: AUC and TPR at 0.1% FPR; ROC curves as an image."""
    from veritrain import audit
    from veritrain.data import load, spec_checks

    job_spec, net, transform, meta = audit.load_model(model, spec)
    checks = spec_checks(job_spec)
    sets = []
    for p in (members, non_members):
        d = load(p, label=job_spec.data.label, **checks)
        sets.append(transform.apply_to(d) if transform is not None else d)
    report = audit.membership(job_spec, net, sets[0], sets[1], shadows=shadows, seed=seed)
    curves = report.pop("_curves")
    plot.parent.mkdir(parents=True, exist_ok=True)
    plot.write_text(audit.roc_svg(curves, f"membership inference: {model.name}"))
    report["plot"] = str(plot)
    privacy = json.loads(meta.get("veritrain.metrics", "{}")).get("privacy")
    report["privacy"] = privacy
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    dp = (f"DP-SGD epsilon {privacy['epsilon']:.3g} at delta {privacy['delta']:g}" if privacy
          else "no differential privacy recorded")
    typer.echo(f"{model}: {report['members']} members, {report['non_members']} non-members; {dp}")
    for name, r in report["attacks"].items():
        typer.echo(f"  {name:<15} AUC {r['auc']:.3f}  TPR@0.1%FPR {r['tpr_at_0.1%_fpr']:.3f}  "
                   f"advantage {r['advantage']:.3f}")
    typer.echo(f"ROC curves written to {plot}")
