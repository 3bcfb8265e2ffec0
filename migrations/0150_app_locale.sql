-- Up Migration
-- The language of an app's messages (docs/messages.md): used when the user has no locale of
-- their own, or one without templates, before the deployment's default. A language tag, like
-- the users' locale (0090); NULL: the app has none.
ALTER TABLE apps ADD COLUMN locale text CHECK (locale ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$');

-- Down Migration
ALTER TABLE apps DROP COLUMN locale;
