/**
 * The screen after a session ends: left, removed, refused, or disconnected, in words. A
 * connection lost for good in a meeting offers "Rejoin", which knocks on that meeting again.
 */
import type { Controller } from "../core/controller";
import type { AppState } from "../core/state";
import { h, setText, show } from "./dom";

export class EndedView {
  readonly el: HTMLDivElement;
  private readonly title: HTMLHeadingElement;
  private readonly detail: HTMLParagraphElement;
  private readonly rejoin: HTMLButtonElement;

  constructor(private readonly ctl: Controller) {
    this.title = h("h1", { testid: "ended-title" });
    this.detail = h("p", { class: "lede", testid: "ended-detail" });
    this.rejoin = h("button", { class: "btn btn-outline btn-large", testid: "btn-rejoin", attrs: { id: "rejoin" }, on: { click: () => void this.ctl.rejoin() } });
    this.el = h(
      "div",
      { class: "screen ended", testid: "screen-ended" },
      h(
        "div",
        { class: "ended-box" },
        this.title,
        this.detail,
        h(
          "div",
          { class: "ended-actions" },
          this.rejoin,
          h("button", { class: "btn btn-primary btn-large", testid: "btn-return-home", text: "Return to home screen", on: { click: () => this.ctl.returnHome() } }),
        ),
      ),
    );
  }

  update(s: AppState): void {
    const e = s.ended;
    setText(this.title, e?.title ?? "");
    setText(this.detail, e?.detail ?? "");
    show(this.detail, !!e?.detail);
    show(this.rejoin, !!e?.canRejoin);
    setText(this.rejoin, e?.rejoin ? "Rejoin" : s.lastJoin?.kind === "create" ? "Start a new meeting" : "Ask to join again");
  }
}
