"""The explorer in a real headless browser (Debian's Chromium driven by Selenium) against the real
stack: the session's Anvil and IPFS node, the protocol deployed, a job in flight with an honest
and a cheating worker whose manifests carry loss curves, and the explorer served by the real
`veritrain explorer --network sim` command through the provider proxy of issue 18
(tests/integration/rpc_proxy.py: eth_getLogs capped at 40 blocks, so the explorer reads its
events in pages). The tests run in order on one world: the pages render, a dispute appears and
its votes show as they are revealed without a reload, money figures equal the contracts' views,
the charts hold data, the layout holds at phone width, a wrong id and a dead RPC say so.
Screenshots of every page go to .veritrain/artifacts/explorer/ (not committed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from eth_abi import encode
from verifier_helpers import Requester, contracts, send, small_spec
from web3 import Web3

from veritrain import crypto, envelope
from veritrain.chain import segments
from veritrain.deployments import save
from veritrain.dev import procs
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import REGISTRY_MIN_STAKE, deploy_local
from veritrain.jobdoc import checkpoint_binding
from veritrain.manifest import Manifest
from veritrain.storage.ipfs import IpfsStorage
from veritrain.training.engine import train_task
from veritrain.training.sinks import DirectorySink, MemorySink

ROOT = Path(__file__).resolve().parents[2]
PROXY = Path(__file__).with_name("rpc_proxy.py")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SHOTS = ROOT / ".veritrain" / "artifacts" / "explorer"
MAX = 2**256 - 1
SALT = b"\x42" * 32
CHEAT_SEGMENT = 1
PAGES = ["/", "/job/1", "/task/{t0}", "/task/{t1}", "/dispute/1", "/account/{cheater}"]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no Chromium/chromedriver on PATH: `make setup` installs Debian's chromium and "
           "chromium-driver where apt-get is available",
)


def _wait(check: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def _submit(w3: Any, dep: Any, storage: Any, acct: Any, job: Any, index: int, cheat: Any,
            tmp: Path) -> Manifest:
    """Train task ``index`` (honestly or with ``cheat``) into a folder, publish the encrypted
    checkpoints and a manifest with the worker's loss curve, commit and reveal."""
    from adversary.cheats import dishonest_train
    from worker.tasks import checkpoint_losses

    spec, task_id = job.doc.spec, job.task_id(index)
    task = job.doc.task_key(index)
    x, y = job.shards[task.shard]
    folder = tmp / f"ckpt-{index}"
    sink = DirectorySink(folder)
    if cheat is None:
        hashes = train_task(spec, task, x, y, sink)
    else:
        hashes = dishonest_train(spec, task, x, y, cheat, sink)
    losses = checkpoint_losses(spec, x, y, [sink.path(i) for i in range(len(hashes))])
    assert losses is not None and len(losses) == len(hashes)
    binding = checkpoint_binding(job.doc, task_id, acct.address)
    key = job.shard_key(task_id)
    cids = [storage.put_bytes(crypto.encrypt_bytes(sink.read(i), key, job_id=binding, shard_index=i))
            for i in range(len(hashes))]
    m = Manifest.build(spec_cid=job.spec_cid, job_id=job.job_id, task_id=task_id, worker=acct.address,
                       k=spec.checkpoint_interval, hashes=hashes, checkpoint_cids=cids, losses=losses)
    manifest_cid = storage.put_bytes(m.canonical_json())
    market = contracts(w3, dep)["JobMarket"]
    salt = os.urandom(32)
    c = Web3.keccak(encode(["bytes32", "address", "bytes32"], [m.root_bytes(), acct.address, salt]))
    send(w3, acct, market.functions.commit(task_id, c))
    send(w3, acct, market.functions.reveal(task_id, m.root_bytes(), salt, manifest_cid))
    return m


