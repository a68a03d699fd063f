"""`make setup` leaves the checkout clean: npm install finds nothing to rewrite in package-lock.json.

npm writes an entry for every optional dependency of every package, whatever the platform; a
lockfile pruned to one platform's packages (as this one once was, for @foundry-rs/anvil's
platform binaries) is rewritten by the first `npm install`. And the project's .npmrc keeps
registry URLs out, so a machine with another registry or mirror writes the same file."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_optional_dependency_has_its_lockfile_entry() -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text())
    packages = lock["packages"]
    # (an optional dependency fetched from a URL -- electron-eval's `headless` from GitHub -- is
    # unreachable here and npm leaves it out on every install alike)
    missing = [f"{path} -> {dep}" for path, meta in packages.items()
               for dep, spec in meta.get("optionalDependencies", {}).items()
               if "://" not in spec
               and f"node_modules/{dep}" not in packages and f"{path}/node_modules/{dep}" not in packages]
    assert not missing, f"npm install would add these to package-lock.json: {missing}"
    assert "node_modules/@foundry-rs/anvil-darwin-arm64" in packages


def test_lockfile_matches_package_json_and_carries_no_registry_urls() -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text())
    manifest = json.loads((ROOT / "package.json").read_text())
    assert lock["packages"][""]["dependencies"] == manifest["dependencies"]
    assert not [p for p, meta in lock["packages"].items() if "resolved" in meta]
    assert "omit-lockfile-registry-resolved=true" in (ROOT / ".npmrc").read_text().splitlines()
