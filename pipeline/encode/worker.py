"""Worker: one rendition's thread, running the calls queued for it in order."""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading

logger = logging.getLogger(__name__)

QUEUE_DEPTH = 4   # calls (frames) waiting per rendition; x264 buffers ~15 frames more. 16 cost 40 MB RSS at 1080p


class Worker:
    """A thread running queued calls in order. PyAV releases the GIL in swscale, the codecs and the
    muxer, so renditions encode in parallel; the bounded queue keeps decoded frames from piling up."""

    def __init__(self, name: str, niceness: int = 0) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
        self.error: BaseException | None = None
        self.cancelled = False
        self.niceness = niceness
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def submit(self, work, *args) -> None:
        while True:
            if self.error is not None:
                raise self.error
            if self.cancelled:
                # another worker feeding this one (a watermarked rung's A feeds its B) must not wait forever
                # on a queue nobody will empty again
                raise RuntimeError(f"{self.thread.name} was cancelled")
            try:
                self.queue.put((work, args), timeout=0.2)
                return
            except queue.Full:
                continue

    def join(self) -> None:
        """Wait for the thread to reach the end marker (submit(None)); raise the first failure."""
        self.thread.join()
        if self.error is not None:
            raise self.error

    def cancel(self) -> None:
        self.cancelled = True
        try:
            self.queue.put_nowait((None, ()))
        except queue.Full:
            pass   # the thread sees `cancelled` at its next item
        self.thread.join(timeout=30)

    def _run(self) -> None:
        try:
            lower_thread_priority(self.niceness)
            while not self.cancelled:
                work, args = self.queue.get()
                if work is None:
                    return
                work(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the submitting thread
            self.error = exc


def lower_thread_priority(by: int) -> None:
    """Raise the calling thread's nice value by `by` (Linux; elsewhere nothing): threads it starts later,
    such as a multi-threaded encoder's own, inherit it. Lowering a priority needs no privilege, but a
    sandbox may still refuse the call: the priority is a scheduling hint, so the thread runs on as it is."""
    if by <= 0 or sys.platform != "linux":
        return
    thread = threading.get_native_id()   # on Linux, PRIO_PROCESS with a thread id is that one thread
    try:
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + by))
    except OSError as exc:
        logger.debug("could not lower thread %s's priority: %s", threading.current_thread().name, exc)
