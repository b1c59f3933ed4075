/**
 * The people panel: who is waiting to join (host: Admit / Deny), and everyone in the meeting
 * with their mic and camera state, greyed out with "Reconnecting…" while their connection (or
 * this app's own) is being repaired; the host can remove others.
 */
import type { Controller } from "../core/controller";
import { avatarColor, initialOf } from "../core/format";
import { isHost, type AppState, type Knock } from "../core/state";
import type { Store } from "../core/store";
import type { Participant } from "../core/types";
import { h, reconcile, setAttr, setText, show } from "./dom";
import { icon, setIcon } from "./icons";
import { panelHeader } from "./chat";

export class PeoplePanel {
  readonly el: HTMLElement;
  private readonly waitingHead: HTMLHeadingElement;
  private readonly waiting: HTMLDivElement;
  private readonly inHead: HTMLHeadingElement;
  private readonly list: HTMLDivElement;
  private prev: AppState | null = null;

  constructor(
    private readonly ctl: Controller,
    store: Store,
  ) {
    this.waitingHead = h("h3", { class: "section-title", testid: "waiting-count" });
    this.waiting = h("div", { class: "people-list" });
    this.inHead = h("h3", { class: "section-title", testid: "in-meeting-count" });
    this.list = h("div", { class: "people-list", testid: "people-list" });
    this.el = h(
      "section",
      { class: "panel people-panel", testid: "panel-participants" },
      panelHeader("People", store),
      h("div", { class: "panel-scroll" }, this.waitingHead, this.waiting, this.inHead, this.list),
    );
  }

  update(s: AppState, open: boolean): void {
    show(this.el, open);
    const m = s.meeting;
    if (!open || !m) return;
    const p = this.prev;
    this.prev = s;
    if (p && p.meeting === m && p.knocks === s.knocks && p.micOn === s.micOn && p.cameraOn === s.cameraOn && p.panel === s.panel) return;
    const host = isHost(s);
    show(this.waitingHead, host && s.knocks.length > 0);
    setText(this.waitingHead, `Waiting to join (${s.knocks.length})`);
    reconcile(
      this.waiting,
      host ? s.knocks : [],
      (k) => String(k.requestId),
      (k) => this.knockRow(k),
      () => undefined,
    );
    setText(this.inHead, `In the meeting (${m.roster.length})`);
    reconcile(
      this.list,
      m.roster,
      (pp) => String(pp.id),
      (pp) => this.personRow(pp.id),
      (el, pp) => this.updatePerson(el, pp, pp.id === m.selfId, host, s),
    );
  }

  private knockRow(k: Knock): HTMLElement {
    return h(
      "div",
      { class: "person", testid: `waiting-${k.requestId}` },
      avatar(k.name),
      h("div", { class: "person-name" }, h("div", { text: k.name }), h("div", { class: "person-sub", text: "Wants to join" })),
      h("button", { class: "btn btn-small btn-text", testid: `panel-deny-${k.requestId}`, text: "Deny", on: { click: () => void this.ctl.deny(k.requestId) } }),
      h("button", { class: "btn btn-small btn-text primary-text", testid: `panel-admit-${k.requestId}`, text: "Admit", on: { click: () => void this.ctl.admit(k.requestId) } }),
    );
  }

  private personRow(id: number): HTMLElement {
    return h(
      "div",
      { class: "person", testid: `person-${id}` },
      h("div", { class: "avatar avatar-small" }),
      h("div", { class: "person-name" }, h("div", { class: "person-title" }), h("div", { class: "person-sub" })),
      h("span", { class: "state-icon", testid: `person-mic-${id}` }),
      h("span", { class: "state-icon", testid: `person-camera-${id}` }),
      h("button", { class: "icon-btn remove", testid: `btn-remove-${id}`, title: "Remove from the meeting", on: { click: () => this.ctl.askRemove(id) } }, icon("remove", 20)),
    );
  }

  private updatePerson(el: HTMLElement, p: Participant, self: boolean, host: boolean, s: AppState): void {
    const av = el.querySelector(".avatar") as HTMLElement;
    setText(av, initialOf(p.displayName));
    av.style.backgroundColor = avatarColor(p.displayName);
    setText(el.querySelector(".person-title")!, self ? `${p.displayName} (You)` : p.displayName);
    const reconnecting = self ? s.meeting?.reconnecting != null : p.reconnecting;
    el.classList.toggle("reconnecting", reconnecting);
    const sub = el.querySelector(".person-sub") as HTMLElement;
    const subText = [p.isHost ? "Meeting host" : "", reconnecting ? "Reconnecting…" : ""].filter((t) => t).join(" · ");
    setText(sub, subText);
    show(sub, subText !== "");
    const micOn = self ? s.micOn : p.micOn;
    const camOn = self ? s.cameraOn : p.cameraOn;
    const mic = el.querySelector(`[data-testid=person-mic-${p.id}]`) as HTMLElement;
    const cam = el.querySelector(`[data-testid=person-camera-${p.id}]`) as HTMLElement;
    setIcon(mic, micOn ? "mic" : "micOff", 20);
    setIcon(cam, camOn ? "cam" : "camOff", 20);
    mic.dataset.on = String(micOn);
    cam.dataset.on = String(camOn);
    setAttr(mic, "title", micOn ? "Microphone on" : "Microphone off");
    setAttr(cam, "title", camOn ? "Camera on" : "Camera off");
    show(el.querySelector(".remove") as HTMLElement, host && !self);
  }
}

function avatar(name: string): HTMLElement {
  const el = h("div", { class: "avatar avatar-small", text: initialOf(name) });
  el.style.backgroundColor = avatarColor(name);
  return el;
}
