# Warden API and worker image (one image; compose picks the entry point per service):
#   node dist/src/api/main.js        public, admin and metrics servers (the default)
#   node dist/src/worker/main.js     the worker, with the workflow bundle built below
#   node dist/src/sandbox/main.js    the provider sandbox (compose `dev` profile only)
#   node dist/src/db/cli.js          migrations as a deploy step
# The code runs compiled (tsc), not through tsx: no TypeScript compiler in the runtime image.

# ---- build: every dependency, compile src/ into dist/, prebuild the workflow bundle ----------
FROM node:20.19-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# webpack runs here once, not in every worker at start
RUN npx tsc -p tsconfig.build.json \
  && node dist/src/worker/bundle.js dist/workflow-bundle.js

# ---- production dependencies only, from the same lockfile ------------------------------------
FROM node:20.19-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime --------------------------------------------------------------------------------
FROM node:20.19-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build --chown=root:root /app/dist ./dist
# src/db/migrate.ts finds the migrations two folders above itself: dist/src/db -> dist/migrations
COPY migrations ./dist/migrations
# the shipped message templates, found the same way (src/auth/messageCatalog.ts): dist/templates
COPY templates ./dist/templates
# the recovery checklist reads the alert rules file when Prometheus' rules API is not set
COPY deploy/prometheus ./deploy/prometheus
# the worker loads this instead of bundling at start (src/worker/main.ts); built with the
# tracing interceptors, so run the worker with OTEL_EXPORTER_OTLP_ENDPOINT set (compose does)
ENV WARDEN_WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js
# the code and dependencies belong to root; the process runs as node (uid 1000) and writes nothing
USER node
EXPOSE 8080 9090 8888
# liveness of the default command (the API): the admin server answers. Readiness (/readyz:
# Postgres and Temporal answer too) is what compose waits on; the worker and the sandbox have
# no admin server and get their own healthchecks in docker-compose.yml.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.WARDEN_ADMIN_PORT || 9090) + '/livez').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/api/main.js"]
