"""Progress bars for the pipeline: one per stage, silenced by --quiet."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm


class Progress:
    """Hands out tqdm bars; `quiet` turns them all off."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    def bar(self, desc: str, total: int | None = None, unit: str = "rec") -> tqdm:
        return tqdm(
            total=total, desc=f"{desc:<9}", unit=unit, unit_scale=True, disable=self.quiet,
            dynamic_ncols=True, leave=True,
        )

    @contextmanager
    def ticking(self, desc: str) -> Iterator[None]:
        """A bar that shows elapsed time for a step with no natural count (UMAP, HDBSCAN)."""
        with tqdm(desc=f"{desc:<9}", bar_format="{desc}: {elapsed}{postfix}", disable=self.quiet) as bar:
            stop = threading.Event()

            def tick() -> None:
                while not stop.wait(0.5):
                    bar.refresh()

            thread = threading.Thread(target=tick, daemon=True)
            thread.start()
            start = time.perf_counter()
            try:
                yield
            finally:
                stop.set()
                thread.join()
                bar.set_postfix_str(f"{time.perf_counter() - start:.1f}s")
