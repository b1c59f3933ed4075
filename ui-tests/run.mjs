// Playwright walk-through of the built UI over the browser mock of the Tauri shell.
//
// Serves ui/dist-mock (built by `vite build --mode mock`) from 127.0.0.1, opens it in Debian's
// Chromium through playwright-core, and walks: home → wrong code → waiting room → denial →
// admitted → meeting with video → shortcuts → chat → file drop with progress → received file
// (Save, verified, Open) → clip button → people → hands and reactions → muted by the host, asked
// for the camera, notified in the background → co-host menu → presenting (the picker with
// thumbnails, You are presenting, Stop, Ctrl+Alt+S, a share ending by itself) → someone else's
// presentation as the main tile with the cameras in a strip, pinned tiles, the layout menu, full
// screen, two presenters → stats charts → someone reconnecting → own
// connection dropping and resuming (banner, charts kept) → connection lost → Rejoin → leave →
// hosting with queued knocks (Admit, Deny, withdrawn) → lock, admit all, mute all, co-host →
// remove → removed → the host ends the call for everyone → device busy → relay
// unreachable; then opened with an invitation link (and another while running), and an update
// offered and installed.
// Each step asserts visible text; screenshots go to ui-tests/screenshots/. With
// UPDATE_DOCS_SCREENSHOTS=1 the home, meeting and stats ones are also copied to
// docs/screenshots/ (committed, shown in the README), so ordinary runs leave the tree clean.
//
// Usage: npm run test:e2e-ui   (builds both bundles, then runs this file)

import { chromium } from "playwright-core";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..");
const distMock = path.join(repo, "ui/dist-mock");
const distApp = path.join(repo, "ui/dist");
const shots = path.join(here, "screenshots");
const docsShots = path.join(repo, "docs/screenshots");
const TIMEOUT = 15_000;

let passed = 0;
let failed = 0;

function check(cond, message) {
  if (!cond) throw new Error(message);
}

// ---- The mock must never ship: the app bundle has no trace of it. ----

function assertAppBundleHasNoMock() {
  check(fs.existsSync(path.join(distApp, "index.html")), "ui/dist is missing: run `npm run build` first");
  const files = fs.readdirSync(path.join(distApp, "assets")).map((f) => path.join(distApp, "assets", f));
  for (const f of [path.join(distApp, "index.html"), ...files]) {
    const text = fs.readFileSync(f, "utf8");
    for (const marker of ["__parlorMock", "mockIPC", "mock.html", "installMockBackend"]) {
      check(!text.includes(marker), `${path.relative(repo, f)} contains ${marker}: the mock leaked into the app build`);
    }
  }
  check(!fs.existsSync(path.join(distApp, "mock.html")), "ui/dist/mock.html exists");
}

// ---- A tiny static server for ui/dist-mock on 127.0.0.1. ----

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png" };

function serve(root) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const file = path.normalize(path.join(root, decodeURIComponent(url.pathname)));
    if (!file.startsWith(root)) {
      res.writeHead(403).end();
      return;
    }
    fs.readFile(file, (err, data) => {
      if (err) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" });
      res.end(data);
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

// ---- Helpers over the page. ----

const sel = (id) => `[data-testid="${id}"]`;

async function visible(page, id, timeout = TIMEOUT) {
  await page.locator(sel(id)).first().waitFor({ state: "visible", timeout });
}

async function hidden(page, id, timeout = TIMEOUT) {
  await page.locator(sel(id)).first().waitFor({ state: "hidden", timeout });
}

/** Waits until the element's visible text matches `re`. */
async function text(page, id, re, timeout = TIMEOUT) {
  const source = re.source;
  const flags = re.flags;
  try {
    await page.waitForFunction(
      ([s, src, fl]) => {
        const el = document.querySelector(s);
        return el instanceof HTMLElement && el.getClientRects().length > 0 && new RegExp(src, fl).test(el.innerText);
      },
      [sel(id), source, flags],
      { timeout },
    );
  } catch {
    const got = await page.locator(sel(id)).first().innerText().catch(() => "<missing>");
    throw new Error(`${id}: expected ${re}, got ${JSON.stringify(got)}`);
  }
}

async function click(page, id) {
  await page.locator(sel(id)).first().click({ timeout: TIMEOUT });
}

async function mock(page, fn, ...args) {
  return page.evaluate(([f, a]) => window.__parlorMock[f](...a), [fn, args]);
}

async function calls(page, cmd) {
  return page.evaluate((c) => window.__parlorMock.calls.filter((x) => x.cmd === c).map((x) => x.args), cmd);
}

/** The video id of participant `id`'s shared screen: core/types.ts's screenTileId (the id with
 * the top bit set, as the frame header's u32 carries it). */
const screenTile = (id) => 2147483648 + id;

async function box(page, id) {
  const b = await page.locator(sel(id)).first().boundingBox();
  check(b, `${id} has no box`);
  return b;
}

async function hasClass(page, id, name) {
  return page.locator(sel(id)).first().evaluate((el, c) => el.classList.contains(c), name);
}

async function waitFps(page, id, min) {
  await page.waitForFunction(([i, m]) => (window.__parlorFps?.()[i] ?? 0) >= m, [id, min], { timeout: TIMEOUT });
}

/**
 * What is really on screen inside an element: its screenshot, decoded in the page. Returns the
 * number of distinct colours (quantized) and the share of the most common one.
 */
async function pixels(page, id, near = [0, 0, 0]) {
  const png = await page.locator(sel(id)).first().screenshot();
  return page.evaluate(async ([b64, target]) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.width;
    c.height = img.height;
    const ctx = c.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, c.width, c.height).data;
    const counts = new Map();
    let nearTarget = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.abs(data[i] - target[0]) + Math.abs(data[i + 1] - target[1]) + Math.abs(data[i + 2] - target[2]) < 60) nearTarget++;
      const key = ((data[i] >> 3) << 10) | ((data[i + 1] >> 3) << 5) | (data[i + 2] >> 3);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const top = Math.max(...counts.values());
    return { colours: counts.size, dominant: top / (data.length / 4), nearTarget, width: c.width, height: c.height };
  }, [png.toString("base64"), near]);
}

async function notBlank(page, id) {
  const p = await pixels(page, id);
  check(p.colours > 30 && p.dominant < 0.8, `${id} looks blank: ${JSON.stringify(p)}`);
  return p;
}

