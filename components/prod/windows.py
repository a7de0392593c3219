"""Backup and maintenance windows per database, staggered across the night (issue 24, item 2).

Plain functions, no Pulumi: the catalogue validates overrides with them and components/prod/stack.py
derives every database's windows with them before any resource is registered.

RDS's rules (CreateDBInstance / ModifyDBInstance, RDS API reference, PreferredBackupWindow and
PreferredMaintenanceWindow; RDS User Guide "Backup window" and "Maintaining a DB instance"):
- backup window: `hh24:mi-hh24:mi`, UTC, at least 30 minutes, must not conflict with the
  maintenance window;
- maintenance window: `ddd:hh24:mi-ddd:hh24:mi`, days mon|tue|wed|thu|fri|sat|sun, UTC, at least
  30 minutes, must not conflict with the backup window.
terraform-provider-aws validates the same formats (internal/service/rds/instance.go: backup_window
`verify.ValidOnceADayWindowFormat`, maintenance_window `verify.ValidOnceAWeekWindowFormat` and a
StateFunc that lower-cases it, so an upper-case day would be sent and read back lower-case).

Derivations are versioned and never change once released: a stack's databases keep their windows
whatever later bulkhead versions add, because `bulkhead:window_derivation` picks the function and
its default stays 1 (tests/program/test_windows.py pins derivation 1's output for a table of names).
- 0: the constants every database had before (03:00-04:00, sun:05:00-sun:06:00), for a stack that
  wants nothing to move on upgrade.
- 1: from a hash of the database's name, a 30-minute backup window and a 30-minute weekly
  maintenance window between 00:15 and 06:15 UTC, off the tier's AWS Backup start windows, the
  backup window never inside the maintenance window, and no two databases of one owner sharing a
  backup start or a maintenance slot.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
WEEK_MINUTES = 7 * DAY_MINUTES
MIN_WINDOW_MINUTES = 30  # RDS's minimum for both windows
WINDOW_MINUTES = 30  # what derivation 1 gives each window
# Derivation 1's candidate starts: 00:15, 00:45, ... 05:45 UTC (12 per night). Quarter past and
# quarter to, so an hourly AWS Backup schedule (cron(0 * * * ? *), the critical tier) still leaves
# the windows starting at :15 clear of every scheduled start.
NIGHT_STARTS = tuple(15 + 30 * i for i in range(12))
# AWS Backup's start window of the tier plans (components/prod/backup.py `start_window`): a job may
# start up to this long after its scheduled time.
BACKUP_START_WINDOW_MINUTES = 60

LEGACY_BACKUP_WINDOW = "03:00-04:00"
LEGACY_MAINTENANCE_WINDOW = "sun:05:00-sun:06:00"
DERIVATIONS = (0, 1)
DEFAULT_DERIVATION = 1  # never change: a new derivation is opt-in (docs/prod-stack.md "Windows")

_TIME = r"([01][0-9]|2[0-3]):([0-5][0-9])"
DAILY_RE = re.compile(rf"^{_TIME}-{_TIME}$")
WEEKLY_RE = re.compile(rf"^(mon|tue|wed|thu|fri|sat|sun):{_TIME}-(mon|tue|wed|thu|fri|sat|sun):{_TIME}$")


@dataclass(frozen=True)
class Windows:
    backup: str
    maintenance: str
    # True when bulkhead chose it (False: the catalogue's backup_window / maintenance_window).
    backup_derived: bool = True
    maintenance_derived: bool = True


# --- parsing and RDS's validation ---------------------------------------------------------------

def daily_minutes(window: str) -> set[int]:
    """The minutes of the day a `hh24:mi-hh24:mi` window covers (it may wrap past midnight)."""
    m = DAILY_RE.match(window)
    if not m:
        raise ValueError(window)
    start, end = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
    length = (end - start) % DAY_MINUTES
    return {(start + i) % DAY_MINUTES for i in range(length)}


def weekly_minutes(window: str) -> set[int]:
    """The minutes of the week a `ddd:hh24:mi-ddd:hh24:mi` window covers (it may wrap past sunday)."""
    m = WEEKLY_RE.match(window)
    if not m:
        raise ValueError(window)
    start = DAYS.index(m[1]) * DAY_MINUTES + int(m[2]) * 60 + int(m[3])
    end = DAYS.index(m[4]) * DAY_MINUTES + int(m[5]) * 60 + int(m[6])
    length = (end - start) % WEEK_MINUTES
    return {(start + i) % WEEK_MINUTES for i in range(length)}


def backup_window_problem(value: object) -> Optional[str]:
    """None if RDS would accept `value` as PreferredBackupWindow, else what to fix."""
    if not isinstance(value, str) or not DAILY_RE.match(value):
        return (f"{value!r} is not a backup window; use hh24:mi-hh24:mi in UTC, at least 30 minutes, e.g. 01:15-01:45 "
                "(RDS PreferredBackupWindow)")
    if len(daily_minutes(value)) < MIN_WINDOW_MINUTES:
        return f"{value} is shorter than 30 minutes, RDS's minimum; make it at least 30 minutes long"
    return None


def maintenance_window_problem(value: object) -> Optional[str]:
    """None if RDS would accept `value` as PreferredMaintenanceWindow, else what to fix."""
    if isinstance(value, str) and WEEKLY_RE.match(value.lower()) and value != value.lower():
        return f"{value!r}: write the days in lower case, {value.lower()!r} (RDS reads them back lower case)"
    if not isinstance(value, str) or not WEEKLY_RE.match(value):
        return (f"{value!r} is not a maintenance window; use ddd:hh24:mi-ddd:hh24:mi in UTC with days "
                "mon|tue|wed|thu|fri|sat|sun, at least 30 minutes, e.g. tue:02:15-tue:02:45 (RDS PreferredMaintenanceWindow)")
    if len(weekly_minutes(value)) < MIN_WINDOW_MINUTES:
        return f"{value} is shorter than 30 minutes, RDS's minimum; make it at least 30 minutes long"
    return None


def windows_overlap(backup: str, maintenance: str) -> bool:
    """RDS's rule: the daily backup window may not meet the weekly maintenance window on any day."""
    daily = daily_minutes(backup)
    return any((minute % DAY_MINUTES) in daily for minute in weekly_minutes(maintenance))


