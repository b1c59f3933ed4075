// Package test of the desktop app: what a person on Debian or Ubuntu installs.
//
// Run by `bash e2e/run.sh package` (under Xvfb and a private D-Bus session), after
// `tauri build --debug --bundles deb,rpm` made the packages from the end-to-end build. It checks
// the .deb's and the .rpm's name, version, dependencies and files; installs the .deb with
// `apt-get install ./…deb`; reads the installed desktop entry (valid, registered for `parlor:`
// links) and starts the *installed* binary from its Exec line, with an invitation link for `%u`
// as a browser or mail client would, over WebDriver: the home screen appears, drawn (not
// blank), with Join filled in from the link. A second launch with another link, as a click
// while Parlor runs would make, hands the link to the running app and exits at once; the running
// app's form then shows it. Finally the package is removed and its files are gone. The package
// is removed even when a step fails.

import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  WebDriver,
  appEnv,
  check,
  decodePng,
  distinctColours,
  freePort,
  log,
  repo,
  saveShot,
  startProcess,
  stopProcess,
  targetDir,
  tauriDriverPath,
  waitFor,
  waitForPort,
} from "./lib.mjs";

const conf = JSON.parse(fs.readFileSync(path.join(repo, "src-tauri", "tauri.conf.json"), "utf8"));
const version = conf.version;
const bundleDir = path.join(targetDir, process.env.PARLOR_PROFILE || "debug", "bundle");
const debFile = path.join(bundleDir, "deb", `${conf.productName}_${version}_amd64.deb`);
const rpmFile = path.join(bundleDir, "rpm", `${conf.productName}-${version}-1.x86_64.rpm`);
const PACKAGE = "parlor";
const DESKTOP_ENTRY = `/usr/share/applications/${conf.productName}.desktop`;
const FINGERPRINT = "5e".repeat(32);
// Loopback addresses: the app only reads the link; nothing connects until Join is clicked.
const FIRST_LINK = `parlor://join?relay=127.0.0.1%3A7001&code=314159&fp=${FINGERPRINT}`;
const SECOND_LINK = "parlor://join?relay=127.0.0.1%3A7002&code=271828";

let step = "start";

