-- Runs once, when temporal-postgres initialises its data folder (docker-entrypoint-initdb.d):
-- Temporal's visibility database beside `temporal`, which the image creates as POSTGRES_DB.
-- The schemas inside both are applied by setup-schema.sh.
CREATE DATABASE temporal_visibility;
