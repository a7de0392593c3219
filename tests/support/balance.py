"""Balance `pytest -n 2 --dist loadfile` (make test) over the two workers.

xdist's loadfile hands out whole files in collection order (or by test count), and a worker
keeps what it was handed: with a few files of a minute or more among ~90 files, one worker
often still runs a long file when the other has finished. Two changes, no test changes:

- the files run longest first (LPT order), by the seconds measured per file in SECONDS; a file
  not listed (a new one) comes after them, in collection order;
- each file in SPLIT is handed out by test function (all parameters of one function stay
  together) instead of whole, so its tests spread over both workers. Only files whose tests
  each build their own inputs are listed: a module fixture is then built at most once per worker.

The figures are per-file totals of an idle `pytest -n 2 --dist loadfile -m "not docker"`
(`--junitxml`, summed by file); stale figures only cost balance, never a test.
"""

from __future__ import annotations

# file -> seconds (idle, one worker's wall time for that file)
SECONDS: dict[str, float] = {
}

# files handed out by test function, not whole
SPLIT: frozenset[str] = frozenset({
})


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def order_items(items: list) -> None:
    """Longest files first (stable: a file's own tests keep their order)."""
    items.sort(key=lambda item: -SECONDS.get(file_of(item.nodeid), 0.0))


def scope_of(nodeid: str) -> str:
    """The work unit of a test: its file, or for a SPLIT file its test function."""
    path = file_of(nodeid)
    if path not in SPLIT:
        return path
    function = nodeid.split("::", 1)[1].split("[", 1)[0]
    return f"{path}::{function}"


def make_scheduler(config, log):
    """A loadfile scheduler that takes the collection order as it is (already longest first)
    and splits SPLIT files by function."""
    from xdist.scheduler import LoadFileScheduling

    class Balanced(LoadFileScheduling):
        def __init__(self, config, log=None):
            super().__init__(config, log)
            # xdist >= 3.7 reorders work units by test count by default; our order is by time.
            if hasattr(config.option, "loadscopereorder"):
                config.option.loadscopereorder = False

        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return Balanced(config, log)
