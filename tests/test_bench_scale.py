"""bench/scale.py's stage runner: the time limit of a Spark stage and the memory of a process
tree (Spark's JVM is a child of dbt's process, which the child's own rusage does not count)."""

from __future__ import annotations

import subprocess
import sys

from bench import scale


def test_a_stage_over_its_time_limit_is_stopped_and_recorded(tmp_path):
    cmd = [sys.executable, "-c", "import time; time.sleep(30)"]
    stage = scale.run_stage("slow", cmd, {}, tmp_path / "slow.log", timeout_s=0.5)
    assert stage["wall_s"] < 10
    assert not stage["ok"]
    assert stage["timed_out_after_s"] == 0.5
    quick = scale.run_stage("quick", [sys.executable, "-c", "pass"], {}, tmp_path / "q.log")
    assert quick["ok"] and "timed_out_after_s" not in quick


def test_peak_memory_counts_the_grandchildren():
    """A child that never waits on its grandchild holding 300 MB: the tree sampler sees it
    (the child's rusage cannot: it counts only waited-for descendants, and after a fork it
    starts from the parent's size, so it is not compared here)."""
    grandchild = "b = bytearray(300 * 2**20); import time; time.sleep(2.5)"
    child = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-c', {grandchild!r}])\n"
        "time.sleep(2.6)\n"
        "p.kill()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", child])
    tree = scale._TreeRss(proc.pid)
    proc.wait()
    tree.stop()
    assert proc.returncode == 0
    assert tree.peak_mb >= 300


def test_the_side_by_side_table_says_what_did_not_finish():
    def stages(*pairs):
        return [
            {"stage": n, "wall_s": w, "ok": ok, "peak_rss_mb": 1, "load_before": 0, "load_after": 0}
            for n, w, ok in pairs
        ]

    spark = {
        "label": "1M",
        "rows": {"raw.incidents": 10},
        "finished": False,
        "pipeline_s": 99.0,
        "stages": stages(("ingest", 1.0, True), ("export + register", 2.0, True))
        + [
            {
                "stage": "dbt (spark)",
                "wall_s": 60.0,
                "ok": False,
                "timed_out_after_s": 60,
                "peak_rss_mb": 1,
                "load_before": 0,
                "load_after": 0,
            }
        ],
    }
    duck = {
        "label": "1M",
        "pipeline_s": 140.1,
        "stages": stages(("ingest", 3.2, True), ("dbt", 47.4, True), ("ml", 89.5, True)),
    }
    md = scale.to_markdown_spark(
        [spark], {"cpus": 2, "ml": "x", "started": "t", "total_s": 1}, [duck]
    )
    assert "did not finish within 60 s" in md
    row = next(line for line in md.splitlines() if line.startswith("| 1M | 47.4"))
    assert row.split("|")[3].strip() == "did not finish"
    assert row.split("|")[-2].strip() == "did not finish"
