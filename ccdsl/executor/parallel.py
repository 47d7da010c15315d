"""One function on several items at once, in threads that never keep Ctrl-C waiting.

Why not a ``ThreadPoolExecutor``: its ``with`` block joins every worker on the way out, so a KeyboardInterrupt in
the caller waited for the slowest worker (a node's 300 s readiness wait, a set-up command), and the interpreter's
exit joined them again.  Here the workers are daemon threads and the caller joins them in short slices: a signal
raises in the caller at once (whichever thread the kernel handed it to), the caller cleans up (closing the
connections the workers use, terminating the nodes), and the process can exit with workers still inside a retry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

# How often the caller looks for a pending signal while it waits.  Not a timeout: the workers run as long as they
# need.  A signal usually wakes the caller at once; this bounds the wait when the kernel gave it to a worker thread.
SIGNAL_CHECK = 0.2


def parallel(fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
    """``fn`` on every item at once; the results in order.  Every item runs to its end, then the first failure
    (in item order) is raised.  A KeyboardInterrupt (or any exception) in the caller returns at once."""
    if not items:
        return []
    results: list[Any] = [None] * len(items)
    errors: list[BaseException | None] = [None] * len(items)

    def work(i: int) -> None:
        try:
            results[i] = fn(items[i])
        except BaseException as exc:  # handed to the caller
            errors[i] = exc

    threads = [threading.Thread(target=work, args=(i,), daemon=True, name=f"ccdsl-parallel-{i}")
               for i in range(len(items))]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(SIGNAL_CHECK)
    for e in errors:
        if e is not None:
            raise e
    return results
