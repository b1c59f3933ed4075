/**
 * The settings panel of the meeting: the same device settings as the home screen (pickers,
 * the microphone's live level, "Noise cancellation" and "Echo cancellation"), changed while
 * the call goes on.
 */
import type { Controller } from "../core/controller";
import type { AppState } from "../core/state";
import type { Store } from "../core/store";
import { panelHeader } from "./chat";
import { DeviceControls } from "./devices";
import { h, show } from "./dom";

export class SettingsPanel {
  readonly el: HTMLElement;
  private readonly devices: DeviceControls;

  constructor(ctl: Controller, store: Store) {
    this.devices = new DeviceControls(ctl, "settings-");
    this.el = h(
      "section",
      { class: "panel settings-panel", testid: "panel-settings" },
      panelHeader("Settings", store),
      h("div", { class: "panel-scroll" }, h("h3", { class: "section-title", text: "Audio and video" }), this.devices.el),
    );
  }

  update(s: AppState, open: boolean): void {
    show(this.el, open);
    if (open) this.devices.update(s);
  }
}
