import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadAgentConfig } from "../../agent/config.ts";

describe("agent config", () => {
  it("the documented example is valid", () => {
    const config = loadAgentConfig(
      fileURLToPath(new URL("../../agent/agent.example.yaml", import.meta.url)),
      {},
    );
    expect(config.services.map((s) => s.name)).toEqual(["api"]);
    expect(config.services[0]?.health?.failureThreshold).toBe(40);
    expect(config.host.groups).toEqual(["web", "eu-west"]);
  });
});
