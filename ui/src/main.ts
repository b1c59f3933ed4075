/**
 * Parlor's page: wires the store, the controller, the IPC to the Tauri shell, the video hub and
 * the views. `window.__parlorFps()` reports frames drawn per second per participant, for the
 * benchmark that drives the built app; `window.__parlorCspViolations` lists what the content
 * security policy (src-tauri/tauri.conf.json) blocked, for the end-to-end test, which fails on any.
 */
import "./styles.css";
import { Controller } from "./core/controller";
import { toAppError } from "./core/errors";
import { tauriIpc } from "./core/ipc";
import { Store } from "./core/store";
import { AppView } from "./views/app";
import { VideoHub } from "./views/video";

declare global {
  interface Window {
    /** Frames drawn per second over the last second, keyed by video id (0 = own camera; a
     * shared screen under its `screenTileId`). */
    __parlorFps?: () => Record<number, number>;
    /** What the content security policy blocked since the page loaded ("directive: what"). */
    __parlorCspViolations?: string[];
  }
}

// First, so nothing the page does later goes unseen.
const cspViolations: string[] = [];
window.__parlorCspViolations = cspViolations;
document.addEventListener("securitypolicyviolation", (e) => {
  const what = `${e.effectiveDirective}: ${e.blockedURI || "inline"}`;
  cspViolations.push(what);
  console.error(`blocked by the content security policy: ${what}`);
});

const root = document.querySelector<HTMLDivElement>("#app");
if (!root) throw new Error("index.html has no #app");

const ipc = tauriIpc();
const store = new Store();
const ctl = new Controller(store, ipc);
const hub = new VideoHub(ipc);
const view = new AppView(root, store, ctl, hub);
window.__parlorFps = () => hub.fps();
setInterval(() => view.tick(), 1000);

async function boot(): Promise<void> {
  const steps = await Promise.allSettled([hub.start(), view.listenForDrops(ipc), ctl.start()]);
  for (const step of steps) {
    if (step.status === "rejected") {
      console.error("start-up step failed", step.reason);
      store.dispatch({ type: "commandFailed", error: toAppError(step.reason instanceof Error ? step.reason.message : step.reason) });
    }
  }
}

void boot();
