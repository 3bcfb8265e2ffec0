-- Up Migration
-- The delivery canary (src/canary, docs/canary.md): one row per run. A run is `waiting` from
-- just before its sign-in starts until its workflow records the outcome: `success` (the
-- message came back through the provider's inbound webhook and verified), `rejected` (it came
-- back and did not verify), `timeout` (it never came back) or `error` (the sign-in could not
-- start). Never a code or a link: only ids, verdicts and the end-to-end latency.
CREATE TABLE canary_runs (
  id           uuid PRIMARY KEY,
  channel      text NOT NULL CHECK (channel IN ('sms', 'email')),
  workflow_id  text NOT NULL,
  user_id      text NOT NULL,
  challenge_id uuid,
  status       text NOT NULL DEFAULT 'waiting'
               CHECK (status IN ('waiting', 'success', 'rejected', 'timeout', 'error')),
  latency_ms   integer CHECK (latency_ms >= 0),
  detail       text,
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz
);
CREATE INDEX canary_runs_waiting_idx ON canary_runs (channel, started_at) WHERE status = 'waiting';
CREATE INDEX canary_runs_started_idx ON canary_runs (started_at);

-- Down Migration
DROP TABLE canary_runs;
