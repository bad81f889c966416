"""benchmarks/gpu_check.py stays runnable: its CPU dry run on a few real checks, and a failing
check recorded as one error line while the others still run."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.gpu_check import ERROR, PASS, SKIP, Row, Runner, Settings

REPO = Path(__file__).resolve().parents[2]


def test_quick_cpu_dry_run_of_parity_and_training_checks_writes_the_table_and_json(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--quick", "--device", "cpu", "--sections", "parity,training",
         "--only", "attention fmnist-vit-tiny,supervised", "--out", str(out),
         "--work", str(tmp_path / "work")],
        cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "CPU DRY RUN" in proc.stdout and "section" in proc.stdout  # says so, and prints the table
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert {r["check"] for r in rows} >= {"attention fmnist-vit-tiny gradcam", "supervised"}
    assert all(r["status"] == PASS for r in rows), [r for r in rows if r["status"] != PASS]
    # the CPU compared with itself: maps equal exactly, and the resumed run matched bit for bit
    assert all(r["data"].get("max_abs_diff", 0.0) == 0.0 for r in rows)
    assert report["machine"]["device"] == "cpu" and report["quick"] is True


def test_a_failing_check_is_one_error_line_and_the_rest_run(tmp_path):
    runner = Runner(Settings("cpu", True, False, tmp_path, budget_s=60))

    def broken():
        raise ValueError("no such tensor\nsecond line")

    runner.run("parity", "broken", broken, 1)
    runner.run("parity", "fine", lambda: Row("parity", "fine", PASS, "ok"), 1)
    runner.run("parity", "too big", lambda: None, 10_000)
    (err,), (ok,), (skipped,) = ([r] for r in runner.rows)
    assert err.status == ERROR and err.detail.startswith("ValueError: no such tensor") and "\n" not in err.detail
    assert "test_gpu_check.py" in err.detail  # where it was raised
    assert ok.status == PASS and skipped.status == SKIP and "time budget" in skipped.detail