@pytest.fixture(scope="module")
def world(w3: Any, ipfs: Any) -> Iterator[SimpleNamespace]:
    """The protocol, a 2-task job (task 0 honest, task 1 cheated in segment 1), four staked
    verifiers, the proxy and the explorer command; the chain is reverted afterwards."""
    from adversary.cheats import SkipStep

    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    tmp = Path(tempfile.mkdtemp(prefix="explorer-"))
    procs_started: list[subprocess.Popen[bytes]] = []
    try:
        dep = deploy_local(w3, dev_account(0))
        dep_path = save(dep, tmp / "deployment.json")
        c = contracts(w3, dep)
        proxy_port, port = procs.free_port(), procs.free_port()
        proxy = subprocess.Popen([sys.executable, str(PROXY), "--upstream", w3.provider.endpoint_uri,
                                  "--port", str(proxy_port), "--log-range", "40", "--lifetime", "600"])
        procs_started.append(proxy)
        proxy_url = f"http://127.0.0.1:{proxy_port}"
        _wait(lambda: _get(proxy_url + "/stats")[0] == 200, "the RPC proxy")
        home = tmp / "home"
        home.mkdir()
        (home / "networks.toml").write_text(
            f'[networks.sim]\nchain_id = 31337\nrpc_urls = ["{proxy_url}"]\nlog_range = 40\n'
            f'deployment = "{dep_path}"\nipfs_api = "{ipfs.url}"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("VERITRAIN_")}
        env.update(VERITRAIN_HOME=str(home), PYTHONPATH=str(ROOT))
        with (tmp / "explorer.log").open("wb") as log:  # started now: it loads while the job runs
            server = subprocess.Popen([str(Path(sys.executable).with_name("veritrain")), "explorer",
                                       "--network", "sim", "--port", str(port), "--poll", "0.3"],
                                      env=env, stdout=log, stderr=subprocess.STDOUT)
        procs_started.append(server)
        verifiers = [dev_account(i) for i in (5, 6, 7, 8)]
        for v in verifiers:
            send(w3, v, c["DevToken"].functions.approve(c["JobMarket"].address, MAX))
            pub = envelope.public_key_from_private(bytes(v.key))
            send(w3, v, c["VerifierRegistry"].functions.register(pub, REGISTRY_MIN_STAKE))
        storage = IpfsStorage(ipfs.url)
        requester = Requester(w3, dep, storage)
        job = requester.post_job(small_spec(num_shards=2))
        honest, cheater = dev_account(2), dev_account(3)
        for i, w in enumerate((honest, cheater)):
            send(w3, w, c["DevToken"].functions.approve(c["JobMarket"].address, MAX))
            pub = envelope.public_key_from_private(bytes(w.key))
            send(w3, w, c["JobMarket"].functions.claim(job.task_id(i), pub, bytes(32)))
            requester.deliver_key(job, job.task_id(i), w)
        m_honest = _submit(w3, dep, storage, honest, job, 0, None, tmp)
        m_cheat = _submit(w3, dep, storage, cheater, job, 1, SkipStep(segment=CHEAT_SEGMENT), tmp)
        # what an honest replay of the cheated task gives (the challenger's and referees' hash)
        t1 = job.doc.task_key(1)
        truth = train_task(job.doc.spec, t1, *job.shards[t1.shard], MemorySink())

        url = f"http://127.0.0.1:{port}"
        _wait(lambda: server.poll() is not None or _get(url + "/api/head")[0] == 200, "the explorer", 60)
        assert server.poll() is None, (tmp / "explorer.log").read_text()
        browser = _browser()
        try:
            yield SimpleNamespace(w3=w3, dep=dep, c=c, job=job, honest=honest, cheater=cheater, truth=truth,
                                  m_honest=m_honest, m_cheat=m_cheat, verifiers=verifiers, url=url,
                                  browser=browser, proxy=proxy, proxy_url=proxy_url, storage=storage, tmp=tmp)
        finally:
            browser.quit()
    finally:
        for p in procs_started:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        # the session's chain goes back to where this module found it (the reorg included)
        assert w3.provider.make_request("evm_revert", [snap])["result"] is True


def _browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,1000", "--disable-extensions"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)


def _open(world: SimpleNamespace, path: str) -> Any:
    b = world.browser
    b.get(world.url + path.format(t0=world.job.task_id(0), t1=world.job.task_id(1),
                                  cheater=world.cheater.address))
    _wait(lambda: b.execute_script("return document.readyState") == "complete", f"{path} to load")
    b.execute_script("window.__notReloaded = true;")
    return b


# Read in one script call: a live update may replace an element between a find and a read.
def _text(b: Any, css: str) -> str:
    """The visible text of ``css`` ("" when hidden or absent)."""
    return str(b.execute_script("const e = document.querySelector(arguments[0]);"
                                "return e && !e.hidden ? e.innerText : '';", css))


def _raw(b: Any, css: str) -> int:
    """The exact integer behind the figure in ``css``."""
    return int(b.execute_script("return document.querySelector(arguments[0] + ' [data-raw]')"
                                ".getAttribute('data-raw');", css))


def _shot(b: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    b.save_screenshot(str(SHOTS / f"{name}.png"))


def _chart_points(b: Any, chart_id: str) -> list[int]:
    """How many data points each dataset of the drawn Chart.js chart holds (None excluded)."""
    return list(b.execute_script(
        "const c = Chart.getChart(document.getElementById(arguments[0]));"
        "return c ? c.data.datasets.map(d => d.data.filter(v => v !== null).length) : null;",
        f"chart-{chart_id}") or [])


def test_market_page_shows_the_contracts_money_and_the_job(world: SimpleNamespace) -> None:
    b = _open(world, "/")
    market = world.c["JobMarket"]
    assert _raw(b, "#balance") == world.c["DevToken"].functions.balanceOf(market.address).call()
    assert _raw(b, "#liabilities") == market.functions.liabilities().call()
    assert "holds at least what it owes" in _text(b, "#solvency")
    assert "job 1" in _text(b, "#jobs") and "Open" in _text(b, "#jobs")
    gas = _chart_points(b, "gas")
    assert gas and gas[0] >= 5  # register, postJob, claim, deliverKey, commit, reveal...
    href = b.execute_script("return document.querySelector('#balance a').getAttribute('href')")
    assert href.startswith("/tx/0x") and "#log-" in href  # a view's figure links to the tx it reflects
    _shot(b, "market")


def test_job_and_task_pages_show_phases_checkpoints_and_loss_curves(world: SimpleNamespace) -> None:
    b = _open(world, "/job/1")
    tasks = _text(b, "#tasks")
    assert tasks.count("Revealed") == 2 and "challenge window open" in tasks
    assert "no differential privacy" in _text(b, "#privacy")
    n = world.job.doc.spec.num_checkpoints
    assert _chart_points(b, "loss-job-1") == [n, n]
    assert _chart_points(b, "detection") and _chart_points(b, "progress-1")[0] >= 4
    _shot(b, "job")
    b = _open(world, "/task/{t0}")
    rows = b.execute_script("return [...document.querySelectorAll('table.checkpoints tbody tr')]"
                            ".map(r => [...r.cells].map(c => c.textContent.trim()))")
    assert len(rows) == n
    assert [float(r[4]) for r in rows] == [pytest.approx(x, abs=1e-4) for x in world.m_honest.losses]
    cid_href = b.execute_script("return document.querySelector('table.checkpoints a').getAttribute('href')")
    assert cid_href == f"/ipfs/{world.m_honest.checkpoint_cids[0]}"
    status, body = _get(world.url + cid_href)
    assert status == 200 and body == world.storage.get_bytes(world.m_honest.checkpoint_cids[0])
    assert _chart_points(b, f"loss-task-{world.job.task_id(0)}") == [n]
    _shot(b, "task")


def test_a_dispute_appears_and_its_votes_show_without_a_reload(world: SimpleNamespace) -> None:
    w3, c, t1 = world.w3, world.c, world.job.task_id(1)
    resolver = c["DisputeResolver"]
    b = _open(world, "/")
    assert "No dispute so far" in b.page_source
    challenger = world.verifiers[0]
    j = CHEAT_SEGMENT
    send(w3, challenger, resolver.functions.challenge(t1, world.cheater.address, j, world.truth[j + 1]))
    _wait(lambda: "dispute 1" in _text(b, "main"), "the dispute on the market page")
    assert b.execute_script("return window.__notReloaded === true")  # swapped in, not reloaded
    assert int(b.execute_script("return document.body.getAttribute('data-updates')")) >= 1

    b = _open(world, "/dispute/1")
    assert "Answering" in _text(b, "#dstatus")
    hashes = [bytes.fromhex(h[2:]) for h in world.m_cheat.hashes]
    send(w3, dev_account(12), resolver.functions.answer(1, segments.segment(hashes, j)))
    for _ in range(3):
        w3.provider.make_request("evm_mine", [])
    r = send(w3, dev_account(12), resolver.functions.drawCommittee(1))
    referees = resolver.events.CommitteeDrawn().process_receipt(r)[0]["args"]["referees"]
    by_addr = {v.address: v for v in world.verifiers}
    _wait(lambda: f"0 of {len(referees)} revealed" in _text(b, "#votes-h"), "the committee")
    vote = world.truth[j + 1]
    for seat, ref in enumerate(referees):
        sealed = Web3.keccak(encode(["bytes32", "address", "bytes32"], [vote, ref, SALT]))
        send(w3, by_addr[ref], resolver.functions.commitVote(1, seat, sealed))
    for seat, ref in enumerate(referees):
        send(w3, by_addr[ref], resolver.functions.revealVote(1, seat, vote, SALT))
        _wait(lambda s=seat: f"{s + 1} of {len(referees)} revealed" in _text(b, "#votes-h"),
              f"vote {seat} on the page")
    assert _text(b, "#votes").count("against the accused") == len(referees)  # each sided with the challenger
    send(w3, dev_account(13), resolver.functions.settle(1))
    _wait(lambda: "AccusedLost" in _text(b, "#outcome"), "the settlement")
    assert b.execute_script("return window.__notReloaded === true")
    _shot(b, "dispute")
    b = _open(world, "/job/1")
    rows = b.execute_script("return [...document.querySelectorAll('#tasks tbody tr')].map(r => r.innerText)")
    assert "challenge window open" in rows[0] and "cheat caught" in rows[1] and "Ended" in rows[1]
    _shot(b, "job-settled")  # the README's picture (docs/explorer.png)


def test_account_figures_equal_the_contracts(world: SimpleNamespace) -> None:
    market, registry = world.c["JobMarket"], world.c["VerifierRegistry"]
    b = _open(world, "/account/{cheater}")
    stake = market.functions.getJob(1).call()[5]
    assert _raw(b, "#slashed") == stake  # ClaimSlashed: the whole stake
    assert _raw(b, "#withdrawable") == market.functions.owed(world.cheater.address).call()
    assert _raw(b, "#worker-stake") == 0
    _shot(b, "account")
    challenger = world.verifiers[0].address
    b = _open(world, f"/account/{challenger}")
    assert _raw(b, "#withdrawable") == market.functions.owed(challenger).call() > 0
    assert _raw(b, "#verifier-stake") == registry.functions.stakeOf(challenger).call()
    b = _open(world, "/")
    assert _raw(b, "#balance") == market.functions.liabilities().call() == _raw(b, "#liabilities")


def test_layout_holds_at_phone_width(world: SimpleNamespace) -> None:
    b = world.browser
    b.set_window_size(390, 844)
    try:
        for path in PAGES:
            b = _open(world, path)
            wide = b.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            assert wide[0] <= wide[1], f"{path} overflows a phone-width window: {wide}"
            name = path.strip("/").split("/")[0] or "market"
            _shot(b, f"phone-{name}")
    finally:
        b.set_window_size(1280, 1000)


def test_a_reorg_drops_the_events_of_the_replaced_blocks(world: SimpleNamespace) -> None:
    """The index behind the pages notices a reorg and shows the current chain only."""
    from veritrain.chain import ChainClient
    from veritrain.explorer.index import ChainIndex
    from veritrain.explorer.serve import Reader

    client = ChainClient(world.w3.provider.endpoint_uri, Reader(), world.dep, log_range=7)
    index = ChainIndex(client, world.dep, world.storage, min_interval=0)
    index.refresh()
    before = [(e.tx_hash, e.log_index) for e in index.events]
    assert len(before) > 20  # the whole scenario, read in pages of 7 blocks
    send(world.w3, world.verifiers[3], world.c["JobMarket"].functions.requestVerifierKey(1))
    index.refresh()
    assert [e.name for e in index.events[len(before):]] == ["VerifierKeyRequested"]
    world.w3.provider.make_request("anvil_reorg", [1, []])  # the block with that request is replaced
    index.refresh()
    assert index.reorgs == 1 and [(e.tx_hash, e.log_index) for e in index.events] == before


def test_a_wrong_id_and_a_dead_rpc_say_so(world: SimpleNamespace) -> None:
    b = _open(world, "/job/99")
    assert "no job 99 on this market (it has jobs 1..1)" in _text(b, ".error")
    assert _get(world.url + "/job/99")[0] == 404
    assert _get(world.url + "/dispute/x")[0] == 404
    b = _open(world, "/")
    world.proxy.terminate()
    world.proxy.wait(timeout=10)
    send(world.w3, dev_account(14), world.c["DevToken"].functions.approve(world.c["JobMarket"].address, 1))
    banner = _wait(lambda: _text(b, "#status"), "the dead-RPC banner", 30)
    assert "did not answer" in banner and world.proxy_url in banner
    status, body = _get(world.url + "/job/1")
    assert status == 503 and b"Cannot read the chain" in body and world.proxy_url.encode() in body
    _shot(b, "dead-rpc")
