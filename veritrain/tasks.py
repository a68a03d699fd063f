"""Task identity: how an on-chain ``taskId`` maps to a job and a task index.

JobMarket numbers tasks ``taskId = jobId << 32 | index`` (``taskIdOf``). Every round of a job
is its own on-chain job of ``num_shards`` tasks, so which (round, shard) a task trains is the
job document's to say: ``JobDocument.task_key``. Every role maps ids through these functions
and that method, nothing else.
"""

from __future__ import annotations

TASK_SHIFT = 32
INDEX_MASK = (1 << TASK_SHIFT) - 1


def task_id_of(job_id: int, index: int) -> int:
    if not 0 <= index <= INDEX_MASK:
        raise ValueError(f"task index {index} out of range [0, 2**32)")
    return job_id << TASK_SHIFT | index


def split_task_id(task_id: int) -> tuple[int, int]:
    """``(job_id, index)`` of an on-chain task id."""
    return task_id >> TASK_SHIFT, task_id & INDEX_MASK
