"""`split` on a real PostgreSQL server built by the dev init: a shared source built like seed 001
(tests/data/split_seed_001.sql) split into the dev stack's `auth` and `app` databases, the source
proven unchanged, a corrupted target caught, and a table of bad maps each with its message."""

from __future__ import annotations

import os
import re
import subprocess
import textwrap

import pytest

from bulkhead.commands import split
from bulkhead.cli import main
from tests.support.day2 import ROOT, connect_as, dev_server, objects_by_owner, outputs_for, run_sql_file, table_fingerprints

SEED = (ROOT / "tests" / "data" / "split_seed_001.sql").read_text()
MAP_001 = ROOT / "tests" / "data" / "split_map_001.yaml"
AUTH_TABLES = {"users", "sessions", "refresh_tokens", "api_keys", "user_roles", "permissions"}
APP_TABLES = {"projects", "orders", "messages", "integrations", "products", "reports"}
# seed 001 plus what a shared database grows when nobody separates it
TANGLES = """
CREATE VIEW user_projects AS SELECT u.email, p.name FROM users u JOIN projects p ON p.user_id = u.id;
CREATE FUNCTION user_order_total(uid integer) RETURNS numeric LANGUAGE plpgsql AS $$
BEGIN RETURN (SELECT sum(o.total) FROM orders o JOIN projects p ON p.id = o.project_id
              WHERE p.user_id IN (SELECT id FROM users WHERE id = uid)); END $$;
CREATE SEQUENCE shared_ids;
ALTER TABLE sessions ALTER COLUMN id SET DEFAULT nextval('shared_ids');
ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('shared_ids');
SELECT lo_create(0);
"""


# what else a shared database holds: other schemas, partitions, identity columns, a materialized
# view, domains, an extension, policies, a standalone sequence, comments, expression indexes
RICH = """
CREATE EXTENSION pgcrypto;
CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%');
CREATE TABLE accounts (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, mail email NOT NULL,
                       secret bytea DEFAULT gen_random_bytes(8), CHECK (id > 0));
CREATE INDEX accounts_lower_mail ON accounts (lower(mail));
COMMENT ON COLUMN accounts.mail IS 'login';
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON accounts USING (true);
CREATE SEQUENCE ticket_numbers START 500;
CREATE TABLE events (at date NOT NULL, account_id int, what text) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE FUNCTION account_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM accounts';
CREATE SCHEMA reporting;
CREATE TABLE reporting.daily (day date PRIMARY KEY, total numeric);
CREATE TABLE reporting.monthly (month date PRIMARY KEY, total numeric);
CREATE MATERIALIZED VIEW reporting.best_days AS SELECT * FROM reporting.daily WHERE total > 10;
INSERT INTO accounts (mail) SELECT 'a' || i || '@x' FROM generate_series(1, 50) i;
INSERT INTO events SELECT DATE '2024-06-01' + i * 2, 1 + i % 50, 'e' || i FROM generate_series(1, 200) i;
INSERT INTO reporting.daily SELECT DATE '2024-01-01' + i, i FROM generate_series(1, 30) i;
INSERT INTO reporting.monthly SELECT DATE '2024-01-01' + i * INTERVAL '1 month', i FROM generate_series(0, 11) i;
REFRESH MATERIALIZED VIEW reporting.best_days;
SELECT nextval('ticket_numbers');
"""
RICH_MAP = """databases:
  auth: [accounts, events, events_2024, events_2025, ticket_numbers]
  app: ["reporting.*"]
"""


@pytest.fixture(scope="module")
def pg():
    with dev_server(["auth", "app", "legacy", "tangled", "rich"]) as (server, passwords):
        run_sql_file(server, "legacy", passwords["legacy"], SEED)
        run_sql_file(server, "tangled", passwords["tangled"], SEED + TANGLES)
        run_sql_file(server, "rich", passwords["rich"], RICH)
        yield server, passwords


@pytest.fixture
def env(pg, tmp_path, monkeypatch):
    """Empty targets, the outputs file of the dev stack, and the source's password in PGPASSWORD."""
    server, passwords = pg
    for name in ("auth", "app"):
        with connect_as(server, name, passwords[name]) as conn:
            conn.execute("DROP OWNED BY CURRENT_USER CASCADE")
            conn.execute("CREATE SCHEMA IF NOT EXISTS public")
    outputs = outputs_for(server, {n: passwords[n] for n in ("auth", "app")}, tmp_path / "dev.json")
    monkeypatch.setenv("PGPASSWORD", passwords["legacy"])
    return server, passwords, outputs


