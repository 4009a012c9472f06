// Runs under `wine node.exe`, with the shipper's compiled modules staged under app/: its CheckpointStore saves and
// loads on a Windows file system, twice; its discovery lists files by a Windows glob (backslashes, drive letter,
// an exclude on the name, other case). Writes what happened to the file named by its first argument.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [resultsFile, dir] = process.argv.slice(2);
const { CheckpointStore } = await import(new URL("../../app/shipper/checkpoint-store.js", import.meta.url));
const { listMatching } = await import(new URL("../../app/shipper/discovery.js", import.meta.url));
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
const logs = join(dir, "Logs");
mkdirSync(logs, { recursive: true });
for (const name of ["app.log", "Other.LOG", "old.log.gz", "notes.txt"])
  writeFileSync(join(logs, name), "x\r\n");
try {
  const listed = await listMatching({ include: [`${logs}\\*.log`], exclude: ["*.gz"] });
  // Each path with its stat: on Windows a bigint stat, for the exact 64-bit file id.
  result.listed = [...listed.keys()].map((path) => path.slice(logs.length + 1)).sort();
  result.fileIds = [...listed.values()].map((info) => typeof info.ino);
  result.pattern = `${logs}\\*.log`;
} catch (error) {
  result.listed = `${error.code ?? ""} ${error.message}`;
}
writeFileSync(resultsFile, JSON.stringify(result));
