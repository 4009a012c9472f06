import { z } from "zod";
import { parseBoolean, timerMs } from "../config.ts";

// Apart from the client: components that only read connection settings (the agent) never load
// @elastic/elasticsearch and its resident memory (bench/tuning.md).

export const elasticSettingsSchema = z
  .strictObject({
    url: z.url({ protocol: /^https?$/ }),
    /** Basic auth, or an API key (base64 "id:key" as Kibana shows it); not both. */
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    apiKey: z.string().min(1).optional(),
    tls: z
      .strictObject({
        caFile: z.string().optional(),
        rejectUnauthorized: z.boolean().default(true),
      })
      .optional(),
    requestTimeoutMs: timerMs().positive().default(30_000),
  })
  .refine((s) => !(s.apiKey && s.username), { message: "set either username/password or apiKey, not both" })
  .refine((s) => Boolean(s.username) === Boolean(s.password), {
    message: "username and password go together",
  });
export type ElasticSettings = z.output<typeof elasticSettingsSchema>;

/** The environment variables every component honours for Elasticsearch (config path under `elasticsearch.`). */
export const elasticEnvOverrides = {
  LIFELINE_ES_URL: { path: "elasticsearch.url" },
  LIFELINE_ES_USERNAME: { path: "elasticsearch.username" },
  LIFELINE_ES_PASSWORD: { path: "elasticsearch.password" },
  LIFELINE_ES_API_KEY: { path: "elasticsearch.apiKey" },
  LIFELINE_ES_CA: { path: "elasticsearch.tls.caFile" },
  LIFELINE_ES_TLS_VERIFY: { path: "elasticsearch.tls.rejectUnauthorized", parse: parseBoolean },
};
