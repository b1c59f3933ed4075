/**
 * The waiting room: "Asking to be let in…" next to the preview, with Cancel. A refusal or an
 * expiry moves to the ended screen, which says why.
 */
import type { Controller } from "../core/controller";
import { displayCode } from "../core/format";
import type { AppState } from "../core/state";
import { h, setText } from "./dom";
import type { PreviewView } from "./preview";

export class WaitingView {
  readonly el: HTMLDivElement;
  private readonly previewSlot: HTMLDivElement;
  private readonly where: HTMLParagraphElement;

  constructor(private readonly ctl: Controller) {
    this.previewSlot = h("div", { class: "preview-slot" });
    this.where = h("p", { class: "waiting-where", testid: "waiting-where" });
    this.el = h(
      "div",
      { class: "screen waiting", testid: "screen-waiting" },
      h(
        "main",
        { class: "home-main" },
        h("section", { class: "home-left" }, this.previewSlot),
        h(
          "section",
          { class: "home-right waiting-right" },
          h("div", { class: "spinner", attrs: { role: "progressbar", "aria-label": "Waiting" } }),
          h("h1", { testid: "waiting-title", text: "Asking to be let in…" }),
          h("p", { class: "lede", text: "You'll join the meeting when someone lets you in." }),
          this.where,
          h("button", { class: "btn btn-outline btn-large", testid: "btn-cancel-join", text: "Cancel", on: { click: () => void this.ctl.cancelJoin() } }),
        ),
      ),
    );
  }

  adopt(preview: PreviewView): void {
    if (preview.el.parentElement !== this.previewSlot) this.previewSlot.append(preview.el);
  }

  update(s: AppState): void {
    const w = s.waiting;
    setText(this.where, w ? `Meeting ${displayCode(w.code)} on ${w.relayAddr}` : "");
  }
}
