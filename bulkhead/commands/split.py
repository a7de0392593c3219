"""`split`: move a shared database's tables into the catalogue's own databases.

    python -m bulkhead split --from SOURCE_DSN --stack S --map MAP.yaml [--dry-run] [--drop-cross-fks]

MAP.yaml says which catalogue database takes which tables:

    databases:
      auth: [users, sessions, "public.refresh_*"]   # `name` = public.name; `schema.name`; `schema.*`
      app:  [projects, orders, "reporting.*"]
    ignore: [schema_migrations]                     # tables that go nowhere

An explicit name wins over a `schema.*` wildcard; two claims of the same kind on one
table are an error. Views go with the tables they read, owned sequences and the
indexes, constraints and triggers with their table, functions with the tables their
body names (or to every target when they name none), types, domains and extensions
to every target.

Steps, each refusing before anything is written when it finds a problem (exit 2,
every problem listed): the map's shape and names (no connection); the source,
inspected inside one REPEATABLE READ READ ONLY transaction whose snapshot is
exported (`pg_export_snapshot`); the targets (must exist in the outputs and be empty).
Then `pg_dump --snapshot` of the source (the same snapshot, so every table is from one
instant), `pg_restore` of each target's part of that archive as the target's owner
role in one transaction, and the verification: per table, the row count and the
CHECKSUM below, computed in the exported snapshot on the source and on the target,
plus the ownership of every object in the target. Any mismatch: exit 1, the table
says which, and nothing is reported as done.

CHECKSUM of a table: with the session settings of `TEXT_FORM_SETTINGS` (so both sides
print values the same way), for each row r take md5 of r's text form (`r::text`, the
row literal of its columns in order); read the first 16 hex digits as a signed 64-bit
integer; add them up over the table as numeric and take the sum modulo 2^64, printed
as 16 hex digits. Rows are a multiset, so the sum needs no order (no sort of the table,
constant memory); any changed, missing or extra row changes it except with
probability about 2^-64.

The source is only read: the inspecting transaction is READ ONLY, pg_dump only
reads, and nothing else connects to it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from bulkhead import PROJECT_DIR
from bulkhead.errors import UserError
from bulkhead.outputs_source import add_arguments, load_outputs
from bulkhead.pgtools import Dsn, Target, client_program, load_target, outputs_file, split_dsn, summarise, user_objects

IGNORE = "(ignore)"
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
TEXT_FORM_SETTINGS = (
    "SET DateStyle = 'ISO, MDY'", "SET IntervalStyle = 'postgres'", "SET TimeZone = 'UTC'",
    "SET extra_float_digits = 1", "SET bytea_output = 'hex'", "SET lc_monetary = 'C'",
)
MOD64 = 1 << 64


def add_parser(sub) -> None:
    p = sub.add_parser("split", help="copy a shared database's tables into the catalogue's databases",
                       description="Copy the tables of one shared database into the catalogue's databases as MAP.yaml "
                                   "says, from one consistent snapshot, as each target's owner role; verify row counts "
                                   "and checksums per table. The source is never modified. Exit: 0 copied and "
                                   "verified, 1 a verification mismatch, 2 bad input or a problem found before "
                                   "copying (all listed).")
    add_arguments(p, stack_required=True)
    p.add_argument("--from", dest="source", required=True, metavar="SOURCE_DSN",
                   help="the shared database (libpq URL or key=value; keep the password in PGPASSWORD or ~/.pgpass)")
    p.add_argument("--map", required=True, metavar="MAP.yaml", help="catalogue database -> tables it takes")
    p.add_argument("--dry-run", action="store_true",
                   help="print what would go where and the problems; connects to nothing but the source")
    p.add_argument("--drop-cross-fks", action="store_true",
                   help="proceed without the foreign keys between tables of different databases (listed)")
    p.add_argument("--work-dir", help="where the snapshot's archive is written (default: the system temp dir); "
                                      "needs about the size of the copied tables")
    p.set_defaults(func=run)


# --- the map -----------------------------------------------------------------

@dataclass(frozen=True)
class Selector:
    schema: str
    table: str  # a name, or "*"
    path: str  # key path in the map, for messages

    @property
    def wildcard(self) -> bool:
        return self.table == "*"

    def text(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass
class SplitMap:
    databases: dict[str, list[Selector]] = field(default_factory=dict)
    ignore: list[Selector] = field(default_factory=list)


class _UniqueKeyLoader:
    """yaml.SafeLoader that refuses a key given twice (PyYAML keeps the last silently)."""

    @staticmethod
    def make():
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        def construct_mapping(loader, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = loader.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} is given twice", key_node.start_mark)
                seen.add(key)
            return yaml.SafeLoader.construct_mapping(loader, node, deep)

        Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
        return Loader


def parse_selector(value: Any, path: str, problems: list[str]) -> Optional[Selector]:
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{path}: expected a table name (`users`, `public.users` or `reporting.*`), "
                        f"not a {type(value).__name__}")
        return None
    parts = value.strip().split(".")
    if len(parts) == 1:
        parts = ["public", parts[0]]
    if len(parts) != 2 or not NAME_RE.match(parts[0]) or not (parts[1] == "*" or NAME_RE.match(parts[1])):
        problems.append(f"{path}: {value!r} is not `table`, `schema.table` or `schema.*` "
                        f"(names: letters, digits, `_`, up to 63 characters)")
        return None
    return Selector(parts[0], parts[1], path)


def _selectors(raw: Any, path: str, problems: list[str]) -> list[Selector]:
    if not isinstance(raw, list) or not raw:
        problems.append(f"{path}: expected a non-empty list of tables (`- users`), "
                        f"not {'an empty list' if raw == [] else 'a ' + type(raw).__name__}")
        return []
    out, seen = [], {}
    for i, item in enumerate(raw):
        sel = parse_selector(item, f"{path}[{i}]", problems)
        if sel is None:
            continue
        if sel.text() in seen:
            problems.append(f"{path}[{i}]: {sel.text()} is listed twice (also {seen[sel.text()]}); remove one")
            continue
        seen[sel.text()] = sel.path
        out.append(sel)
    return out


def load_map(path: str, catalogue_names: Iterable[str]) -> SplitMap:
    """The map, checked without connecting anywhere; every problem in one UserError."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.load(fh, Loader=_UniqueKeyLoader.make())  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError:
        raise UserError(f"--map {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--map {path} cannot be read: {getattr(exc, 'strerror', None) or type(exc).__name__}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise UserError(f"--map {path} is not valid YAML{at}: {problem}") from None
    problems: list[str] = []
    result = SplitMap()
    catalogue = sorted(catalogue_names)
    if not isinstance(raw, dict):
        raise UserError(f"{path}: the top level must be a map with `databases:` (and `ignore:`), "
                        f"not {'a ' + type(raw).__name__ if raw is not None else 'an empty file'}")
    for key in raw:
        if key not in ("databases", "ignore"):
            problems.append(f"{path}: unknown key {key!r}; the map has `databases:` and `ignore:` only")
    dbs = raw.get("databases")
    if not isinstance(dbs, dict) or not dbs:
        problems.append(f"{path}: databases: expected a map of catalogue database -> list of tables "
                        f"(catalogue: {', '.join(catalogue)})")
        dbs = {}
    for name, tables in dbs.items():
        if name not in catalogue:
            problems.append(f"{path}: databases.{name}: not a database of the catalogue "
                            f"(Pulumi.<stack>.yaml: {', '.join(catalogue)})")
        result.databases[str(name)] = _selectors(tables, f"{path}: databases.{name}", problems)
    if "ignore" in raw:
        result.ignore = _selectors(raw["ignore"], f"{path}: ignore", problems)
    if problems:
        raise UserError(f"{len(problems)} problem(s) in the map; nothing was copied:\n" +
                        "\n".join(f"  - {p}" for p in problems))
    return result


# --- the source ----------------------------------------------------------------

@dataclass
class Relation:
    oid: int
    schema: str
    name: str
    kind: str  # pg_class.relkind

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class Plan:
    """Where every object of the source goes (target name -> oids), and the problems found."""

    relations: dict[int, Relation]
    table_db: dict[int, str]  # table/standalone sequence oid -> target or IGNORE
    rel_db: dict[int, str]  # every relation (tables, views, sequences, indexes) that is copied -> target
    object_db: dict[tuple[str, int], set[str]]  # (catalog, oid) of constraints, triggers, ... -> targets
    function_db: dict[int, set[str]]  # pg_proc oid -> targets
    cross_fks: list[tuple[int, str]]  # (constraint oid, description)
    problems: list[str]
    notes: list[str]
    rows: dict[int, int]  # estimated rows per table (pg_class.reltuples, -1: never analysed), for the dry run
    sizes: dict[int, int]  # pg_table_size per table

    def tables_of(self, target: str) -> list[Relation]:
        return sorted((self.relations[oid] for oid, db in self.table_db.items()
                       if db == target and self.relations[oid].kind in ("r", "p")), key=lambda r: r.qualified)


SOURCE_SQL = {
    "relations": """
        SELECT c.oid, n.nspname, c.relname, c.relkind, c.reltuples::bigint,
               CASE WHEN c.relkind IN ('r', 'm') THEN pg_catalog.pg_table_size(c.oid) ELSE 0 END
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f', 'i', 'I')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
           AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass
                                                               AND d.objid = c.oid AND d.deptype = 'e')""",
    # index -> its table
    "indexes": "SELECT indexrelid, indrelid FROM pg_catalog.pg_index",
    # sequence -> the table owning it (serial, identity)
    "owned_sequences": """
        SELECT d.objid, d.refobjid FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON s.oid = d.objid
         WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
           AND s.relkind = 'S' AND d.deptype IN ('a', 'i')""",
    # table -> sequence its column defaults call
    "default_sequences": """
        SELECT ad.adrelid, d.refobjid FROM pg_catalog.pg_attrdef ad
          JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
          JOIN pg_catalog.pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
         WHERE d.refclassid = 'pg_catalog.pg_class'::regclass""",
    # view -> relation or function it reads
    "view_reads": """
        SELECT r.ev_class, d.refclassid::regclass::text, d.refobjid FROM pg_catalog.pg_rewrite r
          JOIN pg_catalog.pg_class v ON v.oid = r.ev_class AND v.relkind IN ('v', 'm')
          JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
         WHERE d.refclassid IN ('pg_catalog.pg_class'::regclass, 'pg_catalog.pg_proc'::regclass)
           AND d.refobjid <> r.ev_class""",
    "constraints": """
        SELECT oid, conname, contype, conrelid, confrelid FROM pg_catalog.pg_constraint WHERE conrelid <> 0""",
    "attached": """
        SELECT 'pg_attrdef', oid, adrelid FROM pg_catalog.pg_attrdef
        UNION ALL SELECT 'pg_trigger', oid, tgrelid FROM pg_catalog.pg_trigger WHERE NOT tgisinternal
        UNION ALL SELECT 'pg_policy', oid, polrelid FROM pg_catalog.pg_policy
        UNION ALL SELECT 'pg_rewrite', r.oid, r.ev_class FROM pg_catalog.pg_rewrite r
                   JOIN pg_catalog.pg_class c ON c.oid = r.ev_class WHERE c.relkind NOT IN ('v', 'm')
        UNION ALL SELECT 'pg_statistic_ext', oid, stxrelid FROM pg_catalog.pg_statistic_ext""",
    "functions": """
        SELECT p.oid, n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid),
               l.lanname, p.prosrc
          FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
          JOIN pg_catalog.pg_language l ON l.oid = p.prolang
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::regclass
                                                               AND d.objid = p.oid AND d.deptype = 'e')""",
    "trigger_functions": "SELECT tgfoid, tgrelid FROM pg_catalog.pg_trigger WHERE NOT tgisinternal",
    "large_objects": "SELECT count(*) FROM pg_catalog.pg_largeobject_metadata",
}


def _claims(split_map: SplitMap, relations: dict[int, Relation], attached: set[int],
            problems: list[str]) -> dict[int, str]:
    """Table or standalone sequence oid -> target or IGNORE; explicit names beat `schema.*`.
    Sequences owned or used by a table follow it and are not claimed."""
    claimable = {oid: r for oid, r in relations.items()
                 if r.kind in ("r", "p", "f") or (r.kind == "S" and oid not in attached)}
    by_name = {(r.schema, r.name): r for r in relations.values()}
    explicit: dict[int, dict[str, str]] = defaultdict(dict)  # oid -> {target: path}
    wild: dict[int, dict[str, str]] = defaultdict(dict)
    entries = [(db, sel) for db, sels in split_map.databases.items() for sel in sels]
    entries += [(IGNORE, sel) for sel in split_map.ignore]
    for db, sel in entries:
        if sel.wildcard:
            hits = [oid for oid, r in claimable.items() if r.schema == sel.schema]
            if not hits:
                problems.append(f"{sel.path}: {sel.text()} matches no table: the source has no tables in schema "
                                f"{sel.schema}")
            for oid in hits:
                wild[oid][db] = sel.path
            continue
        rel = by_name.get((sel.schema, sel.table))
        if rel is None:
            problems.append(f"{sel.path}: the source has no table {sel.text()}; fix the name or remove it")
        elif rel.oid not in claimable:
            what = {"v": "a view", "m": "a materialized view", "i": "an index", "I": "an index",
                    "S": "a sequence of a table"}.get(rel.kind, "not a table")
            problems.append(f"{sel.path}: {sel.text()} is {what}; it goes with the table(s) it belongs to, so "
                            f"remove it from the map")
        else:
            explicit[rel.oid][db] = sel.path
    table_db: dict[int, str] = {}
    for oid, rel in sorted(claimable.items(), key=lambda kv: kv[1].qualified):
        claims = explicit.get(oid) or wild.get(oid) or {}
        if len(claims) > 1:
            listed = " and ".join(f"{'ignore' if db == IGNORE else db} ({path})" for db, path in sorted(claims.items()))
            problems.append(f"table {rel.qualified} is claimed by {listed}; a table goes to one database")
        elif claims:
            table_db[oid] = next(iter(claims))
        else:
            what = "sequence" if rel.kind == "S" else "table"
            problems.append(f"{what} {rel.qualified} is claimed by no database; add it to one under `databases:` "
                            f"or list it under `ignore:`")
    return table_db


def _where(db_of: dict[int, str], oid: int) -> str:
    db = db_of.get(oid)
    return "ignore" if db == IGNORE else (db or "no database")


def inspect_source(conn, split_map: SplitMap, drop_cross_fks: bool) -> Plan:
    """Where everything goes, inside the caller's snapshot; problems collected, not raised."""
    q = {key: conn.execute(sql).fetchall() for key, sql in SOURCE_SQL.items()}
    relations = {int(o): Relation(int(o), s, n, k) for o, s, n, k, _, _ in q["relations"]}
    rows = {int(o): int(t) for o, _, _, _, t, _ in q["relations"]}
    sizes = {int(o): int(b) for o, _, _, _, _, b in q["relations"]}
    problems: list[str] = []
    notes: list[str] = []
    table_db, rel_db = _place_tables_and_sequences(q, split_map, relations, problems)
    view_functions = _place_views(q, relations, table_db, rel_db, problems, notes)
    function_db = _place_functions(q, split_map, relations, table_db, rel_db, view_functions, problems)
    cross_fks = _cross_foreign_keys(q, relations, table_db, drop_cross_fks, problems)
    object_db = _place_attached(q, rel_db, {oid for oid, _ in cross_fks})
    (large_objects,), = q["large_objects"]
    if large_objects:
        problems.append(f"the source has {large_objects} large objects (pg_largeobject); they belong to no table, "
                        f"so split cannot place them: move them into bytea columns first")
    return Plan(relations, table_db, rel_db, object_db, function_db, cross_fks, problems, notes, rows, sizes)


def _place_tables_and_sequences(q: dict, split_map: SplitMap, relations: dict[int, Relation],
                                problems: list[str]) -> tuple[dict[int, str], dict[int, str]]:
    """Tables by the map; sequences follow the tables that own or use them (one used by two databases
    cannot be split); indexes follow their tables. Returns (table -> database, relation -> database)."""
    seq_users: dict[int, set[int]] = defaultdict(set)
    for seq, table in q["owned_sequences"]:
        seq_users[int(seq)].add(int(table))
    for table, seq in q["default_sequences"]:
        seq_users[int(seq)].add(int(table))
    table_db = _claims(split_map, relations, set(seq_users), problems)
    rel_db: dict[int, str] = {oid: db for oid, db in table_db.items() if db != IGNORE}
    for seq, tables in sorted(seq_users.items()):
        if seq not in relations:
            continue
        dbs = {table_db[t] for t in tables if table_db.get(t, IGNORE) != IGNORE}
        if len(dbs) > 1:
            users = ", ".join(f"{relations[t].qualified} ({_where(table_db, t)})" for t in sorted(tables) if t in relations)
            problems.append(f"sequence {relations[seq].qualified} is shared by tables of different databases: {users}; "
                            f"give each table its own sequence (CREATE SEQUENCE ... START WITH the current value) "
                            f"before the split")
        elif dbs:
            rel_db[seq] = next(iter(dbs))
    for idx, table in q["indexes"]:
        if int(table) in rel_db and int(idx) in relations:
            rel_db[int(idx)] = rel_db[int(table)]
    return table_db, rel_db


def _place_views(q: dict, relations: dict[int, Relation], table_db: dict[int, str], rel_db: dict[int, str],
                 problems: list[str], notes: list[str]) -> dict[int, set[int]]:
    """Views go to the database of everything they read, through other views (into rel_db).
    Returns view -> the functions it calls."""
    reads: dict[int, set[int]] = defaultdict(set)
    view_functions: dict[int, set[int]] = defaultdict(set)
    for view, catalog, ref in q["view_reads"]:
        (reads if catalog == "pg_class" else view_functions)[int(view)].add(int(ref))

    def view_dbs(view: int, seen: frozenset = frozenset()) -> set[str]:
        out: set[str] = set()
        for ref in reads[view]:
            if ref in reads and ref not in seen:
                out |= view_dbs(ref, seen | {view})
            elif ref in table_db or ref in rel_db:
                out.add(table_db.get(ref) or rel_db[ref])
        return out

    for view in sorted(reads, key=lambda v: relations[v].qualified if v in relations else ""):
        if view not in relations:
            continue
        dbs = view_dbs(view)
        targets = dbs - {IGNORE}
        name = relations[view].qualified
        if len(targets) > 1 or (targets and IGNORE in dbs):
            read = sorted(relations[r].qualified + f" ({_where(table_db, r)})" for r in reads[view] if r in relations)
            problems.append(f"view {name} reads tables of different databases: {', '.join(read)}; drop or rewrite it "
                            f"before the split (after it, each service reads only its own tables)")
        elif targets:
            rel_db[view] = next(iter(targets))
        else:
            notes.append(f"view {name} reads only ignored tables; it is not copied")
    return view_functions


def _place_functions(q: dict, split_map: SplitMap, relations: dict[int, Relation], table_db: dict[int, str],
                     rel_db: dict[int, str], view_functions: dict[int, set[int]],
                     problems: list[str]) -> dict[int, set[str]]:
    """Functions: the databases whose tables their body names, and where their triggers and views are."""
    table_names = {oid: r for oid, r in relations.items() if oid in table_db}
    function_db: dict[int, set[str]] = {}
    users_of: dict[int, set[str]] = defaultdict(set)
    for fn, table in q["trigger_functions"]:
        if int(table) in rel_db:
            users_of[int(fn)].add(rel_db[int(table)])
    for view, fns in view_functions.items():
        for fn in fns:
            if view in rel_db:
                users_of[fn].add(rel_db[view])
    targets_all = set(split_map.databases)
    for oid, schema, name, args, language, body in q["functions"]:
        label = f"function {schema}.{name}({args})"
        named = _tables_named(body or "", table_names) if language in ("sql", "plpgsql") else set()
        dbs = {table_db[t] for t in named}
        read_targets = dbs - {IGNORE}
        if len(read_targets) > 1:
            read = ", ".join(sorted(f"{relations[t].qualified} ({_where(table_db, t)})" for t in named))
            problems.append(f"{label} reads tables of different databases: {read}; split or drop it before the split")
            continue
        used = users_of.get(int(oid), set())
        if read_targets and used - read_targets:
            problems.append(f"{label} reads tables of {', '.join(sorted(read_targets))} but is used by triggers or "
                            f"views of {', '.join(sorted(used - read_targets))}; that call would cross databases")
            continue
        function_db[int(oid)] = read_targets or used or set(targets_all)
    return function_db


def _cross_foreign_keys(q: dict, relations: dict[int, Relation], table_db: dict[int, str], drop_cross_fks: bool,
                        problems: list[str]) -> list[tuple[int, str]]:
    """Foreign keys between tables of different databases: a problem unless --drop-cross-fks."""
    cross_fks: list[tuple[int, str]] = []
    for oid, conname, contype, conrelid, confrelid in q["constraints"]:
        if contype != "f" or int(conrelid) not in table_db:
            continue
        here, there = table_db.get(int(conrelid)), table_db.get(int(confrelid))
        if here == IGNORE or here == there:
            continue
        desc = (f"{relations[int(conrelid)].qualified} -> {relations[int(confrelid)].qualified} "
                f"({conname}; {_where(table_db, int(conrelid))} -> {_where(table_db, int(confrelid))})")
        cross_fks.append((int(oid), desc))
        if not drop_cross_fks:
            problems.append(f"foreign key {desc} crosses databases; the split is where cross-service joins end: "
                            f"pass --drop-cross-fks to copy without it, or map both tables to one database")
    return cross_fks


def _place_attached(q: dict, rel_db: dict[int, str], dropped: set[int]) -> dict[tuple[str, int], set[str]]:
    """Constraints (but the dropped foreign keys) and other objects attached to a relation go with it."""
    object_db: dict[tuple[str, int], set[str]] = {}
    for oid, _, _, conrelid, _ in q["constraints"]:
        if int(conrelid) in rel_db and int(oid) not in dropped:
            object_db[("pg_constraint", int(oid))] = {rel_db[int(conrelid)]}
    for catalog, oid, rel in q["attached"]:
        if int(rel) in rel_db:
            object_db[(catalog, int(oid))] = {rel_db[int(rel)]}
    return object_db


def _tables_named(body: str, tables: dict[int, Relation]) -> set[int]:
    """Tables a function body names as a whole word (optionally schema-qualified, optionally quoted)."""
    text = body.lower()
    found = set()
    for oid, rel in tables.items():
        name = re.escape(rel.name.lower())
        if re.search(rf'(?<![\w$"]){name}(?![\w$])|"{name}"', text):
            found.add(oid)
    return found


# --- the archive's table of contents ------------------------------------------

TOC_KINDS = sorted("""ACCESS METHOD|ACL|AGGREGATE|BLOB|BLOBS|BLOB METADATA|CAST|CHECK CONSTRAINT|COLLATION|COMMENT|
CONSTRAINT|CONVERSION|DATABASE|DATABASE PROPERTIES|DEFAULT|DEFAULT ACL|DOMAIN|ENCODING|EVENT TRIGGER|EXTENSION|
FK CONSTRAINT|FOREIGN DATA WRAPPER|FOREIGN SERVER|FOREIGN TABLE|FUNCTION|INDEX|INDEX ATTACH|LARGE OBJECT|
MATERIALIZED VIEW|MATERIALIZED VIEW DATA|OPERATOR|OPERATOR CLASS|OPERATOR FAMILY|POLICY|PROCEDURAL LANGUAGE|PROCEDURE|
PUBLICATION|PUBLICATION TABLE|PUBLICATION TABLES IN SCHEMA|ROW SECURITY|RULE|SCHEMA|SEARCHPATH|SECURITY LABEL|SEQUENCE|
SEQUENCE OWNED BY|SEQUENCE SET|SERVER|SHELL TYPE|STATISTICS|STATISTICS DATA|STDSTRINGS|SUBSCRIPTION|TABLE|TABLE ATTACH|
TABLE DATA|TEXT SEARCH CONFIGURATION|TEXT SEARCH DICTIONARY|TEXT SEARCH PARSER|TEXT SEARCH TEMPLATE|TRANSFORM|
TRIGGER|TYPE|USER MAPPING|VIEW""".replace("\n", "").split("|"), key=len, reverse=True)
TOC_LINE = re.compile(r"^(\d+); (\d+) (\d+) (" + "|".join(re.escape(k) for k in TOC_KINDS) + r") (.*)$")
# Not the targets' business: access and replication set-up of the source, cluster-wide objects.
NEVER_COPIED = {"ACL", "DEFAULT ACL", "DATABASE", "DATABASE PROPERTIES", "PUBLICATION", "PUBLICATION TABLE",
                "PUBLICATION TABLES IN SCHEMA", "SUBSCRIPTION", "EVENT TRIGGER", "SECURITY LABEL", "USER MAPPING",
                "BLOB", "BLOBS", "BLOB METADATA", "LARGE OBJECT"}
CATALOG_OF = {"2604": "pg_attrdef", "2606": "pg_constraint", "2620": "pg_trigger", "3256": "pg_policy",
              "2618": "pg_rewrite", "3381": "pg_statistic_ext"}
PG_CLASS, PG_PROC = "1259", "1255"


@dataclass(frozen=True)
class TocEntry:
    line: str
    catalog: str
    oid: int
    kind: str
    schema: str
    name: str


def parse_toc(listing: str) -> list[TocEntry]:
    entries = []
    for line in listing.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        match = TOC_LINE.match(line)
        if not match:
            raise UserError(f"pg_restore --list printed an entry split does not know ({line.split(';')[0]}; "
                            f"{' '.join(line.split()[3:5])}); nothing was copied: report it with your pg_dump version")
        _, catalog, oid, kind, rest = match.groups()
        words = rest.split(" ")
        schema, name = words[0], " ".join(words[1:-1])
        entries.append(TocEntry(line, catalog, int(oid), kind, schema, name))
    return entries


def toc_for(target: str, entries: list[TocEntry], plan: Plan) -> list[str]:
    """The lines of the archive's list that restore `target`'s part (pg_restore --use-list)."""
    by_name = {(r.schema, r.name): oid for oid, r in plan.relations.items()}
    function_names: dict[tuple[str, str], set[str]] = {}
    kept: list[TocEntry] = []
    for e in entries:
        if e.kind in ("FUNCTION", "PROCEDURE", "AGGREGATE") and e.catalog == PG_PROC:
            function_names[(e.schema, e.name)] = plan.function_db.get(e.oid, set())

    def rel_here(schema: str, name: str) -> bool:
        oid = by_name.get((schema, name))
        return oid is not None and plan.rel_db.get(oid) == target

    for e in entries:
        if e.kind in NEVER_COPIED or e.kind == "SCHEMA":
            continue
        if e.catalog == PG_CLASS or e.kind in ("TABLE DATA", "MATERIALIZED VIEW DATA", "ROW SECURITY"):
            keep = plan.rel_db.get(e.oid) == target
        elif e.kind in ("SEQUENCE SET", "SEQUENCE OWNED BY", "TABLE ATTACH", "INDEX ATTACH"):
            # no object id in the list (`0 0`): named by the sequence, partition or partition index
            keep = rel_here(e.schema, e.name)
        elif e.catalog in CATALOG_OF:
            keep = target in plan.object_db.get((CATALOG_OF[e.catalog], e.oid), set())
        elif e.catalog == PG_PROC:
            keep = target in plan.function_db.get(e.oid, set())
        elif e.kind == "COMMENT":
            keep = _comment_here(e, target, rel_here, function_names)
        else:  # types, domains, extensions, collations, session settings: every target
            keep = True
        if keep:
            kept.append(e)
    # A schema when something of this target lives in it (`public` always exists).
    used = {e.schema for e in kept if e.schema != "-"}
    schemas = [e for e in entries if e.kind == "SCHEMA" and e.name in used]
    return [e.line for e in sorted(schemas + kept, key=entries.index)]


def _comment_here(e: TocEntry, target: str, rel_here, function_names) -> bool:
    kind, _, obj = e.name.partition(" ")
    if kind in ("TABLE", "VIEW", "SEQUENCE", "INDEX") or e.name.startswith(("MATERIALIZED VIEW ", "FOREIGN TABLE ")):
        return rel_here(e.schema, e.name.split(" ")[-1])
    if kind == "COLUMN":
        return rel_here(e.schema, obj.split(".")[0])
    if kind in ("CONSTRAINT", "TRIGGER", "RULE", "POLICY"):
        return rel_here(e.schema, obj.split(" ON ")[-1])
    if kind in ("FUNCTION", "PROCEDURE", "AGGREGATE"):
        return target in function_names.get((e.schema, obj), {target})
    return True


# --- copy and verify -----------------------------------------------------------

def _checksum_sql(rel: Relation) -> str:
    from psycopg import sql

    only = "" if rel.kind == "p" else "ONLY "
    # md5's first 64 bits as a signed bigint, summed as numeric (no overflow), mod 2^64 on our side.
    return sql.SQL("SELECT count(*), coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint::numeric), 0) "
                   "FROM " + only + "{}.{} AS t").format(sql.Identifier(rel.schema), sql.Identifier(rel.name)).as_string()


def table_checksum(conn, rel: Relation) -> tuple[int, str]:
    count, total = conn.execute(_checksum_sql(rel)).fetchone()
    return int(count), f"{int(total) % MOD64:016x}"


def set_text_form(conn) -> None:
    for statement in TEXT_FORM_SETTINGS:
        conn.execute(statement)


@dataclass
class Check:
    table: str
    database: str
    rows: int
    checksum: str
    ok: bool
    detail: str = ""


@dataclass
class Timings:
    dump: float = 0.0
    restore: float = 0.0
    verify: float = 0.0


def dump_source(source: Dsn, snapshot: str, plan: Plan, path: str) -> None:
    pg_dump = client_program("pg_dump")
    argv = [pg_dump, "--format=custom", "--compress=0", "--no-sync", f"--snapshot={snapshot}",
            "--no-publications", "--no-subscriptions", "--no-security-labels", "--no-tablespaces",
            f"--file={path}", f"--dbname={source.conninfo}"]
    for oid, db in sorted(plan.table_db.items()):
        if db == IGNORE:
            rel = plan.relations[oid]
            argv.append("--exclude-table-data=" + ".".join('"' + p.replace('"', '""') + '"' for p in (rel.schema, rel.name)))
    proc = subprocess.run(argv, env=source.env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"pg_dump of the source failed; nothing was copied: {' '.join(proc.stderr.split())[-600:]}")


def restore_target(target: Target, archive: str, listing: list[str], work_dir: str) -> None:
    pg_restore = client_program("pg_restore")
    list_file = os.path.join(work_dir, f"{target.name}.list")
    with open(list_file, "w", encoding="utf-8") as fh:
        fh.write("\n".join(listing) + "\n")
    argv = [pg_restore, f"--use-list={list_file}", "--no-owner", "--no-privileges", f"--role={target.owner_role}",
            "--exit-on-error", "--single-transaction", f"--dbname={target.dsn.conninfo}", archive]
    proc = subprocess.run(argv, env=target.dsn.env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"pg_restore into {target.name} failed and was rolled back (that database is unchanged; "
                        f"the other targets may hold their copy: reset them before retrying): "
                        f"{' '.join(proc.stderr.split())[-600:]}", exit_code=1)


def _target_side(target: Target, tables: list[Relation]) -> tuple[dict[str, tuple[int, str] | str], list]:
    """Checksums of `tables` in one target (or why one cannot be read), and its objects of other roles."""
    sums: dict[str, tuple[int, str] | str] = {}
    with target.dsn.connect(autocommit=True) as conn:
        set_text_form(conn)
        for rel in tables:
            try:
                sums[rel.qualified] = table_checksum(conn, rel)
            except Exception as exc:  # noqa: BLE001 - a missing table is a mismatch, not a crash
                sums[rel.qualified] = f"cannot read it in the target: {' '.join(str(exc).split())}"
        foreign = [o for o in user_objects(conn) if o[2] != target.owner_role]
    return sums, foreign


def restore_all(targets: dict[str, Target], archive: str, entries: list[TocEntry], plan: Plan, work_dir: str) -> None:
    """Every target restored from the one archive, all at once (each pg_restore is its own process)."""
    from concurrent.futures import ThreadPoolExecutor

    for name in sorted(targets):
        print(f"split: restoring {len(plan.tables_of(name))} tables into {name}", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
        futures = {name: pool.submit(restore_target, target, archive, toc_for(name, entries, plan), work_dir)
                   for name, target in targets.items()}
        failures = []
        for _name, future in sorted(futures.items()):
            try:
                future.result()
            except UserError as exc:
                failures.append(str(exc))
    if failures:
        raise UserError("\n".join(failures), exit_code=1)


def verify_all(source_conn, targets: dict[str, Target], plan: Plan) -> list[Check]:
    """Row count and checksum per table on both sides, and every target object owned by its owner role.
    The targets are read in threads while the source (one connection: the snapshot) is read here."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
        futures = {name: pool.submit(_target_side, target, plan.tables_of(name)) for name, target in targets.items()}
        source_sums = {rel.qualified: table_checksum(source_conn, rel)
                       for name in sorted(targets) for rel in plan.tables_of(name)}
        target_sides = {name: future.result() for name, future in futures.items()}
    checks: list[Check] = []
    for name in sorted(targets):
        sums, foreign = target_sides[name]
        for rel in plan.tables_of(name):
            src_rows, src_sum = source_sums[rel.qualified]
            got = sums[rel.qualified]
            if isinstance(got, str):
                checks.append(Check(rel.qualified, name, src_rows, src_sum, False, got))
                continue
            dst_rows, dst_sum = got
            detail = []
            if dst_rows != src_rows:
                detail.append(f"rows {dst_rows} != source {src_rows}")
            if dst_sum != src_sum:
                detail.append(f"checksum {dst_sum} != source {src_sum}")
            checks.append(Check(rel.qualified, name, dst_rows, dst_sum, not detail, "; ".join(detail)))
        if foreign:
            checks.append(Check("(ownership)", name, len(foreign), "-", False,
                                f"not owned by {targets[name].owner_role}: {summarise(foreign)}"))
    return checks


def render_checks(checks: list[Check]) -> str:
    header = ("table", "database", "rows", "checksum", "ok")
    rows = [(c.table, c.database, str(c.rows), c.checksum, "ok" if c.ok else "MISMATCH: " + c.detail) for c in checks]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    fmt = lambda r: "  ".join(v.ljust(widths[i]) if i < 4 else v for i, v in enumerate(r)).rstrip()  # noqa: E731
    return "\n".join(fmt(r) for r in [header, *rows])


def render_plan(plan: Plan, split_map: SplitMap) -> str:
    def size(oid: int) -> str:
        rows = plan.rows.get(oid, -1)
        estimate = "rows unknown (not analysed)" if rows < 0 else f"~{rows} rows"
        return f"{estimate}, {plan.sizes.get(oid, 0) / 1e6:.1f} MB"

    lines = ["table  ->  database  (estimate from the statistics)"]
    for oid, db in sorted(plan.table_db.items(), key=lambda kv: (kv[1], plan.relations[kv[0]].qualified)):
        rel = plan.relations[oid]
        if rel.kind in ("r", "p", "f"):
            lines.append(f"  {rel.qualified}  ->  {'ignored' if db == IGNORE else db}  ({size(oid)})")
    views = sorted((plan.relations[o].qualified, db) for o, db in plan.rel_db.items() if plan.relations[o].kind in "vm")
    lines += [f"  view {v}  ->  {db}" for v, db in views]
    lines += [f"  note: {n}" for n in plan.notes]
    for name in sorted(split_map.databases):
        tables = plan.tables_of(name)
        lines.append(f"{name}: {len(tables)} tables, {sum(plan.sizes.get(r.oid, 0) for r in tables) / 1e6:.1f} MB")
    return "\n".join(lines)


def _catalogue_names(stack: str) -> list[str]:
    from bulkhead.offline.stack_config import load_catalogue_for

    return sorted(load_catalogue_for(PROJECT_DIR, stack).databases)


def run(args) -> int:
    split_map = load_map(args.map, _catalogue_names(args.stack))
    source = split_dsn(args.source, "--from")
    started = time.monotonic()
    with source.connect(autocommit=False) as src:
        src.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        (snapshot,), = src.execute("SELECT pg_catalog.pg_export_snapshot()").fetchall()
        plan = inspect_source(src, split_map, args.drop_cross_fks)
        if args.dry_run:
            print(render_plan(plan, split_map))
            if plan.cross_fks:
                print("foreign keys between databases (dropped with --drop-cross-fks):\n" +
                      "\n".join(f"  {d}" for _, d in plan.cross_fks))
        if plan.problems:
            raise UserError(f"{len(plan.problems)} problem(s) in the map against the source "
                            f"({source.describe()}); nothing was copied:\n" +
                            "\n".join(f"  - {p}" for p in plan.problems))
        if args.dry_run:
            return 0
        targets = _load_targets(args, split_map)
        if plan.cross_fks:
            print("dropping foreign keys between databases:\n" + "\n".join(f"  {d}" for _, d in plan.cross_fks),
                  file=sys.stderr)
        timings = Timings()
        work_dir = tempfile.mkdtemp(prefix="bulkhead-split-", dir=args.work_dir)
        try:
            archive = os.path.join(work_dir, "source.dump")
            t0 = time.monotonic()
            dump_source(source, snapshot, plan, archive)
            timings.dump = time.monotonic() - t0
            listed = subprocess.run([client_program("pg_restore"), "--list", archive], capture_output=True, text=True,
                                    check=False)
            entries = parse_toc(listed.stdout)
            t0 = time.monotonic()
            restore_all(targets, archive, entries, plan, work_dir)
            timings.restore = time.monotonic() - t0
            archive_bytes = os.path.getsize(archive)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        t0 = time.monotonic()
        set_text_form(src)
        checks = verify_all(src, targets, plan)
        timings.verify = time.monotonic() - t0
    print(render_checks(checks))
    copied = [c for c in checks if c.table != "(ownership)"]
    # a partitioned table's rows are its partitions' rows: count them once
    parents = {r.qualified for r in plan.relations.values() if r.kind == "p"}
    rows = sum(c.rows for c in copied if c.table not in parents)
    size_mb = sum(plan.sizes.get(oid, 0) for name in targets for oid in (r.oid for r in plan.tables_of(name))) / 1e6
    total = time.monotonic() - started
    print(f"split timings: dump {timings.dump:.2f} s, restore {timings.restore:.2f} s, verify {timings.verify:.2f} s, "
          f"total {total:.2f} s; {rows} rows, {size_mb:.1f} MB of tables, archive {archive_bytes / 1e6:.1f} MB",
          file=sys.stderr)
    bad = [c for c in checks if not c.ok]
    if bad:
        print(f"split FAILED: {len(bad)} of {len(checks)} checks do not match (above); the targets hold a copy "
              f"that differs from the source: reset them and run split again. The source is unchanged.",
              file=sys.stderr)
        return 1
    print(f"split done: {len(copied)} tables, {rows} rows into {', '.join(sorted(targets))}; "
          f"every count and checksum matches the source's snapshot")
    return 0


def _load_targets(args, split_map: SplitMap) -> dict[str, Target]:
    problems: list[str] = []
    targets: dict[str, Target] = {}
    with outputs_file(args.outputs) as outputs:
        loaded = load_outputs(outputs, args.stack, cwd=PROJECT_DIR)
        for name in sorted(split_map.databases):
            if name not in loaded["databases"]:
                problems.append(f"database {name} is in the catalogue but not in the stack's outputs: deploy it "
                                f"first (`pulumi up --stack {args.stack}`)")
                continue
            target = load_target(name, outputs, args.stack, loaded=loaded)
            with target.dsn.connect(autocommit=True) as conn:
                existing = user_objects(conn)
            if existing:
                problems.append(f"database {name} is not empty ({len(existing)} objects: {summarise(existing, 3)}); "
                                f"split copies into empty databases only: `python -m bulkhead reset --database "
                                f"{name} --stack {args.stack}` (dev) or use a fresh database")
            targets[name] = target
    if problems:
        raise UserError(f"{len(problems)} problem(s) with the targets; nothing was copied:\n" +
                        "\n".join(f"  - {p}" for p in problems))
    return targets