def source_url(server, name="legacy"):
    return f"postgresql://{name}@127.0.0.1:{server.port}/{name}?sslmode=require"


def run_split(capsys, server, outputs, *extra, source="legacy", map_path=MAP_001):
    code = main(["split", "--from", source_url(server, source), "--stack", "dev", "--map", str(map_path),
                 "--outputs", outputs, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def source_state(server, passwords, name="legacy"):
    """Every table's content and physical rows (ctid, xmin), and the schema as pg_dump prints it."""
    with connect_as(server, name, passwords[name]) as conn:
        tables = table_fingerprints(conn)
    schema = subprocess.run([str(server.bindir / "pg_dump"), "--schema-only",
                             f"host=127.0.0.1 port={server.port} dbname={name} user={name} sslmode=require"],
                            capture_output=True, text=True, env={**os.environ, "PGPASSWORD": passwords[name]},
                            check=True).stdout
    # pg_dump 15.14+ brackets its script with a random \restrict key: not part of the schema
    schema = "\n".join(line for line in schema.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))
    return tables, schema


def tables_of(server, passwords, name):
    with connect_as(server, name, passwords[name]) as conn:
        return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()}


def content(fingerprints):
    return {t: f.split("/")[0] + "/" + f.split("/")[1] for t, f in fingerprints.items()}


def test_split_seed_001_refused_without_drop_cross_fks(env, capsys):
    server, passwords, outputs = env
    code, out, err = run_split(capsys, server, outputs)
    assert code == 2
    assert ("foreign key public.projects -> public.users (projects_user_id_fkey; app -> auth) crosses databases"
            in err) and "pass --drop-cross-fks" in err and "nothing was copied" in err
    assert tables_of(server, passwords, "auth") == set() and tables_of(server, passwords, "app") == set()


def test_split_seed_001_copies_verifies_and_leaves_the_source_unchanged(env, capsys):
    server, passwords, outputs = env
    before = source_state(server, passwords)
    code, out, err = run_split(capsys, server, outputs, "--drop-cross-fks")
    assert code == 0, err
    assert "dropping foreign keys between databases:\n  public.projects -> public.users (projects_user_id_fkey" in err
    lines = out.splitlines()
    assert lines[0].split() == ["table", "database", "rows", "checksum", "ok"]
    assert len([line for line in lines[1:] if line.endswith("  ok")]) == 12
    assert lines[-1] == ("split done: 12 tables, 4041 rows into app, auth; every count and checksum matches the "
                         "source's snapshot")

    after = source_state(server, passwords)
    assert after == before  # content, physical rows and schema: the source is untouched

    for name, mine, theirs in (("auth", AUTH_TABLES, APP_TABLES), ("app", APP_TABLES, AUTH_TABLES)):
        assert tables_of(server, passwords, name) == mine
        assert not tables_of(server, passwords, name) & theirs
        with connect_as(server, name, passwords[name]) as conn:
            assert {owner for _, owner in objects_by_owner(conn)} == {name}
            copied = content(table_fingerprints(conn))
        assert copied == {t: v for t, v in content(before[0]).items() if t.split(".")[1] in mine}

    with connect_as(server, "auth", passwords["auth"]) as conn:
        assert conn.execute("SELECT nextval('users_id_seq')").fetchone() == (1001,)  # continues where it was
        assert conn.execute("SELECT count(*) FROM active_users").fetchone() == (258,)
    with connect_as(server, "app", passwords["app"]) as conn:
        fks = {r[0] for r in conn.execute("SELECT conname FROM pg_constraint WHERE contype = 'f'").fetchall()}
        assert "projects_user_id_fkey" not in fks and "orders_project_id_fkey" in fks
        assert conn.execute("SELECT nextval('orders_id_seq')").fetchone() == (1001,)
        assert conn.execute("SELECT to_regclass('public.active_users')").fetchone() == (None,)


