# Warden API and worker image (one image, two commands). Runs the TypeScript sources with
# tsx, the same way `npm start` and the tests do, so there is one way to run the code.
FROM node:20.19-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY migrations ./migrations
# the recovery checklist verifies the alert rules the deployment runs
COPY deploy/prometheus ./deploy/prometheus
USER node
EXPOSE 8080 9090 8888
CMD ["node_modules/.bin/tsx", "src/api/main.ts"]
