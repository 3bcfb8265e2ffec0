-- Up Migration
-- Conversion per country for the metrics (src/telemetry/smsPumpingMetrics.ts): the SMS pumping
-- evaluation writes what it counted per country (E.164 calling code) over its longest window,
-- and every process reads these rows at scrape time, so they all report the same values and none
-- reports a stale one. The evaluation itself reads the delivery ledger through
-- delivery_attempts_time_idx (0130): no index of its own (docs/delivery.md#sms-pumping has the
-- measurements).
CREATE TABLE sms_country_conversion (
  country         text PRIMARY KEY,
  window_seconds  integer NOT NULL,
  messages        integer NOT NULL,
  challenges      integer NOT NULL,
  settled         integer NOT NULL,
  verified        integer NOT NULL,
  evaluated_at    timestamptz NOT NULL
);

-- The last evaluation (one row), whether or not any SMS went out in its window.
CREATE TABLE sms_pumping_evaluations (
  singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  evaluated_at  timestamptz NOT NULL,
  -- prefixes that had SMS in the longest window, and those it found to block
  prefixes      integer NOT NULL,
  candidates    integer NOT NULL
);

-- Down Migration
DROP TABLE sms_pumping_evaluations;
DROP TABLE sms_country_conversion;
