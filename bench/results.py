"""The results file every benchmark writes into."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(".veritrain/bench/results.json")


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def record(results: dict[str, Any], path: Path = DEFAULT_PATH) -> dict[str, Any]:
    """Merge ``results`` into the file at ``path`` (keys replace older values); return all."""
    try:
        current = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        current = {}
    current.update(results)
    current["machine"] = machine()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return current
