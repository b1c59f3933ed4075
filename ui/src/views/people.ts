/**
 * The people panel: the host's controls (lock the meeting, mute everyone), who is waiting to
 * join with how long each has waited (the host and co-hosts: Admit, Deny, Admit all), raised
 * hands first raised first, and everyone in the meeting with their mic, camera and hand,
 * who presents, greyed out with "Reconnecting…" while their connection (or this app's own) is being repaired.
 * Each person's menu holds what a moderator may do to them: mute, ask to turn the microphone or
 * camera on, lower the hand, make co-host or host, remove.
 */
import type { Controller } from "../core/controller";
import { avatarColor, formatElapsed, initialOf } from "../core/format";
import { isHost, isModerator, isPresenting, raisedHands, type AppState, type Knock } from "../core/state";
import type { Store } from "../core/store";
import type { Participant } from "../core/types";
import { h, reconcile, setAttr, setText, show } from "./dom";
import { icon, setIcon } from "./icons";
import { panelHeader } from "./chat";

export class PeoplePanel {
  readonly el: HTMLElement;
  private readonly controls: HTMLDivElement;
  private readonly lock: HTMLInputElement;
  private readonly lockLabel: HTMLLabelElement;
  private readonly muteAll: HTMLButtonElement;
  private readonly waitingHead: HTMLDivElement;
  private readonly waitingTitle: HTMLHeadingElement;
  private readonly admitAll: HTMLButtonElement;
  private readonly waiting: HTMLDivElement;
  private readonly handsHead: HTMLHeadingElement;
  private readonly hands: HTMLDivElement;
  private readonly inHead: HTMLHeadingElement;
  private readonly list: HTMLDivElement;
  /** The person whose menu is open. */
  private menuFor: number | null = null;
  private prev: AppState | null = null;

  constructor(
    private readonly ctl: Controller,
    private readonly store: Store,
  ) {
    this.lock = h("input", { testid: "check-lock", attrs: { type: "checkbox" }, on: { change: (e) => void ctl.setLocked((e.target as HTMLInputElement).checked) } });
    this.lockLabel = h("label", { class: "check", testid: "label-lock", title: "No one else can ask to join while the meeting is locked" }, this.lock, h("span", { text: "Lock meeting" }));
    this.muteAll = h("button", { class: "btn btn-small btn-text", testid: "btn-mute-all", text: "Mute all", title: "Turn everyone else's microphone off; they can turn it back on", on: { click: () => void ctl.muteAll() } });
    this.controls = h("div", { class: "host-controls", testid: "host-controls" }, this.lockLabel, this.muteAll);
    this.waitingTitle = h("h3", { class: "section-title", testid: "waiting-count" });
    this.admitAll = h("button", { class: "btn btn-small btn-text primary-text", testid: "btn-admit-all", text: "Admit all", on: { click: () => void ctl.admitAll() } });
    this.waitingHead = h("div", { class: "section-head" }, this.waitingTitle, this.admitAll);
    this.waiting = h("div", { class: "people-list" });
    this.handsHead = h("h3", { class: "section-title", testid: "hands-count" });
    this.hands = h("div", { class: "people-list", testid: "hands-list" });
    this.inHead = h("h3", { class: "section-title", testid: "in-meeting-count" });
    this.list = h("div", { class: "people-list", testid: "people-list" });
    this.el = h(
      "section",
      { class: "panel people-panel", testid: "panel-participants" },
      panelHeader("People", store),
      h("div", { class: "panel-scroll" }, this.controls, this.waitingHead, this.waiting, this.handsHead, this.hands, this.inHead, this.list),
    );
    // A click anywhere else closes an open menu.
    document.addEventListener("click", (e) => {
      if (this.menuFor !== null && !(e.target as Element).closest?.(".person-menu, .menu-btn")) this.openMenu(null);
    });
  }

