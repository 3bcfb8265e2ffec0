-- Up Migration
-- Incidents: the projection gets what the API needs to find an incident's workflow
-- and to answer for it after Temporal's retention has dropped the history.

-- REST and Slack incidents run as workflow `INC-YYYY-MM-DD-NN`. Alertmanager incidents run as
-- workflow `alert-<sha256(groupKey)>` (one per notification group: signal-with-start makes
-- duplicates land on the same workflow) and claim their INC id here when they start. A group
-- that fires again after its incident was resolved starts a new run of the same workflow id,
-- so (workflow_id, run_id) names the run and the INC id stays unique.
ALTER TABLE incidents
  ADD COLUMN workflow_id  text,
  ADD COLUMN run_id       text,
  ADD COLUMN source       text,
  ADD COLUMN alert_group  text,
  ADD COLUMN state        jsonb,
  ADD COLUMN report       text;
UPDATE incidents SET workflow_id = id WHERE workflow_id IS NULL;
ALTER TABLE incidents ALTER COLUMN workflow_id SET NOT NULL;
CREATE UNIQUE INDEX incidents_run_idx ON incidents (workflow_id, run_id) WHERE run_id IS NOT NULL;
CREATE INDEX incidents_alert_group_idx ON incidents (alert_group) WHERE alert_group IS NOT NULL;

-- Slack request signatures seen in the last few minutes: a replayed request (same signature)
-- is refused by every API replica, not only the one that saw it first.
CREATE TABLE slack_request_signatures (
  signature   text PRIMARY KEY,
  seen_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX slack_request_signatures_seen_idx ON slack_request_signatures (seen_at);

-- Down Migration
DROP TABLE slack_request_signatures;
DROP INDEX incidents_alert_group_idx;
DROP INDEX incidents_run_idx;
ALTER TABLE incidents
  DROP COLUMN report,
  DROP COLUMN state,
  DROP COLUMN alert_group,
  DROP COLUMN source,
  DROP COLUMN run_id,
  DROP COLUMN workflow_id;
