// End-to-end test of the built desktop app, driven over WebDriver like a person would use it.
//
// Under Xvfb (run through e2e/run.sh), tauri-driver launches the debug build of parlor-app with
// the real UI embedded, through Debian's WebKitWebDriver. The test then:
//   1. picks the test pattern, test tone and no sound output on the home screen, sees the
//      camera preview draw, and types a name;
//   2. clicks "New meeting": the app starts its embedded relay (bound to 127.0.0.1 here) and
//      shows the meeting code and the address to share;
//   3. runs `parlor-bot join CODE --relay ADDR --video synthetic --audio tone --send-file F`,
//      which knocks; the test clicks Admit in the knock dialog;
//   4. sees the bot's tile render video: the canvas's pixels, read back right after a draw, are
//      not all one colour, and the page reports frames drawn for the bot;
//   5. sends a chat message the bot must print, and sees the bot's message;
//   6. clicks Save on the file the bot sent, waits for the verified mark, and compares the
//      SHA-256 of the downloaded file with the original;
//   7. opens the stats panel and sees figures; checks that the content security policy blocked
//      nothing of the app's and does block an injected inline script; then leaves ("Just leave the call": the bot stays).
// The bot's file name starts with a right-to-left override, which the app must not show.
// Screenshots of home, meeting and stats go to e2e/screenshots/ (and to docs/screenshots/ with
// UPDATE_DOCS_SCREENSHOTS=1). Every process it starts is killed, whatever happens.

import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  appEnv,
  cargoBin,
  check,
  decodePng,
  distinctColours,
  log,
  newMeeting,
  reportFailure,
  requireBuilt,
  saveShot,
  selectHeadlessDevices,
  startBot,
  startDriver,
  stopProcess,
  waitFor,
} from "./lib.mjs";

const profile = process.env.PARLOR_PROFILE || "debug";
const appBin = process.env.PARLOR_APP_BIN || cargoBin("parlor-app", profile);
const botBin = process.env.PARLOR_BOT_BIN || cargoBin("parlor-bot", profile);

let step = "start";

const sha256 = (file) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");

/**
 * Reads the pixels of the canvas of a tile right after its next draw (WebGL clears the drawing
 * buffer once it is shown, so it is read inside the draw), or from its 2D context.
 */
function readTilePixels(selector, done) {
  const canvas = document.querySelector(selector);
  if (!canvas) return done({ error: `no ${selector}` });
  const summarize = (px, w, h) => {
    const colours = new Set();
    let min = 255;
    let max = 0;
    for (let i = 0; i < px.length; i += 4 * 7) {
      colours.add(((px[i] >> 4) << 8) | ((px[i + 1] >> 4) << 4) | (px[i + 2] >> 4));
      const l = (px[i] + px[i + 1] + px[i + 2]) / 3;
      min = Math.min(min, l);
      max = Math.max(max, l);
    }
    return { width: w, height: h, colours: colours.size, min, max, renderer: canvas.dataset.renderer ?? null };
  };
  if (canvas.dataset.renderer === "2d") {
    const ctx = canvas.getContext("2d");
    return done(summarize(ctx.getImageData(0, 0, canvas.width, canvas.height).data, canvas.width, canvas.height));
  }
  const gl = canvas.getContext("webgl");
  if (!gl) return done({ error: "no WebGL context on the canvas" });
  const original = gl.drawArrays;
  const timer = setTimeout(() => {
    gl.drawArrays = original;
    done({ error: "no frame drawn within 5 s" });
  }, 5000);
  gl.drawArrays = function (...args) {
    original.apply(gl, args);
    gl.drawArrays = original;
    clearTimeout(timer);
    const px = new Uint8Array(canvas.width * canvas.height * 4);
    gl.readPixels(0, 0, canvas.width, canvas.height, gl.RGBA, gl.UNSIGNED_BYTE, px);
    done(summarize(px, canvas.width, canvas.height));
  };
}

