"""GPU slots on a multi-GPU workstation: concurrent jobs get different GPUs, a finished or killed job frees its
GPU, CUDA_VISIBLE_DEVICES given by the user is respected, and the workflow switches slots on only for local runs
with a `gpu` limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from deepsea.dag.gpu_slots import claim_gpu_slot, gpu_ids, release_gpu_slots, slots_from_environment
from deepsea.errors import ConfigError

HOLDER = """
import sys
from pathlib import Path
from deepsea.dag.gpu_slots import claim_gpu_slot
import os
gpu = claim_gpu_slot(int(sys.argv[1]), Path(sys.argv[2]), poll_seconds=0.05, timeout=float(sys.argv[3]))
print(gpu, os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
sys.stdin.read()  # hold the GPU until the test closes stdin (or kills us)
"""


def _holder(slots: int, lock_dir: Path, timeout: float = 5.0, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(slots), str(lock_dir), str(timeout)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**{k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}, **(env or {})},
    )


def _claimed(proc: subprocess.Popen) -> str:
    line = proc.stdout.readline().split()
    assert line, proc.stderr.read()
    gpu, visible = line
    assert gpu == visible  # the job sees exactly its own GPU
    return gpu


def test_concurrent_jobs_get_different_gpus_and_a_finished_job_frees_its_gpu(tmp_path: Path) -> None:
    first, second = _holder(2, tmp_path), _holder(2, tmp_path)
    try:
        assert {_claimed(first), _claimed(second)} == {"0", "1"}
        third = _holder(2, tmp_path, timeout=0.5)  # both GPUs taken: it waits, then gives up
        assert third.wait(timeout=30) != 0
        assert "no free GPU" in third.stderr.read()
        first.stdin.close()
        first.wait(timeout=30)
        fourth = _holder(2, tmp_path)
        freed = _claimed(fourth)
        fourth.stdin.close()
        fourth.wait(timeout=30)
        assert freed in {"0", "1"}
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_killed_job_frees_its_gpu(tmp_path: Path) -> None:
    holder = _holder(1, tmp_path)
    assert _claimed(holder) == "0"
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    after = _holder(1, tmp_path)
    assert _claimed(after) == "0"
    after.stdin.close()
    after.wait(timeout=30)


def test_slots_map_to_the_gpus_the_user_made_visible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7,9")
    assert gpu_ids(2) == ["5", "7"]
    holder = _holder(2, tmp_path, env={"CUDA_VISIBLE_DEVICES": "5,7,9"})
    assert _claimed(holder) == "5"
    try:
        assert claim_gpu_slot(2, tmp_path, poll_seconds=0.01, timeout=1) == "7"
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "7"
    finally:
        release_gpu_slots()
        holder.stdin.close()
        holder.wait(timeout=30)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with pytest.raises(ConfigError, match="lists 1 GPU"):
        gpu_ids(2)


def test_no_slots_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("DEEPSEA_GPU_SLOTS", raising=False)
    assert slots_from_environment() == 0
    assert claim_gpu_slot(0, tmp_path) is None
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    monkeypatch.setenv("DEEPSEA_GPU_SLOTS", "two")
    with pytest.raises(ConfigError, match="DEEPSEA_GPU_SLOTS"):
        slots_from_environment()


def test_explicit_cuda_index_with_slots_is_refused(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from deepsea.cli import main

    monkeypatch.setenv("DEEPSEA_GPU_SLOTS", "2")
    argv = ["predict", "--model", "m.pt", "--data", "d.npz", "--subset", "test", "--out", "o.npy"]
    assert main([*argv, "--device", "cuda:1"]) != 0
    assert "each job sees only the GPU it was given" in capsys.readouterr().err
