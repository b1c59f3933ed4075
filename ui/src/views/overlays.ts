/**
 * What floats above the screens: toasts (joins, leaves, chat previews, errors in words), the
 * host's knock cards with Admit and Deny (several queue), the remove confirmation, and the drop
 * target shown while files are dragged over the window.
 */
import type { Controller } from "../core/controller";
import { avatarColor, initialOf } from "../core/format";
import { isHost, type AppState, type Knock, type Toast } from "../core/state";
import type { Store } from "../core/store";
import { h, reconcile, setText, show } from "./dom";
import { icon } from "./icons";

/** Knock cards shown at once; the rest are counted. */
const VISIBLE_KNOCKS = 3;

export class Overlays {
  readonly toasts: HTMLDivElement;
  readonly knocks: HTMLDivElement;
  readonly dialog: HTMLDivElement;
  readonly drop: HTMLDivElement;
  private readonly knockList: HTMLDivElement;
  private readonly knockMore: HTMLDivElement;
  private readonly dialogTitle: HTMLHeadingElement;
  private prev: AppState | null = null;

  constructor(
    private readonly ctl: Controller,
    private readonly store: Store,
  ) {
    this.toasts = h("div", { class: "toasts", testid: "toasts", attrs: { "aria-live": "polite" } });
    this.knockList = h("div", { class: "knock-list" });
    this.knockMore = h("div", { class: "knock-more", testid: "knock-more" });
    this.knocks = h("div", { class: "knocks", testid: "knocks" }, this.knockList, this.knockMore);
    this.dialogTitle = h("h2", { testid: "dialog-title" });
    this.dialog = h(
      "div",
      { class: "scrim", testid: "dialog-remove", on: { click: (e) => e.target === this.dialog && this.ctl.askRemove(null) } },
      h(
        "div",
        { class: "dialog", attrs: { role: "dialog", "aria-modal": "true" } },
        this.dialogTitle,
        h("p", { text: "They can ask to join again, and you can let them back in." }),
        h(
          "div",
          { class: "dialog-actions" },
          h("button", { class: "btn btn-text", testid: "btn-cancel-remove", text: "Cancel", on: { click: () => this.ctl.askRemove(null) } }),
          h("button", { class: "btn btn-text danger", testid: "btn-confirm-remove", text: "Remove", on: { click: () => void this.ctl.confirmRemove() } }),
        ),
      ),
    );
    this.drop = h(
      "div",
      { class: "drop-overlay", testid: "drop-overlay" },
      h("div", { class: "drop-box" }, icon("attach", 40), h("div", { class: "drop-title", text: "Drop to send to everyone" }), h("div", { class: "drop-sub", text: "Files are checked with SHA-256 on arrival" })),
    );
    show(this.drop, false);
  }

  /** Shows or hides the drop target. */
  dragging(on: boolean): void {
    show(this.drop, on);
  }

  update(s: AppState): void {
    const p = this.prev;
    this.prev = s;
    if (!p || p.toasts !== s.toasts) {
      reconcile(this.toasts, s.toasts, (t) => String(t.id), (t) => this.toastEl(t), () => undefined);
    }
    if (!p || p.knocks !== s.knocks || p.meeting?.hostId !== s.meeting?.hostId || p.screen !== s.screen) {
      const knocks = s.screen === "meeting" && isHost(s) ? s.knocks : [];
      reconcile(this.knockList, knocks.slice(0, VISIBLE_KNOCKS), (k) => String(k.requestId), (k) => this.knockEl(k), () => undefined);
      const more = knocks.length - VISIBLE_KNOCKS;
      show(this.knockMore, more > 0);
      setText(this.knockMore, `${more} more waiting to join`);
      show(this.knocks, knocks.length > 0);
    }
    const asked = s.confirmRemove !== null ? s.meeting?.roster.find((r) => r.id === s.confirmRemove) : undefined;
    show(this.dialog, asked !== undefined);
    if (asked) setText(this.dialogTitle, `Remove ${asked.displayName} from the meeting?`);
  }

  private toastEl(t: Toast): HTMLElement {
    return h(
      "div",
      { class: `toast ${t.kind}`, testid: `toast-${t.id}`, attrs: { role: t.kind === "error" ? "alert" : "status" } },
      t.kind === "error" ? icon("error", 20) : null,
      h("div", { class: "toast-body" }, h("div", { class: "toast-text", text: t.text }), t.detail ? h("div", { class: "toast-detail", text: t.detail }) : null),
      h("button", { class: "icon-btn", title: "Dismiss", attrs: { "aria-label": "Dismiss" }, on: { click: () => this.store.dispatch({ type: "toastDismissed", id: t.id }) } }, icon("close", 18)),
    );
  }

  private knockEl(k: Knock): HTMLElement {
    const av = h("div", { class: "avatar avatar-small", text: initialOf(k.name) });
    av.style.backgroundColor = avatarColor(k.name);
    return h(
      "div",
      { class: "knock", testid: `knock-${k.requestId}`, attrs: { role: "alertdialog" } },
      h("div", { class: "knock-head" }, av, h("div", {}, h("div", { class: "knock-title", text: "Someone wants to join this meeting" }), h("div", { class: "knock-name", text: k.name }))),
      h(
        "div",
        { class: "knock-actions" },
        h("button", { class: "btn btn-text", testid: `knock-deny-${k.requestId}`, text: "Deny entry", on: { click: () => void this.ctl.deny(k.requestId) } }),
        h("button", { class: "btn btn-text primary-text", testid: `knock-admit-${k.requestId}`, text: "Admit", on: { click: () => void this.ctl.admit(k.requestId) } }),
      ),
    );
  }
}
