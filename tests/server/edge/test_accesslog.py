"""Access logs are JSON lines that name the viewer, and no token or key byte reaches any log."""

from __future__ import annotations

import base64
import io
import json
import logging
import time

import pytest

from server.edge.accesslog import ACCESS_LOGGER, BatchingStreamHandler, configure_access_log
from tests.server.conftest import BUYER, STRANGER


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: dict[int, logging.LogRecord] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.records[id(record)] = record       # one record may reach both loggers below

    def messages(self, logger_name: str) -> list[str]:
        return [r.getMessage() for r in self.records.values() if r.name == logger_name]

    def text(self) -> str:
        """Everything a log file would hold: names, messages, tracebacks."""
        return "\n".join(self.format(r) for r in self.records.values())


@pytest.fixture
def captured_logs():
    """Every record of every logger at DEBUG, including the access logger even if it stops propagating."""
    handler = Captured()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    watched = [logging.getLogger(), logging.getLogger(ACCESS_LOGGER)]
    levels = [logger.level for logger in watched]
    for logger in watched:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(watched, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_access_log_is_json_with_the_viewer_and_a_redacted_token(key_world, captured_logs):
    world = await key_world()
    token = world.token(BUYER)
    async with world.client.get(world.url(token) + "&player=hls.js") as response:
        assert response.status == 200
    entries = [json.loads(line) for line in captured_logs.messages(ACCESS_LOGGER)]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["method"] == "GET"
    assert entry["path"] == f"/v1/keys/{world.key.key_id}?token=REDACTED&player=hls.js"
    assert entry["status"] == 200
    assert entry["body_bytes"] == 16 and entry["bytes_sent"] > 16
    assert entry["viewer_id"] == BUYER
    assert entry["duration_ms"] >= 0 and entry["remote"] == "127.0.0.1"


async def test_no_token_and_no_key_bytes_reach_any_log(key_world, captured_logs):
    world = await key_world(RATE_VIEWER_BURST="3")
    key = world.key.key
    buyer, stranger, other_series = world.token(BUYER), world.token(STRANGER), world.token(BUYER, "s2")
    tampered = buyer[:-6] + "AAAAAA"
    requests = [
        (world.url(buyer), {}),                                       # granted, from the database
        (world.url(None), {"Authorization": f"Bearer {buyer}"}),      # granted, token in a header
        (world.url(other_series), {}),                                # wrong series
        (world.url(buyer), {}),                                       # rate limited
        (world.url(stranger), {}),                                    # not entitled
        (world.url(tampered), {}),                                    # bad signature
        (world.url(stranger, key_id="k_nosuchkey"), {}),              # unknown key
        (f"/v1/series/s1/episodes/1/master.m3u8?token={buyer}", {}),  # not published
    ]
    statuses = []
    for url, headers in requests:
        async with world.client.get(url, headers=headers) as response:
            statuses.append(response.status)
            await response.read()
    assert statuses == [200, 200, 403, 429, 403, 401, 404, 404]

    text = captured_logs.text()
    assert "REDACTED" in text and BUYER in text                    # the logs did capture those requests
    secrets = [buyer, stranger, other_series, tampered, key.hex(), base64.b64encode(key).decode(), repr(key)]
    for token in (buyer, stranger, other_series, tampered):
        secrets.append(token.rsplit(".", 1)[1])                     # a signature alone is still a secret
    for secret in secrets:
        assert secret not in text


def test_batched_access_lines_are_all_written_in_order_on_close():
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, interval_s=0.01)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("tests.batched-access")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for n in range(500):
            logger.warning("%s", json.dumps({"n": n}))
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert [json.loads(line)["n"] for line in stream.getvalue().splitlines()] == list(range(500))


def test_a_full_batch_is_written_without_waiting_for_the_interval():
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, interval_s=3600, batch_lines=3)
    try:
        for n in range(3):
            handler.append_line(str(n))
        deadline = time.monotonic() + 10
        while stream.getvalue() != "0\n1\n2\n" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stream.getvalue() == "0\n1\n2\n"
        handler.append_line("3")                        # waits for the next full batch, or close
    finally:
        handler.close()
    assert stream.getvalue() == "0\n1\n2\n3\n"


async def test_the_configured_access_log_writes_json_lines_to_its_stream(key_world):
    stream = io.StringIO()
    logger = logging.getLogger(ACCESS_LOGGER)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    configure_access_log(stream)
    try:
        world = await key_world()
        token = world.token(BUYER)
        async with world.client.get(world.url(token)) as response:
            assert response.status == 200
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            logger.addHandler(handler)
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["status"] == 200 and entry["viewer_id"] == BUYER
    assert token not in line and "token=REDACTED" in entry["path"]
