# One image for every Lifeline component; the command picks it (collector, indexer, agent, shipper, dashboards ...).
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY bin ./bin
COPY core ./core
COPY collector ./collector
COPY shipper ./shipper
COPY indexer ./indexer
COPY agent ./agent
COPY controller ./controller
COPY dashboards ./dashboards
COPY demo ./demo
# State (agent journal, shipper offsets, keys) lives in a volume the node user owns.
RUN mkdir -p /var/lib/lifeline && chown node:node /var/lib/lifeline
USER node
ENTRYPOINT ["node", "bin/lifeline.ts"]
CMD ["--help"]
