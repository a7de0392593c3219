"""Issue 24's catalogue keys: `bulkhead:alerts`, `bulkhead:window_derivation`, tiers' and databases'
`alarms`, `backup_window`, `maintenance_window`, `restore_from`; and the window derivation itself."""

from __future__ import annotations

import pytest

from components.catalogue.model import CatalogueError, alarm_thresholds, load_catalogue
from components.prod import windows
from tests.support.catalogue import adb, aws, ddb

SNAPSHOT = "arn:aws:rds:eu-west-1:123456789012:snapshot:billing-before"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ops-alerts"


def _problems(raw, region="eu-west-1"):
    with pytest.raises(CatalogueError) as info:
        load_catalogue(raw, "test", region=region)
    return [(p.path, p.message) for p in info.value.problems]


@pytest.mark.parametrize("raw, path, fragment", [
    pytest.param(aws(alerts={"emails": ["not-an-email"]}), "bulkhead:alerts.emails.0", "email address", id="email-bad"),
    pytest.param(aws(alerts={"https": ["http://hooks.example.com/x"]}), "bulkhead:alerts.https.0", "https://", id="http-not-https"),
    pytest.param(aws(alerts={"topic_arn": "arn:aws:sqs:eu-west-1:123456789012:q"}), "bulkhead:alerts.topic_arn", "SNS topic ARN",
                 id="topic-not-sns"),
    pytest.param(aws(alerts={"topic_arn": TOPIC.replace("eu-west-1", "us-east-1")}), "bulkhead:alerts.topic_arn",
                 "not the stack's region eu-west-1", id="topic-other-region"),
    pytest.param(aws(alerts={"topic_arn": TOPIC, "emails": ["dba@example.com"]}), "bulkhead:alerts.topic_arn",
                 "subscribe them to that topic", id="topic-and-emails"),
    pytest.param(aws(alerts={"pager": ["x"]}), "bulkhead:alerts.pager", "unknown key", id="alerts-unknown-key"),
    pytest.param(aws(alerts=["dba@example.com"]), "bulkhead:alerts", "must be a map", id="alerts-not-map"),
    pytest.param(ddb(alarms=False), "bulkhead:databases.app.alarms", "applies only to platform aws", id="alarms-on-docker"),
    pytest.param(adb(alarms={"cpu_percent": 101}), "bulkhead:databases.app.alarms.cpu_percent", "out of range", id="cpu-101"),
    pytest.param(adb(alarms={"disk": 5}), "bulkhead:databases.app.alarms.disk", "unknown key", id="alarms-unknown"),
    pytest.param(aws(backup_tiers={"standard": {"schedule": "cron(0 */6 * * ? *)", "retention_days": 7, "pitr_days": 7,
                                                "alarms": {"replica_lag_seconds": 0}}}),
                 "bulkhead:backup_tiers.standard.alarms.replica_lag_seconds", "out of range", id="tier-lag-0"),
    pytest.param(adb(backup_window="3:00-4:00"), "bulkhead:databases.app.backup_window", "hh24:mi-hh24:mi", id="backup-format"),
    pytest.param(adb(backup_window="03:00-03:20"), "bulkhead:databases.app.backup_window", "shorter than 30 minutes",
                 id="backup-short"),
    pytest.param(adb(maintenance_window="sun:05:00-06:00"), "bulkhead:databases.app.maintenance_window",
                 "ddd:hh24:mi-ddd:hh24:mi", id="maintenance-format"),
    pytest.param(adb(maintenance_window="Sun:05:00-Sun:06:00"), "bulkhead:databases.app.maintenance_window",
                 "lower case", id="maintenance-case"),
    pytest.param(adb(maintenance_window="sun:05:00-sun:05:10"), "bulkhead:databases.app.maintenance_window",
                 "shorter than 30 minutes", id="maintenance-short"),
    pytest.param(adb(backup_window="05:00-06:00", maintenance_window="sun:05:30-sun:06:30"),
                 "bulkhead:databases.app.maintenance_window", "RDS refuses windows that overlap", id="windows-overlap"),
    pytest.param(adb(backup_window="23:30-00:30", maintenance_window="mon:00:00-mon:01:00"),
                 "bulkhead:databases.app.maintenance_window", "RDS refuses windows that overlap", id="overlap-past-midnight"),
    pytest.param(aws(window_derivation=2), "bulkhead:window_derivation", "not a window derivation", id="derivation-2"),
    pytest.param(adb(restore_from={}), "bulkhead:databases.app.restore_from", "exactly one of", id="restore-empty"),
    pytest.param(adb(restore_from={"snapshot": SNAPSHOT, "point_in_time": {"source": "prod-app", "time": "latest"}}),
                 "bulkhead:databases.app.restore_from", "exactly one of", id="restore-both"),
    pytest.param(adb(restore_from={"snapshot": "billing-before"}), "bulkhead:databases.app.restore_from.snapshot",
                 "DB snapshot ARN", id="restore-snapshot-not-arn"),
    pytest.param(adb(restore_from={"point_in_time": {"source": "prod-app", "time": "yesterday 10:42"}}),
                 "bulkhead:databases.app.restore_from.point_in_time.time", "UTC time", id="restore-time-bad"),
    pytest.param(adb(restore_from={"point_in_time": {"time": "latest"}}),
                 "bulkhead:databases.app.restore_from.point_in_time.source", "is required", id="restore-no-source"),
    pytest.param(adb(restore_from={"snapshot": SNAPSHOT}), "bulkhead:databases.app.db_name",
                 "is required with restore_from", id="restore-without-db-name"),
    pytest.param(ddb(restore_from={"snapshot": SNAPSHOT}), "bulkhead:databases.app.restore_from",
                 "applies only to platform aws", id="restore-on-docker"),
])
def test_bad_values_name_the_key_and_the_fix(raw, path, fragment):
    problems = _problems(raw)
    matching = [m for p, m in problems if p == path]
    assert matching, problems
    assert any(fragment in m for m in matching), matching


