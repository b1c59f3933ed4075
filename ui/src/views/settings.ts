/**
 * The settings panel of the meeting: the same device settings as the home screen (pickers,
 * the microphone's live level, "Noise cancellation" and "Echo cancellation"), changed while
 * the call goes on, and the notification switches: desktop notifications while the window is
 * in the background (on by default) and join/leave/knock sounds (off by default).
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
  private readonly notifications: HTMLInputElement;
  private readonly sounds: HTMLInputElement;

  constructor(ctl: Controller, store: Store) {
    this.devices = new DeviceControls(ctl, "settings-");
    const toggle = (setting: "notifications" | "sounds") =>
      h("input", {
        testid: `check-${setting}`,
        attrs: { type: "checkbox" },
        on: { change: (e) => void ctl.setSwitch(setting, (e.target as HTMLInputElement).checked) },
      });
    this.notifications = toggle("notifications");
    this.sounds = toggle("sounds");
    this.el = h(
      "section",
      { class: "panel settings-panel", testid: "panel-settings" },
      panelHeader("Settings", store),
      h(
        "div",
        { class: "panel-scroll" },
        h("h3", { class: "section-title", text: "Audio and video" }),
        this.devices.el,
        h("h3", { class: "section-title", text: "Notifications" }),
        h(
          "div",
          { class: "voice-row" },
          h("label", { class: "check" }, this.notifications, h("span", { text: "Desktop notifications when Parlor is in the background" })),
          h("label", { class: "check" }, this.sounds, h("span", { text: "Sounds when people join, leave or ask to join" })),
        ),
      ),
    );
  }

  update(s: AppState, open: boolean): void {
    show(this.el, open);
    if (!open) return;
    this.devices.update(s);
    this.notifications.checked = s.settings.notifications;
    this.sounds.checked = s.settings.sounds;
  }
}
