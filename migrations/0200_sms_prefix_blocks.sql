-- Up Migration
-- SMS pumping (docs/delivery.md#sms-pumping, src/delivery/prefixBlocks.ts): the number prefixes
-- Warden refuses to send SMS to. The send activity checks them before any provider is called, so
-- a failover to the backup provider, or a route switched to it, does not get around a block.
--
-- One row per prefix (digits of the E.164 number after `+`): a new block of a prefix whose last
-- block has ended replaces that row, with the next `generation`; the audit trail keeps every
-- block and every lift. A block is in force while `until` is in the future: lifting one sets
-- `until` to the moment of the lift. The evaluation counts only the messages a prefix was sent
-- after its last block ended, so the messages behind one block never cause the next.
CREATE TABLE sms_prefix_blocks (
  prefix                text PRIMARY KEY CHECK (prefix ~ '^[1-9][0-9]{0,14}$'),
  generation            integer NOT NULL DEFAULT 1 CHECK (generation >= 1),
  reason                text NOT NULL,
  created_by            text NOT NULL,
  created_at            timestamptz NOT NULL DEFAULT now(),
  until                 timestamptz NOT NULL,
  lifted_at             timestamptz,
  lifted_by             text,
  -- what the evaluation counted in the window that tripped
  window_seconds        integer,
  messages              integer,
  challenges            integer,
  settled               integer,
  verified              integer,
  -- the abuse incident: its workflow (an alert group's, `alert-<hash>`), its run, and its
  -- INC-YYYY-MM-DD-NN id once the incident has claimed one
  incident_workflow_id  text,
  incident_run_id       text,
  incident_id           text
);

-- Down Migration
DROP TABLE sms_prefix_blocks;