def test_valid_keys_load():
    cat = load_catalogue(aws({"app": {"owner": "app-service", "db_name": "app", "backup_window": "01:15-01:45",
                                      "maintenance_window": "tue:02:15-tue:02:45", "alarms": {"cpu_percent": 95},
                                      "restore_from": {"point_in_time": {"source": "prod-app", "time": "2026-12-06T10:42:00Z"}}}},
                             alerts={"emails": ["dba@example.com"], "https": ["https://hooks.example.com/x"]}),
                         "test", region="eu-west-1")
    assert cat.alerts.emails == ["dba@example.com"] and cat.window_derivation == 1
    assert cat.databases["app"].restore_from.point_in_time.time == "2026-12-06T10:42:00Z"
    assert not [w for w in cat.warnings if w.path == "bulkhead:alerts"]


def test_no_subscriber_is_a_warning_not_an_error():
    cat = load_catalogue(adb(), "test", region="eu-west-1")
    assert any(w.path == "bulkhead:alerts" and "nobody is told" in w.message for w in cat.warnings)
    cat = load_catalogue(aws(alerts={"topic_arn": TOPIC}), "test", region="eu-west-1")
    assert not any(w.path == "bulkhead:alerts" for w in cat.warnings)


def test_thresholds_come_from_the_tier_and_the_database_overrides_them():
    cat = load_catalogue(aws({"a": {"owner": "s", "tier": "critical"}, "b": {"owner": "s"},
                              "c": {"owner": "s", "alarms": {"cpu_percent": 95, "replica_lag_seconds": None}},
                              "d": {"owner": "s", "alarms": False}},
                             backup_tiers={"critical": {"alarms": {"cpu_percent": 60}}}), "test", region="eu-west-1")
    t = {n: alarm_thresholds(db, cat.backup_tiers[db.tier]) for n, db in cat.databases.items()}
    # critical: stricter defaults, one replaced by the stack, the rest kept key by key
    assert (t["a"].cpu_percent, t["a"].free_storage_percent, t["a"].replica_lag_seconds) == (60, 20, 60)
    assert (t["b"].cpu_percent, t["b"].free_storage_percent, t["b"].replica_lag_seconds) == (80, 10, 300)
    assert (t["c"].cpu_percent, t["c"].connections_percent, t["c"].replica_lag_seconds) == (95, 80, None)
    assert t["d"] is None