/** Polls `probe` (async, returns true when done) until it holds, failing after TIMEOUT. */
async function until(what, probe) {
  const deadline = Date.now() + TIMEOUT;
  while (!(await probe())) {
    check(Date.now() < deadline, `timed out after ${TIMEOUT} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Screenshots the page once every finite animation and transition has finished, with the
 * pointer in the corner so that no hover overlay (a tile's pin button) covers the picture. */
async function shot(page, name, docsName) {
  await page.mouse.move(0, 0);
  await page.waitForFunction(
    () => document.getAnimations().every((a) => a.playState !== "running" || a.effect?.getTiming().iterations === Infinity),
    null,
    { timeout: TIMEOUT },
  );
  const file = path.join(shots, `${name}.png`);
  await page.screenshot({ path: file });
  if (docsName && process.env.UPDATE_DOCS_SCREENSHOTS === "1") fs.copyFileSync(file, path.join(docsShots, `${docsName}.png`));
}

async function step(page, name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok ${passed + failed} - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`not ok ${passed + failed} - ${name}\n  ${String(e?.message ?? e).split("\n").join("\n  ")}`);
    await page.screenshot({ path: path.join(shots, `FAILED-${name.replace(/[^a-z0-9]+/gi, "-")}.png`) }).catch(() => {});
    throw e;
  }
}

// ---- The walk. ----

async function walk(page, base) {
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));

  await step(page, "the app bundle contains no mock", async () => assertAppBundleHasNoMock());

  await step(page, "home shows the form, devices and a live camera preview", async () => {
    await page.goto(`${base}/mock.html`);
    await visible(page, "screen-home");
    await text(page, "btn-new-meeting", /New meeting/);
    await text(page, "select-camera", /HD Webcam/);
    await text(page, "select-microphone", /Built-in Microphone/);
    await text(page, "select-speaker", /Built-in Speakers/);
    check((await page.inputValue(sel("input-relay"))) === "192.168.1.20:7878", "last relay address not remembered");
    await waitFps(page, 0, 5);
    await notBlank(page, "preview");
    await page.fill(sel("input-name"), "Ada Lovelace");
    await text(page, "preview", /Ada Lovelace/);
    await shot(page, "01-home", "home");
  });

  await step(page, "choosing a device tells the shell", async () => {
    await page.selectOption(sel("select-microphone"), "mic-usb");
    const c = await calls(page, "choose_devices");
    check(JSON.stringify(c.at(-1)) === JSON.stringify({ microphone: "mic-usb" }), `choose_devices args ${JSON.stringify(c)}`);
  });

  await step(page, "the microphone meter moves and noise cancellation is a saved switch", async () => {
    const widths = new Set();
    await until("the microphone meter to move", async () => {
      widths.add(await page.$eval(sel("mic-meter"), (el) => el.getAttribute("aria-valuenow")));
      return widths.size >= 3;
    });
    check(await page.isChecked(sel("check-noise-cancellation")), "noise cancellation starts on");
    check(await page.isChecked(sel("check-echo-cancellation")), "echo cancellation starts on");
    await page.click(sel("check-noise-cancellation"));
    const saved = await calls(page, "save_settings");
    const last = saved.at(-1)?.settings;
    check(last && last.noiseSuppression === false && last.echoCancellation === true, `save_settings args ${JSON.stringify(saved.at(-1))}`);
    await page.click(sel("check-noise-cancellation"));
    check((await calls(page, "save_settings")).at(-1)?.settings?.noiseSuppression === true, "switched back on");
  });

  await step(page, "a wrong code and a bad address are explained in words", async () => {
    await page.fill(sel("input-code"), "12345");
    await click(page, "btn-join");
    await text(page, "home-error", /That code doesn't look right.*6 digits/s);
    await page.fill(sel("input-code"), "000000");
    await click(page, "btn-join");
    await text(page, "home-error", /No meeting with code 000-000/);
    await page.fill(sel("input-code"), "482913");
    await page.fill(sel("input-relay"), "my-laptop");
    await click(page, "btn-join");
    await text(page, "home-error", /relay address doesn't look right/);
    await page.fill(sel("input-relay"), "192.168.1.20:7878");
    await hidden(page, "home-error");
  });

  await step(page, "a relay with a new certificate is refused until trusted; an invitation fills the form", async () => {
    await page.fill(sel("input-code"), "482913");
    await page.fill(sel("input-relay"), "192.168.1.99:7878");
    const joinsBefore = (await calls(page, "join_meeting")).length;
    await click(page, "btn-join");
    await text(page, "home-error", /The relay at 192\.168\.1\.99:7878 has a new identity.*0f0f 0f0f…, now 5e5e 5e5e…/s);
    await text(page, "trust-fingerprint", /New certificate: 5e5e 5e5e 5e5e/);
    check((await calls(page, "join_meeting")).length === joinsBefore + 1, "one refused join");
    await shot(page, "01b-certificate-changed");
    await click(page, "btn-trust-certificate");
    await visible(page, "screen-waiting");
    const trust = await calls(page, "trust_relay_certificate");
    check(JSON.stringify(trust) === JSON.stringify([{ relayAddr: "192.168.1.99:7878", fingerprint: "5e".repeat(32) }]), `trust args ${JSON.stringify(trust)}`);
    await click(page, "btn-cancel-join");
    await visible(page, "screen-home");

    const invitation = `Join my Parlor meeting: parlor://join?relay=10.0.0.7%3A5000&code=271828&fp=${"5e".repeat(32)}\nRelay: 10.0.0.7:5000\n`;
    // Pasted, as people do: the code field is too short to hold it typed.
    await page.evaluate(([selector, text]) => {
      const data = new DataTransfer();
      data.setData("text/plain", text);
      document.querySelector(selector).dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
    }, [sel("input-code"), invitation]);
    await until("the invitation fills the form", async () => (await page.inputValue(sel("input-relay"))) === "10.0.0.7:5000");
    check((await page.inputValue(sel("input-code"))) === "271828", "code from the invitation");
    await visible(page, "home-invited");
    await page.fill(sel("input-relay"), "192.168.1.20:7878");
    await hidden(page, "home-invited");
  });

  await step(page, "joining waits in the waiting room; Cancel goes home", async () => {
    await page.fill(sel("input-code"), "482 913");
    await click(page, "btn-join");
    await visible(page, "screen-waiting");
    await text(page, "waiting-title", /Asking to be let in…/);
    await text(page, "waiting-where", /482-913 on 192\.168\.1\.20:7878/);
    const join = await calls(page, "join_meeting");
    check(JSON.stringify(join.at(-1)) === JSON.stringify({ code: "482913", name: "Ada Lovelace", relayAddr: "192.168.1.20:7878", fingerprint: null }), `join args ${JSON.stringify(join)}`);
    await notBlank(page, "preview");
    await shot(page, "02-waiting");
    const cancelsBefore = (await calls(page, "cancel_join")).length;
    await click(page, "btn-cancel-join");
    await visible(page, "screen-home");
    check((await calls(page, "cancel_join")).length === cancelsBefore + 1, "cancel_join not called");
  });

  await step(page, "a denial says why, and one can ask again", async () => {
    await click(page, "btn-join");
    await visible(page, "screen-waiting");
    await mock(page, "refuse", "denied");
    await text(page, "ended-title", /You can't join this meeting/);
    await text(page, "ended-detail", /denied your request to join/);
    await shot(page, "03-denied");
    await text(page, "btn-rejoin", /Ask to join again/);
    await click(page, "btn-rejoin");
    await visible(page, "screen-waiting");
  });

  await step(page, "admitted: the meeting shows code, address and live video tiles", async () => {
    await mock(page, "admit");
    await visible(page, "screen-meeting");
    await text(page, "meeting-code", /^482-913$/);
    await text(page, "relay-addr", /^192\.168\.1\.20:7878$/);
    await text(page, "name-1", /Grace Hopper/);
    await text(page, "name-2", /Linus Torvalds/);
    await text(page, "name-3", /^You$/);
    // The meeting info: a lock that opens "End-to-end encrypted" and the safety code.
    await click(page, "e2ee-badge");
    await visible(page, "e2ee-info");
    await text(page, "e2ee-info", /End-to-end encrypted/);
    await text(page, "safety-code", /^2534 6208 6676$/);
    await shot(page, "04-encrypted");
    await click(page, "e2ee-badge");
    await waitFps(page, 1, 5);
    await waitFps(page, 2, 5);
    await waitFps(page, 0, 5);
    const grace = await notBlank(page, "tile-1");
    const linus = await notBlank(page, "tile-2");
    const renderers = await page.evaluate(() => [...document.querySelectorAll("canvas[data-renderer]")].map((c) => c.dataset.renderer));
    console.log(`  tiles: I420 ${JSON.stringify(grace)}, RGBA ${JSON.stringify(linus)}, renderers ${renderers.join(",")}`);
    const drawn = await calls(page, "video_frame_drawn");
    const last = drawn.filter((d) => d.participantId === 1).at(-1);
    const box = await page.locator(sel("tile-1")).boundingBox();
    check(last && Math.abs(last.width - Math.round(box.width)) <= 2 && Math.abs(last.height - Math.round(box.height)) <= 2, `video_frame_drawn size ${JSON.stringify(last)} vs tile ${JSON.stringify(box)}`);
  });

  await step(page, "mic-off badge and camera-off avatar follow the roster", async () => {
    await mock(page, "setMedia", 2, false, true);
    await visible(page, "micoff-2");
    await mock(page, "setMedia", 2, false, false);
    await page.waitForFunction(() => document.querySelector('[data-testid="tile-2"]')?.classList.contains("video-off"));
    await text(page, "tile-2", /L/);
    await mock(page, "setMedia", 2, false, true);
    await page.waitForFunction(() => !document.querySelector('[data-testid="tile-2"]')?.classList.contains("video-off"));
  });

  await step(page, "Ctrl+D and Ctrl+E toggle microphone and camera", async () => {
    await page.locator(sel("stage")).click();
    await page.keyboard.press("Control+d");
    await page.waitForFunction(() => document.querySelector('[data-testid="btn-mic"]')?.getAttribute("aria-pressed") === "true");
    await visible(page, "micoff-3");
    await page.keyboard.press("Control+e");
    await page.waitForFunction(() => document.querySelector('[data-testid="btn-camera"]')?.classList.contains("off"));
    await page.keyboard.press("Control+d");
    await page.keyboard.press("Control+e");
    await page.waitForFunction(() => !document.querySelector('[data-testid="btn-camera"]')?.classList.contains("off") && !document.querySelector('[data-testid="btn-mic"]')?.classList.contains("off"));
    const mic = await calls(page, "set_mic");
    const cam = await calls(page, "set_camera");
    check(JSON.stringify(mic) === JSON.stringify([{ on: false }, { on: true }]), `set_mic ${JSON.stringify(mic)}`);
    check(JSON.stringify(cam) === JSON.stringify([{ on: false }, { on: true }]), `set_camera ${JSON.stringify(cam)}`);
  });

  await step(page, "chat: history, send with Enter, receive with name and time", async () => {
    await click(page, "btn-chat");
    await visible(page, "panel-chat");
    await text(page, "chat-list", /Grace Hopper[\s\S]*Welcome! The agenda/);
    await page.fill(sel("chat-input"), "Hello from Ada");
    await page.press(sel("chat-input"), "Enter");
    await text(page, "chat-list", /You\s+\d\d:\d\d\s+Hello from Ada/);
    check((await page.inputValue(sel("chat-input"))) === "", "input not cleared");
    await mock(page, "chatFrom", 1, "Hi Ada! Glad you could make it.");
    await text(page, "chat-list", /Grace Hopper\s+\d\d:\d\d\s+Hi Ada! Glad you could make it\./);
  });

  await step(page, "dropping a file sends it, with progress, rate and cwnd", async () => {
    await page.evaluate(() => {
      const target = document.querySelector('[data-testid="panel-chat"]');
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(4096)], "quarterly-report.pdf", { type: "application/pdf" }));
      const fire = (type) => target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt, clientX: 1000, clientY: 300 }));
      fire("dragenter");
      fire("dragover");
      window.__dropTest = { fire };
    });
    await visible(page, "drop-overlay");
    await text(page, "drop-overlay", /Drop to send to everyone/);
    await shot(page, "04-drop");
    await page.evaluate(() => window.__dropTest.fire("drop"));
    await hidden(page, "drop-overlay");
    const sent = await calls(page, "send_file");
    check(JSON.stringify(sent) === JSON.stringify([{ path: "quarterly-report.pdf" }]), `send_file ${JSON.stringify(sent)}`);
    await text(page, "transfers", /Sending quarterly-report\.pdf/);
    await text(page, "upload-figures-u1", /\d+% · .+ of .+ · .+\/s · cwnd \d/);
    await shot(page, "05-upload-progress");
    await text(page, "chat-list", /quarterly-report\.pdf[\s\S]*Sent to everyone[\s\S]*SHA-256 verified/, 20_000);
    await hidden(page, "upload-u1");
  });

  let offered;
  await step(page, "a received file: Save, progress, verified mark, Open", async () => {
    offered = await mock(page, "offerFile", 1, "agenda.pdf", 850_000);
    await text(page, `file-${offered}`, /agenda\.pdf[\s\S]*850 KB/);
    await visible(page, `file-save-${offered}`);
    await click(page, `file-save-${offered}`);
    const accepted = await calls(page, "accept_file");
    check(JSON.stringify(accepted) === JSON.stringify([{ fileId: offered }]), `accept_file ${JSON.stringify(accepted)}`);
    await text(page, `file-${offered}`, /Saved/, 20_000);
    await visible(page, `file-verified-${offered}`);
    await text(page, `file-verified-${offered}`, /SHA-256 verified/);
    await click(page, `file-open-${offered}`);
    const opened = await calls(page, "open_file");
    check(JSON.stringify(opened) === JSON.stringify([{ path: "/home/ada/Downloads/agenda.pdf" }]), `open_file ${JSON.stringify(opened)}`);
    await shot(page, "06-chat-files");
  });

  await step(page, "the clip button picks a file and sends it; the download folder can change", async () => {
    await click(page, "btn-attach");
    await text(page, "transfers", /Sending meeting-notes\.pdf/);
    const sent = await calls(page, "send_file");
    check(sent.at(-1)?.path === "/home/ada/Documents/meeting-notes.pdf", `send_file ${JSON.stringify(sent)}`);
    await mock(page, "failNext", "send_file", { code: "fileNotFound", message: "ENOENT" });
    await click(page, "btn-attach");
    await text(page, "toasts", /Couldn't send meeting-notes\.pdf: Can't read that file/);
    await click(page, "btn-change-download-dir");
    await text(page, "download-dir", /\/home\/ada\/Shared/);
    check((await calls(page, "choose_download_dir")).at(-1)?.dir === "/home/ada/Shared", "choose_download_dir not called");
  });

  await step(page, "someone else's upload that stops says so until dismissed", async () => {
    const fileId = await mock(page, "remoteUploadProgress", "holiday.mov", 40_000_000, 10_000_000);
    await text(page, `upload-r${fileId}`, /sending holiday\.mov/);
    await text(page, `upload-figures-r${fileId}`, /25%/);
    await mock(page, "remoteUploadStopped", fileId, "holiday.mov");
    await text(page, `upload-figures-r${fileId}`, /Upload stopped: The sender's connection ended before the whole file arrived\./);
    await click(page, `upload-dismiss-r${fileId}`);
    await hidden(page, `upload-r${fileId}`);
  });

  await step(page, "stats: live charts, quality level and per-participant rows", async () => {
    await click(page, "btn-stats");
    await visible(page, "panel-stats");
    for (const key of ["rtt", "loss", "jitter", "fps", "bitrate", "cwnd"]) await visible(page, `chart-${key}`);
    const canvases = await page.locator(`${sel("panel-stats")} .chart canvas`).count();
    check(canvases === 6, `expected 6 chart canvases, got ${canvases}`);
    await text(page, "stats-quality", /^(144|240|360|480)p$/);
    await text(page, "stat-rtt", /^\d+ ms$/);
    await text(page, "stat-loss", /%$/);
    await text(page, "stat-cwnd", /KB|idle/);
    await text(page, "stats-row-1", /Grace Hopper/);
    await text(page, "stats-row-2", /Linus Torvalds/);
    // The RTT line is drawn in #1a73e8: once enough pixels of it show (a few one-second
    // samples of history), the chart plots data.
    let rtt;
    await until("a line on the RTT chart", async () => {
      rtt = await pixels(page, "chart-rtt", [0x1a, 0x73, 0xe8]);
      return rtt.nearTarget > 30;
    }).catch((e) => {
      throw new Error(`${e.message}; last look: ${JSON.stringify(rtt)}`);
    });
    await shot(page, "07-stats", "stats");
    await page.keyboard.press("Escape");
    await hidden(page, "panel-stats");
  });

  await step(page, "settings in the meeting: devices, a live microphone meter, noise and echo cancellation", async () => {
    await click(page, "btn-settings");
    await visible(page, "panel-settings");
    await text(page, "settings-select-microphone", /USB Headset Microphone/);
    const widths = new Set();
    await until("the meeting's microphone meter to move", async () => {
      widths.add(await page.$eval(sel("settings-mic-meter"), (el) => el.getAttribute("aria-valuenow")));
      return widths.size >= 3;
    });
    await page.click(sel("settings-check-echo-cancellation"));
    const last = (await calls(page, "save_settings")).at(-1)?.settings;
    check(last && last.echoCancellation === false && last.noiseSuppression === true, `save_settings args ${JSON.stringify(last)}`);
    await page.click(sel("settings-check-echo-cancellation"));
    await page.selectOption(sel("settings-select-speaker"), "spk-usb");
    check(JSON.stringify((await calls(page, "choose_devices")).at(-1)) === JSON.stringify({ speaker: "spk-usb" }), "speaker chosen in the meeting");
    await shot(page, "17b-settings");
    await click(page, "btn-settings");
    await hidden(page, "panel-settings");
  });

  await step(page, "people: everyone with mic and camera state, no remove for guests", async () => {
    await click(page, "btn-participants");
    await text(page, "in-meeting-count", /In the meeting \(3\)/i);
    await text(page, "people-list", /Grace Hopper[\s\S]*Meeting host/);
    await text(page, "people-list", /Ada Lovelace \(You\)/);
    check((await page.getAttribute(sel("person-mic-2"), "data-on")) === "false", "Linus's mic should show off");
    check((await page.getAttribute(sel("person-camera-2"), "data-on")) === "true", "Linus's camera should show on");
    check(!(await page.locator(sel("btn-remove-1")).isVisible()), "a guest must not see Remove");
    check(!(await page.locator(sel("person-menu-1")).isVisible()), "a guest has no menu on others");
    check(!(await page.locator(sel("host-controls")).isVisible()), "a guest has no host controls");
    await page.locator(`${sel("panel-participants")} ${sel("btn-close-panel")}`).click();
    await hidden(page, "panel-participants");
  });

  await step(page, "hands go up in order, reactions float over tiles, Ctrl+Alt+H raises and lowers", async () => {
    await click(page, "btn-hand");
    await visible(page, "hand-badge-3");
    check((await page.getAttribute(sel("btn-hand"), "aria-pressed")) === "true", "the hand button shows the hand up");
    await mock(page, "setHand", 2, true);
    await visible(page, "hand-badge-2");
    await click(page, "btn-participants");
    await text(page, "hands-count", /Raised hands \(2\)/i);
    await text(page, "hands-list", /Ada Lovelace \(You\)[\s\S]*Linus Torvalds/);
    check(!(await page.locator(sel("lower-hand-2")).isVisible()), "a guest cannot lower someone else's hand");
    await page.keyboard.press("Control+Alt+KeyH");
    await hidden(page, "hand-badge-3");
    await text(page, "hands-count", /Raised hands \(1\)/i);
    check(JSON.stringify(await calls(page, "raise_hand")) === JSON.stringify([{ raised: true }, { raised: false }]), "raise_hand args");
    await click(page, "btn-reactions");
    await visible(page, "reaction-picker");
    await click(page, "react-party");
    await text(page, "reactions-3", /🎉/);
    await mock(page, "reactFrom", 1, "heart");
    await text(page, "reactions-1", /❤️/);
    check(JSON.stringify(await calls(page, "react")) === JSON.stringify([{ reaction: "party" }]), "react args");
    await shot(page, "08b-hands-and-reactions");
    // Reactions float away after a few seconds.
    await page.waitForFunction(() => document.querySelector('[data-testid="reactions-1"]')?.childElementCount === 0, null, { timeout: 8000 });
    await mock(page, "setHand", 2, false);
    await hidden(page, "hand-badge-2");
    await page.locator(`${sel("panel-participants")} ${sel("btn-close-panel")}`).click();
  });

  await step(page, "muted by the host, asked for the camera (nothing turns on), notified in the background", async () => {
    check(!(await page.locator(sel("btn-mic")).evaluate((b) => b.classList.contains("off"))), "the mic starts on");
    await mock(page, "muteMe", 1);
    await text(page, "toasts", /Grace Hopper muted you/);
    await page.waitForFunction(() => document.querySelector('[data-testid="btn-mic"]')?.classList.contains("off"));
    const cameraCalls = (await calls(page, "set_camera")).length;
    await mock(page, "askMe", 1, "camera");
    await text(page, "request-title", /Grace Hopper asks you to turn on your camera/);
    await click(page, "btn-request-decline");
    await hidden(page, "dialog-media-request");
    check((await calls(page, "set_camera")).length === cameraCalls, "declining turns nothing on");
    // In the background a chat message is a desktop notification and the chat button counts it.
    await page.evaluate(() => window.dispatchEvent(new Event("blur")));
    await mock(page, "chatFrom", 1, "Can you share the slides?");
    await text(page, "chat-unread", /^1$/);
    await until("a notification", async () => (await page.evaluate(() => window.__parlorMock.notifications)).some((n) => n.title === "Grace Hopper" && n.body === "Can you share the slides?"));
    await page.evaluate(() => window.dispatchEvent(new Event("focus")));
    await mock(page, "chatFrom", 1, "Never mind");
    await text(page, "chat-unread", /^2$/);
    check((await page.evaluate(() => window.__parlorMock.notifications)).length === 1, "no notification while the window has the focus");
    await click(page, "btn-chat");
    await hidden(page, "chat-unread");
    await click(page, "btn-chat");
  });

  await step(page, "a co-host gets a menu on others: ask to unmute", async () => {
    await mock(page, "makeMeCohost", 1, true);
    await text(page, "toasts", /You are now a co-host/);
    await click(page, "btn-participants");
    await text(page, "person-3", /Co-host/);
    await click(page, "person-menu-2");
    await visible(page, "menu-2");
    check(!(await page.locator(sel("menu-make-host-2")).isVisible()), "only the host hands out roles");
    await click(page, "menu-ask-mic-2");
    await hidden(page, "menu-2");
    check(JSON.stringify(await calls(page, "request_media")) === JSON.stringify([{ participantId: 2, device: "mic" }]), "request_media args");
    await text(page, "toasts", /Asked Linus Torvalds to turn on their microphone/);
    await mock(page, "makeMeCohost", 1, false);
    await text(page, "toasts", /You are no longer a co-host/);
    await hidden(page, "person-menu-2");
    await page.locator(`${sel("panel-participants")} ${sel("btn-close-panel")}`).click();
  });

  await step(page, "Present now lists screens and windows with thumbnails; a refusal to list is said in the dialog; Escape closes it", async () => {
    const present = page.getByRole("button", { name: "Present now", exact: true });
    check((await present.getAttribute("title")) === "Present now (Ctrl+Alt+S)", `present tooltip ${await present.getAttribute("title")}`);
    await mock(page, "failNext", "list_screen_sources", { code: "deviceBusy", message: "device error: screen capture is not supported on this session", device: "screen" });
    await present.click();
    await visible(page, "screen-picker");
    await text(page, "screen-picker-status", /Your screen can't be shared[\s\S]*screen capture is not supported on this session/);
    check(await page.locator(sel("btn-share-screen")).isDisabled(), "Share is offered with nothing to share");
    await page.keyboard.press("Escape");
    await hidden(page, "screen-picker");
    await present.click();
    await visible(page, "screen-picker");
    await text(page, "screen-picker", /Entire screen[\s\S]*Window/);
    await text(page, "screen-group-screens", /Built-in Display[\s\S]*2560 × 1600[\s\S]*DELL U2720Q/);
    await text(page, "screen-group-windows", /Q3 roadmap — Slides[\s\S]*Terminal/);
    // The shell's thumbnails are JPEG data URLs, each one a picture; a window without one gets a placeholder.
    const pictures = () => page.$$eval(`${sel("screen-picker")} img`, (imgs) => imgs.filter((i) => i.complete && i.naturalWidth > 0 && i.src.startsWith("data:image/jpeg")).length);
    await until("the thumbnails to show", async () => (await pictures()) === 3);
    check((await page.locator(`${sel("screen-source-window:4102")} img`).count()) === 0, "the window without a thumbnail shows one");
    check((await page.getByRole("radio", { name: /Built-in Display/ }).getAttribute("aria-checked")) === "true", "the first screen is not chosen");
    await shot(page, "13-screen-picker");
    await click(page, "btn-cancel-share");
    await hidden(page, "screen-picker");
    check((await calls(page, "start_screen_share")).length === 0, "something was shared before Share");
  });

  await step(page, "sharing a window: You are presenting, the stats say what is sent, Stop presenting stops", async () => {
    await page.getByRole("button", { name: "Present now", exact: true }).click();
    await page.getByRole("radio", { name: /Q3 roadmap — Slides/ }).click();
    check((await page.getAttribute(sel("screen-source-window:4101"), "aria-checked")) === "true", "the window is not chosen");
    await click(page, "btn-share-screen");
    await hidden(page, "screen-picker");
    await text(page, "presenting-banner", /You are presenting/);
    const started = await calls(page, "start_screen_share");
    check(JSON.stringify(started) === JSON.stringify([{ choice: { kind: "window", id: 4101 } }]), `start_screen_share ${JSON.stringify(started)}`);
    check((await page.getAttribute(sel("btn-present"), "aria-pressed")) === "true", "the present button is not pressed");
    check((await page.getAttribute(sel("btn-present"), "aria-label")) === "Stop presenting", "the present button does not offer to stop");
    // The roster confirms it for everyone; this app's own screen gets no tile.
    await click(page, "btn-participants");
    await text(page, "person-3", /Ada Lovelace \(You\)[\s\S]*Presenting/);
    check((await page.locator(".screen-tile").count()) === 0, "a tile of this app's own screen");
    await page.locator(`${sel("panel-participants")} ${sel("btn-close-panel")}`).click();
    await click(page, "btn-stats");
    await text(page, "stat-screen-out", /^Your presentation: 1600×900 \(1080p\) · \d+ fps · \d+ kbps · [\d.]+% of the picture changing · encoded in \d+ ms$/);
    await shot(page, "13b-presenting");
    await page.keyboard.press("Escape");
    await hidden(page, "panel-stats");
    // Switching to another source keeps presenting.
    await click(page, "btn-share-other");
    await page.getByRole("radio", { name: /DELL U2720Q/ }).click();
    await click(page, "btn-share-screen");
    await hidden(page, "screen-picker");
    const switched = (await calls(page, "start_screen_share")).at(-1);
    check(JSON.stringify(switched) === JSON.stringify({ choice: { kind: "screen", id: 2 } }), `start_screen_share ${JSON.stringify(switched)}`);
    await visible(page, "presenting-banner");
    await click(page, "btn-stop-presenting");
    await hidden(page, "presenting-banner");
    check((await calls(page, "stop_screen_share")).length === 1, "stop_screen_share not called");
    check((await page.getAttribute(sel("btn-present"), "aria-label")) === "Present now", "the present button still offers to stop");
  });

  await step(page, "Ctrl+Alt+S opens the choice and stops presenting; a share that ends by itself says why", async () => {
    const shareReady = () => page.waitForFunction(() => document.querySelector('[data-testid="btn-share-screen"]')?.disabled === false);
    await page.keyboard.press("Control+Alt+KeyS");
    await visible(page, "screen-picker");
    await shareReady();
    await click(page, "btn-share-screen");
    await visible(page, "presenting-banner");
    const started = (await calls(page, "start_screen_share")).at(-1);
    check(JSON.stringify(started) === JSON.stringify({ choice: { kind: "screen", id: 1 } }), `start_screen_share ${JSON.stringify(started)}`);
    await page.keyboard.press("Control+Alt+KeyS");
    await hidden(page, "presenting-banner");
    check((await calls(page, "stop_screen_share")).length === 2, "Ctrl+Alt+S did not stop presenting");
    await page.keyboard.press("Control+Alt+KeyS");
    await shareReady();
    await click(page, "btn-share-screen");
    await visible(page, "presenting-banner");
    await mock(page, "endMyShare", "no device: that window is closed");
    await text(page, "toasts", /Screen sharing stopped: no device: that window is closed/);
    check(!(await page.innerText(sel("toasts"))).includes("Something went wrong"), "the stop is also told as a generic error");
    await hidden(page, "presenting-banner");
    check((await page.getAttribute(sel("btn-present"), "aria-pressed")) === "false", "still shown presenting");
  });

  await step(page, "someone else's presentation is the main tile, whole and letterboxed, with the cameras in a strip beside it", async () => {
    await mock(page, "present", 1, true);
    await visible(page, "screen-1");
    await text(page, "screen-name-1", /^Grace Hopper \(presentation\)$/);
    await page.waitForFunction(() => document.querySelector('[data-testid="stage"]')?.dataset.layout === "sidebar");
    await waitFps(page, screenTile(1), 3);
    await notBlank(page, "screen-1");
    const main = await box(page, "screen-1");
    for (const id of [1, 2, 3]) {
      const b = await box(page, `tile-${id}`);
      check(b.x >= main.x + main.width, `camera ${id} is not in the strip on the right: ${JSON.stringify(b)} vs ${JSON.stringify(main)}`);
      check(b.width * b.height * 4 < main.width * main.height, `camera ${id} is not small beside the presentation`);
    }
    // The shell hears the tile's size under the screen's id and fits the whole screen inside:
    // the canvas keeps the screen's 16:9 within that size and is drawn contained, not cropped.
    const drawn = (await calls(page, "video_frame_drawn")).filter((d) => d.participantId === screenTile(1)).at(-1);
    check(drawn && Math.abs(drawn.width - Math.round(main.width)) <= 2 && Math.abs(drawn.height - Math.round(main.height)) <= 2, `video_frame_drawn ${JSON.stringify(drawn)} vs tile ${JSON.stringify(main)}`);
    const canvas = await page.$eval(sel("screen-video-1"), (c) => ({ w: c.width, h: c.height, fit: getComputedStyle(c).objectFit }));
    check(canvas.fit === "contain", `the presentation is drawn with object-fit ${canvas.fit}`);
    check(Math.abs(canvas.w / canvas.h - 16 / 9) < 0.02 && canvas.w <= drawn.width && canvas.h <= drawn.height, `frame ${canvas.w}×${canvas.h} in a ${drawn.width}×${drawn.height} tile`);
    await shot(page, "14-presentation");
    await click(page, "btn-stats");
    await text(page, "stats-screen-row-1", /Grace Hopper\s+1920×1080\s+\d+\s+\d+\s+[\d.]+%\s+0/);
    await page.keyboard.press("Escape");
    await hidden(page, "panel-stats");
  });

  await step(page, "pinning a camera makes it the main tile; unpinning gives the stage back to the presentation", async () => {
    await page.locator(sel("tile-2")).hover();
    await page.getByRole("button", { name: "Pin Linus Torvalds", exact: true }).click();
    await page.waitForFunction(() => document.querySelector('[data-testid="tile-2"]')?.classList.contains("main"));
    check(await hasClass(page, "screen-1", "strip"), "the presentation did not move to the strip");
    check((await page.getAttribute(sel("pin-2"), "aria-pressed")) === "true", "the pin button is not pressed");
    await page.getByRole("button", { name: "Unpin Linus Torvalds", exact: true }).click();
    await page.waitForFunction(() => document.querySelector('[data-testid="screen-1"]')?.classList.contains("main"));
    check(await hasClass(page, "tile-2", "strip"), "the unpinned camera did not go back to the strip");
  });

  await step(page, "the layout menu: Tiled puts the presentation in the grid, Spotlight shows it alone, Auto brings the strip back", async () => {
    await page.getByRole("button", { name: "Change layout" }).click();
    await visible(page, "layout-menu");
    check((await page.getAttribute(sel("layout-auto"), "aria-checked")) === "true", "Auto is not the default");
    await page.getByRole("menuitemradio", { name: "Tiled" }).click();
    await hidden(page, "layout-menu");
    await page.waitForFunction(() => document.querySelector('[data-testid="stage"]')?.dataset.layout === "grid");
    await until("the presentation to be a grid tile like the cameras", async () => {
      const [s, c] = [await box(page, "screen-1"), await box(page, "tile-1")];
      return Math.abs(s.width - c.width) <= 1 && Math.abs(s.height - c.height) <= 1;
    });
    await shot(page, "14b-tiled");
    await click(page, "btn-layout");
    check((await page.getAttribute(sel("layout-tiled"), "aria-checked")) === "true", "Tiled is not checked");
    await page.getByRole("menuitemradio", { name: "Spotlight" }).click();
    for (const id of [1, 2, 3]) await hidden(page, `tile-${id}`);
    await visible(page, "screen-1");
    // Tiles not shown are not drawn, so the shell is asked for none of their frames.
    await page.waitForFunction(() => (window.__parlorFps?.()[2] ?? 0) === 0);
    await click(page, "btn-layout");
    await page.getByRole("menuitemradio", { name: "Auto" }).click();
    await visible(page, "tile-2");
    await waitFps(page, 2, 5);
    await page.waitForFunction(() => document.querySelector('[data-testid="screen-1"]')?.classList.contains("main"));
  });

  await step(page, "the presentation goes full screen and back", async () => {
    await page.locator(sel("screen-1")).hover();
    await page.getByRole("button", { name: "Full screen", exact: true }).click();
    await page.waitForFunction(() => document.fullscreenElement?.getAttribute("data-testid") === "screen-1");
    await page.getByRole("button", { name: "Exit full screen", exact: true }).click();
    await page.waitForFunction(() => document.fullscreenElement === null && document.querySelector('[data-testid="fullscreen-1"]')?.getAttribute("aria-label") === "Full screen");
  });

  await step(page, "a second presenter's screen becomes the main tile; when both stop the grid is back", async () => {
    await mock(page, "present", 2, true);
    await visible(page, "screen-2");
    await page.waitForFunction(() => document.querySelector('[data-testid="screen-2"]')?.classList.contains("main") && document.querySelector('[data-testid="screen-1"]')?.classList.contains("strip"));
    await waitFps(page, screenTile(2), 3);
    await mock(page, "present", 2, false);
    await hidden(page, "screen-2");
    await page.waitForFunction(() => document.querySelector('[data-testid="screen-1"]')?.classList.contains("main"));
    await mock(page, "present", 1, false);
    await hidden(page, "screen-1");
    await page.waitForFunction(() => document.querySelector('[data-testid="stage"]')?.dataset.layout === "grid");
    for (const id of [1, 2, 3]) await visible(page, `tile-${id}`);
    check((await page.locator(".screen-tile").count()) === 0, "a presentation tile is left");
  });

  await step(page, "the meeting with four people, one speaking, one camera off", async () => {
    const id = await mock(page, "addParticipant", "Margaret Hamilton");
    await text(page, "toasts", /Margaret Hamilton joined/);
    await mock(page, "setMedia", id, false, false);
    await text(page, `name-${id}`, /Margaret Hamilton/);
    await waitFps(page, 1, 5);
    // Dismissing works, and the picture for the docs shows the tiles unobstructed.
    // Toasts also expire by themselves meanwhile, so click whichever is first until none is left.
    for (let i = 0; i < 10 && (await page.locator(`${sel("toasts")} button`).count()) > 0; i++) {
      await page.locator(`${sel("toasts")} button`).first().click({ timeout: 2000 }).catch(() => {});
    }
    await page.waitForFunction(() => document.querySelector('[data-testid="toasts"]')?.childElementCount === 0);
    await shot(page, "08-meeting", "meeting");
    await mock(page, "leave", id, "left");
    await text(page, "toasts", /Margaret Hamilton left the meeting/);
  });

  await step(page, "someone whose connection dropped is greyed out until they are back", async () => {
    await mock(page, "setReconnecting", 1, true);
    await page.waitForFunction(() => document.querySelector('[data-testid="tile-1"]')?.classList.contains("reconnecting"));
    await text(page, "reconnecting-1", /Reconnecting…/);
    await click(page, "btn-participants");
    await text(page, "person-1", /Grace Hopper[\s\S]*Meeting host · Reconnecting…/);
    check((await page.locator(`${sel("person-1")}.reconnecting`).count()) === 1, "Grace's row is not greyed out");
    await shot(page, "08a-participant-reconnecting");
    await mock(page, "setReconnecting", 1, false);
    await page.waitForFunction(() => !document.querySelector('[data-testid="tile-1"]')?.classList.contains("reconnecting"));
    await hidden(page, "reconnecting-1");
    await page.waitForFunction(() => {
      const row = document.querySelector('[data-testid="person-1"]');
      return row && !row.classList.contains("reconnecting") && !row.textContent.includes("Reconnecting");
    });
  });

  await step(page, "a dropped connection shows Reconnecting… with the seconds, and the meeting and its charts stay", async () => {
    await click(page, "btn-stats");
    await visible(page, "panel-stats");
    const blue = [0x1a, 0x73, 0xe8];
    let before;
    await until("a line on the RTT chart", async () => (before = await pixels(page, "chart-rtt", blue)).nearTarget > 30);
    await mock(page, "dropConnection", "no answer from the relay for 5 s");
    await page.locator("#reconnecting-banner").waitFor({ state: "visible", timeout: TIMEOUT });
    await text(page, "reconnecting-banner", /Reconnecting…[\s\S]*dropped \d+ s ago/);
    // The count moves on by itself, once a second.
    await text(page, "reconnecting-time", /^[1-9]\d* s$/);
    await visible(page, "screen-meeting");
    await text(page, "name-1", /Grace Hopper/);
    await shot(page, "08b-reconnecting");
    await mock(page, "resumeConnection");
    await page.locator("#reconnecting-banner").waitFor({ state: "hidden", timeout: TIMEOUT });
    await text(page, "toasts", /Reconnected/);
    // The history from before the drop is still plotted: a reset would leave one sample, no line.
    const after = await pixels(page, "chart-rtt", blue);
    check(after.nearTarget >= before.nearTarget * 0.7, `the RTT chart lost its history: ${before.nearTarget} → ${after.nearTarget} line pixels`);
    await page.keyboard.press("Escape");
    await hidden(page, "panel-stats");
  });

  await step(page, "a connection lost for good says so and Rejoin knocks on the same meeting", async () => {
    await mock(page, "dropConnection", "connection reset");
    await page.locator("#reconnecting-banner").waitFor({ state: "visible", timeout: TIMEOUT });
    await mock(page, "loseConnection");
    await text(page, "ended-title", /^You lost your connection$/);
    await text(page, "ended-detail", /meeting 482-913/);
    await text(page, "btn-return-home", /Return to home screen/);
    const rejoin = page.locator("#rejoin");
    await rejoin.waitFor({ state: "visible", timeout: TIMEOUT });
    check((await rejoin.innerText()) === "Rejoin", `rejoin button says ${JSON.stringify(await rejoin.innerText())}`);
    await shot(page, "08c-connection-lost");
    const joinsBefore = (await calls(page, "join_meeting")).length;
    await rejoin.click();
    await visible(page, "screen-waiting");
    const join = await calls(page, "join_meeting");
    check(join.length === joinsBefore + 1, "one knock");
    const expected = { code: "482913", name: "Ada Lovelace", relayAddr: "192.168.1.20:7878", fingerprint: "5e".repeat(32) };
    check(JSON.stringify(join.at(-1)) === JSON.stringify(expected), `join args ${JSON.stringify(join.at(-1))}`);
    await mock(page, "admit");
    await visible(page, "screen-meeting");
    await text(page, "name-1", /Grace Hopper/);
  });

  await step(page, "leaving ends the meeting with Rejoin and Return home", async () => {
    await click(page, "btn-leave");
    await text(page, "ended-title", /You left the meeting/);
    check((await calls(page, "leave_meeting")).length === 1, "leave_meeting not called");
    await click(page, "btn-return-home");
    await visible(page, "screen-home");
  });

  let knocks;
  await step(page, "hosting: New meeting on the embedded relay; knocks queue", async () => {
    await click(page, "btn-new-meeting");
    await visible(page, "screen-meeting");
    const created = await calls(page, "create_meeting");
    check(JSON.stringify(created) === JSON.stringify([{ name: "Ada Lovelace", relayAddr: null }]), `create_meeting ${JSON.stringify(created)}`);
    await text(page, "meeting-code", /482-913/);
    await text(page, "relay-addr", /192\.168\.1\.20:7878/);
    knocks = [await mock(page, "knock", "Katherine Johnson"), await mock(page, "knock", "Dorothy Vaughan"), await mock(page, "knock", "Mary Jackson"), await mock(page, "knock", "Annie Easley")];
    for (const k of knocks.slice(0, 3)) await visible(page, `knock-${k}`);
    await text(page, `knock-${knocks[0]}`, /Someone wants to join this meeting[\s\S]*Katherine Johnson/);
    await text(page, "knock-more", /1 more waiting to join/);
    await shot(page, "09-knocks");
  });

  let katherine;
  await step(page, "Admit lets one in, Deny refuses another, a withdrawal is told", async () => {
    await click(page, `knock-admit-${knocks[0]}`);
    await text(page, "toasts", /Katherine Johnson joined/);
    check(JSON.stringify(await calls(page, "admit")) === JSON.stringify([{ requestId: knocks[0] }]), "admit args");
    await click(page, `knock-deny-${knocks[1]}`);
    check(JSON.stringify(await calls(page, "deny")) === JSON.stringify([{ requestId: knocks[1] }]), "deny args");
    await hidden(page, `knock-${knocks[1]}`);
    await mock(page, "withdraw", knocks[2], "cancelled");
    await text(page, "toasts", /Mary Jackson stopped asking to join/);
    await click(page, "btn-participants");
    await text(page, "waiting-count", /Waiting to join \(1\)/i);
    await click(page, `panel-admit-${knocks[3]}`);
    await text(page, "toasts", /Annie Easley joined/);
    katherine = await page.evaluate(() => [...document.querySelectorAll('[data-testid^="person-"]')].find((e) => e.textContent?.includes("Katherine"))?.dataset.testid?.replace("person-", ""));
    check(katherine, "Katherine not in the people list");
  });

  await step(page, "host controls: lock, admit all with the time waited, mute all, make a co-host", async () => {
    await page.check(sel("check-lock"));
    await text(page, "toasts", /You locked the meeting/);
    await visible(page, "locked-badge");
    check(JSON.stringify(await calls(page, "lock_meeting")) === JSON.stringify([{ locked: true }]), "lock_meeting args");
    await page.uncheck(sel("check-lock"));
    await text(page, "toasts", /You unlocked the meeting/);
    await hidden(page, "locked-badge");
    const late = [await mock(page, "knock", "Hedy Lamarr"), await mock(page, "knock", "Radia Perlman")];
    await text(page, `waited-${late[0]}`, /Waiting \d+ s/);
    await click(page, "btn-admit-all");
    await text(page, "toasts", /Hedy Lamarr joined|Radia Perlman joined/);
    check((await calls(page, "admit_all")).length === 1, "admit_all called");
    await hidden(page, "btn-admit-all");
    await click(page, "btn-mute-all");
    await text(page, "toasts", /Everyone else is muted/);
    check((await calls(page, "mute_all")).length === 1, "mute_all called");
    await click(page, `person-menu-${katherine}`);
    await click(page, `menu-cohost-${katherine}`);
    await text(page, `person-${katherine}`, /Katherine Johnson[\s\S]*Co-host/);
    check(JSON.stringify(await calls(page, "set_role")) === JSON.stringify([{ participantId: Number(katherine), role: "coHost" }]), "set_role args");
    await shot(page, "09b-host-controls");
  });

  await step(page, "the host removes someone after confirming", async () => {
    await click(page, `person-menu-${katherine}`);
    await click(page, `btn-remove-${katherine}`);
    await text(page, "dialog-title", /Remove Katherine Johnson from the meeting\?/);
    await click(page, "btn-confirm-remove");
    await hidden(page, "dialog-remove");
    await text(page, "toasts", /Katherine Johnson was removed from the meeting/);
    check(JSON.stringify(await calls(page, "remove_participant")) === JSON.stringify([{ participantId: Number(katherine) }]), "remove_participant args");
    await hidden(page, `tile-${katherine}`);
  });

  await step(page, "being removed is said in words", async () => {
    await mock(page, "removeMe");
    await text(page, "ended-title", /You've been removed from the meeting/);
    check(!(await page.locator(sel("btn-rejoin")).isVisible()), "no rejoin after removal");
    await click(page, "btn-return-home");
  });

  await step(page, "the host's Leave offers to end the call for everyone", async () => {
    await click(page, "btn-new-meeting");
    await visible(page, "screen-meeting");
    await mock(page, "addParticipant", "Barbara Liskov");
    await click(page, "btn-leave");
    await visible(page, "dialog-leave");
    await click(page, "btn-cancel-leave");
    await hidden(page, "dialog-leave");
    await click(page, "btn-leave");
    await click(page, "btn-end-for-all");
    await text(page, "ended-title", /You ended the meeting for everyone/);
    check((await calls(page, "end_meeting")).length === 1, "end_meeting called");
    check(!(await page.locator(sel("btn-rejoin")).isVisible()), "no rejoin after ending the meeting");
    await click(page, "btn-return-home");
  });

  await step(page, "a busy camera and an unreachable relay are explained", async () => {
    await mock(page, "failNext", "set_camera", { code: "deviceBusy", message: "EBUSY", device: "camera" });
    await click(page, "preview-camera");
    await text(page, "toasts", /Your camera is in use[\s\S]*Another app is using your camera/);
    await mock(page, "failNext", "create_meeting", { code: "relayUnreachable", message: "connection refused" });
    await page.check(sel("check-host-on-relay"));
    await click(page, "btn-new-meeting");
    await text(page, "home-error", /Can't reach the relay at 192\.168\.1\.20:7878[\s\S]*Check the address/);
    await shot(page, "10-errors");
  });

  await step(page, "no uncaught errors in the page", async () => {
    check(pageErrors.length === 0, `page errors: ${pageErrors.join("; ")}`);
  });
}

/** Opened with an invitation link, then another while running; an update offered and installed. */
async function launchWalk(page, base) {
  const link = `parlor://join?relay=10.0.0.7%3A5000&code=314159&fp=${"5e".repeat(32)}`;
  await step(page, "an invitation link the app is opened with fills in Join", async () => {
    await page.goto(`${base}/mock.html?open=${encodeURIComponent(link)}&update=0.2.0`);
    await until("the link fills the form", async () => (await page.inputValue(sel("input-code"))) === "314159");
    check((await page.inputValue(sel("input-relay"))) === "10.0.0.7:5000", "relay from the link");
    await visible(page, "home-invited");
  });

  await step(page, "a link opened while running fills in Join; a malformed one is explained", async () => {
    await mock(page, "openLink", "parlor://join?relay=relay.lan%3A7000&code=271828");
    await until("the second link fills the form", async () => (await page.inputValue(sel("input-code"))) === "271828");
    check((await page.inputValue(sel("input-relay"))) === "relay.lan:7000", "relay from the second link");
    await mock(page, "openLink", "parlor://join?code=oops");
    await text(page, "home-error", /That isn't a Parlor invitation/);
    check((await page.inputValue(sel("input-code"))) === "271828", "a bad link leaves the form as it was");
  });

  await step(page, "an available update is offered on the home screen and installed on request", async () => {
    await text(page, "update-text", /Parlor 0\.2\.0 is available \(you have 0\.1\.0\)/);
    await shot(page, "12-update-offered");
    await click(page, "btn-install-update");
    await until("the page asked to install", async () => page.evaluate(() => window.__parlorMock.updateInstalled));
  });
}

/** Without WebGL the tiles fall back to putImageData (I420 converted on the CPU). */
async function fallbackWalk(page, base) {
  await step(page, "without WebGL, I420 and RGBA tiles draw through the 2D fallback", async () => {
    await page.goto(`${base}/mock.html`);
    await page.fill(sel("input-name"), "Ada Lovelace");
    await page.fill(sel("input-code"), "482913");
    await click(page, "btn-join");
    await visible(page, "screen-waiting");
    await mock(page, "admit");
    await visible(page, "screen-meeting");
    await waitFps(page, 1, 5);
    await waitFps(page, 2, 5);
    await notBlank(page, "tile-1");
    await notBlank(page, "tile-2");
    const renderers = await page.evaluate(() => [...document.querySelectorAll("canvas[data-renderer]")].map((c) => c.dataset.renderer));
    check(renderers.length >= 3 && renderers.every((r) => r === "2d"), `renderers ${renderers.join(",")}`);
    await shot(page, "11-no-webgl");
  });

  await step(page, "without WebGL, a presentation draws through the 2D fallback too", async () => {
    await mock(page, "present", 1, true);
    await waitFps(page, screenTile(1), 3);
    await notBlank(page, "screen-1");
    check((await page.getAttribute(sel("screen-video-1"), "data-renderer")) === "2d", "the presentation is not drawn in 2D");
  });
}

const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

async function withBrowser(extraArgs, fn) {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: [...CHROMIUM_ARGS, ...extraArgs] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    page.setDefaultTimeout(TIMEOUT);
    await fn(page);
  } finally {
    await browser.close();
  }
}

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  fs.mkdirSync(docsShots, { recursive: true });
  check(fs.existsSync(path.join(distMock, "mock.html")), "ui/dist-mock is missing: run `vite build --mode mock` first");
  const server = await serve(distMock);
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    // A failed step has already been reported; the walk stops there.
    await withBrowser([], (page) => walk(page, base)).catch(() => {});
    if (failed === 0) await withBrowser(["--disable-webgl"], (page) => fallbackWalk(page, base)).catch(() => {});
    if (failed === 0) await withBrowser([], (page) => launchWalk(page, base)).catch(() => {});
  } finally {
    server.close();
  }
  console.log(`\n${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
