"""The Dockerfile, checked by reading it: no Docker engine runs here or in CI, so the
image itself is not built by the tests (docs/operations.md says how to build it)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|cc|make|build-essential|clang|apt-get|apk|pip install)\b")


def _stages() -> list[tuple[str, list[str]]]:
    """(FROM line, instructions) per stage, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    stages: list[tuple[str, list[str]]] = []
    for line in (raw.strip() for raw in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append((line, []))
        else:
            stages[-1][1].append(line)
    return stages


def test_multi_stage_slim_non_root_without_build_tools() -> None:
    stages = _stages()
    assert len(stages) >= 2, "a build stage and a runtime stage"
    final_from, final = stages[-1]
    assert re.match(r"FROM python:3\.11[\w.-]*-slim", final_from), final_from
    users = [i.split()[1] for i in final if i.upper().startswith("USER ")]
    assert users, "the final stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000, "numeric non-root uid (runAsNonRoot can check it)"
    runs = " ".join(i for i in final if i.upper().startswith("RUN "))
    assert not BUILD_TOOLS.search(runs), f"the runtime stage installs or builds: {runs}"
    copies = [i for i in final if i.upper().startswith("COPY ")]
    assert copies and all("--from=" in c for c in copies), (
        "the runtime stage takes only the built environment"
    )
    entry = [i for i in final if i.upper().startswith("ENTRYPOINT ")]
    assert entry == ['ENTRYPOINT ["backoffice"]'], "the service is chosen by the command"


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for pattern in (".git", ".venv", "var", "*.pem", "*.db"):
        assert pattern in ignored