def test_split_of_a_richer_source(env, capsys, tmp_path, monkeypatch):
    server, passwords, outputs = env
    monkeypatch.setenv("PGPASSWORD", passwords["rich"])
    path = tmp_path / "map.yaml"
    path.write_text(RICH_MAP)
    before = source_state(server, passwords, "rich")
    code, out, err = run_split(capsys, server, outputs, source="rich", map_path=path)
    assert code == 0, out + err
    # accounts, events and its 2 partitions (rows counted once), reporting.daily and .monthly
    assert "split done: 6 tables, 292 rows into app, auth" in out
    assert source_state(server, passwords, "rich") == before
    with connect_as(server, "auth", passwords["auth"]) as conn:
        assert {owner for _, owner in objects_by_owner(conn)} == {"auth"}
        assert conn.execute("SELECT count(*), account_count() FROM accounts").fetchone() == (50, 50)
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (200,)
        assert conn.execute("SELECT nextval('ticket_numbers')").fetchone() == (501,)
        assert conn.execute("SELECT polname FROM pg_policy").fetchall() == [("own_rows",)]
        assert conn.execute("SELECT col_description('accounts'::regclass, 2)").fetchone() == ("login",)
        assert conn.execute("SELECT to_regclass('accounts_lower_mail') IS NOT NULL, "
                            "to_regnamespace('reporting') IS NULL").fetchone() == (True, True)
        with pytest.raises(Exception, match="cannot insert a non-DEFAULT value into column \"id\""):
            conn.execute("INSERT INTO accounts (id, mail) VALUES (1000, 'z@x')")
    with connect_as(server, "app", passwords["app"]) as conn:
        assert {owner for _, owner in objects_by_owner(conn)} == {"app"}
        assert conn.execute("SELECT count(*) FROM reporting.best_days").fetchone() == (20,)
        assert conn.execute("SELECT to_regclass('public.accounts') IS NULL").fetchone() == (True,)


def test_split_reports_a_target_changed_between_copy_and_verify(env, capsys, monkeypatch):
    server, passwords, outputs = env
    original = split.verify_all

    def corrupt_then_verify(source_conn, targets, plan):
        with connect_as(server, "app", passwords["app"]) as conn:
            conn.execute("UPDATE orders SET total = total + 1 WHERE id = 17")
        return original(source_conn, targets, plan)

    monkeypatch.setattr(split, "verify_all", corrupt_then_verify)
    code, out, err = run_split(capsys, server, outputs, "--drop-cross-fks")
    assert code == 1
    bad = [line for line in out.splitlines() if "MISMATCH" in line]
    assert len(bad) == 1 and bad[0].startswith("public.orders") and "checksum" in bad[0]
    assert "rows" not in bad[0].split("MISMATCH")[1]  # same count, different content
    assert "split done" not in out and "split FAILED: 1 of 12 checks do not match" in err


def test_split_refuses_a_target_that_is_not_empty(env, capsys):
    server, passwords, outputs = env
    with connect_as(server, "auth", passwords["auth"]) as conn:
        conn.execute("CREATE TABLE leftover (x int)")
    code, out, err = run_split(capsys, server, outputs, "--drop-cross-fks")
    assert code == 2
    assert "database auth is not empty (1 objects: relation public.leftover (owner auth))" in err
    assert tables_of(server, passwords, "app") == set()


def test_split_refuses_outputs_of_another_stack_and_copies_nothing(env, capsys, tmp_path):
    server, passwords, _ = env
    other = outputs_for(server, {n: passwords[n] for n in ("auth", "app")}, tmp_path / "other.json",
                        stack="aisales-dev", project="aisales")
    code, out, err = run_split(capsys, server, other, "--drop-cross-fks")
    assert code == 2
    assert "--stack dev does not match " in err and "those are the outputs of stack aisales-dev of project aisales" in err
    assert tables_of(server, passwords, "auth") == set() and tables_of(server, passwords, "app") == set()


@pytest.mark.parametrize("source, password, fragment", [
    ("postgresql://legacy@127.0.0.1:{port}/legacy?sslmode=require", "wrong",
     "cannot connect to database legacy on 127.0.0.1 as legacy: "),
    ("postgresql://legacy@127.0.0.1:{port}/legacy?sslmode=disable", None,
     "cannot connect to database legacy on 127.0.0.1 as legacy: "),
    ("postgresql://legacy:s3cret@[::1", None, "--from is not a PostgreSQL connection string"),
])
def test_bad_source_is_a_message_without_the_password(env, capsys, monkeypatch, source, password, fragment):
    server, passwords, outputs = env
    if password:
        monkeypatch.setenv("PGPASSWORD", password)
    code = main(["split", "--from", source.format(port=server.port), "--stack", "dev", "--map", str(MAP_001),
                 "--outputs", outputs])
    out, err = capsys.readouterr()
    assert code == 2 and fragment in err and "Traceback" not in err
    assert "s3cret" not in err and passwords["legacy"] not in err


def test_dry_run_reads_only_the_source(env, capsys, tmp_path):
    server, passwords, _ = env
    code, out, err = run_split(capsys, server, str(tmp_path / "no-such-outputs.json"), "--dry-run", "--drop-cross-fks")
    assert code == 0, err
    assert "  public.users  ->  auth" in out and "  public.orders  ->  app" in out
    assert "  view public.project_totals  ->  app" in out
    assert "public.projects -> public.users (projects_user_id_fkey; app -> auth)" in out
    assert tables_of(server, passwords, "auth") == set() and tables_of(server, passwords, "app") == set()


