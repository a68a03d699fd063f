"""The worker's device policy: a CUDA job in exact mode only on a GPU of its class that the
policy trains bitwise, a tolerance-mode CUDA job on any device, one line saying why not."""

from __future__ import annotations

from dataclasses import replace

from veritrain.spec import CudaProfile
from veritrain.training.devices import Device
from worker.policy import Machine, Offer, Policy, decide
from worker.status import devices_report

H200 = CudaProfile(gpu_name="NVIDIA H200", compute_capability="9.0", cuda_version="13.0", cudnn_version=91000)
CPU_ONLY = Machine(torch_version="2.13.0", cpus=2, devices=(Device("cpu", "2.13.0"),))
GPU_BOX = replace(CPU_ONLY, devices=(Device("cpu", "2.13.0"),
                                     Device("cuda", "2.13.0", "NVIDIA H200", "9.0", "13.0", 91000)))


def cuda_offer(**kw: object) -> Offer:
    base = Offer(job_id=1, task_index=0, task_id=1 << 32, reward=1000, stake=10, steps=100, model="gpt",
                 memory_mb=300, torch_version="2.13.0", cpu_isa="avx2", device="cuda", cuda=H200,
                 balance=100)
    return replace(base, **kw)  # type: ignore[arg-type]


def test_a_cpu_only_worker_skips_an_exact_cuda_job_with_one_clear_line() -> None:
    d = decide(cuda_offer(), Policy(), CPU_ONLY)
    assert str(d) == ("skip: the job trains bitwise on a CUDA GPU NVIDIA H200 (sm 9.0, CUDA 13.0, "
                      "cuDNN 91000); this worker has no CUDA GPU")


def test_a_gpu_of_the_class_takes_it_unless_the_policy_keeps_it_to_tolerance() -> None:
    assert decide(cuda_offer(), Policy(), GPU_BOX).take
    assert decide(cuda_offer(), Policy(bitwise_gpus=("NVIDIA H200",)), GPU_BOX).take
    d = decide(cuda_offer(), Policy(bitwise_gpus=()), GPU_BOX)
    assert str(d) == ("skip: the job's GPU class 'NVIDIA H200' is not among the GPUs this worker "
                      "trains bitwise (none)")
    other = H200.model_copy(update={"gpu_name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0"})
    text = str(decide(cuda_offer(cuda=other), Policy(), GPU_BOX))
    assert "CUDA GPU NVIDIA A100-SXM4-80GB (sm 8.0" in text and "this worker has cuda:0 NVIDIA H200" in text
    assert "pins torch 2.12.0" in str(decide(cuda_offer(torch_version="2.12.0"), Policy(), GPU_BOX))


def test_a_tolerance_mode_cuda_job_is_claimable_on_a_cpu_only_worker() -> None:
    assert decide(cuda_offer(tolerance="tolerance"), Policy(), CPU_ONLY).take
    assert decide(cuda_offer(tolerance="tolerance", torch_version="2.11.0"), Policy(), CPU_ONLY).take
    d = decide(cuda_offer(tolerance="tolerance", torch_version="1.13.1"), Policy(), CPU_ONLY)
    assert str(d) == "skip: the job pins torch 1.x; this machine has 2.13.0"


def test_worker_status_lists_this_machines_devices_and_what_each_trains() -> None:
    import torch

    report = devices_report(None)
    assert report[0]["kind"] == "cpu" and report[0]["label"].startswith("cpu (torch ")
    assert report[0]["trains"] == "cpu jobs (bitwise) + tolerance-mode cuda jobs"
    assert len(report) == 1 + (torch.cuda.device_count() if torch.cuda.is_available() else 0)