  update(s: AppState, open: boolean): void {
    show(this.el, open);
    const m = s.meeting;
    if (!open || !m) {
      this.menuFor = null;
      return;
    }
    const p = this.prev;
    this.prev = s;
    if (p && p.meeting === m && p.knocks === s.knocks && p.micOn === s.micOn && p.cameraOn === s.cameraOn && p.panel === s.panel) return;
    const host = isHost(s);
    const moderator = isModerator(s);
    show(this.controls, moderator);
    show(this.lockLabel, host);
    this.lock.checked = m.locked;
    const knocks = moderator ? s.knocks : [];
    show(this.waitingHead, knocks.length > 0);
    setText(this.waitingTitle, `Waiting to join (${knocks.length})`);
    show(this.admitAll, knocks.length > 1);
    reconcile(
      this.waiting,
      knocks,
      (k) => String(k.requestId),
      (k) => this.knockRow(k),
      (el, k) => this.updateKnock(el, k),
    );
    const hands = raisedHands(m);
    show(this.handsHead, hands.length > 0);
    setText(this.handsHead, `Raised hands (${hands.length})`);
    reconcile(
      this.hands,
      hands,
      (pp) => String(pp.id),
      (pp) => this.handRow(pp.id),
      (el, pp) => this.updateHand(el, pp, pp.id === m.selfId, moderator),
    );
    setText(this.inHead, `In the meeting (${m.roster.length})`);
    if (this.menuFor !== null && !m.roster.some((r) => r.id === this.menuFor)) this.menuFor = null;
    reconcile(
      this.list,
      m.roster,
      (pp) => String(pp.id),
      (pp) => this.personRow(pp.id),
      (el, pp) => this.updatePerson(el, pp, pp.id === m.selfId, moderator, host, s),
    );
  }

  /** Moves the "waiting" times on (called once a second). */
  tick(nowMs: number): void {
    for (const el of this.waiting.querySelectorAll<HTMLElement>("[data-since-ms]")) {
      setText(el, `Waiting ${formatElapsed((nowMs - Number(el.dataset.sinceMs)) / 1000)}`);
    }
  }

  private knockRow(k: Knock): HTMLElement {
    return h(
      "div",
      { class: "person", testid: `waiting-${k.requestId}` },
      avatar(k.name),
      h("div", { class: "person-name" }, h("div", { text: k.name }), h("div", { class: "person-sub", testid: `waited-${k.requestId}` })),
      h("button", { class: "btn btn-small btn-text", testid: `panel-deny-${k.requestId}`, text: "Deny", on: { click: () => void this.ctl.deny(k.requestId) } }),
      h("button", { class: "btn btn-small btn-text primary-text", testid: `panel-admit-${k.requestId}`, text: "Admit", on: { click: () => void this.ctl.admit(k.requestId) } }),
    );
  }

  private updateKnock(el: HTMLElement, k: Knock): void {
    const sub = el.querySelector(".person-sub") as HTMLElement;
    sub.dataset.sinceMs = String(k.sinceMs);
    setText(sub, `Waiting ${formatElapsed((Date.now() - k.sinceMs) / 1000)}`);
  }

  private handRow(id: number): HTMLElement {
    return h(
      "div",
      { class: "person", testid: `hand-${id}` },
      h("span", { class: "hand-icon" }, icon("hand", 20)),
      h("div", { class: "person-name" }, h("div", { class: "person-title" })),
      h("button", { class: "btn btn-small btn-text", testid: `lower-hand-${id}`, text: "Lower", on: { click: () => void this.ctl.lowerHand(id) } }),
    );
  }

  private updateHand(el: HTMLElement, p: Participant, self: boolean, moderator: boolean): void {
    setText(el.querySelector(".person-title")!, self ? `${p.displayName} (You)` : p.displayName);
    show(el.querySelector("button") as HTMLElement, self || moderator);
  }

  private personRow(id: number): HTMLElement {
    const menu = h("div", { class: "person-menu", testid: `menu-${id}`, attrs: { role: "menu" } });
    show(menu, false);
    return h(
      "div",
      { class: "person", testid: `person-${id}` },
      h("div", { class: "avatar avatar-small" }),
      h("div", { class: "person-name" }, h("div", { class: "person-title" }), h("div", { class: "person-sub" })),
      h("span", { class: "state-icon hand-icon", testid: `person-hand-${id}`, title: "Hand raised" }, icon("hand", 20)),
      h("span", { class: "state-icon", testid: `person-mic-${id}` }),
      h("span", { class: "state-icon", testid: `person-camera-${id}` }),
      h(
        "button",
        { class: "icon-btn menu-btn", testid: `person-menu-${id}`, title: "More options", attrs: { "aria-haspopup": "menu", "aria-label": "More options" }, on: { click: () => this.openMenu(this.menuFor === id ? null : id) } },
        icon("moreVert", 20),
      ),
      menu,
    );
  }

