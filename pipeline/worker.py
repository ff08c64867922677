"""Worker: one rendition's thread, running the calls queued for it in order."""

from __future__ import annotations

import queue
import threading

QUEUE_DEPTH = 4   # calls (frames) waiting per rendition; x264 buffers ~15 frames more. 16 cost 40 MB RSS at 1080p


class Worker:
    """A thread running queued calls in order. PyAV releases the GIL in swscale, the codecs and the
    muxer, so renditions encode in parallel; the bounded queue keeps decoded frames from piling up."""

    def __init__(self, name: str) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
        self.error: BaseException | None = None
        self.cancelled = False
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def submit(self, work, *args) -> None:
        while True:
            if self.error is not None:
                raise self.error
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
            while not self.cancelled:
                work, args = self.queue.get()
                if work is None:
                    return
                work(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the submitting thread
            self.error = exc
