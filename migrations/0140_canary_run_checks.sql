-- Up Migration
-- The recovery checklist's canary runs (docs/canary.md#the-recovery-checklist): `checks` asks
-- the inbound webhook to submit a wrong code (a tampered link token) before the right one and
-- to look for the secret it received in the histories, logs, audit rows and metrics. Its
-- verdicts go into `detail` and the run's workflow result; never the code or the link.
ALTER TABLE canary_runs ADD COLUMN checks boolean NOT NULL DEFAULT false;

-- Down Migration
ALTER TABLE canary_runs DROP COLUMN checks;
