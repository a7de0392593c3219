"""A major-version upgrade of an RDS database is an explicit act: `allow_major_upgrade_to: <major>`.

RDS refuses a new major unless ModifyDBInstance carries AllowMajorVersionUpgrade ("Indicates
whether major version upgrades are allowed ... This parameter must be set to true when specifying
a value for the EngineVersion parameter that is a different major version than the DB instance's
current version", RDS API reference, ModifyDBInstance). terraform-provider-aws sends the resource's
`allow_major_version_upgrade` with every `engine_version` change (internal/service/rds/instance.go,
resourceInstanceUpdate: `if d.HasChange("engine_version") { input.EngineVersion = ...;
input.AllowMajorVersionUpgrade = aws.Bool(d.Get("allow_major_version_upgrade").(bool)) }`), so a
program that always set it true turned a typo in `engine_version` ("17" for "16") into an in-place
major upgrade of production on the next `up`, with no way back but a snapshot restore.

The program cannot see the running version (plans are offline), so the flag is true only when the
catalogue names the target: `allow_major_upgrade_to: 17` with `engine_version: "17"` (or "17.x").
A typo elsewhere leaves the flag false and RDS refuses the `up`; a key left behind after the
upgrade arms nothing new (it must equal the declared major, so the next major needs a new edit).

Replicas: RDS upgrades in-Region replicas together with the primary ("If you're upgrading a DB
instance that has in-Region read replicas, Amazon RDS upgrades the replicas along with the primary
DB instance", RDS User Guide, "Upgrades of the RDS for PostgreSQL DB engine"), but each replica is
its own aws.rds.Instance pointed at the new family's parameter group in the same `up`; the provider
modifies them independently ("we could loop through replicas at this point to update them first",
a comment in the same function, i.e. it does not), and RDS refuses a parameter group of another
family while a replica still runs the old major. So the key is refused while `replicas` > 0, with
the runbook (docs/prod-stack.md, "Major version upgrades").

No Pulumi, no pydantic models imported (model.py imports this module)."""

from __future__ import annotations

from typing import Any, Mapping

Finding = tuple[str, str]
KEY = "allow_major_upgrade_to"


def major_upgrade_findings(databases: Mapping[str, Any], path) -> tuple[list[Finding], list[Finding]]:
    """(errors, warnings) for every aws database's `allow_major_upgrade_to`.

    `databases`: name -> Database (with .engine_version, .major, .replicas and the key);
    `path(*parts)`: the key-path formatter of model.py."""
    errors: list[Finding] = []
    warnings: list[Finding] = []
    for name, db in databases.items():
        target = getattr(db, KEY, None)
        if target is None:
            continue
        where = path("databases", name, KEY)
        if target != db.major:
            errors.append((where, (
                f"is {target} but engine_version \"{db.engine_version}\" is major {db.major}: a major upgrade "
                f"needs both to name the same major. To upgrade to {target}, set engine_version: \"{target}\"; "
                f"to stay on {db.major}, remove {KEY}")))
            continue
        if db.replicas > 0:
            errors.append((where, (
                f"cannot go with replicas: {db.replicas}: RDS upgrades the replicas with the primary, but each "
                f"replica would be pointed at the postgres{target} parameter group in the same `up`, which RDS "
                f"refuses while it still runs the old major. Runbook (docs/prod-stack.md, \"Major version "
                f"upgrades\"): 1. set replicas: 0 and remove {KEY}, `up`; 2. set engine_version: \"{target}\" and "
                f"{KEY}: {target}, `up`; 3. remove {KEY}, set replicas back, `up`")))
            continue
        warnings.append((where, (
            f"while set, an `up` that finds {name} on an older major upgrades it in place to PostgreSQL {target} "
            f"right away (apply_immediately; minutes of downtime, RDS snapshots it first); remove {KEY} once that "
            f"`up` is done, so later changes of {name} wait for its maintenance window again")))
    return errors, warnings
