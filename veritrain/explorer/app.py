"""The explorer's web app (FastAPI): read-only pages over a :class:`ChainIndex`.

Pages: ``/`` (market), ``/job/N``, ``/task/ID``, ``/dispute/N``, ``/account/0x…``, ``/tx/0x…``;
``/ipfs/CID`` serves a public document or ciphertext from the IPFS node; ``/api/head`` is what
the pages poll to stay live (``?fragment=1`` gives a page's content alone, swapped in without a
reload). A wrong id is a 404 page that says what exists; an unreachable RPC node or IPFS node
is a 503 page that says which and what to do. Never a stack trace.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from veritrain.errors import VeritrainError
from veritrain.explorer import pages
from veritrain.explorer.index import ChainIndex, NotFound
from veritrain.storage.base import StorageUnreachableError

HERE = Path(__file__).parent
#: Largest IPFS object /ipfs/ serves (manifests and job documents are small; checkpoints may not be).
IPFS_LIMIT = 64 << 20


def utc(timestamp: int) -> str:
    """A chain timestamp as people read it: ``2026-11-30 06:53:45 UTC``."""
    return datetime.fromtimestamp(int(timestamp), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def create_app(index: ChainIndex, *, network: str = "local", poll_ms: int = 1500) -> FastAPI:
    """The app over ``index``; ``network`` is shown in the header, ``poll_ms`` is how often pages poll."""
    app = FastAPI(title="Veritrain explorer", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    env.filters["utc"] = utc
    chain_id = index.deployment.chain_id

    def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        html = env.get_template(name).render(
            fragment=request.query_params.get("fragment") == "1", network=network, chain_id=chain_id,
            head=index.head if index.head >= 0 else "?", version=index.version, poll_ms=poll_ms,
            error=index.error, **ctx)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def page(request: Request, name: str, build: Callable[[], dict[str, Any]]) -> HTMLResponse:
        try:
            index.refresh()
            return render(request, name, p=build())
        except NotFound as exc:
            return render(request, "error.html", 404, heading="Not found", message=str(exc))
        except VeritrainError as exc:
            return render(request, "error.html", 503, heading="Cannot read the chain",
                          message=f"{exc} The page shows itself again as soon as the node answers.")

    def number(text: str, what: str) -> int:
        t = text.strip()
        if not re.fullmatch(r"\d{1,30}", t):
            raise NotFound(f"{what} {text!r} is not a number: {what}s are numbered 1, 2, 3…")
        return int(t)

    @app.get("/", response_class=HTMLResponse)
    def market(request: Request) -> HTMLResponse:
        return page(request, "market.html", lambda: pages.market(index))

    @app.get("/job/{job_id}", response_class=HTMLResponse)
    def job(request: Request, job_id: str) -> HTMLResponse:
        return page(request, "job.html", lambda: pages.job(index, number(job_id, "job")))

    @app.get("/task/{task_id}", response_class=HTMLResponse)
    def task(request: Request, task_id: str) -> HTMLResponse:
        return page(request, "task.html", lambda: pages.task(index, number(task_id, "task")))

    @app.get("/dispute/{dispute_id}", response_class=HTMLResponse)
    def dispute(request: Request, dispute_id: str) -> HTMLResponse:
        return page(request, "dispute.html", lambda: pages.dispute(index, number(dispute_id, "dispute")))

    @app.get("/account/{address}", response_class=HTMLResponse)
    def account(request: Request, address: str) -> HTMLResponse:
        return page(request, "account.html", lambda: pages.account(index, address))

    @app.get("/tx/{tx_hash}", response_class=HTMLResponse)
    def tx(request: Request, tx_hash: str) -> HTMLResponse:
        return page(request, "tx.html", lambda: pages.tx(index, tx_hash.lower()))

    @app.get("/go")
    def go(q: str = "") -> Response:
        """The search box: ``job 3``, ``task 4294967296``, ``dispute 2``, an address or a tx hash."""
        t = q.strip().lower()
        m = re.fullmatch(r"(job|task|dispute)\s*#?\s*(\d+)", t)
        if m:
            return RedirectResponse(f"/{m.group(1)}/{m.group(2)}", status_code=303)
        if re.fullmatch(r"0x[0-9a-f]{64}", t):
            return RedirectResponse(f"/tx/{t}", status_code=303)
        if re.fullmatch(r"0x[0-9a-f]{40}", t):
            return RedirectResponse(f"/account/{t}", status_code=303)
        if re.fullmatch(r"\d+", t):
            return RedirectResponse(f"/job/{t}", status_code=303)
        return RedirectResponse(f"/job/{q}", status_code=303)  # the job page says what is wrong

    @app.get("/ipfs/{cid}")
    def ipfs(request: Request, cid: str) -> Response:
        if index.storage is None:
            return render(request, "error.html", 503, heading="No IPFS node",
                          message="This explorer has no IPFS node configured (VERITRAIN_IPFS_API).")
        try:
            data = index.storage.get_bytes(cid)
        except StorageUnreachableError as exc:
            return render(request, "error.html", 503, heading="Cannot reach IPFS", message=str(exc))
        except VeritrainError as exc:  # a malformed CID, content that is not what it names
            return render(request, "error.html", 404, heading="Cannot fetch from IPFS", message=str(exc))
        if len(data) > IPFS_LIMIT:
            return render(request, "error.html", 413, heading="Too large",
                          message=f"{cid} is {len(data)} bytes; fetch it from an IPFS node directly.")
        kind = "application/json" if data[:1] in (b"{", b"[") else "application/octet-stream"
        immutable = {"Cache-Control": "public, max-age=31536000, immutable"}  # a CID names its bytes
        return Response(data, media_type=kind, headers=immutable)

    @app.get("/api/head")
    def head() -> JSONResponse:
        """What the pages poll: the block the index has read to, a version that changes with
        what the pages show, and the error that keeps it from reading the chain, if any."""
        with contextlib.suppress(VeritrainError):  # kept in index.error
            index.refresh()
        return JSONResponse({"head": index.head if index.head >= 0 else None, "version": index.version,
                             "events": len(index.events), "error": index.error},
                            headers={"Cache-Control": "no-store"})

    return app
