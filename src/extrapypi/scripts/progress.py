"""A progress bar for long CLI runs: on a terminal only, and only for big stores.

``check``, ``export`` and ``import`` of 10,000+ files take minutes; a bar on stderr says how far
they are. Piped or run from cron (no terminal), or for small stores, they print nothing extra.
"""

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Stores smaller than this finish quickly enough to need no bar.
THRESHOLD = 10_000


@contextmanager
def progress(
    total: int, unit: str, stream=None, threshold: int = THRESHOLD
) -> Iterator[Callable[..., None]]:
    """Yields ``advance(n=1)``: a tqdm bar on a terminal if ``total >= threshold``, or a no-op."""
    stream = stream or sys.stderr
    if total < threshold or not stream.isatty():
        yield lambda *args, **kwargs: None
        return
    from tqdm import tqdm

    with tqdm(total=total, unit=f" {unit}", file=stream, dynamic_ncols=True, leave=False) as bar:
        yield lambda n=1, *args, **kwargs: bar.update(n)
