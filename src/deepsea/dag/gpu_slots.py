"""One GPU per job on a workstation with several: a lock file per GPU, held for the life of the job.

Snakemake's `--resources gpu=N` makes sure that at most N GPU jobs run at once, but it does not say *which* GPU a
job may use, so without help every job would pick GPU 0. Before CUDA starts, a GPU job (`deepsea train`,
`deepsea predict`) takes the first free slot of N by locking `gpu<id>.lock` (flock, exclusive, non-blocking) and
sets `CUDA_VISIBLE_DEVICES` to that GPU. The kernel drops the lock when the process ends, however it ends (also on
SIGKILL), so a killed job never leaves its GPU marked busy. Locks live in the system temp folder, per user, so two
workflows on the same machine also share the GPUs instead of doubling up.

The workflow turns this on (environment variable `DEEPSEA_GPU_SLOTS`) when Snakemake runs jobs locally with a
`gpu` resource limit (the local-gpu profile); on SLURM the scheduler assigns the GPU and this stays off.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from deepsea.errors import ConfigError

log = logging.getLogger(__name__)

SLOTS_VARIABLE = "DEEPSEA_GPU_SLOTS"
LOCK_DIR_VARIABLE = "DEEPSEA_GPU_LOCK_DIR"

_held: list[IO[str]] = []  # open lock files: closing one (or exiting) frees its GPU


def slots_from_environment() -> int:
    """The number of GPU slots the workflow asked for (0: do not assign GPUs)."""
    value = os.environ.get(SLOTS_VARIABLE, "0").strip() or "0"
    try:
        slots = int(value)
    except ValueError:
        raise ConfigError(f"{SLOTS_VARIABLE}={value!r}: expected a whole number of GPUs (0 turns slots off).") from None
    if slots < 0:
        raise ConfigError(f"{SLOTS_VARIABLE}={value!r}: expected 0 or more GPUs.")
    return slots


def default_lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_VARIABLE) or Path(tempfile.gettempdir()) / f"deepsea-gpu-locks-{os.getuid()}")


def gpu_ids(slots: int) -> list[str]:
    """The GPU ids behind the slots: the first `slots` of CUDA_VISIBLE_DEVICES when set, else 0..slots-1."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return [str(i) for i in range(slots)]
    ids = [part.strip() for part in visible.split(",") if part.strip()]
    if len(ids) < slots:
        raise ConfigError(
            f"--resources gpu={slots} but CUDA_VISIBLE_DEVICES={visible!r} lists {len(ids)} GPU(s); "
            "lower the gpu resource to the number of GPUs you want the workflow to use."
        )
    return ids[:slots]


def claim_gpu_slot(
    slots: int, lock_dir: Path | None = None, poll_seconds: float = 2.0, timeout: float | None = None
) -> str | None:
    """Take a free GPU of `slots`, make it this process's only visible GPU, and return its id.

    Waits while every slot is taken (another workflow on this machine may hold them); raises TimeoutError after
    `timeout` seconds if given. With slots == 0 nothing happens and None is returned.
    """
    if slots <= 0:
        return None
    ids = gpu_ids(slots)
    folder = lock_dir or default_lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    waited_note = False
    while True:
        for gpu in ids:
            handle = open(folder / f"gpu{gpu}.lock", "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            _held.append(handle)
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu
            log.info("GPU slot: GPU %s of %s (CUDA_VISIBLE_DEVICES=%s, lock %s)", gpu, ids, gpu, handle.name)
            return gpu
        if timeout is not None and time.monotonic() - start >= timeout:
            raise TimeoutError(f"no free GPU among {ids} after {timeout:.0f} s (locks in {folder}).")
        if not waited_note:
            log.info("all %d GPU slots are busy (locks in %s); waiting for one", slots, folder)
            waited_note = True
        time.sleep(poll_seconds)


def release_gpu_slots() -> None:
    """Give back the slots this process holds (the process ending does the same)."""
    while _held:
        _held.pop().close()


def local_slots(workflow: Any) -> int:
    """GPUs to hand out one per job: the `--resources gpu=N` limit when Snakemake (its `workflow` object) runs the
    jobs on this machine (the local-gpu profile); 0 inside cluster jobs, where the scheduler assigns the GPU."""
    if workflow.remote_exec or not workflow.local_exec:
        return 0
    limit = workflow.global_resources.get("gpu")
    value = getattr(limit, "value", limit)
    return value if isinstance(value, int) and value > 0 else 0


def job_environment(workflow: Any, python: str) -> str:
    """The shell prefix of every job: the interpreter running Snakemake first on PATH (so `.venv/bin/snakemake`
    works without activating the venv) and the number of GPU slots the jobs share."""
    return f'export PATH="{Path(python).parent}":"$PATH"; export {SLOTS_VARIABLE}={local_slots(workflow)}; '
