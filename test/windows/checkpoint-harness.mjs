// Runs under `wine node.exe`: the shipper's compiled CheckpointStore (staged under app/) saves and loads its
// checkpoint on a Windows file system, twice, and writes what happened to the file named by its first argument.
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const [resultsFile, dir] = process.argv.slice(2);
const { CheckpointStore } = await import(new URL("../../app/shipper/checkpoint-store.js", import.meta.url));
const store = new CheckpointStore(dir);
const result = { platform: process.platform, saves: [] };
for (const offset of [100, 200]) {
  try {
    await store.load();
    const now = new Date().toISOString();
    await store.save([
      {
        key: "k",
        input: "app",
        path: join(dir, "x.log"),
        dev: 1,
        ino: 2,
        fingerprint: "f",
        fingerprintBytes: 0,
        offset,
        size: offset,
        mtimeMs: Date.now(),
        updatedAt: now,
        fileId: "f",
      },
    ]);
    const loaded = await store.load();
    result.saves.push({ ok: true, offset: loaded.get("k")?.offset });
  } catch (error) {
    result.saves.push({ ok: false, error: `${error.code ?? ""} ${error.message}` });
  }
}
writeFileSync(resultsFile, JSON.stringify(result));
