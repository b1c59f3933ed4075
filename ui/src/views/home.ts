/**
 * The home screen: name, "New meeting", join with a code and a relay address, the camera
 * preview, the device pickers, the microphone's level and the voice-processing switches.
 */
import type { Controller } from "../core/controller";
import { groupedFingerprint } from "../core/errors";
import { normalizeCode } from "../core/format";
import type { AppState } from "../core/state";
import type { Store } from "../core/store";
import { h, setText, show } from "./dom";
import { DeviceControls } from "./devices";
import { icon } from "./icons";
import type { PreviewView } from "./preview";

export class HomeView {
  readonly el: HTMLDivElement;
  readonly previewSlot: HTMLDivElement;
  private readonly name: HTMLInputElement;
  private readonly code: HTMLInputElement;
  private readonly relay: HTMLInputElement;
  private readonly hostOnRelay: HTMLInputElement;
  private readonly create: HTMLButtonElement;
  private readonly join: HTMLButtonElement;
  private readonly error: HTMLDivElement;
  private readonly errorTitle: HTMLElement;
  private readonly errorDetail: HTMLElement;
  private readonly trustFingerprint: HTMLElement;
  private readonly trust: HTMLButtonElement;
  private readonly invited: HTMLElement;
  private readonly updateBar: HTMLElement;
  private readonly updateText: HTMLElement;
  private readonly updateButton: HTMLButtonElement;
  private readonly devices: DeviceControls;
  private prev: AppState | null = null;

  constructor(
    private readonly ctl: Controller,
    store: Store,
  ) {
    const input = (field: "name" | "code" | "relayAddr") => (e: Event) => {
      const value = (e.target as HTMLInputElement).value;
      if (value.includes("parlor://")) void this.ctl.readInvitation(value);
      else store.dispatch({ type: "homeInput", field, value });
    };
    // An invitation pasted into the code or address field fills in both, and the certificate.
    const paste = (e: ClipboardEvent) => {
      const text = e.clipboardData?.getData("text") ?? "";
      if (!text.includes("parlor://")) return;
      e.preventDefault();
      void this.ctl.readInvitation(text);
    };
    this.name = h("input", {
      class: "field",
      testid: "input-name",
      attrs: { placeholder: "Your name", maxlength: "64", autocomplete: "name", "aria-label": "Your name" },
      on: { input: input("name") },
    });
    this.code = h("input", {
      class: "field",
      testid: "input-code",
      attrs: { placeholder: "Code or invitation", inputmode: "numeric", maxlength: "9", "aria-label": "Meeting code or invitation" },
      on: { input: input("code"), paste: (e) => paste(e as ClipboardEvent), keydown: (e) => e.key === "Enter" && void this.ctl.joinMeeting() },
    });
    this.relay = h("input", {
      class: "field",
      testid: "input-relay",
      attrs: { placeholder: "Relay address, e.g. 192.168.1.20:7878", "aria-label": "Relay address", spellcheck: "false" },
      on: { input: input("relayAddr"), paste: (e) => paste(e as ClipboardEvent), keydown: (e) => e.key === "Enter" && void this.ctl.joinMeeting() },
    });
    this.hostOnRelay = h("input", {
      testid: "check-host-on-relay",
      attrs: { type: "checkbox" },
      on: { change: (e) => store.dispatch({ type: "homeHostOnRelay", on: (e.target as HTMLInputElement).checked }) },
    });
    this.create = h(
      "button",
      { class: "btn btn-primary btn-large", testid: "btn-new-meeting", on: { click: () => void this.ctl.createMeeting() } },
      icon("newMeeting", 20),
      h("span", { text: "New meeting" }),
    );
    this.join = h("button", { class: "btn btn-text btn-large", testid: "btn-join", text: "Join", on: { click: () => void this.ctl.joinMeeting() } });
    this.errorTitle = h("strong");
    this.errorDetail = h("span");
    this.trustFingerprint = h("code", { class: "fingerprint", testid: "trust-fingerprint" });
    this.trust = h("button", {
      class: "btn btn-small btn-outline",
      testid: "btn-trust-certificate",
      text: "Trust the new certificate",
      on: { click: () => void this.ctl.trustNewCertificate() },
    });
    this.error = h(
      "div",
      { class: "form-error", testid: "home-error", attrs: { role: "alert" } },
      icon("error", 20),
      h("div", {}, this.errorTitle, this.errorDetail, this.trustFingerprint, this.trust),
    );
    this.invited = h("p", { class: "invited", testid: "home-invited", text: "From an invitation: only the invited relay's certificate is accepted." });
    this.updateText = h("span", { class: "update-text", testid: "update-text" });
    this.updateButton = h("button", {
      class: "btn btn-small btn-primary",
      testid: "btn-install-update",
      text: "Update and restart",
      on: { click: () => void this.ctl.installUpdate() },
    });
    this.updateBar = h("div", { class: "update-bar", testid: "update-bar", attrs: { role: "status" } }, icon("download", 20), this.updateText, this.updateButton);
    this.devices = new DeviceControls(ctl, "");
    this.previewSlot = h("div", { class: "preview-slot" });
    this.el = h(
      "div",
      { class: "screen home", testid: "screen-home" },
      h("header", { class: "topbar" }, h("div", { class: "logo" }, h("span", { class: "logo-mark" }, icon("cam", 22)), h("span", { class: "logo-text", text: "Parlor" }))),
      h(
        "main",
        { class: "home-main" },
        h(
          "section",
          { class: "home-left" },
          this.previewSlot,
          this.devices.el,
        ),
        h(
          "section",
          { class: "home-right" },
          this.updateBar,
          h("h1", { text: "Video meetings on your own network" }),
          h("p", { class: "lede", text: "Host a meeting from this computer, or join one with its code and relay address." }),
          h("label", { class: "field-label", text: "Your name" }),
          this.name,
          h("div", { class: "home-actions" }, this.create),
          h("label", { class: "check" }, this.hostOnRelay, h("span", { text: "Host on the relay address below instead of this computer" })),
          h("div", { class: "divider" }, h("span", { text: "or join a meeting" })),
          h("div", { class: "join-row" }, h("span", { class: "field-icon" }, icon("keyboard", 20)), this.code),
          h("div", { class: "join-row" }, h("span", { class: "field-icon" }, icon("lan", 20)), this.relay),
          this.invited,
          h("div", { class: "home-actions" }, this.join),
          this.error,
        ),
      ),
    );
  }

