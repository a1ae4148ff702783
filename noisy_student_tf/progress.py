"""Progress lines for long jobs: how far, how fast (images/s), and how long is left (ETA)."""

from __future__ import annotations

import time

from absl import logging

LOG_EVERY_SECONDS = 10.0


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class Progress:
    """Counts items and logs `what: done/total (pct) | rate unit/s | ETA` at most every `every` seconds."""

    def __init__(self, what: str, total: int | None, unit: str = "images", every: float = LOG_EVERY_SECONDS):
        self.what, self.total, self.unit, self.every = what, total, unit, every
        self.done = 0
        self.started = self._last_log = time.monotonic()

    def update(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last_log >= self.every:
            self._last_log = now
            logging.info("%s", self.line(now))

    def rate(self, now: float | None = None) -> float:
        elapsed = (now or time.monotonic()) - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self, now: float | None = None) -> str:
        rate = self.rate(now)
        if self.total:
            left = (self.total - self.done) / rate if rate > 0 else float("inf")
            eta = format_duration(left) if left != float("inf") else "?"
            return (f"{self.what}: {self.done}/{self.total} {self.unit} ({100.0 * self.done / self.total:.1f}%) | "
                    f"{rate:.1f} {self.unit}/s | ETA {eta}")
        return f"{self.what}: {self.done} {self.unit} | {rate:.1f} {self.unit}/s"

    def finish(self) -> None:
        elapsed = time.monotonic() - self.started
        logging.info("%s: %d %s in %s (%.1f %s/s)", self.what, self.done, self.unit, format_duration(elapsed),
                     self.rate(), self.unit)
