/**
 * The device settings, one way everywhere: the camera, microphone and speaker pickers, the
 * microphone's live level and the voice-processing switches ("Noise cancellation", "Echo
 * cancellation"). The home screen shows them under the preview; in a meeting, the settings
 * panel shows another instance.
 */
import type { Controller } from "../core/controller";
import type { AppState, VoiceSetting } from "../core/state";
import type { Device } from "../core/types";
import { h } from "./dom";
import { icon, type IconName } from "./icons";

type DeviceKind = "camera" | "microphone" | "speaker";

export class DeviceControls {
  readonly el: HTMLElement;
  private readonly selects: Record<DeviceKind, HTMLSelectElement>;
  private readonly voice: Record<VoiceSetting, HTMLInputElement>;
  private readonly meter: HTMLElement;
  private readonly meterFill: HTMLElement;
  private prev: AppState | null = null;

  /** `testidPrefix` tells the instances apart ("" on the home screen, "settings-" in a meeting). */
  constructor(
    private readonly ctl: Controller,
    private readonly testidPrefix: string,
  ) {
    this.selects = {
      camera: this.deviceSelect("camera"),
      microphone: this.deviceSelect("microphone"),
      speaker: this.deviceSelect("speaker"),
    };
    this.voice = { echoCancellation: this.voiceSwitch("echoCancellation"), noiseSuppression: this.voiceSwitch("noiseSuppression") };
    this.meterFill = h("div", { class: "mic-meter-fill" });
    this.meter = h(
      "div",
      {
        class: "mic-meter",
        testid: `${testidPrefix}mic-meter`,
        title: "Microphone level",
        attrs: { role: "meter", "aria-label": "Microphone level", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0" },
      },
      this.meterFill,
    );
    this.el = h(
      "div",
      { class: "device-controls" },
      h(
        "div",
        { class: "device-row" },
        labelled("cam", "Camera", this.selects.camera),
        labelled("mic", "Microphone", this.selects.microphone),
        labelled("speaker", "Speaker", this.selects.speaker),
      ),
      h("div", { class: "mic-row" }, icon("mic", 18), this.meter),
      h(
        "div",
        { class: "voice-row" },
        h("label", { class: "check" }, this.voice.noiseSuppression, h("span", { text: "Noise cancellation" })),
        h("label", { class: "check" }, this.voice.echoCancellation, h("span", { text: "Echo cancellation" })),
      ),
    );
  }

  update(s: AppState): void {
    const p = this.prev;
    this.prev = s;
    // A muted microphone shows an empty meter, as it sends nothing.
    if (!p || p.micLevel !== s.micLevel || p.micOn !== s.micOn) {
      const level = s.micOn ? s.micLevel : null;
      this.showLevel(level?.dbfs ?? null, level?.speaking ?? false);
    }
    if (!p || p.settings !== s.settings) {
      this.voice.echoCancellation.checked = s.settings.echoCancellation;
      this.voice.noiseSuppression.checked = s.settings.noiseSuppression;
    }
    if (!p || p.devices !== s.devices) {
      fillSelect(this.selects.camera, s.devices.cameras, "No camera found");
      fillSelect(this.selects.microphone, s.devices.microphones, "No microphone found");
      fillSelect(this.selects.speaker, s.devices.speakers, "No speaker found");
    }
  }

  /** The meter's bar: -60 dBFS (and below) empty, 0 dBFS full. */
  private showLevel(dbfs: number | null, speaking: boolean): void {
    const percent = dbfs === null ? 0 : Math.round(Math.min(100, Math.max(0, ((dbfs + 60) / 60) * 100)));
    this.meterFill.style.width = `${percent}%`;
    this.meter.setAttribute("aria-valuenow", String(percent));
    this.meter.classList.toggle("speaking", speaking);
  }

  private voiceSwitch(setting: VoiceSetting): HTMLInputElement {
    return h("input", {
      testid: `${this.testidPrefix}${setting === "echoCancellation" ? "check-echo-cancellation" : "check-noise-cancellation"}`,
      attrs: { type: "checkbox" },
      on: { change: (e) => void this.ctl.setSwitch(setting, (e.target as HTMLInputElement).checked) },
    });
  }

  private deviceSelect(kind: DeviceKind): HTMLSelectElement {
    return h("select", {
      class: "device-select",
      testid: `${this.testidPrefix}select-${kind}`,
      attrs: { "aria-label": kind },
      on: {
        change: (e) => void this.ctl.chooseDevice(kind, (e.target as HTMLSelectElement).value),
        // Opening a picker lists devices again, so a camera plugged in just now shows up.
        focus: () => void this.ctl.refreshDevices(),
      },
    });
  }
}

function labelled(iconName: IconName, label: string, select: HTMLSelectElement): HTMLElement {
  return h("label", { class: "device", title: label }, icon(iconName, 18), select);
}

function fillSelect(select: HTMLSelectElement, devices: readonly Device[], empty: string): void {
  const wanted = devices.length ? devices.map((d) => `${d.id}\u0000${d.label}`).join("\u0001") : "";
  if (select.dataset.options !== wanted) {
    select.dataset.options = wanted;
    select.replaceChildren(...(devices.length ? devices.map((d) => h("option", { text: d.label, attrs: { value: d.id } })) : [h("option", { text: empty, attrs: { value: "" } })]));
  }
  select.disabled = devices.length === 0;
  const sel = devices.find((d) => d.selected);
  if (sel && select.value !== sel.id) select.value = sel.id;
}
