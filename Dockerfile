# One image for every Lifeline component; the command picks it (collector, indexer, agent, shipper, dashboards ...).
# It runs what `npm pack` makes (the compiled build, production dependencies, Lifeline's patched kafkajs bundled),
# installed as any host installs it: `npm install -g lifeline-<version>.tgz`.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY . .
RUN npm ci --no-audit --no-fund && npm pack --pack-destination /tmp && mv /tmp/lifeline-*.tgz /tmp/lifeline.tgz

FROM node:24-bookworm-slim
ENV NODE_ENV=production
COPY --from=build /tmp/lifeline.tgz /tmp/lifeline.tgz
RUN npm install -g --no-audit --no-fund /tmp/lifeline.tgz && rm /tmp/lifeline.tgz && npm cache clean --force
# State (agent journal, shipper offsets, keys) lives in a volume the node user owns.
RUN mkdir -p /var/lib/lifeline && chown node:node /var/lib/lifeline
USER node
WORKDIR /var/lib/lifeline
ENTRYPOINT ["lifeline"]
CMD ["--help"]