  /** Mounts the preview in this screen. */
  adopt(preview: PreviewView): void {
    if (preview.el.parentElement !== this.previewSlot) this.previewSlot.append(preview.el);
  }

  focus(): void {
    (this.name.value ? this.code : this.name).focus();
  }

  update(s: AppState): void {
    const p = this.prev;
    this.prev = s;
    this.devices.update(s);
    if (p && p.home === s.home && p.devices === s.devices) return;
    syncInput(this.name, s.home.name);
    syncInput(this.code, s.home.code);
    syncInput(this.relay, s.home.relayAddr);
    this.hostOnRelay.checked = s.home.hostOnRelay;
    const busy = s.home.busy !== null;
    this.create.disabled = busy;
    this.join.disabled = busy || s.home.code.trim().length === 0;
    this.create.classList.toggle("busy", s.home.busy === "create");
    this.join.classList.toggle("busy", s.home.busy === "join");
    setText(this.join, s.home.busy === "join" ? "Joining…" : normalizeCode(s.home.code) ? "Ask to join" : "Join");
    const err = s.home.error;
    show(this.error, err !== null);
    setText(this.errorTitle, err?.title ?? "");
    setText(this.errorDetail, err?.detail ?? "");
    const offer = s.home.trustOffer;
    show(this.trust, offer !== null);
    show(this.trustFingerprint, offer !== null);
    setText(this.trustFingerprint, offer ? `New certificate: ${groupedFingerprint(offer.presented)}` : "");
    show(this.invited, s.home.fingerprint !== null);
    const update = s.home.update;
    show(this.updateBar, update !== null);
    setText(this.updateText, update ? `Parlor ${update.version} is available (you have ${update.currentVersion}).${update.notes ? ` ${update.notes}` : ""}` : "");
    this.updateButton.disabled = s.home.updating;
    setText(this.updateButton, s.home.updating ? "Updating…" : "Update and restart");
  }

}

function syncInput(el: HTMLInputElement, value: string): void {
  // Leave the field alone while it matches, so the caret does not jump while typing.
  if (el.value !== value) el.value = value;
}

