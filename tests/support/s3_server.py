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


def start_test_store(tmp_dir: Path) -> LocalObjectStore:
    """Start a LocalObjectStore with its data in tmp_dir on a free S3 port; the caller stops it."""
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
