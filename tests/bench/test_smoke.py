"""The benchmark harness runs end to end and writes its JSON. No timing is asserted here:
figures depend on the machine, and the harness itself judges them against the targets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_smoke_run_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    command = [sys.executable, "bench/run.py", "--smoke", "--no-workers"]
    command += ["--scenarios", "procurement.get_supplier", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads(out.read_text())
    assert {r["scenario"] for r in record["runs"]} >= {"ceiling.echo", "procurement.get_supplier"}
    assert all(r["calls"] > 0 and r["errors"] == 0 for r in record["runs"])
    assert {t["target"] for t in record["targets"]}  # every target is listed, measured or not
    assert record["harness"]["scale"] == "small"


def test_the_flow_steps_tool_reports_every_step_of_a_flow() -> None:
    """bench/flow_steps.py drives real flows (each must end ISSUED, or it fails) and prints
    the server's CPU per step, then a line per number of flows in flight; figures are not
    judged here."""
    command = [sys.executable, "bench/flow_steps.py", "--flows", "3", "--warmup", "1", "--in-flight", "1,2"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    steps = ["CreateRequisition", "SubmitRequisition", "ApproveRequisition", "CreatePurchaseOrder"]
    for step in [*steps, "IssuePurchaseOrder", "the flow", "1 in flight:", "2 in flight:"]:
        assert f"  {step} " in done.stdout, done.stdout