def test_checksum_definition(pg):
    """The documented checksum, recomputed here in Python from the rows' text: md5's first 64 bits as a
    signed integer, summed, mod 2^64; the same for any row order; one changed row changes it."""
    import hashlib

    server, _ = pg
    rows = ["(1,a)", "(2,\"b c\")", "(3,)"]

    def expected(texts):
        total = sum(int.from_bytes(hashlib.md5(t.encode()).digest()[:8], "big", signed=True) for t in texts)
        return f"{total % (1 << 64):016x}"

    with server.admin() as conn:
        conn.execute("CREATE TEMP TABLE t (id int, v text)")
        conn.execute("INSERT INTO t VALUES (3, NULL), (1, 'a'), (2, 'b c')")
        split.set_text_form(conn)
        rel = split.Relation(0, "pg_temp", "t", "r")
        assert split.table_checksum(conn, rel) == (3, expected(rows))
        conn.execute("UPDATE t SET v = 'A' WHERE id = 1")
        assert split.table_checksum(conn, rel) == (3, expected(["(1,A)", *rows[1:]]))
        assert expected(["(1,A)", *rows[1:]]) != expected(rows)


@pytest.mark.parametrize("line, fragment", [
    ("42; 1259 16386 TABLE public users owner", None),
    ("43; 0 0 TABLE ATTACH public events_2024 owner", None),
    ("44; 1 2 SOMETHING NEW public x owner", "pg_restore --list printed an entry split does not know (44;"),
])
def test_archive_listing_is_parsed_or_refused(line, fragment):
    from bulkhead.errors import UserError

    if fragment is None:
        (entry,) = split.parse_toc(f"; a comment\n{line}\n")
        assert (entry.schema, entry.name, entry.line) == ("public", line.split()[-2], line)
    else:
        with pytest.raises(UserError, match=re.escape(fragment)):
            split.parse_toc(line)


# --- bad maps --------------------------------------------------------------------

