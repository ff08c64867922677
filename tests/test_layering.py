"""Dependencies point one way: server → pipeline, packager, drm; packager → pipeline; nothing back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"pipeline", "packager", "drm", "server"}
ALLOWED = {
    "pipeline": set(),
    "drm": set(),
    "packager": {"pipeline"},
    "server": {"pipeline", "packager", "drm"},
}
# third-party imports confined to one place (STYLE §2)
CONFINED = {"minio": {"packager/store.py"}, "av": {"pipeline"}, "asyncio": {"server"}, "aiohttp": {"server"},
            # the PostgreSQL driver behind drm's engine-neutral Database; everything else goes through it
            "psycopg": {"drm/postgres.py"}, "psycopg_pool": {"drm/postgres.py"}}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def modules():
    for package in sorted(OURS):
        for path in sorted((ROOT / package).rglob("*.py")):
            yield package, path


@pytest.mark.parametrize("package, path", list(modules()), ids=lambda v: str(v).split("/main/")[-1])
def test_imports_point_one_way(package, path):
    imported = imports_of(path)
    backwards = (imported & OURS) - ALLOWED[package] - {package}
    assert not backwards, f"{path.relative_to(ROOT)} imports {sorted(backwards)}"
    relative = str(path.relative_to(ROOT))
    for library, homes in CONFINED.items():
        if library in imported:
            assert any(relative == home or relative.startswith(home + "/") for home in homes), (
                f"{relative} imports {library}, which belongs only in {sorted(homes)}")