def test_override_on_the_backup_schedule_or_an_owner_s_other_database_is_a_warning():
    cat = load_catalogue(aws({"a": {"owner": "s", "backup_window": "00:00-00:30"},
                              "b": {"owner": "s", "maintenance_window": "wed:02:15-wed:02:45"},
                              "c": {"owner": "s", "maintenance_window": "wed:02:15-wed:02:45"}}), "test", region="eu-west-1")
    paths = {w.path: w.message for w in cat.warnings}
    assert "AWS Backup schedule of tier standard" in paths["bulkhead:databases.a.backup_window"]
    assert "another database of s" in paths["bulkhead:databases.c.maintenance_window"]


# --- the derivation (components/prod/windows.py) --------------------------------------------------

STANDARD = "cron(0 */6 * * ? *)"
CRITICAL = "cron(0 * * * ? *)"


def _req(owner, schedule=STANDARD, **kw):
    return windows.WindowRequest(owner=owner, schedule=schedule, **kw)


def _fleet(n: int, owners: int = 4) -> dict:
    return {f"svc{i:02d}": _req(f"owner{i % owners}", CRITICAL if i % 3 == 0 else STANDARD) for i in range(n)}


def test_derivation_1_is_pinned():
    # Derivation 1 never changes: a change here moves every deployed database's windows. A new
    # derivation gets a new number (components/prod/windows.py).
    got = windows.derive({n: _req(o, s) for n, o, s in [("auth", "auth-service", CRITICAL), ("app", "app-service", STANDARD),
                                                       ("worker", "worker-service", STANDARD),
                                                       ("billing", "app-service", STANDARD)]})
    assert {n: (w.backup, w.maintenance) for n, w in got.items()} == {
        "app": ("03:45-04:15", "mon:05:15-mon:05:45"),
        "auth": ("05:15-05:45", "tue:02:15-tue:02:45"),
        "billing": ("01:15-01:45", "sat:01:45-sat:02:15"),
        "worker": ("05:15-05:45", "thu:03:45-thu:04:15"),
    }


def test_derivation_0_keeps_the_old_constants():
    got = windows.derive({"a": _req("s"), "b": _req("s", backup_window="01:00-01:30")}, 0)
    assert (got["a"].backup, got["a"].maintenance) == ("03:00-04:00", "sun:05:00-sun:06:00")
    assert got["b"].backup == "01:00-01:30" and not got["b"].backup_derived


def test_windows_are_staggered_at_night_off_the_backup_schedule_and_legal():
    got = windows.derive(_fleet(40))
    assert len({w.backup for w in got.values()}) > 5 and len({w.maintenance for w in got.values()}) > 20
    for name, w in got.items():
        assert windows.backup_window_problem(w.backup) is None and windows.maintenance_window_problem(w.maintenance) is None
        assert not windows.windows_overlap(w.backup, w.maintenance), name
        schedule = _fleet(40)[name].schedule
        assert not windows.daily_minutes(w.backup) & windows.backup_busy_minutes(schedule), (name, w)
        assert all(m % windows.DAY_MINUTES < 6 * 60 + 15 for m in windows.weekly_minutes(w.maintenance)), w


def test_no_two_databases_of_one_owner_at_the_same_time():
    reqs = {f"db{i}": _req("one-owner") for i in range(9)}  # as many as the standard tier's night has backup slots
    got = windows.derive(reqs)
    assert len({w.backup for w in got.values()}) == 9
    assert len({w.maintenance for w in got.values()}) == 9


def test_stable_across_plans_and_across_adding_another_owner_s_database():
    before = windows.derive(_fleet(30))
    assert windows.derive(_fleet(30)) == before
    after = windows.derive({**_fleet(30), "newcomer": _req("someone-new"), "another": _req("owner-x", CRITICAL)})
    assert {n: after[n] for n in before} == before


