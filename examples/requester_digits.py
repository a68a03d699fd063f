"""Post a training job on scikit-learn's digits, serve its keys, fetch the checked model.

Run against the local stack (workers train it meanwhile, e.g. `veritrain worker run`):

    veritrain dev up
    python examples/requester_digits.py --deploy        # deploys the contracts if needed
    # in other terminals: veritrain worker init && veritrain worker run

It uses dev account 1 of the local stack as the requester (never on a real network) and
reads VERITRAIN_RPC_URL, VERITRAIN_IPFS_API and VERITRAIN_HOME like the CLI does (the
deployment is found by network, or VERITRAIN_DEPLOYMENT). `--post-only` posts and exits;
`veritrain job serve` / `watch` / `fetch` carry on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SPEC = Path(__file__).with_name("digits-mlp.yaml")


def digits() -> tuple[object, object]:
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()  # ships inside scikit-learn: no download
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


def deployment(deploy: bool):  # type: ignore[no-untyped-def]
    """The contracts on the chain at VERITRAIN_RPC_URL: VERITRAIN_DEPLOYMENT's record, else
    the one found by network; with ``deploy``, deployed (and recorded under VERITRAIN_HOME)
    when there is none."""
    from veritrain import deployments
    from veritrain.errors import ConfigError
    from veritrain.settings import ChainSettings, default_home

    chain = ChainSettings()
    try:
        return deployments.load(chain.deployment, chain.rpc_url)
    except ConfigError:
        if not deploy:
            raise
    from web3 import HTTPProvider, Web3

    from veritrain.dev.accounts import dev_account
    from veritrain.dev.deploy import deploy_local

    w3 = Web3(HTTPProvider(chain.rpc_url))
    dep = deploy_local(w3, dev_account(0))
    path = deployments.save(dep, chain.deployment or default_home() / "deployments" / "local.json")
    print(f"deployed the contracts; addresses in {path}")
    return dep


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deploy", action="store_true", help="deploy the contracts if no deployment file")
    ap.add_argument("--post-only", action="store_true", help="post the job and exit")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the workers")
    ap.add_argument("--out", type=Path, default=Path("digits-model.safetensors"))
    args = ap.parse_args()

    from requester import Requester
    from veritrain.dev.accounts import dev_account
    from veritrain.errors import VeritrainError
    from veritrain.settings import ChainSettings, StorageSettings
    from veritrain.storage import IpfsStorage

    try:
        storage = IpfsStorage(StorageSettings().ipfs_api)
        requester = Requester(ChainSettings().rpc_url, dev_account(1), storage, deployment(args.deploy))
        job = requester.post_job(SPEC, digits(), reward_per_task=10 * 10**18, stake_per_task=5 * 10**18,
                                 holdout=0.2)
        print(f"posted job {job.id} (spec {job.record.doc_cid}, tx {job.record.post_tx})")
        if args.post_only:
            print("serve its keys with `veritrain job serve --dev-account 1`")
            return 0
        print("serving keys; waiting for workers to claim, train and finalize...")
        final = job.wait(timeout=args.timeout)  # serves the keys while it waits
        print(final.summary())
        result = job.result()
        result.save(args.out)
        print(f"model written to {args.out}; held-out accuracy "
              f"{result.metrics.get('holdout_accuracy', float('nan')):.3f}")
        for t in result.provenance.tasks:
            print(f"  task {t.task_id} (shard {t.shard}): worker {t.worker}, root {t.root}")
        return 0
    except VeritrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
