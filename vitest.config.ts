import { defineConfig } from "vitest/config";

// npm scripts put node_modules/.bin first on PATH, so they run the project's Node 24 (the `node` devDependency).
// Calling node_modules/.bin/vitest directly runs whatever `node` the shell finds, often the machine's older one.
const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  throw new Error(
    `Lifeline's tests need Node 24, this is Node ${process.versions.node}: run them with \`npm test\``,
  );
}

export default defineConfig({
  test: {
    reporters: ["default", "./test/helpers/summary-reporter.ts"],
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          // Starts (or reuses) the real Kafka and Elasticsearch once, before any worker.
          globalSetup: ["test/helpers/global-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 240_000,
        },
      },
    ],
  },
});
