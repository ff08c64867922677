"""`series episodes list|move|order|edit|unpublish|publish|delete` against the files the service uses."""

from __future__ import annotations

import json

from server.config import Settings
from server.services import Services
from tests.conftest import settings_env
from tests.server.catalog_support import publish_keys
from tests.server.cli.test_cli import series
from tests.support.catalog import add_series


def test_operators_list_reorder_edit_unpublish_and_delete_episodes(tmp_path, s3_store):
    env = settings_env(tmp_path, s3_store)
    with Services.open(Settings.from_env(env)) as services:
        add_series(services, "s1")
        for episode_id in ("3", "1", "2"):
            publish_keys(services, "s1", episode_id)
        services.catalog.create_episode("s1", "next", title="Coming next")
    listed = series(env, "episodes", "list", "s1")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[1] for line in listed.stdout.splitlines()] == ["3", "1", "2", "next"]
    assert "uploading" in listed.stdout.splitlines()[3] and "ready" in listed.stdout.splitlines()[0]
    moved = series(env, "episodes", "move", "s1", "3", "--to", "3")
    assert [line.split()[1] for line in moved.stdout.splitlines()] == ["1", "2", "3", "next"], moved.stderr
    ordered = series(env, "episodes", "order", "s1", "next", "1", "2", "3")
    assert [line.split()[1] for line in ordered.stdout.splitlines()] == ["next", "1", "2", "3"], ordered.stderr
    edited = series(env, "episodes", "edit", "s1", "2", "--title", "The bowline", "--free-preview")
    assert edited.returncode == 0 and "The bowline" in edited.stdout and "free preview" in edited.stdout
    assert "unpublished" in series(env, "episodes", "unpublish", "s1", "1").stdout
    assert "ready" in series(env, "episodes", "publish", "s1", "1").stdout
    deleted = series(env, "episodes", "delete", "s1", "3")
    assert deleted.returncode == 0 and "series gc" in deleted.stdout
    shown = json.loads(series(env, "episodes", "list", "s1", "--json").stdout)
    assert [(e["episode_id"], e["position"], e["status"]) for e in shown] == [
        ("next", 1, "uploading"), ("1", 2, "ready"), ("2", 3, "ready")]


def test_mistakes_are_one_line(tmp_path, s3_store):
    env = settings_env(tmp_path, s3_store)
    with Services.open(Settings.from_env(env)) as services:
        add_series(services, "s1")
        publish_keys(services, "s1", "1")
    for args, words, code in ((("move", "s1", "1", "--to", "5"), "position", 1),
                              (("order", "s1", "1", "9"), "unknown 9", 1),
                              (("edit", "s1", "1"), "nothing to change", 2),
                              (("delete", "s1", "7"), "no episode", 1),
                              (("list", "nope"), "no series", 1),
                              (("move", "s1", "1"), "--to", 2)):
        result = series(env, "episodes", *args)
        assert result.returncode == code, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and words in result.stderr, (args, result.stderr)
