#!/bin/sh
# One-shot before the Temporal server starts (compose service temporal-schema, admin-tools image):
# brings both of Temporal's databases on temporal-postgres to the schema this server version
# needs. setup-schema -v 0.0 only creates the version tables (a no-op once they exist) and
# update-schema applies the versions not applied yet, so running it on every `up` is safe, and
# after an image upgrade it is the step that migrates the schema. The databases themselves are
# created by the Postgres image: `temporal` as POSTGRES_DB, `temporal_visibility` by
# init-databases.sql.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${POSTGRES_PWD_FILE:?}"
DB_PORT="${DB_PORT:-5432}"
DBNAME="${DBNAME:-temporal}"
VISIBILITY_DBNAME="${VISIBILITY_DBNAME:-temporal_visibility}"
SCHEMA_DIR="${SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}"
# temporal-sql-tool reads the password from SQL_PASSWORD, so it never shows in `ps`
SQL_PASSWORD="$(cat "$POSTGRES_PWD_FILE")"
export SQL_PASSWORD

sql() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}

# main (executions, tasks, namespaces)
sql --db "$DBNAME" setup-schema -v 0.0
sql --db "$DBNAME" update-schema -d "$SCHEMA_DIR/temporal/versioned"
# visibility (list filters and Warden's search attributes)
sql --db "$VISIBILITY_DBNAME" setup-schema -v 0.0
sql --db "$VISIBILITY_DBNAME" update-schema -d "$SCHEMA_DIR/visibility/versioned"
echo "temporal schemas up to date: $DBNAME, $VISIBILITY_DBNAME"
