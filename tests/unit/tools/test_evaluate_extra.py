"""``streamproc evaluate --plot`` without the ``tools`` extra: an error that names the extra, before any work."""

from __future__ import annotations

import sys

import pytest

from streamproc.errors import ExtraMissing
from streamproc.tools.evaluate import require_plotting


def test_plotting_without_matplotlib_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what "not installed" looks like to an import
    with pytest.raises(ExtraMissing, match=r"pip install 'streamproc\[tools\]'"):
        require_plotting()


def test_plotting_with_matplotlib_installed_passes() -> None:
    require_plotting()