def test_adding_a_database_of_the_same_owner_moves_none_unless_it_takes_a_slot_first():
    # The documented exception (docs/prod-stack.md "Windows"): only a same-owner newcomer that ranks
    # first for an existing database's slot moves that one; pin it with backup_window/maintenance_window.
    fleet = _fleet(12)
    before = windows.derive(fleet)
    moved = 0
    for i in range(40):
        new = f"extra{i}"
        after = windows.derive({**fleet, new: _req("owner1")})
        changed = [n for n in before if after[n] != before[n]]
        assert all(fleet[n].owner == "owner1" for n in changed)
        moved += bool(changed)
        pinned = {n: (windows.WindowRequest(r.owner, r.schedule, before[n].backup, before[n].maintenance)
                      if r.owner == "owner1" else r) for n, r in fleet.items()}
        assert {n: (after2.backup, after2.maintenance) for n, after2 in windows.derive({**pinned, new: _req("owner1")}).items()
                if n in before} == {n: (w.backup, w.maintenance) for n, w in before.items()}
    assert moved < 40


def test_cron_reading():
    assert windows.schedule_starts("cron(0 */6 * * ? *)") == [0, 360, 720, 1080]
    assert windows.schedule_starts("cron(30 2,14 ? * SUN *)") == [150, 870]
    assert windows.schedule_starts("rate(12 hours)") is None
    # hourly: no window avoids every start window, so only the starts themselves are avoided
    assert windows.backup_busy_minutes(CRITICAL) == {h * 60 for h in range(24)}


@pytest.mark.parametrize("restore_from", [
    pytest.param({"point_in_time": {"source": "prod-billing", "time": "latest"}}, id="point-in-time"),
    pytest.param({"point_in_time": {"source": "arn:aws:rds:eu-west-1:123456789012:db:prod-billing", "time": "latest"}},
                 id="point-in-time-arn"),
    pytest.param({"snapshot": "arn:aws:rds:eu-west-1:123456789012:snapshot:prod-billing-final-0a1b2c3d"}, id="final-snapshot"),
])
def test_restoring_another_owner_s_database_is_said(restore_from):
    """Review of issue 24 (rev-ops): restore_from whose source is another owner's database of the stack gives
    the new database's owner that owner's data; nothing said so before (no warning, no rule). Now a warning
    at the key; the same owner restoring its own database, or a source outside the stack, is quiet."""
    def warned(owner):
        cat = load_catalogue(aws({"billing": {"owner": "billing-service"},
                                  "copy": {"owner": owner, "db_name": "billing", "restore_from": restore_from}}),
                             "prod", region="eu-west-1")
        return [w.message for w in cat.warnings if w.path == "bulkhead:databases.copy.restore_from"]

    [message] = warned("analytics")
    assert "restores billing, owned by billing-service, into a database of analytics" in message
    assert warned("billing-service") == []


def test_no_stateless_rule_keeps_both_guarantees_the_counterexample():
    """Review of issue 24 (o-fix), item 6, why the same-owner exception stays (docs/prod-stack.md "Windows"):
    if adding a database never moved another, a database's slot would be the one it gets alone (add the others
    to it one by one), a function of its name only; with 9 to 12 backup slots a night, two names then share one,
    and an owner with both has two databases backed up at once. svc0 and svc22 are such a pair: alone each
    gets 03:15; together one moves."""
    alone = {n: windows.derive({n: _req("o")})[n] for n in ("svc0", "svc22")}
    assert alone["svc0"].backup == alone["svc22"].backup == "03:15-03:45"
    together = windows.derive({"svc0": _req("o"), "svc22": _req("o")})
    assert together["svc0"].backup != together["svc22"].backup
    assert together["svc22"] == alone["svc22"] and together["svc0"] != alone["svc0"]
    # pinned, svc0 keeps what it had alone, and svc22 (a newcomer then) takes another slot
    pinned = windows.derive({"svc0": _req("o", backup_window=alone["svc0"].backup,
                                          maintenance_window=alone["svc0"].maintenance), "svc22": _req("o")})
    assert (pinned["svc0"].backup, pinned["svc0"].maintenance) == (alone["svc0"].backup, alone["svc0"].maintenance)
    assert pinned["svc22"].backup != pinned["svc0"].backup
