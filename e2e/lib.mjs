// Shared by the end-to-end tests and the frame benchmark of the built desktop app: a minimal W3C
// WebDriver client over fetch (tauri-driver on 127.0.0.1 in front of Debian's WebKitWebDriver),
// process helpers that never leave anything running, a network path that can be black-holed,
// PNG decoding for pixel checks, and the paths of the binaries under test.

import { spawn } from "node:child_process";
import dgram from "node:dgram";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const targetDir = process.env.CARGO_TARGET_DIR || path.join(repo, "target");

/** Path of a binary built by cargo in `profile` ("debug" or "release"). */
export function cargoBin(name, profile) {
  return path.join(targetDir, profile, name);
}

export function tauriDriverPath() {
  if (process.env.TAURI_DRIVER) return process.env.TAURI_DRIVER;
  return path.join(os.homedir(), ".cargo", "bin", "tauri-driver");
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const testStarted = Date.now();
/** Prints a line stamped with the seconds since the test started. */
export function log(msg) {
  console.log(`[${((Date.now() - testStarted) / 1000).toFixed(1).padStart(5)} s] ${msg}`);
}

/** Fails the test with `msg` unless `cond` holds. */
export function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

/** Saves a screenshot under e2e/screenshots/ (and docs/screenshots/ with UPDATE_DOCS_SCREENSHOTS=1). */
export function saveShot(name, png) {
  const shots = ensureDir(path.join(repo, "e2e", "screenshots"));
  fs.writeFileSync(path.join(shots, name), png);
  if (process.env.UPDATE_DOCS_SCREENSHOTS === "1") {
    fs.writeFileSync(path.join(ensureDir(path.join(repo, "docs", "screenshots")), name), png);
  }
  log(`screenshot ${name} (${png.length} bytes)`);
}

/**
 * Starts tauri-driver (in front of Debian's WebKitWebDriver) on free ports with the app's
 * environment `env`. Returns it, a WebDriver client for it, and `ready()`, which waits until
 * both drivers listen (tauri-driver at once; WebKitWebDriver behind it may take a moment).
 */
export async function startDriver(env) {
  const port = await freePort();
  const nativePort = await freePort();
  const driver = startProcess(tauriDriverPath(), ["--port", String(port), "--native-port", String(nativePort), "--native-driver", "/usr/bin/WebKitWebDriver"], { env, name: "tauri-driver" });
  const ready = async () => {
    await waitForPort(port);
    await waitForPort(nativePort);
  };
  return { driver, wd: new WebDriver(`http://127.0.0.1:${port}`), ready };
}

/**
 * Fails unless what an app test runs is built: the app, parlor-bot, tauri-driver, the UI, and
 * `more` (`[what, file]` pairs).
 */
export function requireBuilt(appBin, botBin, more = []) {
  for (const [what, file] of [
    ["the app (cargo build -p parlor-app)", appBin],
    ["parlor-bot (cargo build -p client-core)", botBin],
    ["tauri-driver (cargo install tauri-driver --locked)", tauriDriverPath()],
    ["the built UI (npm run build)", path.join(repo, "ui", "dist", "index.html")],
    ...more,
  ]) {
    check(fs.existsSync(file), `missing ${what}: ${file}`);
  }
}

/**
 * Says why test `name` failed at `step`: the error, a screenshot taken with `screenshot` (if
 * the app is still there), the last lines of the app's log and of each child's output; and sets
 * the exit code.
 */
export async function reportFailure(name, step, error, { screenshot, env, procs }) {
  console.error(`\n${name} e2e FAILED at step "${step}": ${error.stack || error}`);
  try {
    const png = await screenshot();
    if (png) saveShot(`failure-${name}-${step.replace(/\W+/g, "-")}.png`, png);
  } catch {
    // the app may be gone
  }
  try {
    const appLog = fs.readFileSync(env.PARLOR_LOG_FILE, "utf8").trimEnd().split("\n");
    console.error(`--- last lines of the app's log:\n${appLog.slice(-60).join("\n")}`);
  } catch {
    // no log written
  }
  for (const p of procs.filter(Boolean)) console.error(`--- last output of ${p.name}:\n${p.lines.slice(-40).join("\n")}`);
  process.exitCode = 1;
}

/**
 * The environment the app runs in for a test: a private home (fresh settings, downloads in a
 * known folder), its embedded relay on loopback at any free port, its log in `home`/app.log.
 */
export function appEnv(home) {
  return {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, ".config"),
    XDG_DATA_HOME: path.join(home, ".local", "share"),
    XDG_CACHE_HOME: path.join(home, ".cache"),
    PARLOR_EMBEDDED_RELAY_HOST: "127.0.0.1",
    PARLOR_EMBEDDED_RELAY_PORT: "0",
    PARLOR_LOG: process.env.PARLOR_LOG || "info,parlor_app_lib=debug",
    PARLOR_LOG_FILE: path.join(home, "app.log"),
  };
}