  private openMenu(id: number | null): void {
    this.menuFor = id;
    // Draw the menus again from the current state.
    this.prev = null;
    this.update(this.store.state, this.store.state.panel === "participants");
  }

  private updatePerson(el: HTMLElement, p: Participant, self: boolean, moderator: boolean, host: boolean, s: AppState): void {
    const av = el.querySelector(".avatar") as HTMLElement;
    setText(av, initialOf(p.displayName));
    av.style.backgroundColor = avatarColor(p.displayName);
    setText(el.querySelector(".person-title")!, self ? `${p.displayName} (You)` : p.displayName);
    const reconnecting = self ? s.meeting?.reconnecting != null : p.reconnecting;
    el.classList.toggle("reconnecting", reconnecting);
    const sub = el.querySelector(".person-sub") as HTMLElement;
    const role = p.isHost ? "Meeting host" : p.isCohost ? "Co-host" : "";
    const presenting = self && s.meeting ? isPresenting(s.meeting) : p.presenting;
    const subText = [role, presenting ? "Presenting" : "", reconnecting ? "Reconnecting…" : ""].filter((t) => t).join(" · ");
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
    show(el.querySelector(".hand-icon") as HTMLElement, p.handRaised !== null);
    const items = self ? [] : this.menuItems(p, moderator, host);
    show(el.querySelector(".menu-btn") as HTMLElement, items.length > 0);
    const menu = el.querySelector(".person-menu") as HTMLElement;
    const open = this.menuFor === p.id && items.length > 0;
    show(menu, open);
    // Rebuilt only when what it offers changes: a button replaced under the pointer (the
    // roster changes several times a second while people talk) would lose the click.
    const offered = open ? items.map((i) => `${i.dataset.testid}:${i.textContent}`).join("|") : "";
    if (menu.dataset.offered !== offered) {
      menu.dataset.offered = offered;
      menu.replaceChildren(...(open ? items : []));
    }
  }

  /** What a moderator (or, for the roles, the host) may do to `p`, as menu items. */
  private menuItems(p: Participant, moderator: boolean, host: boolean): HTMLElement[] {
    if (!moderator) return [];
    const item = (testid: string, text: string, run: () => Promise<void> | void) =>
      h("button", {
        class: "menu-item",
        testid,
        text,
        attrs: { role: "menuitem" },
        on: {
          click: () => {
            this.openMenu(null);
            void run();
          },
        },
      });
    const items: HTMLElement[] = [];
    if (p.micOn) items.push(item(`menu-mute-${p.id}`, "Mute", () => this.ctl.mute(p.id)));
    else items.push(item(`menu-ask-mic-${p.id}`, "Ask to unmute", () => this.ctl.requestMedia(p.id, "mic")));
    if (!p.cameraOn) items.push(item(`menu-ask-camera-${p.id}`, "Ask to turn on camera", () => this.ctl.requestMedia(p.id, "camera")));
    if (p.handRaised !== null) items.push(item(`menu-lower-hand-${p.id}`, "Lower hand", () => this.ctl.lowerHand(p.id)));
    if (host) {
      items.push(
        p.isCohost
          ? item(`menu-cohost-${p.id}`, "Remove co-host", () => this.ctl.setRole(p.id, "participant"))
          : item(`menu-cohost-${p.id}`, "Make co-host", () => this.ctl.setRole(p.id, "coHost")),
      );
      // The role goes to someone connected only (the relay refuses it otherwise).
      if (!p.reconnecting) items.push(item(`menu-make-host-${p.id}`, "Make host", () => this.ctl.setRole(p.id, "host")));
    }
    if (!p.isHost) items.push(item(`btn-remove-${p.id}`, "Remove from the meeting", () => this.ctl.askRemove(p.id)));
    return items;
  }
}

function avatar(name: string): HTMLElement {
  const el = h("div", { class: "avatar avatar-small", text: initialOf(name) });
  el.style.backgroundColor = avatarColor(name);
  return el;
}
