// End-to-end test of the host's controls in the built desktop app, against real parlor-bots.
//
// Under Xvfb (run through e2e/run.sh), tauri-driver launches the debug build of parlor-app. The
// app creates a meeting on its embedded relay and, as its host:
//   1. locks the meeting from the People panel: a bot's knock is refused at once with
//      JOIN_REFUSED Locked (the bot exits 2) and the app is never asked;
//   2. unlocks it: a second bot, which raises its hand and reacts every two seconds, knocks and
//      is admitted; the app shows the hand on the bot's tile, in the raised-hands list, and the
//      reactions floating over its tile;
//   3. mutes the bot from the bot's menu in the People panel: the bot prints MUTED_BY_HOST;
//   4. clicks Leave and "End the call for everyone": the bot's session ends with MEETING_ENDED
//      (the reason), and its summary says its microphone is off after one mute.
// Every process it starts is killed, whatever happens.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  appEnv,
  cargoBin,
  check,
  launchApp,
  log,
  newMeeting,
  reportFailure,
  requireBuilt,
  saveShot,
  startBot,
  startDriver,
  stopProcess,
  waitFor,
} from "./lib.mjs";

const profile = process.env.PARLOR_PROFILE || "debug";
const appBin = process.env.PARLOR_APP_BIN || cargoBin("parlor-app", profile);
const botBin = process.env.PARLOR_BOT_BIN || cargoBin("parlor-bot", profile);

let step = "start";

/** A bot that knocks on `code` at `relayAddr` with `extra` flags. */
const knock = (name, code, relayAddr, extra) =>
  startBot(botBin, name, code, relayAddr, { extra: ["--join-timeout", "60s", ...extra] });

async function main() {
  requireBuilt(appBin, botBin);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "parlor-e2e-host-"));
  const env = appEnv(home);
  const { driver, wd, ready } = await startDriver(env);
  const bots = [];
  try {
    step = "launch";
    await ready();
    await launchApp(wd, appBin, "Ada Host");

    step = "create";
    const { code, relayAddr } = await newMeeting(wd);
    check(/^\d{6}$/.test(code), `meeting code ${code}`);
    log(`meeting ${code} on the embedded relay at ${relayAddr}`);

    step = "lock";
    await wd.click('[data-testid="btn-participants"]');
    // The stage makes room for the panel on its next layout; click once nothing covers it.
    await waitFor("the stage beside the panel", () =>
      wd.exec(() => {
        const panel = document.querySelector('[data-testid="panel-participants"]')?.getBoundingClientRect();
        const tiles = [...document.querySelectorAll('[data-testid^="tile-"]')].map((t) => t.getBoundingClientRect());
        return panel && panel.width > 0 && tiles.every((t) => t.right <= panel.left + 1);
      }),
    );
    await wd.click('[data-testid="label-lock"]');
    await wd.waitVisible('[data-testid="locked-badge"]', 10_000);
    const locked = knock("Bot Locked", code, relayAddr, []);
    bots.push(locked);
    await waitFor("the locked bot's refusal", () => locked.lines.some((l) => l.startsWith("JOIN_REFUSED Locked")), 30_000);
    await waitFor("the locked bot to exit", () => locked.exited, 10_000);
    check(locked.exited.code === 2, `the refused bot exits 2, not ${JSON.stringify(locked.exited)}`);
    const knocked = await wd.exec(() => !!document.querySelector('[data-testid^="knock-"]:not([data-testid="knocks"]):not([data-testid="knock-more"])'));
    check(!knocked, "a knock reached the host of a locked meeting");
    log("locked: the knock was refused at once");

    step = "unlock and admit";
    await wd.click('[data-testid="label-lock"]');
    await waitFor("the lock to go", () => wd.exec(() => document.querySelector('[data-testid="locked-badge"]')?.hidden === true), 10_000);
    const bot = knock("Bot Bob", code, relayAddr, ["--raise-hand", "--react", "clap", "--react-every", "2s"]);
    bots.push(bot);
    await wd.click('[data-testid^="knock-admit-"]', 30_000);
    const botId = Number(
      await waitFor("the bot's tile", () =>
        wd.exec(() => {
          const t = [...document.querySelectorAll('[data-testid^="tile-"]')].find((el) => !el.classList.contains("self"));
          return t ? t.dataset.participantId : null;
        }),
      ),
    );
    log(`admitted the bot as participant ${botId}`);

    step = "hand and reaction";
    await wd.waitVisible(`[data-testid="hand-badge-${botId}"]`, 20_000);
    await waitFor("the bot in the raised hands", () =>
      wd.exec(() => document.querySelector('[data-testid="hands-list"]')?.textContent.includes("Bot Bob")),
    );
    await waitFor("the bot's reaction over its tile", () =>
      wd.exec((id) => (document.querySelector(`[data-testid="reactions-${id}"]`)?.textContent ?? "").includes("👏"), botId),
    20_000, 50);
    saveShot("host-controls.png", await wd.screenshot());
    log("the app shows the bot's raised hand and its reaction");

    step = "mute";
    await waitFor("the bot's microphone on", () =>
      wd.exec((id) => document.querySelector(`[data-testid="person-mic-${id}"]`)?.dataset.on === "true", botId),
    20_000);
    await wd.click(`[data-testid="person-menu-${botId}"]`);
    await wd.click(`[data-testid="menu-mute-${botId}"]`);
    await waitFor("the bot to hear it was muted", () => bot.lines.some((l) => l.startsWith("MUTED_BY_HOST")), 20_000);
    await waitFor("the bot shown muted", () =>
      wd.exec((id) => document.querySelector(`[data-testid="person-mic-${id}"]`)?.dataset.on === "false", botId),
    );
    log("muted the bot");

    step = "end for everyone";
    await wd.click('[data-testid="btn-leave"]');
    await wd.click('[data-testid="btn-end-for-all"]');
    await wd.waitVisible('[data-testid="screen-ended"]');
    const title = await wd.text('[data-testid="ended-title"]');
    check(title.includes("You ended the meeting for everyone"), `ended screen: ${title}`);
    await waitFor("the bot's MEETING_ENDED", () => bot.lines.some((l) => l.startsWith("MEETING_ENDED by=")), 20_000);
    await waitFor("the bot to exit", () => bot.exited, 20_000);
    check(bot.exited.code === 0, `the bot ends normally when the meeting is ended: ${JSON.stringify(bot.exited)}`);
    const summary = bot.lines.find((l) => l.startsWith("SUMMARY "));
    check(summary && summary.includes("mic_on=false") && summary.includes("muted_by_host=1"), `the bot's summary: ${summary}`);
    log("the host ended the meeting; the bot's session ended with MEETING_ENDED, muted");
    await wd.quit();
    console.log("\nhost e2e: 1 passed, 0 failed");
  } catch (e) {
    await reportFailure("host", step, e, { screenshot: async () => wd.id && (await wd.screenshot()), env, procs: [driver, ...bots] });
  } finally {
    await wd.quit().catch(() => {});
    for (const b of bots) await stopProcess(b);
    await stopProcess(driver);
    fs.rmSync(home, { recursive: true, force: true });
  }
}

await main();