async function main() {
  requireBuilt(appBin, botBin);

  // The app runs with a private home: fresh settings, downloads in a known folder.
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "parlor-e2e-"));
  const downloads = path.join(home, "Downloads");
  const env = appEnv(home);

  // The file the bot sends: random bytes, so a corrupted download cannot match by chance.
  // Its name starts with a right-to-left override, which would show "report-e2e.bin" reversed;
  // the app must show and save it as "report-e2e.bin".
  const sent = path.join(home, "\u202Ereport-e2e.bin");
  fs.writeFileSync(sent, crypto.randomBytes(300_000 + Math.floor(Math.random() * 1000)));

  const { driver, wd, ready } = await startDriver(env);
  let bot = null;
  try {
    step = "driver";
    await ready();
    step = "launch";
    await wd.start(appBin);
    await wd.setTimeouts(15_000);
    log("app started");

    step = "home";
    await wd.waitVisible('[data-testid="screen-home"]');
    await selectHeadlessDevices(wd);
    await wd.type('[data-testid="input-name"]', "Ada Host");
    const previewFps = await waitFor("the camera preview to draw", async () => {
      const fps = await wd.exec(() => (window.__parlorFps ? window.__parlorFps() : {}));
      return (fps[0] ?? 0) > 0 ? fps[0] : null;
    });
    log(`preview drawing at ${previewFps} fps`);
    const preview = await wd.execAsync(readTilePixels, '[data-testid="preview-canvas"]');
    check(!preview.error, `preview: ${preview.error}`);
    check(preview.colours > 8, `the preview is flat: ${JSON.stringify(preview)}`);
    saveShot("home.png", await wd.screenshot());

    step = "create";
    const { code, relayAddr } = await newMeeting(wd);
    check(/^\d{6}$/.test(code), `meeting code ${code}`);
    check(/^127\.0\.0\.1:\d+$/.test(relayAddr), `relay address shown: ${relayAddr}`);
    log(`meeting ${code} on the embedded relay at ${relayAddr}`);

    step = "bot joins";
    const botChat = `hello from the bot ${crypto.randomBytes(3).toString("hex")}`;
    bot = startBot(botBin, "Bot Bob", code, relayAddr, { extra: ["--send-file", sent, "--chat", botChat] });
    await wd.click('[data-testid^="knock-admit-"]', 20_000);
    log("admitted the bot");
    const botTile = await waitFor("the bot's tile", () =>
      wd.exec(() => {
        const t = [...document.querySelectorAll('[data-testid^="tile-"]')].find((el) => !el.classList.contains("self"));
        return t ? t.dataset.participantId : null;
      }),
    );
    const botId = Number(botTile);
    log(`bot is participant ${botId}`);

    step = "bot video";
    const botFps = await waitFor("the bot's video to draw", async () => {
      const fps = await wd.exec(() => window.__parlorFps());
      return (fps[botId] ?? 0) >= 5 ? fps[botId] : null;
    }, 30_000);
    const pixels = await wd.execAsync(readTilePixels, `[data-testid="video-${botId}"]`);
    check(!pixels.error, `bot video: ${pixels.error}`);
    check(pixels.colours > 8 && pixels.max - pixels.min > 40, `the bot's video is flat: ${JSON.stringify(pixels)}`);
    log(`bot video drawn at ${botFps} fps, ${pixels.width}x${pixels.height} via ${pixels.renderer}, ${pixels.colours} colours`);

    step = "encryption";
    // The app and the bot hold the same meeting key with the same roster: one safety code.
    const botCode = await waitFor("the bot's safety code with the app in the roster", () => {
      const line = [...bot.lines].reverse().find((l) => l.includes("ENCRYPTED"));
      return line ? /safety_code="([0-9 ]+)"/.exec(line)?.[1] ?? null : null;
    }, 20_000);
    await wd.click('[data-testid="e2ee-badge"]');
    await wd.waitVisible('[data-testid="e2ee-info"]', 5_000);
    const info = await wd.text('[data-testid="e2ee-info"]');
    const appCode = (await wd.text('[data-testid="safety-code"]')).trim();
    check(info.includes("End-to-end encrypted"), `the meeting info says: ${info}`);
    check(/^\d{4} \d{4} \d{4}$/.test(appCode), `safety code shown: ${appCode}`);
    check(appCode === botCode, `the app shows ${appCode}, the bot ${botCode}`);
    await wd.click('[data-testid="e2ee-badge"]');
    log(`end-to-end encrypted; both sides show safety code ${appCode}`);

    step = "chat";
    await wd.click('[data-testid="btn-chat"]');
    const myChat = `hello from the app ${crypto.randomBytes(3).toString("hex")}`;
    await wd.type('[data-testid="chat-input"]', myChat);
    await wd.click('[data-testid="btn-send-chat"]');
    await waitFor("the app's own chat message", () =>
      wd.exec((t) => document.querySelector('[data-testid="chat-list"]')?.textContent.includes(t), myChat),
    );
    await waitFor("the bot to print the app's chat message", () => bot.lines.some((l) => l.includes(myChat)), 20_000);
    await waitFor("the bot's chat message in the app", () =>
      wd.exec((t) => document.querySelector('[data-testid="chat-list"]')?.textContent.includes(t), botChat),
    );
    log("chat went both ways");

    step = "file";
    const fileId = await waitFor("the bot's file offer", () =>
      wd.exec(() => {
        const b = document.querySelector('[data-testid^="file-save-"]');
        return b ? b.dataset.testid.slice("file-save-".length) : null;
      }),
    30_000);
    await wd.click(`[data-testid="file-save-${fileId}"]`);
    await wd.waitVisible(`[data-testid="file-verified-${fileId}"]`, 30_000);
    const shownName = await wd.exec(() => document.querySelector('[data-testid="chat-list"]')?.textContent ?? "");
    check(shownName.includes("report-e2e.bin") && !shownName.includes("\u202E"), `the file name is shown without its override: ${JSON.stringify(shownName)}`);
    const saved = path.join(downloads, "report-e2e.bin");
    await waitFor(`${saved} to exist`, () => fs.existsSync(saved), 10_000);
    check(sha256(saved) === sha256(sent), "the downloaded file differs from the original");
    log(`file received byte-identical (${fs.statSync(saved).size} bytes, SHA-256 ${sha256(saved).slice(0, 16)}…)`);
    // The join and chat notices fade after a few seconds; the picture is clearer without them.
    await waitFor("the toasts to fade", () => wd.exec(() => !document.querySelector('[data-testid^="toast-"]')), 15_000).catch(() => {});
    await waitFor("the remote upload card to go", () => wd.exec(() => !document.querySelector('[data-testid="transfers"] [data-testid^="upload-r"]')), 5000);
    saveShot("meeting.png", await wd.screenshot());
    const shot = decodePng(await wd.screenshot());
    check(distinctColours(shot, 0, 0, shot.width, shot.height) > 64, "the window screenshot is nearly flat");

    step = "stats";
    await wd.click('[data-testid="btn-stats"]');
    await wd.waitVisible('[data-testid="panel-stats"]');
    await waitFor("a stats row for the bot", () =>
      wd.exec((id) => !!document.querySelector(`[data-testid="stats-row-${id}"]`), botId),
    20_000);
    await waitFor("a few seconds of charts", async () => {
      const fps = await wd.exec(() => window.__parlorFps());
      return (fps[botId] ?? 0) > 0;
    });
    await new Promise((r) => setTimeout(r, 3000));
    saveShot("stats.png", await wd.screenshot());

    step = "content security policy";
    // Nothing the app did was blocked…
    const blocked = await wd.exec(() => window.__parlorCspViolations);
    check(Array.isArray(blocked) && blocked.length === 0, `blocked by the CSP: ${JSON.stringify(blocked)}`);
    // …and the policy is in force: an injected inline script does not run, and is reported.
    const ran = await wd.exec(() => {
      const s = document.createElement("script");
      s.textContent = "window.__inlineScriptRan = true";
      document.body.append(s);
      return window.__inlineScriptRan === true;
    });
    check(!ran, "an inline script ran: the CSP is not in force");
    await waitFor("the blocked inline script to be reported", () =>
      wd.exec(() => window.__parlorCspViolations.some((v) => v.startsWith("script-src"))),
    5000);
    log("the CSP is in force and blocked nothing of the app's own");

    step = "leave";
    await wd.click('[data-testid="btn-leave"]');
    // The host with company chooses between leaving and ending the call for everyone.
    await wd.click('[data-testid="btn-just-leave"]');
    await wd.waitVisible('[data-testid="screen-ended"]');
    log("left the meeting");
    await wd.quit();
    console.log("\napp e2e: 1 passed, 0 failed");
  } catch (e) {
    await reportFailure("app", step, e, { screenshot: async () => wd.id && (await wd.screenshot()), env, procs: [driver, bot] });
  } finally {
    await wd.quit().catch(() => {});
    await stopProcess(bot);
    await stopProcess(driver);
    fs.rmSync(home, { recursive: true, force: true });
  }
}

await main();