# --- the tier's AWS Backup schedule ---------------------------------------------------------------

def _cron_field(text: str, low: int, high: int) -> Optional[set[int]]:
    out: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                return None
            step = int(step_text)
        if part in ("*", "?"):
            first, last = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            if not (a.isdigit() and b.isdigit()):
                return None
            first, last = int(a), int(b)
        elif part.isdigit():
            first = int(part)
            last = high if step != 1 else first
        else:
            return None
        out.update(range(first, last + 1, step))
    return {v for v in out if low <= v <= high}


def schedule_starts(schedule: str) -> Optional[list[int]]:
    """Minutes of the day at which an AWS Backup `cron(min hour dom month dow year)` starts a job,
    read as if it ran every day (the conservative reading); None for `rate(...)` or what this does
    not parse (then only RDS's own rules apply, and the docs say so)."""
    m = re.fullmatch(r"cron\((.+)\)", schedule.strip())
    if not m:
        return None
    fields = m[1].split()
    if len(fields) != 6:
        return None
    minutes, hours = _cron_field(fields[0], 0, 59), _cron_field(fields[1], 0, 23)
    if not minutes or not hours:
        return None
    return sorted(h * 60 + mi for h in hours for mi in minutes)


def backup_busy_minutes(schedule: str) -> set[int]:
    """Minutes of the day the tier's AWS Backup jobs may start: each scheduled start and the
    plan's 60-minute start window after it. Where that covers the whole night (an hourly tier),
    the scheduled starts themselves: no window can avoid every hour's start window."""
    starts = schedule_starts(schedule) or []
    busy = {(s + i) % DAY_MINUTES for s in starts for i in range(BACKUP_START_WINDOW_MINUTES)}
    if not any(_free(s, busy) for s in NIGHT_STARTS):
        busy = set(starts)
    return busy


def _free(start: int, busy: set[int]) -> bool:
    return not any(((start + i) % DAY_MINUTES) in busy for i in range(WINDOW_MINUTES))


