import { resolve } from "node:path";
import { defineConfig } from "vitest/config";

// The UI lives in ui/; the build goes to ui/dist, which Tauri embeds (src-tauri/tauri.conf.json).
// `--mode mock` builds the test-only page ui/mock.html (the UI over a browser mock of the Tauri
// shell, for the Playwright tests) into ui/dist-mock instead, so the mock never ships in ui/dist.
export default defineConfig(({ mode }) => ({
  root: "ui",
  clearScreen: false,
  server: { port: 5173, strictPort: true },
  build:
    mode === "mock"
      ? { outDir: "dist-mock", emptyOutDir: true, target: "es2021", rollupOptions: { input: resolve(__dirname, "ui/mock.html") } }
      : { outDir: "dist", emptyOutDir: true, target: "es2021" },
  test: { root: ".", include: ["ui/src/**/*.test.ts"] },
}));