/** Runs a command as root (this process, or through sudo) and returns its output. */
function asRoot(cmd, args) {
  const [c, a] = process.getuid() === 0 ? [cmd, args] : ["sudo", [cmd, ...args]];
  return execFileSync(c, a, { encoding: "utf8", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
}

function installed() {
  const r = spawnSync("dpkg-query", ["-W", "-f=${Status}", PACKAGE], { encoding: "utf8" });
  return r.status === 0 && r.stdout.includes("install ok installed");
}

function checkDeb() {
  const field = (name) => execFileSync("dpkg-deb", ["-f", debFile, name], { encoding: "utf8" }).trim();
  check(field("Package") === PACKAGE, `package name ${field("Package")}`);
  check(field("Version") === version, `package version ${field("Version")} (tauri.conf.json has ${version})`);
  const depends = field("Depends").split(",").map((d) => d.trim());
  for (const dep of ["libwebkit2gtk-4.1-0", "libgtk-3-0", "libasound2", "libgbm1"]) check(depends.includes(dep), `the .deb depends on ${dep}: ${depends.join(", ")}`);
  check(field("Description").startsWith(conf.bundle.shortDescription), `description: ${field("Description")}`);
  const files = execFileSync("dpkg-deb", ["-c", debFile], { encoding: "utf8" });
  for (const f of ["usr/bin/parlor-app", `usr/share/applications/${conf.productName}.desktop`, "usr/share/icons/hicolor/128x128/apps/parlor-app.png"]) {
    check(files.includes(f), `the .deb holds ${f}`);
  }
  log(`.deb ${path.basename(debFile)}: ${PACKAGE} ${version}, depends ${depends.join(", ")}`);
}

function checkRpm() {
  const query = (...args) => execFileSync("rpm", ["-qp", ...args, rpmFile], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  const nameVersion = query("--queryformat", "%{NAME} %{VERSION}").trim();
  check(nameVersion === `${PACKAGE} ${version}`, `rpm name and version: ${nameVersion}`);
  const requires = query("-R");
  for (const dep of ["libwebkit2gtk-4.1.so.0()(64bit)", "libgtk-3.so.0()(64bit)", "alsa-lib"]) check(requires.includes(dep), `the .rpm requires ${dep}: ${requires}`);
  const files = query("-l");
  for (const f of ["/usr/bin/parlor-app", `/usr/share/applications/${conf.productName}.desktop`]) check(files.includes(f), `the .rpm holds ${f}`);
  log(`.rpm ${path.basename(rpmFile)}: ${nameVersion}`);
}

/** The desktop entry's `Key=value` lines. */
function desktopEntry() {
  const entry = {};
  for (const line of fs.readFileSync(DESKTOP_ENTRY, "utf8").split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) entry[line.slice(0, i)] = line.slice(i + 1);
  }
  return entry;
}

/** The Exec line as argv, `%u` replaced by `link` (the desktop entry spec's field code). */
function execArgv(exec, link) {
  const argv = exec.split(/\s+/).filter(Boolean).map((a) => (a === "%u" ? link : a));
  check(argv.includes(link), `Exec takes the link (%u): ${exec}`);
  const program = argv[0].includes("/")
    ? argv[0]
    : (process.env.PATH ?? "").split(":").map((d) => path.join(d, argv[0])).find((p) => fs.existsSync(p));
  check(program, `${argv[0]} is on PATH`);
  return [program, ...argv.slice(1)];
}

const formValue = (session, id) => session.exec((sel) => document.querySelector(sel)?.value ?? null, `[data-testid="${id}"]`);

async function main() {
  check(process.env.DBUS_SESSION_BUS_ADDRESS, "no D-Bus session: run through `bash e2e/run.sh package` (dbus-run-session)");
  for (const [what, file] of [
    ["the .deb (tauri build --debug --bundles deb,rpm)", debFile],
    ["the .rpm (tauri build --debug --bundles deb,rpm)", rpmFile],
    ["tauri-driver (cargo install tauri-driver --locked)", tauriDriverPath()],
  ]) {
    check(fs.existsSync(file), `missing ${what}: ${file}`);
  }
  step = "package contents";
  checkDeb();
  checkRpm();

  const home = fs.mkdtempSync(path.join(os.tmpdir(), "parlor-e2e-package-"));
  const env = appEnv(home);
  let driver = null;
  const session = { wd: null };
  try {
    step = "install";
    if (installed()) asRoot("apt-get", ["remove", "-y", "-qq", PACKAGE]);
    asRoot("apt-get", ["install", "-y", "-qq", "--no-install-recommends", debFile]);
    check(installed(), "dpkg lists the package as installed");
    const ldd = execFileSync("ldd", ["/usr/bin/parlor-app"], { encoding: "utf8" });
    check(!ldd.includes("not found"), `every library of the installed binary is there:\n${ldd}`);

    step = "desktop entry";
    const validate = spawnSync("desktop-file-validate", [DESKTOP_ENTRY], { encoding: "utf8" });
    check(validate.status === 0, `desktop-file-validate: ${validate.stdout}${validate.stderr}`);
    const entry = desktopEntry();
    check(entry.Name === conf.productName, `Name=${entry.Name}`);
    check((entry.MimeType ?? "").split(";").includes("x-scheme-handler/parlor"), `MimeType registers parlor: links: ${entry.MimeType}`);
    const argv = execArgv(entry.Exec, FIRST_LINK);
    log(`installed; the desktop entry starts: ${argv.join(" ")}`);

    step = "start from the desktop entry with a link";
    const port = await freePort();
    const nativePort = await freePort();
    driver = startProcess(tauriDriverPath(), ["--port", String(port), "--native-port", String(nativePort), "--native-driver", "/usr/bin/WebKitWebDriver"], { env, name: "tauri-driver" });
    await waitForPort(port);
    await waitForPort(nativePort);
    session.wd = new WebDriver(`http://127.0.0.1:${port}`);
    await session.wd.start(argv[0], argv.slice(1));
    const wd = session.wd;
    await wd.waitVisible('[data-testid="screen-home"]', 30_000);
    await waitFor("Join filled in from the link", async () => (await formValue(wd, "input-code")) === "314159");
    check((await formValue(wd, "input-relay")) === "127.0.0.1:7001", `relay from the link: ${await formValue(wd, "input-relay")}`);
    await wd.waitVisible('[data-testid="home-invited"]');
    const png = await wd.screenshot();
    saveShot("package-home.png", png);
    const img = decodePng(png);
    const colours = distinctColours(img, 0, 0, img.width, img.height);
    check(colours >= 8, `the home screen is drawn, not blank: ${colours} colours`);
    log(`the installed app shows its home screen (${img.width}x${img.height}, ${colours} colours) with the link's meeting filled in`);

    step = "a second launch hands its link to the running app";
    const second = startProcess(argv[0], execArgv(entry.Exec, SECOND_LINK).slice(1), { env, name: "parlor-app (second)" });
    const exited = await waitFor("the second launch to exit", () => second.exited, 20_000);
    check(exited.code === 0, `the second launch exits 0: ${JSON.stringify(exited)}\n${second.lines.join("\n")}`);
    await waitFor("the running app to take the second link", async () => (await formValue(wd, "input-code")) === "271828");
    check((await formValue(wd, "input-relay")) === "127.0.0.1:7002", "relay from the second link");
    log("a second launch with another link exited and the running app filled it in");

    step = "quit";
    await wd.quit();
    session.wd = null;
  } finally {
    if (session.wd) await session.wd.quit().catch(() => {});
    await stopProcess(driver);
    if (installed()) {
      step = `remove (after: ${step})`;
      asRoot("apt-get", ["remove", "-y", "-qq", PACKAGE]);
    }
  }
  check(!installed(), "the package is removed");
  check(!fs.existsSync("/usr/bin/parlor-app") && !fs.existsSync(DESKTOP_ENTRY), "its files are gone");
  log("removed; /usr/bin/parlor-app and the desktop entry are gone");
  fs.rmSync(home, { recursive: true, force: true });
}

main().then(
  () => {
    log("package test passed");
    process.exit(0);
  },
  (e) => {
    console.error(`package test failed at "${step}": ${e?.stack ?? e}`);
    process.exit(1);
  },
);
