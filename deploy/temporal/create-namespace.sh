#!/bin/sh
# One-shot once the Temporal server is healthy (compose service temporal-namespace): creates
# Warden's namespace when it does not exist yet. The server image creates only its own system
# namespace; Warden's processes start after this has succeeded (the worker then registers
# Warden's search attributes on it).
set -eu
: "${TEMPORAL_ADDRESS:?}"
NAMESPACE="${NAMESPACE:-default}"
# how long closed workflows stay readable: incident reports are rendered from their histories
RETENTION="${RETENTION:-720h}"

tries=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" | grep -q SERVING; do
  tries=$((tries + 1))
  [ "$tries" -lt 30 ] || { echo "temporal at $TEMPORAL_ADDRESS is not serving" >&2; exit 1; }
  sleep 2
done

if temporal operator namespace describe --namespace "$NAMESPACE" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; then
  echo "namespace $NAMESPACE exists"
else
  temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" --address "$TEMPORAL_ADDRESS"
  echo "namespace $NAMESPACE created (retention $RETENTION)"
fi
