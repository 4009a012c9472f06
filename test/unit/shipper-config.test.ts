import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../core/errors.ts";
import { loadShipperConfig, shipperConfigSchema } from "../../shipper/config.ts";

const example = fileURLToPath(new URL("../../shipper/shipper.example.yaml", import.meta.url));

function configFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "lifeline-shipper-config-")), "shipper.yaml");
  writeFileSync(file, text);
  return file;
}

describe("shipper config", () => {
  it("the documented example is valid", () => {
    const config = loadShipperConfig(example, {});
    expect(config.inputs.map((input) => input.name)).toEqual(["api", "billing", "agent-journal"]);
    expect(config.inputs[2]?.kind).toBe("lifecycle");
    expect(config.inputs[1]).toMatchObject({
      encoding: "utf-16le",
      paths: ["C:\\ProgramData\\Billing\\logs\\billing*.log"],
    });
    expect(config.inputs[0]?.multiline?.preset).toBe("java");
  });

  it("the example names every key of the schema (commented out where it has no value to show)", () => {
    const text = readFileSync(example, "utf8");
    const missing = schemaKeys(shipperConfigSchema).filter(
      (key) => !new RegExp(`(^|[\\s{,#])${key.split(".").at(-1)}:`, "m").test(text),
    );
    expect(missing).toEqual([]);
  });

  it("LIFELINE_HOST_NAME overrides the host name", () => {
    expect(loadShipperConfig(example, { LIFELINE_HOST_NAME: "from-env" }).host.name).toBe("from-env");
  });

  it.each([
    [
      "an unknown key",
      "checkpointDir: /x\ninputs: [{ name: a, paths: [/a] }]\nreconcileInterval: 5\n",
      "reconcileInterval: unknown key",
    ],
    [
      "a bad regex",
      "checkpointDir: /x\ninputs: [{ name: a, paths: [/a], multiline: { start: '([' } }]\n",
      "must be a valid regular expression",
    ],
    [
      "an unknown preset",
      "checkpointDir: /x\ninputs: [{ name: a, paths: [/a], multiline: { preset: cobol } }]\n",
      "inputs.0.multiline.preset",
    ],
    ["no inputs", "checkpointDir: /x\ninputs: []\n", "inputs:"],
    ["a name with spaces", "checkpointDir: /x\ninputs: [{ name: 'my app', paths: [/a] }]\n", "inputs.0.name"],
  ])("rejects %s, naming it", (_, text, message) => {
    const file = configFile(text);
    expect(() => loadShipperConfig(file, {})).toThrowError(ConfigError);
    expect(() => loadShipperConfig(file, {})).toThrowError(message);
  });
});

/** Every key path of a zod object schema, through defaults, optionals and arrays of objects. */
function schemaKeys(schema: unknown, prefix = ""): string[] {
  let node = schema as {
    _zod: { def: { type: string; innerType?: unknown; element?: unknown; shape?: object } };
  };
  while (["default", "optional", "array", "pipe"].includes(node._zod.def.type)) {
    const def = node._zod.def as { innerType?: unknown; element?: unknown; in?: unknown };
    node = (def.innerType ?? def.element ?? def.in) as typeof node;
  }
  if (node._zod.def.type !== "object") return [];
  const shape = node._zod.def.shape as Record<string, unknown>;
  // Connection settings are the shared core schemas, documented once in the README.
  return Object.entries(shape).flatMap(([key, value]) =>
    key === "kafka" || key === "elasticsearch"
      ? [`${prefix}${key}`]
      : [`${prefix}${key}`, ...schemaKeys(value, `${prefix}${key}.`)],
  );
}