GOOD_AUTH = "[users, sessions, refresh_tokens, api_keys, user_roles, permissions]"
GOOD_APP = "[projects, orders, messages, integrations, products, reports]"
BAD_MAPS = [
    # (id, map text, source, extra flags, fragments of the message)
    ("yaml-syntax", "databases: [auth", "legacy", [], ["is not valid YAML (line 1, column 17): expected ',' or ']'"]),
    ("top-level-list", "- users\n", "legacy", [], ["the top level must be a map with `databases:` (and `ignore:`), not a list"]),
    ("empty-file", "", "legacy", [], ["not an empty file"]),
    ("unknown-key", f"databases: {{auth: {GOOD_AUTH}}}\ntables: [x]\n", "legacy", [],
     ["unknown key 'tables'; the map has `databases:` and `ignore:` only"]),
    ("no-databases", "ignore: [users]\n", "legacy", [], ["databases: expected a map of catalogue database -> list of tables"]),
    ("not-a-catalogue-database", f"databases:\n  auth: {GOOD_AUTH}\n  billingz: {GOOD_APP}\n", "legacy", [],
     ["databases.billingz: not a database of the catalogue (Pulumi.<stack>.yaml: app, auth, billing, notify, worker)"]),
    ("tables-not-a-list", "databases:\n  auth: users\n", "legacy", [],
     ["databases.auth: expected a non-empty list of tables (`- users`), not a str"]),
    ("empty-list", "databases:\n  auth: []\n", "legacy", [], ["databases.auth: expected a non-empty list of tables"]),
    ("bad-name", "databases:\n  auth: [public.users.id]\n", "legacy", [],
     ["databases.auth[0]: 'public.users.id' is not `table`, `schema.table` or `schema.*`"]),
    ("duplicate-key", f"databases:\n  auth: {GOOD_AUTH}\n  auth: {GOOD_APP}\n", "legacy", [],
     ["the key 'auth' is given twice"]),
    ("listed-twice", "databases:\n  auth: [users, public.users]\n", "legacy", [],
     ["databases.auth[1]: public.users is listed twice (also", "databases.auth[0]); remove one"]),
    ("claimed-twice", f"databases:\n  auth: {GOOD_AUTH}\n  app: [users, projects, orders, messages, integrations, products, reports]\n",
     "legacy", ["--drop-cross-fks"],
     ["table public.users is claimed by app (", ") and auth (", "a table goes to one database"]),
    ("ignored-and-claimed", f"databases:\n  auth: {GOOD_AUTH}\n  app: {GOOD_APP}\nignore: [users]\n", "legacy",
     ["--drop-cross-fks"], ["table public.users is claimed by ignore (", ") and auth ("]),
    ("claimed-by-none", "databases:\n  auth: [users, sessions, refresh_tokens, api_keys, user_roles, permissions]\n"
     "  app: [projects, orders, messages, integrations, products]\n", "legacy", ["--drop-cross-fks"],
     ["table public.reports is claimed by no database; add it to one under `databases:` or list it under `ignore:`"]),
    ("no-such-table", f"databases:\n  auth: [userz, {GOOD_AUTH[1:]}\n  app: {GOOD_APP}\n", "legacy", ["--drop-cross-fks"],
     ["databases.auth[0]: the source has no table public.userz; fix the name or remove it"]),
    ("wildcard-matches-nothing", f"databases:\n  auth: {GOOD_AUTH}\n  app: [\"reporting.*\", {GOOD_APP[1:]}\n", "legacy",
     ["--drop-cross-fks"], ["databases.app[0]: reporting.* matches no table: the source has no tables in schema reporting"]),
    ("view-in-map", f"databases:\n  auth: [active_users, {GOOD_AUTH[1:]}\n  app: {GOOD_APP}\n", "legacy", ["--drop-cross-fks"],
     ["databases.auth[0]: public.active_users is a view; it goes with the table(s) it belongs to"]),
    ("cross-fk", f"databases:\n  auth: {GOOD_AUTH}\n  app: {GOOD_APP}\n", "legacy", [],
     ["foreign key public.projects -> public.users (projects_user_id_fkey; app -> auth) crosses databases"]),
    ("fk-to-ignored", "databases:\n  auth: [users, sessions, refresh_tokens, api_keys, user_roles]\n"
     f"  app: {GOOD_APP}\nignore: [permissions]\n", "legacy", [],
     ["foreign key public.user_roles -> public.permissions (user_roles_permission_id_fkey; auth -> ignore)"]),
    ("view-across", f"databases:\n  auth: {GOOD_AUTH}\n  app: {GOOD_APP}\n", "tangled", ["--drop-cross-fks"],
     ["view public.user_projects reads tables of different databases: public.projects (app), public.users (auth)"]),
    ("function-across", f"databases:\n  auth: {GOOD_AUTH}\n  app: {GOOD_APP}\n", "tangled", ["--drop-cross-fks"],
     ["function public.user_order_total(uid integer) reads tables of different databases: public.orders (app), "
      "public.projects (app), public.users (auth)"]),
    ("shared-sequence", f"databases:\n  auth: {GOOD_AUTH}\n  app: {GOOD_APP}\n", "tangled", ["--drop-cross-fks"],
     ["sequence public.shared_ids is shared by tables of different databases: public.sessions (auth), public.orders (app)"]),
    ("large-objects", f"databases:\n  auth: {GOOD_AUTH}\n  app: {GOOD_APP}\n", "tangled", ["--drop-cross-fks"],
     ["the source has 1 large objects (pg_largeobject)"]),
]


@pytest.mark.parametrize("case, text, source, flags, fragments", BAD_MAPS, ids=[c[0] for c in BAD_MAPS])
def test_bad_map_is_refused_with_its_message(env, capsys, tmp_path, monkeypatch, case, text, source, flags, fragments):
    server, passwords, outputs = env
    monkeypatch.setenv("PGPASSWORD", passwords[source])
    path = tmp_path / "map.yaml"
    path.write_text(textwrap.dedent(text))
    code, out, err = run_split(capsys, server, outputs, *flags, source=source, map_path=path)
    assert code == 2, err
    for fragment in fragments:
        assert fragment in err, (case, err)
    assert "Traceback" not in err and passwords[source] not in err + out
    assert tables_of(server, passwords, "auth") == set() and tables_of(server, passwords, "app") == set()


def test_every_problem_of_the_tangled_source_in_one_run(env, capsys, tmp_path, monkeypatch):
    server, passwords, outputs = env
    monkeypatch.setenv("PGPASSWORD", passwords["tangled"])
    code, out, err = run_split(capsys, server, outputs, source="tangled")
    assert code == 2
    assert err.startswith("error: 5 problem(s) in the map against the source (tangled on 127.0.0.1 as tangled)")
    for fragment in ("view public.user_projects", "function public.user_order_total", "sequence public.shared_ids",
                     "projects_user_id_fkey", "large objects"):
        assert fragment in err
