// End-to-end test of the desktop app surviving a dead network path, driven over WebDriver.
//
// Under Xvfb (run through e2e/run.sh, after app.e2e.mjs), it starts a standalone relay
// (`relay-server`, on 127.0.0.1) and `parlor-bot create --auto-admit` sending the test pattern and
// a tone on it; the app joins from the bot's invitation, rewritten to go through a path on
// 127.0.0.2 that the test can black-hole (TCP held, UDP dropped: e2e/lib.mjs BlackHolePath).
// With the bot's video drawing in the app, the path goes dead for 5 s: the page must show the
// "Reconnecting…" banner with the seconds elapsed, and once the path is back the banner must go
// and the bot's video draw new frames again, in the same meeting (the app still in its seat,
// the bot never told it left). A screenshot of the banner goes to e2e/screenshots/ (and to
// docs/screenshots/ with UPDATE_DOCS_SCREENSHOTS=1). Every process it starts is killed.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  BlackHolePath,
  appEnv,
  cargoBin,
  check,
  freePort,
  log,
  reportFailure,
  requireBuilt,
  saveShot,
  selectHeadlessDevices,
  sleep,
  startDriver,
  startProcess,
  stopProcess,
  waitFor,
} from "./lib.mjs";

const profile = process.env.PARLOR_PROFILE || "debug";
const appBin = process.env.PARLOR_APP_BIN || cargoBin("parlor-app", profile);
const botBin = process.env.PARLOR_BOT_BIN || cargoBin("parlor-bot", profile);
const relayBin = process.env.PARLOR_RELAY_BIN || cargoBin("relay-server", profile);
/** How long the path stays dead. */
const CUT_MS = 5000;

let step = "start";

/** Frames per second the page draws for participant `id` now. */
const fpsOf = async (wd, id) => (await wd.exec(() => window.__parlorFps()))[id] ?? 0;

