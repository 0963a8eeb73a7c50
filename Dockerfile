# The pacer's image: build with the dev toolchain, run on the production dependencies only.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npx tsc -p . && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
# MALLOC_MMAP_THRESHOLD_: glibc's malloc with a fixed mmap threshold (src/allocator.ts).
ENV NODE_ENV=production \
    PACER_DATA_DIR=/data \
    MALLOC_MMAP_THRESHOLD_=131072
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Applied at startup (and by `node dist/src/store/migrate-cli.js`), found next to package.json.
COPY --from=build /app/migrations ./migrations
# Served at GET /v1/openapi.json on the admin port.
COPY --from=build /app/docs/openapi.yaml ./docs/openapi.yaml
# The dashboard's page and scripts, served at / on the admin port (Chart.js comes from node_modules).
COPY --from=build /app/dashboard ./dashboard
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 8080 9090
CMD ["node", "dist/src/main.js"]
