"""pipeline/encode/worker.py: a rendition's thread runs its calls in order, below the caller's priority when asked."""

import os
import sys
import threading

import pytest

from pipeline.encode.worker import Worker


def _nice_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_calls_run_in_order_and_a_failure_reaches_the_submitter():
    seen: list[int] = []
    worker = Worker("test-order")
    for n in range(10):
        worker.submit(seen.append, n)
    worker.submit(None)
    worker.join()
    assert seen == list(range(10))

    failing = Worker("test-failure")
    failing.submit(lambda: 1 / 0)
    failing.submit(None)
    with pytest.raises(ZeroDivisionError):
        failing.join()


def test_a_full_cancelled_worker_refuses_work_instead_of_blocking_its_feeder():
    # a watermarked rung's A thread feeds its B worker: once B is cancelled with a full queue, A must
    # fail at once rather than wait on a queue no thread empties again
    release = threading.Event()
    worker = Worker("test-cancelled")
    worker.submit(release.wait)
    for _ in range(4):
        worker.submit(lambda: None)
    worker.cancelled = True
    with pytest.raises(RuntimeError, match="test-cancelled was cancelled"):
        worker.submit(lambda: None)
    release.set()
    worker.thread.join(timeout=5)
    assert not worker.thread.is_alive()


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_a_nicer_worker_and_the_threads_it_starts_run_below_the_caller():
    caller = _nice_of_this_thread()
    if caller > 17:
        pytest.skip(f"this process already runs at nice {caller}: no room to go 2 lower")
    seen: dict[str, int] = {}

    def record_own_and_a_child_thread() -> None:
        seen["worker"] = _nice_of_this_thread()
        # an encoder's threads (x264's) are started from the worker thread: they inherit its value
        child = threading.Thread(target=lambda: seen.__setitem__("child", _nice_of_this_thread()))
        child.start()
        child.join()

    worker = Worker("test-nice", niceness=2)
    worker.submit(record_own_and_a_child_thread)
    worker.submit(None)
    worker.join()
    expected = caller + 2
    assert seen == {"worker": expected, "child": expected}
    assert _nice_of_this_thread() == caller          # the submitting thread keeps its priority

    plain = Worker("test-plain")
    plain.submit(lambda: seen.__setitem__("plain", _nice_of_this_thread()))
    plain.submit(None)
    plain.join()
    assert seen["plain"] == caller


def test_a_worker_refused_a_lower_priority_still_runs_its_calls(monkeypatch):
    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")   # as some sandboxes answer setpriority

    monkeypatch.setattr(os, "setpriority", refuse)
    seen: list[int] = []
    worker = Worker("test-refused", niceness=2)
    for n in range(8):                                          # more than the queue holds
        worker.submit(seen.append, n)
    worker.submit(None)
    worker.join()
    assert seen == list(range(8))
