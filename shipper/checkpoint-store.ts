import { mkdir, open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { ConfigError } from "../core/errors.ts";

export const CHECKPOINT_VERSION = 1;

const fileCheckpointSchema = z.object({
  key: z.string(),
  input: z.string(),
  path: z.string(),
  dev: z.number(),
  ino: z.union([z.number(), z.string()]),
  fingerprint: z.string(),
  fingerprintBytes: z.number().int().nonnegative(),
  /** Every byte below this is acknowledged by Kafka. */
  offset: z.number().int().nonnegative(),
  size: z.number().int().nonnegative(),
  mtimeMs: z.number(),
  updatedAt: z.string(),
  /** Stable id of the file's content, the basis of its records' event ids (so a re-send is the same document). */
  fileId: z.string(),
});
export type FileCheckpoint = z.infer<typeof fileCheckpointSchema>;

const checkpointFileSchema = z.object({
  version: z.literal(CHECKPOINT_VERSION),
  savedAt: z.string(),
  files: z.array(fileCheckpointSchema),
});

/**
 * Offsets on disk: one JSON file, replaced atomically (write temp, fsync, rename, fsync the folder; on Windows no
 * folder fsync) so a crash at any moment leaves either the old or the new version, never a torn one.
 */
export class CheckpointStore {
  readonly file: string;
  private readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    this.file = join(dir, "shipper.checkpoint.json");
  }

  async load(): Promise<Map<string, FileCheckpoint>> {
    await mkdir(this.dir, { recursive: true });
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return new Map();
      throw error;
    }
    const parsed = checkpointFileSchema.safeParse(JSON.parse(text));
    if (!parsed.success) {
      throw new ConfigError(
        "shipper.checkpoint_unreadable",
        `${this.file} is not a version ${CHECKPOINT_VERSION} checkpoint`,
        {
          hint: "move it away to start over (files are then read from their beginning; the index deduplicates)",
        },
      );
    }
    return new Map(parsed.data.files.map((entry) => [entry.key, entry]));
  }

  async save(files: FileCheckpoint[]): Promise<void> {
    const temp = `${this.file}.tmp`;
    const body = JSON.stringify({ version: CHECKPOINT_VERSION, savedAt: new Date().toISOString(), files });
    const handle = await open(temp, "w");
    try {
      await handle.writeFile(body);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, this.file);
    // Windows cannot open a folder to flush it (EPERM, so every save would fail and be retried forever): there the
    // file is flushed before the rename, and NTFS journals the rename itself.
    if (process.platform === "win32") return;
    const dir = await open(this.dir, "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