/** Polls `fn` until it returns a truthy value; throws `what` after `timeoutMs`. */
export async function waitFor(what, fn, timeoutMs = 20_000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let lastError = null;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastError = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError.message})` : ""}`);
}

/** Picks the headless devices on the home screen: the test pattern, the tone, the null sink. */
export async function selectHeadlessDevices(wd) {
  for (const [kind, id] of [["camera", "synthetic"], ["microphone", "tone"], ["speaker", "null"]]) {
    await waitFor(`device list ${kind}`, () =>
      wd.exec((k, v) => {
        const sel = document.querySelector(`[data-testid="select-${k}"]`);
        if (!sel || ![...sel.options].some((o) => o.value === v)) return false;
        sel.value = v;
        sel.dispatchEvent(new Event("change", { bubbles: true }));
        return true;
      }, kind, id),
    );
  }
}

/**
 * Starts the app in the WebDriver session `wd`, waits for its home screen, picks the headless
 * devices and types `name` as the display name.
 */
export async function launchApp(wd, appBin, name) {
  await wd.start(appBin);
  await wd.setTimeouts(15_000);
  await wd.waitVisible('[data-testid="screen-home"]');
  await selectHeadlessDevices(wd);
  await wd.type('[data-testid="input-name"]', name);
}

/** Clicks New meeting and waits for it: the meeting code and the relay address the app shows. */
export async function newMeeting(wd) {
  await wd.click('[data-testid="btn-new-meeting"]');
  await wd.waitVisible('[data-testid="screen-meeting"]', 30_000);
  const code = (await wd.text('[data-testid="meeting-code"]')).replace(/\D/g, "");
  const relayAddr = (await wd.text('[data-testid="relay-addr"]')).trim().split(/\s+/).pop();
  return { code, relayAddr };
}

/**
 * A parlor-bot named `name` that knocks on meeting `code` at `relayAddr` with synthetic video
 * and `audio`, for `duration`, with `extra` flags.
 */
