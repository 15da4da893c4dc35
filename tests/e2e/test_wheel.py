"""The built wheel is a product of its own: installed (not editable) into a fresh virtual
environment, ``streamproc topics list`` run from outside the repository finds the topic
contracts the wheel carries (``setup.py`` copies ``topics/`` into ``streamproc/topics/``);
the worker's requirements leave out the tools' plotting (the ``tools`` extra).

Offline and quick: the wheel is built from a copy of the sources without build isolation
(the dev extra brings setuptools), installed with ``--no-deps --no-index``, and the fresh
environment borrows the current one's installed libraries through a ``.pth`` line (whose
folder's own ``.pth`` files, the editable install's among them, are not processed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "streamproc", "topics")


def run(cmd: list[str | Path], cwd: Path) -> str:
    """Run ``cmd`` in ``cwd`` with no STREAMPROC_* settings; its stdout, or the test fails with its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMPROC_") and k != "PYTHONPATH"}
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def build_wheel(tmp: Path) -> Path:
    """The wheel of a clean copy of the sources (no build/ or egg-info written into the checkout)."""
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, src / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", tmp / "dist", src], tmp)
    return next((tmp / "dist").glob("streamproc-*.whl"))


def worker_requires(wheel: Path, name: str) -> list[str]:
    """The wheel's requirements on ``name`` outside any extra."""
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    return [line for line in meta.splitlines()
            if line.startswith(f"Requires-Dist: {name}") and "extra ==" not in line]


def fresh_env(tmp: Path, wheel: Path) -> Path:
    """A new virtual environment with ``wheel`` installed and this environment's libraries visible."""
    env = tmp / "env"
    venv.create(env, with_pip=False)
    site = Path(run([env / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp)
                .strip())
    (site / "borrowed.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run([sys.executable, "-m", "pip", "--python", env / "bin" / "python", "install", "--no-deps", "--no-index",
         "--quiet", wheel], tmp)
    return env


def test_the_installed_wheel_finds_its_topic_contracts(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    assert worker_requires(wheel, "matplotlib") == [], "the worker's install must not pull in the tools' plotting"
    env = fresh_env(tmp_path, wheel)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = run([env / "bin" / "python", "-c", "from streamproc.settings import DEFAULT_TOPICS_DIR as d; print(d)"],
                outside).strip()
    assert Path(where).is_relative_to(env) and Path(where, "topics.json").is_file(), where
    listed = run([env / "bin" / "streamproc", "topics", "list"], outside)
    declared = sorted(p.name for p in (REPO / "topics" / "schemas").glob("*.json"))
    assert sorted(line.rsplit("schema=", 1)[1] for line in listed.splitlines()) == declared
    assert list(outside.iterdir()) == []
    with zipfile.ZipFile(wheel) as z:  # the dashboard and its chart library travel in the package
        static = sorted(n.split("static/", 1)[1] for n in z.namelist() if "/runtime/static/" in n)
    assert static == ["dashboard.css", "dashboard.html", "dashboard.js", "vendor/uPlot.LICENSE",
                      "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css"], static