def _daily(start: int) -> str:
    end = (start + WINDOW_MINUTES) % DAY_MINUTES
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def _weekly(day: int, start: int) -> str:
    end = start + WINDOW_MINUTES
    end_day = (day + end // DAY_MINUTES) % 7
    end %= DAY_MINUTES
    return f"{DAYS[day]}:{start // 60:02d}:{start % 60:02d}-{DAYS[end_day]}:{end // 60:02d}:{end % 60:02d}"


# --- derivation ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowRequest:
    """What derivation needs of one database."""

    owner: str
    schedule: str  # its tier's AWS Backup schedule
    backup_window: Optional[str] = None  # the catalogue's override
    maintenance_window: Optional[str] = None


def _hash(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"bulkhead-windows-v1/{name}".encode()).digest(), "big")


def derive(requests: Mapping[str, WindowRequest], derivation: int = DEFAULT_DERIVATION) -> dict[str, Windows]:
    """Every database's windows. Deterministic: the same catalogue gives the same windows on every
    plan. A database's derived windows depend on its name, its tier's schedule, its own overrides and
    its owner's other databases only: adding or changing another owner's database never moves them."""
    if derivation not in DERIVATIONS:
        raise ValueError(f"unknown window derivation {derivation}")
    out: dict[str, Windows] = {}
    owners: dict[str, list[str]] = {}
    for name, req in requests.items():
        owners.setdefault(req.owner, []).append(name)
    for names in owners.values():
        out.update(_derive_owner({n: requests[n] for n in names}, derivation))
    return dict(sorted(out.items()))


def _derive_owner(requests: Mapping[str, WindowRequest], derivation: int) -> dict[str, Windows]:
    out: dict[str, Windows] = {}
    if derivation == 0:
        for name, req in requests.items():
            out[name] = Windows(req.backup_window or LEGACY_BACKUP_WINDOW, req.maintenance_window or LEGACY_MAINTENANCE_WINDOW,
                                req.backup_window is None, req.maintenance_window is None)
        return out
    # The owner's explicit windows are taken first; then each database in the order of its hash
    # (name order breaks a tie) takes the first free slot of its own rotation of the candidates.
    used_backup: set[int] = set()
    used_maintenance: set[int] = set()
    for req in requests.values():
        if req.backup_window is not None:
            used_backup |= daily_minutes(req.backup_window)
        if req.maintenance_window is not None:
            used_maintenance |= weekly_minutes(req.maintenance_window)
    for name in sorted(requests, key=lambda n: (_hash(n), n)):
        req = requests[name]
        h = _hash(name)
        busy = backup_busy_minutes(req.schedule)
        candidates = [s for s in NIGHT_STARTS if _free(s, busy)] or list(NIGHT_STARTS)
        backup = req.backup_window
        if backup is None:
            # Never inside its own maintenance window's hours (RDS's rule), whatever day that is.
            own = {m % DAY_MINUTES for m in weekly_minutes(req.maintenance_window)} if req.maintenance_window else set()
            start = _first_free(_rotated(candidates, h),
                                lambda s, taken=used_backup | own: not (daily_minutes(_daily(s)) & taken),
                                next((s for s in _rotated(candidates, h) if not daily_minutes(_daily(s)) & own),
                                     candidates[h % len(candidates)]))
            backup = _daily(start)
            used_backup |= daily_minutes(backup)
        maintenance = req.maintenance_window
        if maintenance is None:
            slots = [(d, s) for d in range(7) for s in candidates]
            backup_minutes = daily_minutes(backup)

            def fits(slot, used=used_maintenance, own_backup=backup_minutes) -> bool:
                window = _weekly(*slot)
                return not (weekly_minutes(window) & used) and not (daily_minutes(_daily(slot[1])) & own_backup)

            fallback = next((s for s in _rotated(slots, h >> 64) if not (daily_minutes(_daily(s[1])) & backup_minutes)),
                            slots[(h >> 64) % len(slots)])
            maintenance = _weekly(*_first_free(_rotated(slots, h >> 64), fits, fallback))
            used_maintenance |= weekly_minutes(maintenance)
        out[name] = Windows(backup, maintenance, req.backup_window is None, req.maintenance_window is None)
    return out


def _rotated(items: list, h: int) -> list:
    k = h % len(items)
    return items[k:] + items[:k]


def _first_free(items: Iterable, ok, fallback):
    return next((item for item in items if ok(item)), fallback)

