"""`omrt run`: msame-style execution of a .om from the command line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omrt.cli.main import main
from omrt.compiler import compile_onnx
from omrt.om import save_om
from tests.support.small_models import run_onnxruntime, small_cnn


@pytest.fixture()
def om_file(tmp_path: Path) -> Path:
    path = tmp_path / "cnn.om"
    save_om(compile_onnx(small_cnn()), str(path))
    return path


def test_runs_bin_input_and_writes_outputs(tmp_path: Path, om_file: Path, capsys) -> None:
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    x.tofile(tmp_path / "x.bin")
    out = tmp_path / "out"
    assert main(["run", "--model", str(om_file), "--input", str(tmp_path / "x.bin"), "--output", str(out), "--loop", "3"]) == 0
    text = capsys.readouterr().out
    assert "Inference average time without first time" in text
    got = np.fromfile(out / "cnn_output_0.bin", dtype=np.float32)
    np.testing.assert_allclose(got, run_onnxruntime(small_cnn(), {"x": x})[0].reshape(-1), rtol=1e-4, atol=1e-6)


def test_zero_input_and_txt_output(tmp_path: Path, om_file: Path) -> None:
    assert main(["run", "--model", str(om_file), "--output", str(tmp_path), "--outfmt", "TXT"]) == 0
    rows = np.loadtxt(tmp_path / "cnn_output_0.txt").reshape(-1)
    assert rows.shape == (10,) and abs(rows.sum() - 1.0) < 1e-4


@pytest.mark.parametrize(
    "extra, message",
    [(["--loop", "0"], "loop must in 1 to 100"), (["--input", "missing.bin"], "cannot read input"),
     (["--dymBatch", "2"], "dynamic_batch_size")],
)
def test_errors_are_one_line(tmp_path: Path, om_file: Path, capsys, extra, message) -> None:
    assert main(["run", "--model", str(om_file), *extra]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_corrupt_model_is_one_line(tmp_path: Path, om_file: Path, capsys) -> None:
    bad = tmp_path / "bad.om"
    bad.write_bytes(om_file.read_bytes()[:1000])
    assert main(["run", "--model", str(bad)]) != 0
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
