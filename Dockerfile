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
ENTRYPOINT ["node", "bin/distx.js"]
CMD ["scheduler", "--host", "0.0.0.0"]
