/**
 * The root view: mounts every screen once, shows the one the state asks for, moves the camera
 * preview between home and waiting room, and routes file drops and keyboard shortcuts.
 */
import type { Controller } from "../core/controller";
import type { Ipc } from "../core/ipc";
import { isApplePlatform, shortcutFor } from "../core/shortcuts";
import type { AppState, Screen } from "../core/state";
import type { Store } from "../core/store";
import { Alerts } from "./alerts";
import { h, show } from "./dom";
import { EndedView } from "./ended";
import { HomeView } from "./home";
import { MeetingView } from "./meeting";
import { Overlays } from "./overlays";
import { PreviewView } from "./preview";
import { ScreenPickerView } from "./screen-picker";
import type { VideoHub } from "./video";
import { WaitingView } from "./waiting";

export class AppView {
  private readonly home: HomeView;
  private readonly waiting: WaitingView;
  private readonly meeting: MeetingView;
  private readonly ended: EndedView;
  private readonly preview: PreviewView;
  private readonly overlays: Overlays;
  private readonly screenPicker: ScreenPickerView;
  private readonly screens: Record<Screen, HTMLElement>;
  private shown: Screen | null = null;

  constructor(
    root: HTMLElement,
    private readonly store: Store,
    private readonly ctl: Controller,
    hub: VideoHub,
  ) {
    const apple = isApplePlatform(navigator.platform);
    this.preview = new PreviewView(ctl, hub, apple);
    this.home = new HomeView(ctl, store);
    this.waiting = new WaitingView(ctl);
    this.meeting = new MeetingView(ctl, store, hub);
    this.ended = new EndedView(ctl);
    this.overlays = new Overlays(ctl, store);
    this.screenPicker = new ScreenPickerView(ctl, store);
    this.screens = { home: this.home.el, waiting: this.waiting.el, meeting: this.meeting.el, ended: this.ended.el };
    root.replaceChildren(
      h("div", { class: "app" }, this.home.el, this.waiting.el, this.meeting.el, this.ended.el),
      this.overlays.knocks,
      this.overlays.toasts,
      this.overlays.dialog,
      this.overlays.leaveDialog,
      this.overlays.requestDialog,
      this.screenPicker.el,
      this.overlays.drop,
    );
    new Alerts(store, ctl);
    store.subscribe((s) => this.render(s));
    this.render(store.state);
    document.addEventListener("keydown", (e) => {
      const action = shortcutFor(e, apple);
      if (!action) return;
      // Ctrl+D would bookmark and Ctrl+E focus the address bar in a browser.
      if (action !== "closePanel") e.preventDefault();
      void ctl.shortcut(action);
    });
  }

  /** Wires native file drops: anywhere on the window during a meeting sends the files. */
  async listenForDrops(ipc: Ipc): Promise<void> {
    await ipc.onFileDrop({
      enter: () => this.overlays.dragging(this.store.state.screen === "meeting"),
      leave: () => this.overlays.dragging(false),
      drop: (paths) => {
        this.overlays.dragging(false);
        if (this.store.state.screen !== "meeting") return;
        // Dropping a file opens the chat, where its progress shows.
        if (this.store.state.panel !== "chat") this.store.dispatch({ type: "panelToggled", panel: "chat" });
        void this.ctl.sendFiles(paths);
      },
    });
  }

  /** Once-a-second housekeeping: expire toasts, move the clock. */
  tick(): void {
    this.store.dispatch({ type: "tick" });
    this.meeting.tick();
  }

  private render(s: AppState): void {
    if (this.shown !== s.screen) {
      for (const [name, el] of Object.entries(this.screens)) show(el, name === s.screen);
      if (s.screen === "home") {
        this.home.adopt(this.preview);
        this.preview.attach();
        queueMicrotask(() => this.home.focus());
      } else if (s.screen === "waiting") {
        this.waiting.adopt(this.preview);
        this.preview.attach();
      } else this.preview.detach();
      this.shown = s.screen;
    }
    this.preview.update(s);
    if (s.screen === "home") this.home.update(s);
    if (s.screen === "waiting") this.waiting.update(s);
    if (s.screen === "ended") this.ended.update(s);
    this.meeting.update(s);
    this.overlays.update(s);
    this.screenPicker.update(s);
  }
}
