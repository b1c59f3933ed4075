// End-to-end test of screen sharing in the built desktop app, against real parlor-bots.
//
// Under Xvfb (run through e2e/run.sh), tauri-driver launches the debug build of parlor-app,
// which creates a meeting on its embedded relay:
//   1. a bot joins; the app clicks Present now, the picker lists the Xvfb screen (captured with
//      xcap, with a thumbnail), the app shares it: "You are presenting" shows, and the bot
//      prints SCREEN_SHOWN for the app's screen (a whole picture reached it);
//   2. the app stops presenting; the bot sees it stop (PRESENTING on=false);
//   3. with a window manager running (openbox: X11 lists windows through it), the picker lists
//      an xmessage window; the app shares that window alone: a bot joining now is shown it,
//      and the app's stats give the window's size; closing the window ends the share (the bot
//      sees it stop, the app says why);
//   4. a third bot joins sharing its synthetic slides: the app shows them as the main tile
//      (drawn: frames counted under the screen's tile id) with the cameras in a strip beside;
//      the stats panel lists the received screen; the bots' summaries show what they got.
// Every process it starts is killed, whatever happens.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  appEnv,
  cargoBin,
  check,
  decodePng,
  launchApp,
  log,
  newMeeting,
  reportFailure,
  requireBuilt,
  saveShot,
  startBot,
  startDriver,
  startProcess,
  stopProcess,
  waitFor,
} from "./lib.mjs";

const profile = process.env.PARLOR_PROFILE || "debug";
const appBin = process.env.PARLOR_APP_BIN || cargoBin("parlor-app", profile);
const botBin = process.env.PARLOR_BOT_BIN || cargoBin("parlor-bot", profile);
/** The frame id of a participant's shared screen: core/types.ts's screenTileId. */
const screenTileId = (id) => 2147483648 + id;

let step = "start";

/** A bot that knocks on `code` at `relayAddr`, silent, with `extra` flags. */
const knock = (name, code, relayAddr, extra) =>
  startBot(botBin, name, code, relayAddr, { audio: "none", extra: ["--join-timeout", "60s", ...extra] });

