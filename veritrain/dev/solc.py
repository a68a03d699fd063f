"""The project's compiler: the solc look-alike, and the artifacts shipped in the package.

- :func:`install_lookalike` writes ``solc-v<version>`` where py-solc-x and ape-solidity
  look (``$SOLCX_BINARY_PATH`` or ``~/.solcx``), pointing at this checkout's npm ``solc``.
- :func:`compile_contracts` compiles every ``contracts/**/*.sol`` in one standard-JSON call
  (solcjs is slow to load) and :func:`write_artifacts` stores ABIs and bytecode in
  ``veritrain/artifacts`` (production) and ``tests/artifacts`` (attack and mock contracts
  under ``contracts/test``), with a manifest of source hashes so drift is detectable.

``python -m veritrain.dev.solc install|build|check`` is what ``make setup`` and
``make artifacts`` call.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from veritrain.errors import SetupError
from veritrain.settings import PROJECT_ROOT

SOLC_VERSION = "0.8.37"
TEMPLATE = Path(__file__).with_name("solc_lookalike.js")
EVM_VERSION = "cancun"
OPTIMIZER_RUNS = 200
REMAPPINGS = ["@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/"]
PACKAGE_ARTIFACTS = PROJECT_ROOT / "veritrain" / "artifacts"
TEST_ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
MANIFEST = "manifest.json"


def solcx_folder() -> Path:
    return Path(os.environ.get("SOLCX_BINARY_PATH") or Path.home() / ".solcx")


def lookalike_path() -> Path:
    return solcx_folder() / f"solc-v{SOLC_VERSION}"


def install_lookalike(
    node_modules: Path = PROJECT_ROOT / "node_modules", dest: Path | None = None
) -> Path:
    """Write the look-alike where py-solc-x finds installed compilers; idempotent.

    The copy embeds the absolute path of *this* checkout's npm solc, so the last checkout
    to run ``make setup`` owns ``~/.solcx``; the project's own builds use a private copy
    (:func:`compile_contracts`) and never depend on another checkout.
    """
    solcjs = (node_modules / "solc").resolve()
    if not (solcjs / "package.json").exists():
        raise SetupError(f"npm solc not found at {solcjs}: run `make setup` (npm install)")
    found = json.loads((solcjs / "package.json").read_text())["version"]
    if found != SOLC_VERSION:
        raise SetupError(f"npm solc is {found}, expected {SOLC_VERSION}: run `npm install`")
    text = TEMPLATE.read_text().replace("__SOLCJS_PATH__", str(solcjs))
    dest = dest or lookalike_path()
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists() or dest.read_text() != text:
        tmp = dest.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        os.replace(tmp, dest)
    return dest


def source_files(root: Path = PROJECT_ROOT) -> list[str]:
    """Every Solidity source, as paths relative to ``root`` in a stable order."""
    return sorted(p.relative_to(root).as_posix() for p in (root / "contracts").rglob("*.sol"))


def source_hashes(root: Path = PROJECT_ROOT) -> dict[str, str]:
    return {f: hashlib.sha256((root / f).read_bytes()).hexdigest() for f in source_files(root)}


def standard_input(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    return {
        "language": "Solidity",
        "sources": {f: {"urls": [f]} for f in source_files(root)},
        "settings": {
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "evmVersion": EVM_VERSION,
            "remappings": REMAPPINGS,
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
            },
        },
    }


def compile_contracts(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Compile all sources with py-solc-x driving the look-alike; raise on any error."""
    import solcx
    from solcx.exceptions import SolcError

    binary = install_lookalike(
        root / "node_modules", root / ".veritrain" / "solc" / f"solc-v{SOLC_VERSION}"
    )
    # solcjs reads sources itself through the import callback, so pass contents directly.
    inp = standard_input(root)
    inp["sources"] = {f: {"content": (root / f).read_text()} for f in inp["sources"]}
    try:
        out = solcx.compile_standard(
            inp, solc_binary=binary, base_path=str(root), allow_paths=[str(root)]
        )
    except SolcError as exc:
        raise SetupError(f"compilation failed: {exc}") from exc
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise SetupError("compilation failed:\n" + "\n".join(e["formattedMessage"] for e in errors))
    return out  # type: ignore[no-any-return]


def artifacts_from_output(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Contract name -> {abi, bytecode, deployedBytecode, sourceName}; names must be unique."""
    arts: dict[str, dict[str, Any]] = {}
    for source, contracts in sorted(out.get("contracts", {}).items()):
        if not source.startswith("contracts/"):
            continue  # OpenZeppelin's own contracts are not shipped
        for name, c in sorted(contracts.items()):
            if name in arts:
                raise SetupError(f"two contracts named {name}: {arts[name]['sourceName']}, {source}")
            arts[name] = {
                "contractName": name,
                "sourceName": source,
                "abi": c["abi"],
                "bytecode": "0x" + c["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
            }
    return arts


def _dest(art: dict[str, Any]) -> Path:
    return TEST_ARTIFACTS if art["sourceName"].startswith("contracts/test/") else PACKAGE_ARTIFACTS


def write_artifacts(root: Path = PROJECT_ROOT) -> list[Path]:
    """Compile and (re)write every artifact and both manifests; returns the files written."""
    arts = artifacts_from_output(compile_contracts(root))
    written: list[Path] = []
    for folder in (PACKAGE_ARTIFACTS, TEST_ARTIFACTS):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.json"):
            old.unlink()
    for name, art in arts.items():
        path = _dest(art) / f"{name}.json"
        path.write_text(json.dumps(art, indent=1, sort_keys=True) + "\n")
        written.append(path)
    manifest = {
        "solc": SOLC_VERSION,
        "settings": standard_input(root)["settings"],
        "sources": source_hashes(root),
    }
    for folder in (PACKAGE_ARTIFACTS, TEST_ARTIFACTS):
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return written


def drift(root: Path = PROJECT_ROOT) -> list[str]:
    """Sources whose hash differs from the one the shipped artifacts were built from."""
    try:
        manifest = json.loads((PACKAGE_ARTIFACTS / MANIFEST).read_text())
    except FileNotFoundError:
        return ["(no artifacts manifest: run `make artifacts`)"]
    built: dict[str, str] = manifest["sources"]
    now = source_hashes(root)
    return sorted(f for f in set(built) | set(now) if built.get(f) != now.get(f))


app = typer.Typer(name="veritrain.dev.solc", help="The solc look-alike and the shipped artifacts.",
                  add_completion=False, pretty_exceptions_enable=False)


@app.command("install")
def install_command() -> None:
    """Install the look-alike where py-solc-x and ape-solidity look (``make setup``)."""
    with _user_errors():
        typer.echo(f"solc look-alike installed at {install_lookalike()}")


@app.command("build")
def build_command() -> None:
    """Recompile contracts/ into veritrain/artifacts (``make artifacts``)."""
    with _user_errors():
        for path in write_artifacts():
            typer.echo(f"wrote {path.relative_to(PROJECT_ROOT)}")


@app.command("check")
def check_command() -> None:
    """Fail when the shipped artifacts drift from contracts/ (``make check-artifacts``)."""
    with _user_errors():
        changed = drift()
    if changed:
        typer.echo("artifacts are stale for: " + ", ".join(changed) + "; run `make artifacts`")
        raise typer.Exit(1)
    typer.echo("artifacts match contracts/")


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except SetupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


if __name__ == "__main__":
    app()
