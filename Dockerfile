# syntax=docker/dockerfile:1
# The decision service: `ROLE=api` (HTTP API), `ROLE=worker` (stream worker) or `ROLE=all` (both).
# docker-compose.yml runs one of each, with Redis Stack and Grafana.
# Node 24, the LTS line that .ci/run also runs the whole test suite on.

# --- build: compile TypeScript (and copy the Lua scripts) into dist/ ---
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# --- runtime: production dependencies and dist/ only ---
FROM node:24-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The image's unprivileged user (uid 1000).
USER node
EXPOSE 5000
# No curl in slim images: ask node itself. The shell expands ${PORT:-5000}.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:${PORT:-5000}/healthz', { signal: AbortSignal.timeout(2000) }).then((res) => process.exit(res.ok ? 0 : 1), () => process.exit(1))"
CMD ["node", "dist/main.js"]
