"""Build hook: the wheel carries the topic contracts as ``streamproc/topics/``.

``topics/`` at the top of the repository stays the one source of truth (the broker's schema
registry and ``docker-compose.yml`` read it there); a regular build copies it into the package,
so ``pip install .`` finds its contracts (``streamproc.settings.default_topics_dir``). An
editable install reads the repository's folder directly and copies nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TOPICS = Path(__file__).resolve().parent / "topics"


class BuildWithTopics(build_py):
    """``build_py`` that also copies ``topics/`` into the built package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        if not (TOPICS / "topics.json").is_file():
            raise FileNotFoundError(f"no topic contracts at {TOPICS}: the wheel would be unusable")
        target = Path(self.build_lib) / "streamproc" / "topics"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(TOPICS, target)


setup(cmdclass={"build_py": BuildWithTopics})
