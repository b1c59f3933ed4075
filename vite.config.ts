import { defineConfig } from "vitest/config";

// The UI lives in ui/; the build goes to ui/dist, which Tauri embeds (src-tauri/tauri.conf.json).
export default defineConfig({
  root: "ui",
  clearScreen: false,
  server: { port: 5173, strictPort: true },
  build: { outDir: "dist", emptyOutDir: true, target: "es2021" },
  test: { root: ".", include: ["ui/src/**/*.test.ts"] },
});
