// Frame benchmark of the built desktop app (release): how many frames per second the page
// draws per tile, and what the app and its WebKit processes cost, with 1, 2 and 4 remote
// participants sending 480p video at 20 fps.
//
// Under Xvfb (run it as `bash e2e/run.sh bench`), the app hosts a meeting on its embedded relay
// in its 1280x720 window with its own camera and microphone off, so only the receive path is
// measured. parlor-bot processes join and are admitted; after a warm-up the benchmark samples
// `window.__parlorFps()` once a second for MEASURE_S seconds and reads the CPU time of the app
// and of every process below it (WebKitWebProcess, WebKitNetworkProcess) from /proc. Bots are
// measured too, since they share the machine's cores.
//
// Prints a Markdown table; `--write` also puts it under "Desktop app frames" in BENCHMARKS.md.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import {
  WebDriver,
  cargoBin,
  freePort,
  newMeeting,
  repo,
  selectHeadlessDevices,
  sleep,
  startBot,
  startProcess,
  stopProcess,
  tauriDriverPath,
  waitFor,
  waitForPort,
} from "./lib.mjs";

const profile = process.env.PARLOR_PROFILE || "release";
const appBin = process.env.PARLOR_APP_BIN || cargoBin("parlor-app", profile);
const botBin = process.env.PARLOR_BOT_BIN || cargoBin("parlor-bot", profile);
const MEASURE_S = Number(process.env.MEASURE_S || 10);
const WARMUP_S = Number(process.env.WARMUP_S || 5);
const COUNTS = (process.env.BENCH_COUNTS || "1,2,4").split(",").map(Number);
const write = process.argv.includes("--write");
const TICKS = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

/** (utime + stime) in clock ticks, and the parent pid, of every process. */
function processTable() {
  const table = new Map();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      // The command name may contain spaces and parentheses: split after the last ')'.
      const close = stat.lastIndexOf(")");
      const name = stat.slice(stat.indexOf("(") + 1, close);
      const f = stat.slice(close + 2).split(" ");
      table.set(Number(entry), { name, ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // exited meanwhile
    }
  }
  return table;
}

/** `root` and every process below it. */
function tree(table, root) {
  const out = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, p] of table) {
      if (!out.has(pid) && out.has(p.ppid)) {
        out.add(pid);
        grew = true;
      }
    }
  }
  return out;
}

