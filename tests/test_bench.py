"""Smoke test of the one benchmark command: a tiny run prints every figure and checks the store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from crm.settings import ROOT

FIGURES = (
    "demo data, leads/s (crm.demo.generate)",
    "intake, 1 client: leads/s",
    "intake, 1 client: p50",
    "intake, 1 client: p99",
    "intake, 4 clients: leads/s",
    "intake, 4 clients: p50",
    "intake, 4 clients: p99",
    "intake: stored == acknowledged",
    "queue, first page data, cold",
    "queue, first page data, warm",
    "search, phone (",
    "search, name prefix '",
    "lead page data (lead ",
    "dashboard, whole page, cold",
    "dashboard, whole page, warm",
    "dashboard, whole page, cache hit",
    "server peak RSS (VmHWM) during the load",
    "dashboard process peak RSS (VmHWM)",
)


def test_a_tiny_benchmark_prints_every_figure_and_finds_every_lead(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "crm.bench", "--sizes", "300", "--clients", "1,4",
            "--intake-n", "60", "--workdir", str(tmp_path / "work"), "--json", str(out),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = done.stdout
    assert text.count("| figure ") == 1  # one table, one header
    assert "ratio (ours/baseline)" in text
    assert "Machine: " in text and "SQLite " in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    for figure in FIGURES:
        assert any(line.startswith(f"| {figure}") for line in table), figure
    assert "yes (120/120, 0 errors)" in text

    report = json.loads(out.read_text())
    (size,) = report["sizes"]
    assert size["size"] == 300
    for level in size["intake"]:
        assert level["accepted"] == level["sent"] == 60
        assert level["stored"] == 60 and level["missing"] == 0 and level["stored_ok"]
    timed = [r for r in size["rows"] if r["unit"] in ("ms", "/s", "MB")]
    assert all(isinstance(r["ours"], float) and r["ours"] > 0 for r in timed)
    assert all(isinstance(r["baseline"], float) and r["baseline"] > 0 for r in timed)
    # The throwaway run database is gone; the demo data stays for --reuse.
    assert not (tmp_path / "work" / "run-300.sqlite3").exists()
    assert (tmp_path / "work" / "demo-300.sqlite3").exists()


def test_the_intake_script_is_a_wrapper_over_the_same_code() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "intake.py"), "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    source = (ROOT / "bench" / "intake.py").read_text()
    assert "from crm.bench import" in source and "def run_level" not in source
