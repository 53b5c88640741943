"""``catalog bench stream`` refuses what it cannot measure with one clear line, before it starts anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.cli import main
from streams.commands.bench_stream import default_out


def test_too_few_events_is_a_clear_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["bench", "stream", "--events", "10", "--device", "cpu"])
    assert "events must be at least two batches" in str(info.value.code)


def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the refusal cannot happen here")
    with pytest.raises(SystemExit) as info:
        main(["bench", "stream", "--device", "cuda"])
    assert "torch.cuda.is_available() is False" in str(info.value.code)


def test_default_report_names_say_what_was_measured() -> None:
    assert default_out("stream", "lite", "cuda:0", 60_000, 256) == "docs/bench/stream-lite-cuda-60k-b256.json"


@pytest.mark.parametrize("bench", ["stream", "rollout"])
def test_the_catalog_script_finds_the_checkouts_runners_from_any_folder(bench: str, tmp_path: Path) -> None:
    """The installed script sees only the packages; a bench imports the checkout's infra/ (and its children too)."""
    script = Path(sys.executable).with_name("catalog")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    args = ["--events", "10"] if bench == "stream" else ["--to", "no-version"]
    out = subprocess.run([str(script), "bench", bench, *args], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert "needs a checkout" not in out.stderr + out.stdout, out.stderr
    assert f"catalog bench {bench}:" in out.stderr + out.stdout, out.stderr  # refused by the bench itself
