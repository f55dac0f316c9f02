"""Set up and run the suite, or set up and check everything, from a fresh clone.

Needs only Python 3.11+ (standard library): it makes ./.venv, installs the project into
it, and then runs.

    python3 tools/dev.py serve [serve options]   # all services on SQLite, Ctrl-C stops
    python3 tools/dev.py test [pytest options]   # lint, types, protos, then the tests
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def _python() -> Path:
    return BIN / ("python.exe" if os.name == "nt" else "python")


def _ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036  # this script runs before any venv exists
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    if not _python().exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    # Reinstall only when the dependencies change; a dev install serves as well.
    stamp = VENV / f".installed{extras or '-runtime'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    for done in (stamp, VENV / ".installed[dev]"):
        if done.exists() and done.read_text() == digest:
            return
    print("installing the project and its dependencies into .venv", flush=True)
    _run([_python(), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    _run([_python(), "-m", "pip", "install", "--quiet", "-e", f".{extras}"])
    stamp.write_text(digest)


def _run(cmd: list[str | Path], **kwargs: object) -> None:
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        sys.exit(result.returncode)


def serve(args: list[str]) -> None:
    _ensure_venv("")
    os.execv(str(BIN / "backoffice"), [str(BIN / "backoffice"), "serve", *args])


def test(args: list[str]) -> None:
    _ensure_venv("[dev]")
    steps: list[tuple[str, list[str | Path]]] = [
        ("ruff lint", [BIN / "ruff", "check", "."]),
        ("ruff format", [BIN / "ruff", "format", "--check", "."]),
        ("mypy", [BIN / "mypy", "."]),
        ("buf lint", [BIN / "buf", "lint"]),
        ("buf format", [BIN / "buf", "format", "--diff", "--exit-code", "protos"]),
        ("generated code is current", [_python(), "tools/genproto.py", "--check"]),
        ("pytest", [_python(), "-m", "pytest", *args]),
    ]
    for title, cmd in steps:
        print(f"== {title}", flush=True)
        _run(cmd)


def main() -> None:
    commands = {"serve": serve, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