export function startBot(botBin, name, code, relayAddr, { audio = "tone", duration = "120s", extra = [], logLevel = "info" } = {}) {
  return startProcess(
    botBin,
    ["join", code, "--relay", relayAddr, "--name", name, "--video", "synthetic", "--audio", audio, "--duration", duration, ...extra],
    { env: { ...process.env, RUST_LOG: logLevel }, name },
  );
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Children started by this process; all are killed (with their process groups) on exit. */
const children = new Set();

/**
 * Starts a child in its own process group, collecting its output. `onLine` sees every line of
 * stdout and stderr.
 */
export function startProcess(cmd, args, { env = process.env, onLine = null, name = path.basename(cmd) } = {}) {
  const child = spawn(cmd, args, { env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const proc = { child, name, lines: [], exited: null };
  children.add(proc);
  const feed = (stream, tag) => {
    let rest = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk) => {
      rest += chunk;
      let i;
      while ((i = rest.indexOf("\n")) >= 0) {
        const line = rest.slice(0, i);
        rest = rest.slice(i + 1);
        if (proc.lines.length < 20_000) proc.lines.push(`${tag}${line}`);
        if (onLine) onLine(line, tag);
      }
    });
  };
  feed(child.stdout, "");
  feed(child.stderr, "! ");
  child.on("exit", (code, signal) => {
    proc.exited = { code, signal };
    children.delete(proc);
  });
  return proc;
}

/** Kills a child and everything in its process group (the app is WebKitWebDriver's child). */
export async function stopProcess(proc, signal = "SIGTERM") {
  if (!proc || proc.exited) return;
  try {
    process.kill(-proc.child.pid, signal);
  } catch {
    // already gone
  }
  const deadline = Date.now() + 5000;
  while (!proc.exited && Date.now() < deadline) await sleep(50);
  if (!proc.exited) {
    try {
      process.kill(-proc.child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

function killAllSync() {
  for (const proc of children) {
    try {
      process.kill(-proc.child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}
process.on("exit", killAllSync);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    killAllSync();
    process.exit(130);
  });
}

/** Waits until something accepts TCP connections on 127.0.0.1:`port`. */
export async function waitForPort(port, timeoutMs = 20_000) {
  await waitFor(`port ${port}`, () =>
    new Promise((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    }),
    timeoutMs,
  );
}

/**
 * A participant's network path to a relay that can be black-holed, as a dead link would:
 * a TCP forwarder on `listenHost` (any port) to the relay's TCP address, and a UDP forwarder
 * on `listenHost` at the relay's own UDP port (a client sends media to its control
 * connection's address), one upstream socket per client. While black-holed, datagrams both
 * ways vanish and TCP bytes (and ends of streams) are held, not delivered, as TCP retransmits
 * until the link comes back; `restore()` delivers what was held and lets datagrams through.
 */
export class BlackHolePath {
  static async start({ listenHost = "127.0.0.2", relayHost = "127.0.0.1", tcpPort, udpPort }) {
    const path = new BlackHolePath();
    await path.#listen(listenHost, relayHost, tcpPort, udpPort);
    return path;
  }

  blocked = false;
  #waiters = [];
  #closers = [];
  /** "HOST:PORT" a client connects to. */
  addr = "";

  blackHole() {
    this.blocked = true;
  }

  restore() {
    this.blocked = false;
    for (const wake of this.#waiters.splice(0)) wake();
  }

  #open() {
    return this.blocked ? new Promise((resolve) => this.#waiters.push(resolve)) : Promise.resolve();
  }

  async #listen(listenHost, relayHost, tcpPort, udpPort) {
    // One ordered queue per direction, so held chunks go out in order once restored.
    const pipe = (from, to) => {
      let chain = Promise.resolve();
      from.on("data", (chunk) => {
        chain = chain.then(() => this.#open()).then(() => {
          if (!to.destroyed) to.write(chunk);
        });
      });
      from.on("end", () => {
        chain = chain.then(() => this.#open()).then(() => to.end());
      });
      // A reset or close crosses the path only when it is open, like everything else.
      from.on("error", () => {});
      from.on("close", () => {
        chain = chain.then(() => this.#open()).then(() => to.destroy());
      });
    };
    const tcp = net.createServer({ allowHalfOpen: true }, (client) => {
      // The client's connection is accepted, but nothing reaches the relay while the path is
      // dead, not even the connection itself.
      client.pause();
      client.on("error", () => {});
      this.#open().then(() => {
        // Given up by the client while the path was dead: nothing to carry.
        if (client.destroyed) return;
        const server = net.connect({ host: relayHost, port: tcpPort, allowHalfOpen: true });
        pipe(client, server);
        pipe(server, client);
        client.resume();
      });
    });
    await new Promise((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen(0, listenHost, resolve);
    });
    this.addr = `${listenHost}:${tcp.address().port}`;
    this.#closers.push(() => tcp.close());

    const udp = dgram.createSocket("udp4");
    const flows = new Map();
    udp.on("message", (msg, from) => {
      if (this.blocked) return;
      const key = `${from.address}:${from.port}`;
      let up = flows.get(key);
      if (!up) {
        up = dgram.createSocket("udp4");
        up.on("message", (back) => {
          if (!this.blocked) udp.send(back, from.port, from.address);
        });
        up.bind(0, relayHost);
        flows.set(key, up);
      }
      up.send(msg, udpPort, relayHost);
    });
    await new Promise((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(udpPort, listenHost, resolve);
    });
    this.#closers.push(() => {
      udp.close();
      for (const up of flows.values()) up.close();
    });
  }

  close() {
    this.restore();
    for (const close of this.#closers) close();
  }
}

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

/** A W3C WebDriver session. */
export class WebDriver {
  constructor(base) {
    this.base = base;
    this.id = null;
  }

  async cmd(method, route, body) {
    const url = `${this.base}${route.replace(":session", this.id ?? "")}`;
    const res = await fetch(url, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      throw new Error(`${method} ${route}: HTTP ${res.status}: ${text.slice(0, 300)}`);
    }
    if (!res.ok || (json.value && json.value.error)) {
      const v = json.value ?? {};
      throw new Error(`${method} ${route}: ${v.error ?? res.status}: ${v.message ?? text.slice(0, 300)}`);
    }
    return json.value;
  }

  /** Starts the app at `application` with `args` (tauri-driver launches it through WebKitWebDriver). */
  async start(application, args = []) {
    const value = await this.cmd("POST", "/session", {
      capabilities: { alwaysMatch: { "tauri:options": { application, args } } },
    });
    this.id = value.sessionId;
    return value;
  }

  async quit() {
    if (!this.id) return;
    try {
      await this.cmd("DELETE", "/session/:session");
    } finally {
      this.id = null;
    }
  }

  async find(css) {
    const v = await this.cmd("POST", "/session/:session/element", { using: "css selector", value: css });
    return v[ELEMENT];
  }

  async findAll(css) {
    const v = await this.cmd("POST", "/session/:session/elements", { using: "css selector", value: css });
    return v.map((e) => e[ELEMENT]);
  }

  /** The element for `css` once it exists and is displayed. */
  async waitVisible(css, timeoutMs = 20_000) {
    return waitFor(`${css} to be visible`, async () => {
      const els = await this.findAll(css);
      for (const el of els) {
        if (await this.cmd("GET", `/session/:session/element/${el}/displayed`)) return el;
      }
      return null;
    }, timeoutMs);
  }

  async click(css, timeoutMs) {
    const el = await this.waitVisible(css, timeoutMs);
    await this.cmd("POST", `/session/:session/element/${el}/click`, {});
  }

  async type(css, text) {
    const el = await this.waitVisible(css);
    await this.cmd("POST", `/session/:session/element/${el}/clear`, {});
    await this.cmd("POST", `/session/:session/element/${el}/value`, { text });
  }

  async text(css) {
    const el = await this.waitVisible(css);
    return this.cmd("GET", `/session/:session/element/${el}/text`);
  }

  async exec(fn, ...args) {
    return this.cmd("POST", "/session/:session/execute/sync", { script: `return (${fn}).apply(null, arguments);`, args });
  }

  /** Runs `fn(...args, done)` in the page and returns what it passes to `done`. */
  async execAsync(fn, ...args) {
    const script = `const done = arguments[arguments.length - 1]; (${fn}).apply(null, [...Array.prototype.slice.call(arguments, 0, -1), done]);`;
    return this.cmd("POST", "/session/:session/execute/async", { script, args });
  }

  async setTimeouts(scriptMs) {
    await this.cmd("POST", "/session/:session/timeouts", { script: scriptMs });
  }

  /** A PNG of the window. */
  async screenshot() {
    return Buffer.from(await this.cmd("GET", "/session/:session/screenshot"), "base64");
  }
}

/** Decodes an 8-bit, non-interlaced RGB or RGBA PNG into { width, height, channels, data }. */
export function decodePng(buf) {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  if (!sig.every((b, i) => buf[i] === b)) throw new Error("not a PNG");
  let off = 8;
  let width = 0;
  let height = 0;
  let colorType = 0;
  const idat = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString("ascii", off + 4, off + 8);
    const body = buf.subarray(off + 8, off + 8 + len);
    if (type === "IHDR") {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const depth = body[8];
      colorType = body[9];
      if (depth !== 8 || body[12] !== 0 || (colorType !== 2 && colorType !== 6)) {
        throw new Error(`unsupported PNG (depth ${depth}, colour type ${colorType}, interlace ${body[12]})`);
      }
    } else if (type === "IDAT") idat.push(body);
    else if (type === "IEND") break;
    off += 12 + len;
  }
  const channels = colorType === 6 ? 4 : 3;
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const data = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? data[y * stride + x - channels] : 0;
      const b = y > 0 ? data[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? data[(y - 1) * stride + x - channels] : 0;
      let v = line[x];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      data[y * stride + x] = v & 0xff;
    }
  }
  return { width, height, channels, data };
}

/** Distinct colours (quantized to 4 bits a channel) in a rectangle of a decoded PNG. */
export function distinctColours(img, x0, y0, w, h) {
  const seen = new Set();
  for (let y = Math.max(0, y0); y < Math.min(img.height, y0 + h); y++) {
    for (let x = Math.max(0, x0); x < Math.min(img.width, x0 + w); x++) {
      const o = (y * img.width + x) * img.channels;
      seen.add(((img.data[o] >> 4) << 8) | ((img.data[o + 1] >> 4) << 4) | (img.data[o + 2] >> 4));
    }
  }
  return seen.size;
}

/** Makes sure the directory exists and returns it. */
export function ensureDir(dir) {
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
