"""`split` throughput: `nice -n 10 python bench/split_throughput.py [--gb 1.0]`.

Starts a throwaway PostgreSQL server the way the tests do (tests/support/day2.py: Debian's
PostgreSQL, the dev container's init), generates a shared source of at least --gb GB of
tables (auth: users, sessions; app: projects, orders, messages), splits it into `auth` and
`app` with `python -m bulkhead split --drop-cross-fks`, and prints rows/s, MB/s and the
time in dump, restore and verify. Everything (cluster, archive) is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.day2 import connect_as, dev_server, outputs_for, run_sql_file  # noqa: E402

SCHEMA = """
CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, name text, created_at timestamptz NOT NULL);
CREATE TABLE sessions (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users(id), token text NOT NULL,
                       expires_at timestamptz);
CREATE TABLE projects (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users(id), name text NOT NULL);
CREATE TABLE orders (id bigserial PRIMARY KEY, project_id bigint NOT NULL REFERENCES projects(id), total numeric(12, 2),
                     placed_at timestamp, note text);
CREATE TABLE messages (id bigserial PRIMARY KEY, project_id bigint NOT NULL REFERENCES projects(id), body text,
                       meta jsonb);
CREATE INDEX messages_project ON messages (project_id);
"""
MAP = """databases:
  auth: [users, sessions]
  app: [projects, orders, messages]
"""
BATCH = 250_000  # messages per batch; the other tables grow in proportion
TIMINGS = re.compile(r"split timings: dump ([\d.]+) s, restore ([\d.]+) s, verify ([\d.]+) s, total ([\d.]+) s; "
                     r"(\d+) rows, ([\d.]+) MB of tables, archive ([\d.]+) MB")


def generate(conn, batch: int) -> None:
    """One batch: ids continue from the tables' current maximum, so batches append."""
    conn.execute(f"""
        WITH base AS (SELECT coalesce(max(id), 0) AS b FROM users)
        INSERT INTO users (email, name, created_at)
        SELECT 'user' || (b + i) || '@example.com', 'User ' || md5((b + i)::text), TIMESTAMPTZ '2024-01-01' + i * INTERVAL '1 s'
          FROM base, generate_series(1, {batch // 10}) i""")
    conn.execute(f"""
        INSERT INTO sessions (user_id, token, expires_at)
        SELECT (SELECT max(id) FROM users) - (i % {batch // 10}), md5(i::text) || md5((i + 1)::text), now()
          FROM generate_series(1, {batch // 4}) i""")
    conn.execute(f"""
        INSERT INTO projects (user_id, name)
        SELECT (SELECT max(id) FROM users) - (i % {batch // 10}), 'project ' || i FROM generate_series(1, {batch // 20}) i""")
    conn.execute(f"""
        INSERT INTO orders (project_id, total, placed_at, note)
        SELECT (SELECT max(id) FROM projects) - (i % {batch // 20}), i / 3.0, TIMESTAMP '2024-03-01' + i * INTERVAL '1 min',
               repeat(chr(97 + i % 26), 40)
          FROM generate_series(1, {batch // 2}) i""")
    conn.execute(f"""
        INSERT INTO messages (project_id, body, meta)
        SELECT (SELECT max(id) FROM projects) - (i % {batch // 20}), repeat(md5(i::text), 6),
               jsonb_build_object('n', i, 'kind', 'note', 'tags', jsonb_build_array('a', 'b'))
          FROM generate_series(1, {batch}) i""")


def table_bytes(conn) -> int:
    (size,), = conn.execute("SELECT sum(pg_table_size(c.oid)) FROM pg_class c WHERE c.relkind = 'r' "
                            "AND c.relnamespace = 'public'::regnamespace").fetchall()
    return int(size or 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=1.0, help="size of the source's tables to generate (GB, 10^9 bytes)")
    args = parser.parse_args()
    target = int(args.gb * 1e9)
    with dev_server(["auth", "app", "legacy"]) as (server, passwords), tempfile.TemporaryDirectory() as tmp:
        run_sql_file(server, "legacy", passwords["legacy"], SCHEMA)
        t0 = time.monotonic()
        with connect_as(server, "legacy", passwords["legacy"]) as conn:
            while table_bytes(conn) < target:
                generate(conn, BATCH)
            conn.execute("ANALYZE")
            size = table_bytes(conn)
        print(f"generated {size / 1e6:.0f} MB of tables in {time.monotonic() - t0:.0f} s", file=sys.stderr)
        outputs = outputs_for(server, {n: passwords[n] for n in ("auth", "app")}, Path(tmp) / "outputs.json")
        map_path = Path(tmp) / "map.yaml"
        map_path.write_text(MAP)
        source = f"postgresql://legacy@127.0.0.1:{server.port}/legacy?sslmode=require"
        result = subprocess.run(
            [sys.executable, "-m", "bulkhead", "split", "--from", source, "--stack", "dev", "--map", str(map_path),
             "--outputs", outputs, "--drop-cross-fks", "--work-dir", tmp],
            cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PGPASSWORD": passwords["legacy"]})
        if result.returncode != 0:
            print(result.stdout + result.stderr, file=sys.stderr)
            return 1
        match = TIMINGS.search(result.stderr)
        assert match, result.stderr
        dump, restore, verify, total, rows, mb, archive = (float(g) for g in match.groups())
        figures = {
            "source_tables_mb": round(mb, 1), "archive_mb": round(archive, 1), "rows": int(rows),
            "dump_s": dump, "restore_s": restore, "verify_s": verify, "total_s": total,
            "rows_per_s": round(rows / total), "mb_per_s": round(mb / total, 1),
        }
    print(result.stdout.strip())
    print(f"\nsplit of {mb:.0f} MB ({int(rows)} rows): {figures['rows_per_s']} rows/s, {figures['mb_per_s']} MB/s "
          f"over {total:.1f} s = dump {dump:.1f} s ({dump / total:.0%}) + restore {restore:.1f} s "
          f"({restore / total:.0%}) + verify {verify:.1f} s ({verify / total:.0%})")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