async function main() {
  requireBuilt(appBin, botBin, [["relay-server (cargo build -p relay-server)", relayBin]]);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "parlor-e2e-reconnect-"));
  const env = appEnv(home);

  let relay = null;
  let bot = null;
  let blackHole = null;
  let driver = null;
  const wd = { id: null };
  try {
    step = "relay";
    const [tcpPort, udpPort] = [await freePort(), await freePort()];
    relay = startProcess(relayBin, [
      "--host", "127.0.0.1", "--tcp-port", String(tcpPort), "--udp-port", String(udpPort),
      "--data-dir", path.join(home, "relay"),
    ], { env: { ...process.env, RUST_LOG: "info" }, name: "relay-server" });
    await waitFor("the relay to listen", () => relay.lines.some((l) => l.startsWith("parlor relay listening")));
    blackHole = await BlackHolePath.start({ tcpPort, udpPort });
    log(`relay on 127.0.0.1:${tcpPort} (udp ${udpPort}); the app's path through ${blackHole.addr}`);

    step = "bot creates";
    bot = startProcess(botBin, [
      "create", "--relay", `127.0.0.1:${tcpPort}`, "--name", "Bot Host", "--auto-admit",
      "--video", "synthetic", "--audio", "tone", "--duration", "120s",
    ], { env: { ...process.env, RUST_LOG: "info" }, name: "parlor-bot" });
    const invite = await waitFor("the bot's invitation", () => {
      const line = bot.lines.find((l) => l.startsWith("INVITE "));
      return line ? line.slice("INVITE ".length).trim() : null;
    });
    // The same relay and certificate, reached through the path.
    const viaPath = invite.replace(/relay=[^&]+/, `relay=${encodeURIComponent(blackHole.addr)}`);
    check(viaPath !== invite, `an invitation with a relay: ${invite}`);

    step = "app joins";
    const started = await startDriver(env);
    driver = started.driver;
    const session = started.wd;
    Object.assign(wd, { session });
    await started.ready();
    await session.start(appBin);
    wd.id = session.id;
    await session.setTimeouts(15_000);
    await session.waitVisible('[data-testid="screen-home"]');
    await selectHeadlessDevices(session);
    await session.type('[data-testid="input-name"]', "Ada Away");
    // Pasted, as people do.
    await session.exec((text) => {
      const data = new DataTransfer();
      data.setData("text/plain", text);
      const field = document.querySelector('[data-testid="input-code"]');
      field.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
    }, viaPath);
    await waitFor("the invitation to fill in the form", () =>
      session.exec((addr) => document.querySelector('[data-testid="input-relay"]')?.value === addr, blackHole.addr),
    );
    await session.click('[data-testid="btn-join"]');
    await session.waitVisible('[data-testid="screen-meeting"]', 30_000);
    const botId = Number(await waitFor("the bot's tile", () =>
      session.exec(() => {
        const t = [...document.querySelectorAll('[data-testid^="tile-"]')].find((el) => !el.classList.contains("self"));
        return t ? t.dataset.participantId : null;
      }),
    ));
    await waitFor("the bot's video to draw", async () => (await fpsOf(session, botId)) >= 5, 30_000);
    const selfId = await session.exec(() => document.querySelector('[data-testid^="tile-"].self')?.dataset.participantId ?? null);
    check(selfId !== null, "the app's own tile names its participant id");
    log(`in the meeting as participant ${selfId}, the bot's video drawing`);

    step = "path dead";
    blackHole.blackHole();
    const cutAt = Date.now();
    await session.waitVisible('[data-testid="reconnecting-banner"]', 15_000);
    const bannerAfter = Date.now() - cutAt;
    // The seconds elapsed tick on.
    const first = await session.text('[data-testid="reconnecting-banner"]');
    await waitFor("the banner's seconds to tick", async () => (await session.text('[data-testid="reconnecting-banner"]')) !== first, 5000);
    const banner = await session.text('[data-testid="reconnecting-banner"]');
    check(/Reconnecting/.test(banner) && /\d+\s*s/.test(banner), `the banner says: ${banner}`);
    log(`banner after ${bannerAfter} ms: "${banner}"`);
    saveShot("reconnecting.png", await session.screenshot());
    await sleep(Math.max(0, cutAt + CUT_MS - Date.now()));
    const fpsDuringCut = await fpsOf(session, botId);
    check(fpsDuringCut === 0, `the bot's video still drew at ${fpsDuringCut} fps through a dead path`);

    step = "path back";
    blackHole.restore();
    const restoredAt = Date.now();
    await waitFor("the banner to go", () =>
      session.exec(() => {
        const b = document.querySelector('[data-testid="reconnecting-banner"]');
        return !b || b.offsetParent === null;
      }),
    30_000);
    const bannerGone = Date.now() - restoredAt;
    await waitFor("the bot's video to draw again", async () => (await fpsOf(session, botId)) >= 5, 30_000);
    const videoBack = Date.now() - restoredAt;
    check(await session.exec(() => !!document.querySelector('[data-testid="screen-meeting"]')), "still in the meeting");
    const selfAfter = await session.exec(() => document.querySelector('[data-testid^="tile-"].self')?.dataset.participantId ?? null);
    check(selfAfter === selfId, `the same seat: participant ${selfId} before, ${selfAfter} after`);
    check(!bot.lines.some((l) => l.startsWith("PARTICIPANT_LEFT")), "the bot was never told the app left");
    log(`back: banner gone ${bannerGone} ms, the bot's video at 5 fps again ${videoBack} ms after the path returned`);

    step = "leave";
    await session.click('[data-testid="btn-leave"]');
    await session.waitVisible('[data-testid="screen-ended"]');
    await session.quit();
    console.log("\nreconnect e2e: 1 passed, 0 failed");
  } catch (e) {
    await reportFailure("reconnect", step, e, { screenshot: async () => wd.id && (await wd.session.screenshot()), env, procs: [driver, bot, relay] });
  } finally {
    if (wd.session) await wd.session.quit().catch(() => {});
    blackHole?.close();
    await stopProcess(bot);
    await stopProcess(driver);
    await stopProcess(relay);
    fs.rmSync(home, { recursive: true, force: true });
  }
}

await main();
