#!/usr/bin/env bash
# Streaming replica: on first start, clone the primary with pg_basebackup (-R writes
# primary_conninfo and standby.signal) through a physical replication slot, so the primary
# keeps the WAL the replica still needs; afterwards just start the standby. The arguments (the
# compose service's command) are the same settings the primary runs with: a hot standby needs at
# least its primary's max_connections to keep replaying WAL, and once promoted by the
# database-failover runbook it is the primary that every Warden process connects to.
set -euo pipefail
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  export PGPASSWORD="$(cat "$REPLICATION_PASSWORD_FILE")"
  until pg_isready -h "$PRIMARY_HOST" -U replicator -d postgres; do sleep 1; done
  slot_exists="$(psql -h "$PRIMARY_HOST" -U replicator -d postgres -tAc "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'replica_1'")"
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA"
  if [ "$slot_exists" = "1" ]; then
    pg_basebackup -h "$PRIMARY_HOST" -U replicator -D "$PGDATA" -X stream -R -S replica_1
  else
    pg_basebackup -h "$PRIMARY_HOST" -U replicator -D "$PGDATA" -X stream -R -C -S replica_1
  fi
fi
exec postgres -c hot_standby=on "$@"
