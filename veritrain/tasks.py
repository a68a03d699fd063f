"""Task identity: how an on-chain ``taskId`` maps to a job, a task index and a (round, shard).

JobMarket numbers tasks ``taskId = jobId << 32 | index`` (``taskIdOf``); task ``index`` of a
job trains shard ``index % num_shards`` in round ``index // num_shards``. Every role maps
ids through these functions and nothing else.
"""

from __future__ import annotations

from veritrain.spec import JobSpec, TaskKey

TASK_SHIFT = 32
INDEX_MASK = (1 << TASK_SHIFT) - 1


def task_id_of(job_id: int, index: int) -> int:
    if not 0 <= index <= INDEX_MASK:
        raise ValueError(f"task index {index} out of range [0, 2**32)")
    return job_id << TASK_SHIFT | index


def split_task_id(task_id: int) -> tuple[int, int]:
    """``(job_id, index)`` of an on-chain task id."""
    return task_id >> TASK_SHIFT, task_id & INDEX_MASK


def task_key(spec: JobSpec, task_id: int) -> TaskKey:
    """The (round, shard) a task trains; accepts a full task id or a bare index."""
    index = task_id & INDEX_MASK
    key = TaskKey(round=index // spec.num_shards, shard=index % spec.num_shards)
    spec.check_task(key)
    return key
