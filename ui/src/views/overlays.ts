/**
 * What floats above the screens: toasts (joins, leaves, chat previews, errors in words), the
 * knock cards the host and co-hosts answer with Admit and Deny (several queue), the remove
 * confirmation, the host's choice between leaving and ending the call for everyone, a
 * moderator's request to turn the microphone or camera on (nothing turns on without a click),
 * and the drop target shown while files are dragged over the window.
 */
import type { Controller } from "../core/controller";
import { avatarColor, formatClock, initialOf } from "../core/format";
import { isModerator, type AppState, type Knock, type Toast } from "../core/state";
import type { Store } from "../core/store";
import { h, reconcile, setText, show } from "./dom";
import { icon } from "./icons";

/** Knock cards shown at once; the rest are counted. */
const VISIBLE_KNOCKS = 3;

export class Overlays {
  readonly toasts: HTMLDivElement;
  readonly knocks: HTMLDivElement;
  readonly dialog: HTMLDivElement;
  readonly leaveDialog: HTMLDivElement;
  readonly requestDialog: HTMLDivElement;
  readonly drop: HTMLDivElement;
  private readonly requestTitle: HTMLHeadingElement;
  private readonly requestYes: HTMLButtonElement;
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
    this.leaveDialog = h(
      "div",
      { class: "scrim", testid: "dialog-leave", on: { click: (e) => e.target === this.leaveDialog && this.store.dispatch({ type: "leaveAsked", on: false }) } },
      h(
        "div",
        { class: "dialog", attrs: { role: "dialog", "aria-modal": "true" } },
        h("h2", { text: "Leave the call?" }),
        h("p", { text: "You can leave and let the others go on (the host role passes to someone else), or end the call for everyone." }),
        h(
          "div",
          { class: "dialog-actions" },
          h("button", { class: "btn btn-text", testid: "btn-cancel-leave", text: "Cancel", on: { click: () => this.store.dispatch({ type: "leaveAsked", on: false }) } }),
          h("button", { class: "btn btn-text", testid: "btn-just-leave", text: "Just leave the call", on: { click: () => void this.ctl.leave() } }),
          h("button", { class: "btn btn-text danger", testid: "btn-end-for-all", text: "End the call for everyone", on: { click: () => void this.ctl.endForEveryone() } }),
        ),
      ),
    );
    show(this.leaveDialog, false);
    this.requestTitle = h("h2", { testid: "request-title" });
    this.requestYes = h("button", { class: "btn btn-text primary-text", testid: "btn-request-accept", on: { click: () => void this.ctl.answerMediaRequest(true) } });
    this.requestDialog = h(
      "div",
      { class: "scrim", testid: "dialog-media-request" },
      h(
        "div",
        { class: "dialog", attrs: { role: "alertdialog", "aria-modal": "true" } },
        this.requestTitle,
        h("p", { text: "Nothing turns on unless you choose to." }),
        h(
          "div",
          { class: "dialog-actions" },
          h("button", { class: "btn btn-text", testid: "btn-request-decline", text: "Not now", on: { click: () => void this.ctl.answerMediaRequest(false) } }),
          this.requestYes,
        ),
      ),
    );
    show(this.requestDialog, false);
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
    if (!p || p.knocks !== s.knocks || p.meeting !== s.meeting || p.screen !== s.screen) {
      const knocks = s.screen === "meeting" && isModerator(s) ? s.knocks : [];
      reconcile(this.knockList, knocks.slice(0, VISIBLE_KNOCKS), (k) => String(k.requestId), (k) => this.knockEl(k), () => undefined);
      const more = knocks.length - VISIBLE_KNOCKS;
      show(this.knockMore, more > 0);
      setText(this.knockMore, `${more} more waiting to join`);
      show(this.knocks, knocks.length > 0);
    }
    const asked = s.confirmRemove !== null ? s.meeting?.roster.find((r) => r.id === s.confirmRemove) : undefined;
    show(this.dialog, asked !== undefined);
    if (asked) setText(this.dialogTitle, `Remove ${asked.displayName} from the meeting?`);
    show(this.leaveDialog, s.leaveAsked && s.screen === "meeting");
    const request = s.screen === "meeting" ? s.mediaRequest : null;
    show(this.requestDialog, request !== null);
    if (request) {
      const who = s.meeting?.roster.find((r) => r.id === request.by)?.displayName ?? "The host";
      setText(this.requestTitle, request.device === "mic" ? `${who} asks you to unmute` : `${who} asks you to turn on your camera`);
      setText(this.requestYes, request.device === "mic" ? "Unmute" : "Turn on camera");
    }
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
      h("div", { class: "knock-waited", text: `Asked ${formatClock(k.sinceMs)}` }),
      h(
        "div",
        { class: "knock-actions" },
        h("button", { class: "btn btn-text", testid: `knock-deny-${k.requestId}`, text: "Deny entry", on: { click: () => void this.ctl.deny(k.requestId) } }),
        h("button", { class: "btn btn-text primary-text", testid: `knock-admit-${k.requestId}`, text: "Admit", on: { click: () => void this.ctl.admit(k.requestId) } }),
      ),
    );
  }
}