function findApp(table) {
  const real = fs.realpathSync(appBin);
  for (const pid of table.keys()) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/exe`) === real) return pid;
    } catch {
      // not ours to read, or gone
    }
  }
  return null;
}

function ticksOf(table, pids) {
  let sum = 0;
  for (const pid of pids) sum += table.get(pid)?.ticks ?? 0;
  return sum;
}

async function main() {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "parlor-bench-"));
  const env = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, ".config"),
    PARLOR_EMBEDDED_RELAY_HOST: "127.0.0.1",
    PARLOR_EMBEDDED_RELAY_PORT: "0",
    PARLOR_LOG: "warn",
  };
  const port = await freePort();
  const nativePort = await freePort();
  const driver = startProcess(tauriDriverPath(), ["--port", String(port), "--native-port", String(nativePort), "--native-driver", "/usr/bin/WebKitWebDriver"], { env });
  const wd = new WebDriver(`http://127.0.0.1:${port}`);
  const bots = [];
  const rows = [];
  try {
    // tauri-driver listens at once; WebKitWebDriver behind it may take a moment.
    await waitForPort(port);
    await waitForPort(nativePort);
    await wd.start(appBin);
    await wd.waitVisible('[data-testid="screen-home"]');
    await selectHeadlessDevices(wd);
    await wd.type('[data-testid="input-name"]', "Bench Host");
    // Own camera and microphone off: only the receive path is measured.
    await wd.click('[data-testid="preview-camera"]');
    await wd.click('[data-testid="preview-mic"]');
    const { code, relayAddr } = await newMeeting(wd);
    const size = await wd.exec(() => [window.innerWidth, window.innerHeight, window.devicePixelRatio]);
    console.log(`meeting ${code} at ${relayAddr}, window ${size[0]}x${size[1]} (dpr ${size[2]})`);

    for (const n of COUNTS) {
      while (bots.length < n) {
        const i = bots.length + 1;
        bots.push(startBot(botBin, `Bot ${i}`, code, relayAddr, { duration: "600s", logLevel: "warn" }));
        await wd.click('[data-testid^="knock-admit-"]', 30_000);
        await waitFor(`${i} remote tiles`, () =>
          wd.exec(() => document.querySelectorAll('[data-testid^="tile-"]:not(.self)').length),
        );
      }
      await waitFor(`${n} tiles drawing`, async () => {
        const fps = await wd.exec(() => window.__parlorFps());
        return Object.entries(fps).filter(([id, v]) => id !== "0" && v > 0).length >= n;
      }, 30_000);
      await sleep(WARMUP_S * 1000);

      let table = processTable();
      const app = findApp(table);
      if (!app) throw new Error("cannot find the app's process");
      const botPids = bots.map((b) => b.child.pid);
      const t0 = process.hrtime.bigint();
      const appTicks0 = ticksOf(table, tree(table, app));
      const botTicks0 = botPids.reduce((s, pid) => s + ticksOf(table, tree(table, pid)), 0);
      const samples = [];
      for (let s = 0; s < MEASURE_S; s++) {
        await sleep(1000);
        samples.push(await wd.exec(() => window.__parlorFps()));
      }
      table = processTable();
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
      const appPids = tree(table, app);
      const appCpu = ((ticksOf(table, appPids) - appTicks0) / TICKS / elapsed) * 100;
      const botCpu = ((botPids.reduce((s, pid) => s + ticksOf(table, tree(table, pid)), 0) - botTicks0) / TICKS / elapsed) * 100;
      const ids = Object.keys(samples[0]).filter((id) => id !== "0");
      const perTile = ids.map((id) => samples.reduce((s, x) => s + (x[id] ?? 0), 0) / samples.length);
      const tiles = await wd.exec(() =>
        [...document.querySelectorAll('[data-testid^="video-"]')]
          .filter((c) => c.closest(".tile:not(.self)"))
          .map((c) => `${c.width}x${c.height}`),
      );
      const names = [...appPids].map((p) => table.get(p)?.name).filter(Boolean);
      const row = {
        n,
        meanFps: perTile.reduce((a, b) => a + b, 0) / perTile.length,
        minFps: Math.min(...perTile),
        appCpu,
        botCpu,
        tiles: [...new Set(tiles)].join(", "),
        processes: [...new Set(names)].join(", "),
      };
      rows.push(row);
      console.log(
        `${n} stream(s): drawn ${row.meanFps.toFixed(1)} fps mean, ${row.minFps.toFixed(1)} min per tile; app + WebKit CPU ${appCpu.toFixed(0)}% (${row.processes}); bots ${botCpu.toFixed(0)}%; frames sent at ${row.tiles}`,
      );
    }
  } finally {
    await wd.quit().catch(() => {});
    for (const b of bots) await stopProcess(b);
    await stopProcess(driver);
    fs.rmSync(home, { recursive: true, force: true });
  }

  const cpuModel = (fs.readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/) || [])[1] || "unknown CPU";
  const table = [
    "| remote streams (480p, 20 fps each) | drawn fps per tile, mean | slowest tile | app + WebKit CPU (% of one core) | bots' CPU | frame size sent |",
    "|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.n} | ${r.meanFps.toFixed(1)} | ${r.minFps.toFixed(1)} | ${r.appCpu.toFixed(0)}% | ${r.botCpu.toFixed(0)}% | ${r.tiles} |`),
  ].join("\n");
  console.log(`\n${table}`);
  if (write) writeBenchmarks(table, cpuModel);
}

function writeBenchmarks(table, cpuModel) {
  const file = path.join(repo, "BENCHMARKS.md");
  const date = new Date().toISOString().slice(0, 10);
  const section = [
    "## Desktop app frames",
    "",
    "Frames from client-core to the page of the release app: decoded RGBA is cropped to each tile's",
    "aspect, scaled to its size in device pixels and converted to I420 in Rust, sent over a binary",
    "`tauri::ipc::Channel` only after the page drew the previous frame of that tile, and drawn by a",
    "WebGL shader. The app hosts the meeting on its embedded relay in its 1280x720 window under Xvfb",
    "(software rendering), its own camera and microphone off; `parlor-bot`s send the 480p test",
    "pattern at 20 fps. Drawn fps come from the page (`window.__parlorFps()`), sampled once a second",
    `for 10 s after a 5 s warm-up; CPU is the app process and every process below it (WebKit's web and`,
    "network processes), from /proc over the same 10 s. It includes the embedded relay, which runs",
    "inside the app and forwards each bot's stream to the other bots. The bots run on the same two cores.",
    "Without a GPU render node the app turns off WebKitGTK's DMA-BUF renderer, which composites only",
    "~12 times a second there (measured: 10-12 fps drawn, ~80 ms per composited frame).",
    "",
    `Measured ${date} on ${os.cpus().length} cores (${cpuModel}):`,
    "",
    table,
    "",
    "Run: `bash e2e/run.sh bench` (`bash e2e/run.sh bench --write` also rewrites this section).",
    "",
  ].join("\n");
  let text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "# Benchmarks\n\n";
  const start = text.indexOf("## Desktop app frames");
  if (start >= 0) {
    const next = text.indexOf("\n## ", start + 1);
    text = text.slice(0, start) + section + (next >= 0 ? text.slice(next + 1) : "");
  } else {
    text = `${text.trimEnd()}\n\n${section}`;
  }
  fs.writeFileSync(file, text);
  console.log(`wrote the "Desktop app frames" section of ${file}`);
}

await main();
