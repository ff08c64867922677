"""The validation corpus (samples/make_corpus.py), built once per test session into a temporary directory."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "samples" / "make_corpus.py"


def load_corpus_script():
    """samples/ is a folder of scripts, not a package: load make_corpus.py by its path."""
    spec = importlib.util.spec_from_file_location("samples_make_corpus", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CORPUS_SCRIPT = load_corpus_script()
CASES: dict[str, tuple[str, ...]] = CORPUS_SCRIPT.CASES


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """name -> path of every corpus file; import this fixture into the test module that needs it.

    Each importing module registers its own copy of the fixture, so the files live in one fixed folder
    of the session's base temp directory and make_corpus() skips those already made.
    """
    return CORPUS_SCRIPT.make_corpus(tmp_path_factory.getbasetemp() / "corpus")
