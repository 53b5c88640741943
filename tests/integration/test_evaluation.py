"""`catalog models evaluate` on the shipped student: the stored figures equal `catalog bench distill`'s on
the same queries, a stored evaluation is reused until its protocol or weights change, the paired
difference of identical weights is exactly zero, and bad references fail with one line.

A small protocol (hundreds of queries) keeps it quick; the claim does not depend on the size.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model_store.distill import benchmark
from model_store.evaluations import IMAGES_DIR, read_evaluation, unpack_correct
from model_store.registry import DEFAULT_ROOT, MANIFEST_FILE, WEIGHTS_FILE
from streams.cli import build_parser

pytestmark = pytest.mark.integration

SERVED = "student@17"
GALLERY, QUERIES = "400", "100"


def evaluate(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict], str]:
    """(exit status, the JSON line per model, stderr) of the command as `catalog` parses and runs it."""
    args = build_parser().parse_args(["models", "evaluate", *argv])
    rc = int(args.fn(args) or 0)
    out, err = capsys.readouterr()
    return rc, [json.loads(line) for line in out.splitlines() if line.strip()], err


def copy_version(registry: Path, name: str, version: str, ref: str = SERVED) -> Path:
    """The served student's files under ``name@version`` in ``registry`` (same weights, same digests)."""
    source = DEFAULT_ROOT.joinpath(*ref.split("@"))
    target = registry / name / version
    shutil.copytree(source, target)
    manifest = json.loads((target / MANIFEST_FILE).read_text())
    (target / MANIFEST_FILE).write_text(json.dumps({**manifest, "name": name, "version": version}))
    return target


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The served student and a byte-identical copy under another name, evaluated in one call."""
    registry = tmp_path_factory.mktemp("registry")
    copy_version(registry, "student", "17")
    copy_version(registry, "student-copy", "1")
    with pytest.MonkeyPatch.context() as mp:
        captured: list[str] = []
        mp.setattr(sys, "stderr", _Tee(captured))
        argv = ["models", "evaluate", SERVED, "student-copy@1", "--registry", str(registry),
                "--gallery-size", GALLERY, "--queries", QUERIES, "--against", SERVED]  # fmt: skip
        args = build_parser().parse_args(argv)
        assert int(args.fn(args) or 0) == 0
    return {"registry": registry, "progress": "".join(captured),
            "served": read_evaluation(registry, "student", "17"),
            "copy": read_evaluation(registry, "student-copy", "1")}  # fmt: skip


class _Tee:
    """Collects progress lines written to stderr (a module fixture cannot use capsys)."""

    def __init__(self, sink: list[str]) -> None:
        self.sink = sink

    def write(self, text: str) -> int:
        self.sink.append(text)
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("style", ["plain", "seller"])
def test_served_student_figures_equal_the_distill_benchmark(evaluated: dict, style: str, tmp_path: Path) -> None:
    argv = ["--style", style, "--gallery-size", GALLERY, "--queries", QUERIES, "--students", SERVED,
            "--skip-baseline", "--threads", "2", "--out", str(tmp_path)]  # fmt: skip
    assert benchmark.main(argv) == 0
    bench = json.loads((tmp_path / "results.json").read_text())
    row, cats = bench["systems"][f"unified {SERVED}"], bench["categories"]
    ev = evaluated["served"]
    stored = ev["styles"][style]
    assert ev["categories"] == cats and stored["n_queries"] == int(QUERIES)
    for key in ("fine_acc", "coarse_acc", "map_at_r"):
        assert stored[key] == row[key], key
    assert stored["fine_acc_by_category"] == {cats[int(c)]: v for c, v in row["fine_acc_by_category"].items()}
    assert (ev["params"], ev["bytes"]) == (row["params"], row["bytes"])
    # coarse per category is the evaluation's own vote: it must add up to the benchmark's coarse accuracy
    q_cat = _query_categories(int(GALLERY), int(QUERIES))
    weighted = sum(stored["coarse_acc_by_category"][c] * np.mean(q_cat == i) for i, c in enumerate(cats))
    assert weighted == pytest.approx(row["coarse_acc"], abs=1e-6)
    assert unpack_correct(stored["fine_correct"], stored["n_queries"]).mean() == pytest.approx(row["fine_acc"])


def _query_categories(gallery: int, queries: int) -> np.ndarray:
    from model_store.distill.evaluate import Protocol, QuerySet

    qs = QuerySet(Protocol(gallery_size=gallery, queries=queries), say=lambda _: None)
    return qs.to_cat[qs.q_fine].numpy()


def test_identical_weights_pair_to_exactly_zero(evaluated: dict) -> None:
    served, copy = evaluated["served"], evaluated["copy"]
    assert served["vs_active"] is None  # not paired with itself
    assert copy["vs_active"] == {"ref": SERVED, "plain": [0.0, 0.0, 0.0], "seller": [0.0, 0.0, 0.0]}
    for style in ("plain", "seller"):
        assert copy["styles"][style]["fine_correct"] == served["styles"][style]["fine_correct"]
    assert copy["examples"] == served["examples"]  # same queries, same neighbours, same image files


def test_example_images_are_shared_small_pngs(evaluated: dict) -> None:
    registry, ev = evaluated["registry"], evaluated["served"]
    assert len(ev["examples"]) == 12 and {e["style"] for e in ev["examples"]} == {"plain", "seller"}
    assert {e["query"]["category"] for e in ev["examples"]} == set(ev["categories"])
    shown = [e["query"] for e in ev["examples"]] + [n for e in ev["examples"] for n in e["neighbours"]]
    paths = {item["image"] for item in shown}
    assert all(len(e["neighbours"]) == 8 for e in ev["examples"])
    files = sorted((registry / IMAGES_DIR).iterdir())
    assert {f"{IMAGES_DIR.as_posix()}/{f.name}" for f in files} == paths  # each image once, shared by both models
    for path in paths:
        with Image.open(registry / path) as image:
            assert image.format == "PNG" and image.size == (128, 128)
        assert (registry / path).stat().st_size < 40_000
    # rendering happened once for the two models of the call
    assert evaluated["progress"].count("rendered") == 2  # plain and seller, once each


def test_stored_evaluation_is_reused_until_the_protocol_or_force_changes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_version(tmp_path, "student", "17")
    tiny = ["--registry", str(tmp_path), "--gallery-size", "100", "--queries", "20", "--examples", "3"]
    rc, (first,), _ = evaluate(capsys, SERVED, *tiny)
    assert rc == 0 and first["status"] == "computed"
    path = Path(first["path"])
    written = path.read_bytes()

    rc, (again,), err = evaluate(capsys, SERVED, *tiny)
    assert rc == 0 and again["status"] == "current" and "stored evaluation is current" in err
    assert path.read_bytes() == written and "evaluating" not in err

    rc, (other_k,), err = evaluate(capsys, SERVED, *tiny, "--k", "10")
    assert rc == 0 and other_k["status"] == "computed" and other_k["protocol_key"] != first["protocol_key"]
    assert json.loads(path.read_text())["protocol"]["k"] == 10

    rc, (forced,), err = evaluate(capsys, SERVED, *tiny, "--k", "10", "--force")
    assert rc == 0 and forced["status"] == "computed" and "evaluating" in err

    # a stored, current evaluation does not hide a corrupted artifact
    weights = tmp_path / "student" / "17" / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    rc, lines, err = evaluate(capsys, SERVED, *tiny, "--k", "10")
    assert rc == 2 and lines == []
    assert "checksum mismatch" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["student@404"], "unknown model 'student@404'"),
        (["router@1"], "not an embedding model"),
        ([SERVED, "--against", "teacher@9"], "unknown model 'teacher@9'"),
        ([SERVED, "--gallery-size", "0"], "bad protocol"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "streams.cli", "models", "evaluate", "--examples", "2", *argv],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr
