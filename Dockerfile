# DistributeX scheduler/agent image: `docker build -t distributex .`
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /app /app
ENV NODE_ENV=production
# The heap start of the daemons: see DAEMON_NODE_FLAGS in cli/local-cluster.ts.
ENTRYPOINT ["node", "--initial-old-space-size=128", "bin/distx.js"]
CMD ["scheduler", "--host", "0.0.0.0"]
