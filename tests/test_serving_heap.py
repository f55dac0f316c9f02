"""A serving process freezes what it built while starting out of the garbage collector's
full passes, which otherwise stopped every call for 50-80 ms every few seconds under load."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_SERVE_THEN_STOP = textwrap.dedent(
    """
    import asyncio, gc, os, signal
    from libs.common.server import run_until_signal

    async def main() -> None:
        asyncio.get_running_loop().call_later(0.2, os.kill, os.getpid(), signal.SIGTERM)
        before = gc.get_freeze_count()
        await run_until_signal([], 0)
        print("frozen", before, gc.get_freeze_count())

    asyncio.run(main())
    """
)


def test_the_serving_loop_freezes_the_heap_it_started_with() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_THEN_STOP],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT}:{ROOT / 'gen' / 'python'}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("frozen "))
    before, after = (int(n) for n in line.split()[1:])
    assert before == 0 and after > 10_000, done.stdout
