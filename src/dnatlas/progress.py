"""Progress reporting that suits both terminals and log files.

:func:`progress` returns a tqdm bar when stderr is a terminal. Otherwise (stderr redirected
to a file, a pipe, a batch system's log) a ``\\r``-redrawn bar would fill the log with
control characters, so it returns a :class:`PlainProgress` with the same small API
(``update``, ``set_postfix``, ``write``, ``close``, iteration, context manager) that prints
one plain line at most every :data:`LOG_INTERVAL_S` seconds (and one at the end)::

    train: 120/1,000 step (12.0%) 3.41 step/s, eta 4m18s loss=1.9021

Typical use::

    with progress(total=cfg.steps, desc="train", unit="step") as bar:
        for step in range(cfg.steps):
            ...
            bar.update(1)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

#: Seconds between two plain progress lines (not on a terminal).
LOG_INTERVAL_S = 10.0


def progress(iterable: Iterable | None = None, total: int | float | None = None,
             desc: str = "", unit: str = "it", initial: int | float = 0,
             disable: bool = False, file: IO[str] | None = None, **tqdm_kwargs: Any):
    """A tqdm bar on a terminal, else a :class:`PlainProgress` logging every 10 s.

    Args:
        iterable: items to iterate over (optional; else call ``update``).
        total: expected number of units (default ``len(iterable)`` when it has one).
        desc: the label, e.g. ``"train"``.
        unit: the unit counted, e.g. ``"step"``, ``"genome"``, ``"nt"``.
        initial: units already done (a resumed run).
        disable: show nothing at all (the returned object still counts).
        file: where to write (default ``sys.stderr``).
        tqdm_kwargs: passed to tqdm on a terminal (e.g. ``dynamic_ncols``, ``unit_scale``).
    """
    stream = sys.stderr if file is None else file
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if not disable and _isatty(stream):
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, file=stream,
                    **tqdm_kwargs)
    return PlainProgress(iterable, total=total, desc=desc, unit=unit, initial=initial,
                         disable=disable, file=stream)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class PlainProgress:
    """A tqdm-like counter that logs ``desc: n/total unit (x%) rate, eta`` lines.

    A line is written on the first ``update`` after at least ``interval`` seconds since the
    previous one, and by ``close`` (when anything was counted since the last line).

    Attributes:
        n: units counted so far (including ``initial``).
        total: expected units, or None when unknown.
    """

    def __init__(self, iterable: Iterable | None = None, total: int | float | None = None,
                 desc: str = "", unit: str = "it", initial: int | float = 0,
                 disable: bool = False, file: IO[str] | None = None,
                 interval: float = LOG_INTERVAL_S):
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = initial
        self.disable = disable
        self.file = sys.stderr if file is None else file
        self.interval = interval
        self.postfix = ""
        self._initial = initial
        self._start = time.monotonic()
        self._last_print = self._start
        self._printed_n = initial
        self._closed = False

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("this progress counter has no iterable; call update() instead")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        return int(self.total or 0)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int | float = 1) -> None:
        """Count ``n`` more units; log a line when ``interval`` seconds have passed."""
        self.n += n
        now = time.monotonic()
        if now - self._last_print >= self.interval:
            self._print(now)

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True,
                    **kwargs: Any) -> None:
        """Values appended to each line, as ``key=value`` (like tqdm's)."""
        values = {**(ordered_dict or {}), **kwargs}
        self.postfix = " ".join(f"{key}={value}" for key, value in values.items())

    def set_description(self, desc: str = "", refresh: bool = True) -> None:
        self.desc = desc

    def write(self, text: str) -> None:
        """Write a message line (tqdm's ``bar.write``)."""
        if not self.disable:
            print(text, file=self.file, flush=True)

    def refresh(self) -> None:
        self._print(time.monotonic())

    def close(self) -> None:
        """Log the final count (if it changed since the last line); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.n != self._printed_n:
            self._print(time.monotonic())

    def format_line(self, now: float | None = None) -> str:
        """The progress line for the current count."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self._start, 1e-9)
        rate = (self.n - self._initial) / elapsed
        head = f"{self.desc}: " if self.desc else ""
        if self.total:
            text = (f"{head}{_count(self.n)}/{_count(self.total)} {self.unit} "
                    f"({100 * self.n / self.total:.1f}%)")
        else:
            text = f"{head}{_count(self.n)} {self.unit}"
        text += f" {_rate(rate)} {self.unit}/s"
        if self.total and rate > 0 and self.n < self.total:
            text += f", eta {_duration((self.total - self.n) / rate)}"
        elif self.total is None or self.n >= self.total:
            text += f", {_duration(elapsed)} elapsed"
        return f"{text} {self.postfix}".rstrip()

    def _print(self, now: float) -> None:
        self._last_print = now
        self._printed_n = self.n
        if not self.disable:
            print(self.format_line(now), file=self.file, flush=True)


def _count(value: int | float) -> str:
    return f"{value:,}" if float(value).is_integer() else f"{value:,.1f}"


def _rate(rate: float) -> str:
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"


def _duration(seconds: float) -> str:
    """``"45s"``, ``"4m18s"`` or ``"2h05m"``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
