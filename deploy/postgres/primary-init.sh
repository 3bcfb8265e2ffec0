#!/usr/bin/env bash
# Runs once, when the primary's data folder is initialised (docker-entrypoint-initdb.d): a
# replication role for the streaming replica, and pg_stat_statements for the slow-query check
# of the database-failover runbook.
set -euo pipefail
password="$(cat "$REPLICATION_PASSWORD_FILE")"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" --set=pw="$password" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'pw';
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