async function main() {
  requireBuilt(appBin, botBin);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "parlor-e2e-screen-"));
  const env = appEnv(home);
  const { driver, wd, ready } = await startDriver(env);
  const bots = [];
  try {
    step = "launch";
    // A window manager, so that X11 has a window list, and a window to share.
    const windowManager = startProcess("openbox", ["--sm-disable"], { name: "openbox" });
    bots.push(windowManager);
    const windowTitle = "Parlor e2e window";
    const sharedWindow = startProcess("xmessage", ["-title", windowTitle, "-geometry", "480x200+40+40", "A window to share"], { name: "xmessage" });
    bots.push(sharedWindow);
    await ready();
    await launchApp(wd, appBin, "Ada Presenter");
    const { code, relayAddr } = await newMeeting(wd);
    check(/^\d{6}$/.test(code), `meeting code ${code}`);

    step = "a viewer joins";
    const viewer = knock("Bot Viewer", code, relayAddr, []);
    bots.push(viewer);
    await wd.click('[data-testid^="knock-admit-"]', 30_000);
    await waitFor("the viewer in the meeting", () => viewer.lines.some((l) => l.startsWith("JOINED ")), 30_000);

    step = "present the X11 screen";
    await wd.click('[data-testid="btn-present"]');
    await wd.waitVisible('[data-testid="screen-picker"]');
    const source = await waitFor("a screen in the picker, with its thumbnail", () =>
      wd.exec(() => {
        const el = document.querySelector('[data-testid^="screen-source-screen"]');
        const img = el?.querySelector("img");
        return el && img && img.complete && img.naturalWidth > 0 ? el.dataset.testid : null;
      }),
    20_000);
    await wd.click(`[data-testid="${source}"]`);
    await wd.click('[data-testid="btn-share-screen"]');
    await wd.waitVisible('[data-testid="presenting-banner"]', 20_000);
    const presenting = await waitFor("the viewer to see the app present", () => viewer.lines.find((l) => /^PRESENTING id=\d+ on=true$/.test(l)), 20_000);
    const appId = Number(presenting.match(/id=(\d+)/)[1]);
    await waitFor("the viewer to see the app's screen", () => viewer.lines.some((l) => l.startsWith(`SCREEN_SHOWN from=${appId} `)), 30_000);
    saveShot("screen-presenting.png", await wd.screenshot());
    log("the app shares its X11 screen; the bot shows it whole");

    step = "stop presenting";
    await wd.click('[data-testid="btn-stop-presenting"]');
    await waitFor("the viewer to see the share stop", () => viewer.lines.some((l) => l === `PRESENTING id=${appId} on=false`), 20_000);
    await waitFor("the banner to go", () => wd.exec(() => document.querySelector('[data-testid="presenting-banner"]')?.hidden !== false), 10_000);

    step = "present one window";
    const windowViewer = knock("Bot Window Viewer", code, relayAddr, []);
    bots.push(windowViewer);
    await wd.click('[data-testid^="knock-admit-"]', 30_000);
    await waitFor("the window viewer in the meeting", () => windowViewer.lines.some((l) => l.startsWith("JOINED ")), 30_000);
    const size = await waitFor("the window to share, mapped", () => {
      try {
        const info = execFileSync("xwininfo", ["-name", windowTitle], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
        return info.includes("IsViewable") ? info : null;
      } catch {
        return null;
      }
    });
    const [width, height] = ["Width", "Height"].map((k) => Number(size.match(new RegExp(`${k}: (\\d+)`))[1]));
    await wd.click('[data-testid="btn-present"]');
    await wd.waitVisible('[data-testid="screen-picker"]');
    // xmessage sets no _NET_WM_NAME: the picker names it by its application, Xmessage.
    const windowSource = await waitFor("the window in the picker", () =>
      wd.exec(() => {
        const el = [...document.querySelectorAll('[data-testid^="screen-source-window"]')].find((b) => b.textContent.includes("Xmessage"));
        return el ? el.dataset.testid : null;
      }),
    20_000);
    await wd.click(`[data-testid="${windowSource}"]`);
    await wd.click('[data-testid="btn-share-screen"]');
    await wd.waitVisible('[data-testid="presenting-banner"]', 20_000);
    await waitFor("the window viewer to be shown the window", () => windowViewer.lines.some((l) => l.startsWith(`SCREEN_SHOWN from=${appId} `)), 30_000);
    await wd.click('[data-testid="btn-stats"]');
    await waitFor(`the app sending the window at its size, ${width}×${height}`, () =>
      wd.exec((res) => (document.querySelector('[data-testid="stat-screen-out"]')?.textContent ?? "").includes(res), `${width}×${height}`),
    20_000);
    await wd.click('[data-testid="btn-stats"]');
    log(`the app shares one ${width}x${height} window; a bot joining is shown it`);

    step = "the shared window closes";
    await stopProcess(sharedWindow);
    await waitFor("the window viewer to see the share stop", () => windowViewer.lines.some((l) => l === `PRESENTING id=${appId} on=false`), 20_000);
    await waitFor("the app to say why the share stopped", () =>
      wd.exec(() => [...document.querySelectorAll('[data-testid^="toast-"]')].some((t) => t.textContent.includes("window was closed"))),
    20_000);
    await waitFor("the banner to go", () => wd.exec(() => document.querySelector('[data-testid="presenting-banner"]')?.hidden !== false), 10_000);
    log("closing the shared window ended the share");

    step = "a bot presents";
    const presenter = knock("Bot Slides", code, relayAddr, ["--screen", "synthetic"]);
    bots.push(presenter);
    await wd.click('[data-testid^="knock-admit-"]', 30_000);
    const presenterId = Number(
      (await waitFor("the presenter's JOINED line", () => presenter.lines.find((l) => l.startsWith("JOINED ")), 30_000)).match(/participant=(\d+)/)[1],
    );
    await wd.waitVisible(`[data-testid="screen-${presenterId}"]`, 30_000);
    await waitFor("the slides drawn in the app", () =>
      wd.exec((id) => (window.__parlorFps()[id] ?? 0) > 0, screenTileId(presenterId)),
    30_000);
    // The slides are mostly white: the tile shows them once its pixels are light on average.
    const rect = await wd.exec((id) => {
      const r = document.querySelector(`[data-testid="screen-video-${id}"]`).getBoundingClientRect();
      return { x: r.x * devicePixelRatio, y: r.y * devicePixelRatio, w: r.width * devicePixelRatio, h: r.height * devicePixelRatio };
    }, presenterId);
    await waitFor("the slides on the screen tile", async () => {
      const shot = decodePng(await wd.screenshot());
      let sum = 0;
      let n = 0;
      for (let y = Math.round(rect.y); y < Math.round(rect.y + rect.h); y += 4) {
        for (let x = Math.round(rect.x); x < Math.round(rect.x + rect.w); x += 4) {
          const i = (y * shot.width + x) * shot.channels;
          sum += shot.data[i] + shot.data[i + 1] + shot.data[i + 2];
          n += 3;
        }
      }
      return sum / n > 60;
    }, 20_000, 250);
    const layout = await wd.exec((id) => {
      const stage = document.querySelector('[data-testid="stage"]');
      const main = document.querySelector(`[data-testid="screen-${id}"]`).getBoundingClientRect();
      const cameras = [...document.querySelectorAll('[data-testid^="tile-"]')].map((t) => t.getBoundingClientRect());
      return {
        layout: stage.dataset.layout,
        mainArea: main.width * main.height,
        biggestCamera: Math.max(...cameras.map((c) => c.width * c.height)),
        beside: cameras.every((c) => c.left >= main.right - 1 || c.top >= main.bottom - 1),
      };
    }, presenterId);
    check(layout.layout === "sidebar", `the stage's layout: ${layout.layout}`);
    check(layout.mainArea > 4 * layout.biggestCamera, `the presentation is the main tile: ${JSON.stringify(layout)}`);
    check(layout.beside, `the cameras are in a strip beside it: ${JSON.stringify(layout)}`);
    saveShot("screen-main-tile.png", await wd.screenshot());
    log("the bot's slides are the main tile, the cameras in the strip");

    step = "stats";
    await wd.click('[data-testid="btn-stats"]');
    await wd.waitVisible('[data-testid="panel-stats"]');
    await waitFor("the received screen in the stats panel", () =>
      wd.exec(() => /1920\D+1080/.test(document.querySelector('[data-testid="stats-screen-rows"]')?.textContent ?? "")),
    20_000);

    step = "summaries";
    await wd.quit();
    await stopProcess(presenter, "SIGINT");
    const summary = presenter.lines.find((l) => l.startsWith("SUMMARY "));
    check(summary && /screen_updates_sent=[1-9]/.test(summary) && summary.includes("screen_size=1920x1080"), `the presenter's summary: ${summary}`);
    console.log("\nscreen e2e: 1 passed, 0 failed");
  } catch (e) {
    await reportFailure("screen", step, e, { screenshot: async () => wd.id && (await wd.screenshot()), env, procs: [driver, ...bots] });
  } finally {
    await wd.quit().catch(() => {});
    for (const b of bots) await stopProcess(b);
    await stopProcess(driver);
    fs.rmSync(home, { recursive: true, force: true });
  }
}

await main();
