"""Issue 17's workload on the real stack: the byte-level GPT (tiny configuration) posted on
the Python standard library's sources packaged by examples/stdlib_corpus.py, trained by a real
`veritrain worker run --once` process, checked against its on-chain root by `job.result()`,
whose held-out perplexity (held-out files the model never saw) beats the untrained model's."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from test_requester_support import REWARD, STAKE, run_worker_process

from requester.sdk import Requester
from veritrain.deployments import save
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_local
from veritrain.spec import TaskKey, load_spec
from veritrain.storage import IpfsStorage
from veritrain.training import engine, state
from veritrain.training.profile import current_profile

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
import stdlib_corpus  # noqa: E402

REQUESTER, WORKER = dev_account(1), dev_account(6)
CONTEXT = 32


def tiny_gpt_spec():  # type: ignore[no-untyped-def]
    raw = yaml.safe_load((ROOT / "examples" / "gpt-stdlib.yaml").read_text())
    raw["model"]["args"] = {"d_model": 32, "n_heads": 2, "n_layers": 2, "dropout": 0.0}
    raw["optimizer"] = {"name": "adamw", "lr": 0.01, "weight_decay": 0.01}
    raw["data"]["input_shape"] = [CONTEXT]
    raw.update(steps_per_task=60, checkpoint_interval=20, batch_size=16, num_shards=1)
    raw["deadlines"] = {"key_window": 600, "submission_window": 3600, "reveal_window": 600,
                        "challenge_window": 3}
    raw["replay"] = current_profile(threads=1).model_dump(mode="json")
    return load_spec(raw)


def test_the_gpt_example_trains_on_the_real_stack_and_beats_the_untrained_perplexity(  # type: ignore[no-untyped-def]
        fresh_chain, anvil, ipfs, tmp_path: Path) -> None:
    train, held = stdlib_corpus.corpus(max_bytes=120_000)
    x, y = stdlib_corpus.windows(train, CONTEXT)
    hx, hy = stdlib_corpus.windows(held, CONTEXT)
    assert len(hx) >= 100 and x.max() < 256 and (x[:, 1:] == y[:, :-1]).all()
    spec = tiny_gpt_spec()
    deployment = deploy_local(fresh_chain, dev_account(0), mint_to=[REQUESTER.address, WORKER.address])
    dep_path = save(deployment, tmp_path / "deployment.json")
    req = Requester(anvil.url, REQUESTER, IpfsStorage(ipfs.url), deployment, home=tmp_path / "home")
    job = req.post_job(spec, (x, y), reward_per_task=REWARD, stake_per_task=STAKE, holdout_data=(hx, hy))

    code, output, errors = run_worker_process(job, fresh_chain, WORKER, tmp_path, rpc_url=anvil.url,
                                              deployment=dep_path, ipfs_url=ipfs.url, args=["--once"],
                                              timeout=240)
    assert code == 0 and f"task {job.task_ids[0]}: finalized" in output, output[-3000:]
    assert not errors
    assert job.wait(timeout=30, poll=0.2).done
    res = job.result()
    claim = req.market.get_claim(res.provenance.tasks[0].task_id, WORKER.address)
    assert res.provenance.tasks[0].root == "0x" + claim.root.hex()

    task = TaskKey(round=0, shard=0)
    untrained = engine.evaluate(spec, state.checkpoint(spec, task, state.initial(spec, task))[0], hx, hy)
    assert res.metrics["holdout_examples"] == len(hx)
    assert untrained.perplexity is not None and untrained.perplexity > 200  # ~uniform over 256 bytes
    assert res.metrics["baseline_untrained_perplexity"] == untrained.perplexity
    assert res.metrics["holdout_perplexity"] < 0.5 * untrained.perplexity, (res.metrics, untrained)
