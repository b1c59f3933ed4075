/**
 * The camera preview of the home screen and the waiting room: the local camera's frames
 * (participant id 0), the name on it, and round mic and camera toggles, as in Meet's green room.
 * One instance moves between the two screens so only one canvas ever shows the local camera.
 */
import { avatarColor, initialOf } from "../core/format";
import type { Controller } from "../core/controller";
import type { AppState } from "../core/state";
import { shortcutLabel } from "../core/shortcuts";
import { LOCAL_VIDEO_ID } from "../core/types";
import { h, setAttr, setText, show } from "./dom";
import { setIcon } from "./icons";
import type { VideoHub } from "./video";

export class PreviewView {
  readonly el: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly off: HTMLDivElement;
  private readonly avatar: HTMLDivElement;
  private readonly name: HTMLDivElement;
  private readonly mic: HTMLButtonElement;
  private readonly cam: HTMLButtonElement;

  constructor(
    private readonly ctl: Controller,
    private readonly hub: VideoHub,
    apple: boolean,
  ) {
    this.canvas = h("canvas", { class: "video mirrored", testid: "preview-canvas" });
    this.avatar = h("div", { class: "avatar avatar-large" });
    this.off = h("div", { class: "camera-off" }, this.avatar, h("div", { class: "camera-off-text", text: "Camera is off" }));
    this.name = h("div", { class: "preview-name" });
    this.mic = h("button", { class: "round-btn", testid: "preview-mic", on: { click: () => void this.ctl.toggleMic() } });
    this.cam = h("button", { class: "round-btn", testid: "preview-camera", on: { click: () => void this.ctl.toggleCamera() } });
    this.mic.dataset.shortcut = shortcutLabel("d", apple);
    this.cam.dataset.shortcut = shortcutLabel("e", apple);
    this.el = h(
      "div",
      { class: "preview", testid: "preview" },
      this.canvas,
      this.off,
      this.name,
      h("div", { class: "preview-controls" }, this.mic, this.cam),
    );
  }

  /** Starts drawing the local camera here. */
  attach(): void {
    this.hub.attach(LOCAL_VIDEO_ID, this.canvas, this.el);
  }

  /** Stops drawing the local camera here. */
  detach(): void {
    this.hub.detach(LOCAL_VIDEO_ID, this.canvas);
  }

  update(s: AppState): void {
    const name = s.home.name.trim();
    setText(this.name, name);
    setText(this.avatar, initialOf(name || "?"));
    this.avatar.style.backgroundColor = avatarColor(name);
    show(this.canvas, s.cameraOn);
    show(this.off, !s.cameraOn);
    this.toggle(this.mic, s.micOn, "mic", "micOff", "microphone");
    this.toggle(this.cam, s.cameraOn, "cam", "camOff", "camera");
  }

  private toggle(btn: HTMLButtonElement, on: boolean, onIcon: "mic" | "cam", offIcon: "micOff" | "camOff", what: string): void {
    setIcon(btn, on ? onIcon : offIcon);
    btn.classList.toggle("off", !on);
    setAttr(btn, "aria-pressed", on ? "false" : "true");
    const label = `Turn ${on ? "off" : "on"} ${what} (${btn.dataset.shortcut ?? ""})`;
    setAttr(btn, "aria-label", label);
    setAttr(btn, "title", label);
  }
}
