"""Deployment records: which contracts live at which addresses on which chain.

``ape run deploy`` (scripts/deploy.py) and ``veritrain.dev.deploy`` write
``deployments/<network>.json``; every role reads it through :func:`load`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from veritrain.errors import ConfigError


class Deployment(BaseModel):
    model_config = ConfigDict(frozen=True)

    network: str
    chain_id: int = Field(gt=0)
    deploy_block: int = Field(ge=0)
    contracts: dict[str, str]

    def address(self, name: str) -> str:
        try:
            return self.contracts[name]
        except KeyError:
            raise ConfigError(
                f"deployment for {self.network} has no {name} contract "
                f"(has: {', '.join(sorted(self.contracts))}); redeploy with `ape run deploy`"
            ) from None


def save(deployment: Deployment, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(deployment.model_dump_json(indent=2) + "\n")
    os.replace(tmp, path)
    return path


def load(path: Path) -> Deployment:
    try:
        return Deployment.model_validate(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ConfigError(
            f"no deployment file at {path}: deploy with `ape run deploy` "
            "or point VERITRAIN_DEPLOYMENT at one"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"deployment file {path} is malformed: {exc}") from exc
