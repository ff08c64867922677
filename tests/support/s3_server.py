"""The real S3 server for tests: `weed mini` on a free loopback port, stopped by its PID."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

from server.local.object_store import LocalObjectStore, LocalStoreSettings


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Every test bucket is a SeaweedFS collection with volumes of its own, and `weed mini` counts its volume
# slots from the free disk at 1 GiB a volume: on a shared disk a whole suite's buckets can use them all up
# ("No writable volumes and no free volumes left", a 500 to whichever test comes next; 64 slots here). Tests
# write small objects and volumes are not preallocated: slots enough for every bucket of a session.
TEST_STORE_OPTIONS = {"volume.max": "2000"}


def start_test_store(tmp_dir: Path) -> LocalObjectStore:
    """Start a LocalObjectStore with its data in tmp_dir on a free S3 port; the caller stops it."""
    # weed mini reads data/mini.options at start (the flags it is given win; these are not among them)
    (tmp_dir / "data").mkdir(parents=True, exist_ok=True)
    (tmp_dir / "data" / "mini.options").write_text("".join(f"{name}={value}\n"
                                                           for name, value in TEST_STORE_OPTIONS.items()))
    store = LocalObjectStore(LocalStoreSettings(data_dir=tmp_dir, port=free_port()))
    store.start()
    return store


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(ip, port) of every TCP socket process `pid` listens on, from `ss`, else from /proc."""
    if shutil.which("ss"):
        output = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
        addresses = set()
        for line in output.splitlines():
            columns = line.split()
            if f"pid={pid}," in line:
                host, _, port = columns[3].rpartition(":")
                addresses.add((host.strip("[]"), int(port)))
        return addresses
    return _listening_from_proc(pid)


def _listening_from_proc(pid: int) -> set[tuple[str, int]]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    addresses = set()
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            columns = line.split()
            local, state, inode = columns[1], columns[3], columns[9]
            if state == "0A" and inode in inodes:  # 0A: TCP_LISTEN
                host_hex, port_hex = local.split(":")
                host = socket.inet_ntoa(bytes.fromhex(host_hex)[::-1]) if width == 8 else host_hex
                addresses.add((host, int(port_hex, 16)))
    return addresses


def command_line_ports(pid: int) -> dict[str, int]:
    """The `-<name>.port...=N` flags process `pid` was started with."""
    arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    ports = {}
    for argument in arguments:
        name, _, value = argument.lstrip("-").partition("=")
        if ".port" in name and value.isdigit():
            ports[name] = int(value)
    return ports
