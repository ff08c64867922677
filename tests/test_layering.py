"""Dependencies point one way: server → pipeline, packager, drm; packager → pipeline; nothing back.

Inside each package, rooms (its sub-packages and top-level modules) import downwards only (each package's
__init__.py and its rooms' docstrings draw the map), and no module of ours takes part in an import circle.
"""

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
CONFINED = {"minio": {"packager/store"}, "av": {"pipeline"}, "asyncio": {"server"}, "aiohttp": {"server"},
            "yaml": {"server/reference/document.py"},
            # the PostgreSQL driver behind drm's engine-neutral Database; everything else goes through it
            "psycopg": {"drm/storage/postgres.py"}, "psycopg_pool": {"drm/storage/postgres.py"},
            # the distributed job engine, behind the jobs room's JobQueue (it brings psycopg along, as a conninfo)
            "procrastinate": {"server/jobs/engines/procrastinate_engine.py"}}

# server's rooms and the rooms each may import; a module directly in server/ is a room of its own name
_FEATURE_ROOMS = {"access", "keys", "playback", "catalog", "publishing", "jobs", "ingest", "reference", "web"}
SERVER_ROOMS: dict[str, set[str]] = {
    "local": set(),
    "config": {"local"},
    "services": {"config"},
    "edge": {"config", "services"},
    "access": {"edge", "config", "services"},
    "keys": {"access", "edge", "config", "services"},
    "playback": {"access", "edge", "config", "services"},
    # publishing: a creator's caption or poster change republishes the episode (server/publishing/edits.py)
    "catalog": {"access", "edge", "playback", "publishing", "config", "services"},
    "publishing": {"config"},
    "jobs": {"publishing", "config", "services"},
    "ingest": {"edge", "jobs", "publishing", "config", "services"},
    "reference": {"edge", "config"},
    "web": {"edge", "config", "services"},
    "app": {"config", "services", "edge"} | _FEATURE_ROOMS,
    "cli": {"local", "config", "services", "edge", "app"} | _FEATURE_ROOMS,
    "__main__": {"cli"},
    "__init__": set(),
}
PIPELINE_ROOMS: dict[str, set[str]] = {
    "errors": set(),
    "inspect": {"errors"},
    "encode": {"inspect", "errors"},
    "per_title": {"encode", "inspect", "errors"},
    "pictures": {"errors"},
    "captions": {"inspect", "errors"},
    "synthetic": set(),
    "__init__": set(),
}
PACKAGER_ROOMS: dict[str, set[str]] = {
    "errors": set(),
    "encrypt": set(),
    "store": {"errors"},
    "containers": {"errors"},
    "hls": {"errors"},
    "publishing": {"containers", "hls", "store", "encrypt", "errors"},
    "__init__": set(),
}
DRM_ROOMS: dict[str, set[str]] = {
    "errors": set(),
    "ids": {"errors"},
    "storage": {"errors"},
    "keystore": {"storage", "ids", "errors"},
    "access": {"keystore", "storage", "ids", "errors"},
    # an episode's publication is an access change (catalog/episode_store.py writes to access's feed)
    "catalog": {"access", "storage", "ids", "errors"},
    "payments": {"catalog", "access", "storage", "ids", "errors"},
    "__init__": {"errors", "ids", "storage", "keystore", "access", "catalog", "payments"},
}
ROOMS = {"server": SERVER_ROOMS, "pipeline": PIPELINE_ROOMS, "packager": PACKAGER_ROOMS, "drm": DRM_ROOMS}


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every module `path` imports, as dotted names; relative imports resolved, and `from a import b` as
    both a and a.b (b may be a module): callers keep the names that are modules."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def imports_of(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path)}


def room_of(module: str) -> str | None:
    """server.edge.problems → "edge"; server.app → "app"; drm.access.tokens → "access"; None outside ours."""
    parts = module.split(".")
    if parts[0] not in ROOMS:
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def forbidden_room_imports(path: Path, root: Path = ROOT) -> list[str]:
    """The imports of a module that point to a room of its own package it may not import."""
    module = ".".join(path.relative_to(root).with_suffix("").parts)
    package, own = module.split(".")[0], room_of(module)
    rooms = ROOMS[package]
    allowed = rooms[own] | {own}
    return sorted(name for name in imported_modules(path, root)
                  if name.split(".")[0] == package and room_of(name) not in ("__init__", *allowed)
                  and name.split(".")[1] in rooms)


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
    forbidden = forbidden_room_imports(path)
    assert not forbidden, f"{relative} imports {forbidden}, against the order of {package}'s rooms (ROOMS above)"


@pytest.mark.parametrize("package", sorted(ROOMS))
def test_every_room_is_known(package):
    rooms = {path.stem if path.is_file() else path.name for path in (ROOT / package).iterdir()
             if path.suffix == ".py" or (path / "__init__.py").exists()}
    known = set(ROOMS[package])
    assert rooms <= known, f"{package}'s rooms without a place in ROOMS: {sorted(rooms - known)}"


def test_a_forbidden_room_import_is_caught(tmp_path):
    edge_module = tmp_path / "server" / "edge" / "newcomer.py"
    edge_module.parent.mkdir(parents=True)
    edge_module.write_text("from server.edge.problems import problem\nfrom server.catalog import api\n"
                           "from server.jobs.jobs import Job\nimport server.cli\n")
    assert forbidden_room_imports(edge_module, tmp_path) == ["server.catalog", "server.catalog.api", "server.cli",
                                                               "server.jobs.jobs", "server.jobs.jobs.Job"]
    keys_module = tmp_path / "server" / "keys" / "fine.py"
    keys_module.parent.mkdir(parents=True)
    keys_module.write_text("from server.edge.auth import token_of\nfrom server.services import SERVICES\n")
    assert forbidden_room_imports(keys_module, tmp_path) == []


def test_a_forbidden_import_inside_a_library_package_is_caught(tmp_path):
    encoder = tmp_path / "pipeline" / "encode" / "newcomer.py"
    encoder.parent.mkdir(parents=True)
    encoder.write_text("from pipeline.inspect.rotation import rotation_of\nfrom pipeline.per_title import decision\n")
    assert forbidden_room_imports(encoder, tmp_path) == ["pipeline.per_title", "pipeline.per_title.decision"]
    access = tmp_path / "drm" / "access" / "newcomer.py"
    access.parent.mkdir(parents=True)
    access.write_text("from drm.storage.database import Database\nfrom drm.payments.purchases import Purchases\n")
    assert forbidden_room_imports(access, tmp_path) == ["drm.payments.purchases", "drm.payments.purchases.Purchases"]


def _import_graph() -> dict[str, set[str]]:
    """module → the modules of ours it imports. `from package import submodule` counts as an import of the
    submodule alone (the package's __init__ runs first whoever imports what, so it is no edge of its own)."""
    paths = {".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
             for _, path in modules()}
    graph = {}
    for module, path in paths.items():
        names = imported_modules(path) & paths.keys()
        graph[module] = {name for name in names
                         if name != module and not any(other.rpartition(".")[0] == name for other in names)}
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` (module → modules it imports), or None."""
    state: dict[str, int] = {}      # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (circle := visit(target)):
                return circle
        state[module] = 2
        path.pop()
        return None

    for module in sorted(graph):
        if module not in state and (circle := visit(module)):
            return circle
    return None


def test_no_import_circle():
    circle = find_circle(_import_graph())
    assert circle is None, "import circle: " + " → ".join(circle)


def test_a_circle_is_caught():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None
