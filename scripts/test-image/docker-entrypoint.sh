#!/usr/bin/env bash
# bulkhead's test-image entrypoint: written to the DOCUMENTED contract of the official
# postgres image (docker-library/postgres, README "Environment Variables" and
# "Initialization scripts"), for the images scripts/build-test-images makes. Not a copy.
#
#   - First argument starting with "-": it is a postgres flag, `postgres` is put first.
#   - First argument `postgres` (and not asking for help/version): as root, the data and
#     socket directories are created and given to `postgres`, then this script re-runs
#     itself as `postgres` (gosu), so the server never runs as root.
#   - An empty $PGDATA is initialised: initdb --username=$POSTGRES_USER (default postgres)
#     with $POSTGRES_PASSWORD as the password (required unless POSTGRES_HOST_AUTH_METHOD
#     is trust), $POSTGRES_INITDB_ARGS (and $POSTGRES_INITDB_WALDIR) passed on; pg_hba.conf
#     gets `host all all all $POSTGRES_HOST_AUTH_METHOD` (default scram-sha-256); then a
#     temporary server listening on the unix socket only runs the setup: $POSTGRES_DB
#     (default $POSTGRES_USER) created, /docker-entrypoint-initdb.d/* run in sorted order
#     (*.sh executed if executable else sourced, *.sql / *.sql.gz / *.sql.xz / *.sql.zst fed
#     to psql) and stopped. A non-empty $PGDATA is used as it is.
#   - Every VAR of POSTGRES_PASSWORD, POSTGRES_USER, POSTGRES_DB, POSTGRES_INITDB_ARGS may
#     come from a file named by VAR_FILE instead (not both).
#   - Finally `exec "$@"`: the server replaces this script (same PID, so `docker stop`'s
#     signal reaches it).
set -Eeo pipefail

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# VAR from $VAR or from the file $VAR_FILE, exported; default $2.
from_env_or_file() {
  local name=$1 default=${2:-} file_var="${1}_FILE" value
  if [ -n "${!name:-}" ] && [ -n "${!file_var:-}" ]; then
    die "both $name and $file_var are set; use one of them"
  fi
  value="$default"
  if [ -n "${!name:-}" ]; then value="${!name}"; elif [ -n "${!file_var:-}" ]; then value="$(<"${!file_var}")"; fi
  export "$name=$value"
  unset "$file_var"
}

wants_help() {
  local arg
  for arg; do
    case "$arg" in -'?' | --help | --describe-config | -V | --version | -C | -C*) return 0 ;; esac
  done
  return 1
}

run_sql() {  # psql as the superuser over the socket; extra psql arguments in "$@"
  psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$POSTGRES_USER" "$@"
}

run_init_files() {
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then say "running $f"; "$f"; else say "sourcing $f"; . "$f"; fi ;;
      *.sql) say "running $f"; run_sql --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) say "running $f"; gunzip -c "$f" | run_sql --dbname "$POSTGRES_DB" ;;
      *.sql.xz) say "running $f"; xzcat "$f" | run_sql --dbname "$POSTGRES_DB" ;;
      *.sql.zst) say "running $f"; zstd -dc "$f" | run_sql --dbname "$POSTGRES_DB" ;;
      *) say "ignoring $f" ;;
    esac
  done
}

initialise() {  # "$@": the server's arguments (postgres ...)
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
    die "the database is uninitialised and POSTGRES_PASSWORD is not set; set it (or POSTGRES_HOST_AUTH_METHOD=trust)"
  fi
  ls /docker-entrypoint-initdb.d/ >/dev/null  # readable, or fail before anything is half done
  local waldir=()
  [ -z "${POSTGRES_INITDB_WALDIR:-}" ] || waldir=(--waldir "$POSTGRES_INITDB_WALDIR")
  local pwfile
  pwfile="$(mktemp)"
  printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
  # POSTGRES_INITDB_ARGS is a list of words, as on a command line
  # shellcheck disable=SC2086
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" "${waldir[@]}" $POSTGRES_INITDB_ARGS
  rm -f "$pwfile"

  local method="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
  [ -n "${POSTGRES_PASSWORD:-}" ] || method=trust
  printf '\nhost all all all %s\n' "$method" >>"$PGDATA/pg_hba.conf"

  # The temporary server: the caller's settings, no TCP at all.
  export PGPASSWORD="${PGPASSWORD:-${POSTGRES_PASSWORD:-}}"
  local args=("${@:2}" -c listen_addresses= -p "${PGPORT:-5432}")
  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -w -o "$(printf '%q ' "${args[@]}")" start
  if [ "$POSTGRES_DB" != postgres ]; then
    local exists
    exists="$(run_sql --dbname postgres --tuples-only --no-align --set db="$POSTGRES_DB" \
      -c "SELECT 1 FROM pg_database WHERE datname = :'db'" </dev/null)"
    if [ -z "$exists" ]; then
      run_sql --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
  fi
  run_init_files
  pg_ctl -D "$PGDATA" -m fast -w stop
  unset PGPASSWORD
  say "PostgreSQL init process complete; ready for start up."
}

main() {
  if [ "${1:0:1}" = - ]; then set -- postgres "$@"; fi
  if [ "${1:-}" != postgres ] || wants_help "$@"; then exec "$@"; fi

  from_env_or_file POSTGRES_PASSWORD
  from_env_or_file POSTGRES_USER postgres
  from_env_or_file POSTGRES_DB "$POSTGRES_USER"
  from_env_or_file POSTGRES_INITDB_ARGS
  : "${PGDATA:=/var/lib/postgresql/data}"
  export PGDATA

  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chmod 0700 "$PGDATA"
    find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres: {} +
    chmod 3777 /var/run/postgresql
    if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
      mkdir -p "$POSTGRES_INITDB_WALDIR" && chown postgres: "$POSTGRES_INITDB_WALDIR" && chmod 0700 "$POSTGRES_INITDB_WALDIR"
    fi
    exec gosu postgres "${BASH_SOURCE[0]}" "$@"
  fi

  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA" 2>/dev/null || true
  if [ -s "$PGDATA/PG_VERSION" ]; then
    say "PostgreSQL Database directory appears to contain a database; Skipping initialization"
  else
    initialise "$@"
  fi
  exec "$@"
}

main "$@"
