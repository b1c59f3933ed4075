/**
 * The meeting screen: the tile stage (views/stage.ts), the side panel (chat, people or stats)
 * and the bottom bar with the meeting code, the relay address to share, a lock while the host
 * has locked the meeting, and the round controls (microphone, camera, raise hand, reactions,
 * present, layout, leave). While this app presents, a "You are presenting" bar above the stage
 * offers to share something else or to stop. While the connection to the relay is being
 * repaired a "Reconnecting…" banner counts the seconds; tiles of others whose connection
 * dropped are greyed out with the same words. A raised hand shows on its tile, and reactions
 * float up over their sender's tile for a few seconds.
 */
import type { Controller } from "../core/controller";
import { displayCode, formatClock, formatElapsed } from "../core/format";
import { isApplePlatform, shortcutLabel } from "../core/shortcuts";
import { REACTION_EMOJI, REACTION_LABEL, REACTIONS } from "../core/reactions";
import { LAYOUT_MODES } from "../core/stage";
import { handRaised, isHost, isPresenting, reconnectingSeconds, type AppState, type MeetingState, type Panel } from "../core/state";
import type { Store } from "../core/store";
import { h, setAttr, setText, show } from "./dom";
import { icon, setIcon, type IconName } from "./icons";
import { Stage } from "./stage";
import type { VideoHub } from "./video";
import { ChatPanel } from "./chat";
import { PeoplePanel } from "./people";
import { StatsPanel } from "./stats";
import { SettingsPanel } from "./settings";

/** The meeting screen. */
export class MeetingView {
  readonly el: HTMLDivElement;
  private readonly stage: Stage;
  private readonly side: HTMLElement;
  private readonly chat: ChatPanel;
  private readonly people: PeoplePanel;
  private readonly stats: StatsPanel;
  private readonly settings: SettingsPanel;
  private readonly clock: HTMLSpanElement;
  private readonly code: HTMLSpanElement;
  private readonly relay: HTMLSpanElement;
  private readonly mic: HTMLButtonElement;
  private readonly cam: HTMLButtonElement;
  private readonly hand: HTMLButtonElement;
  private readonly react: HTMLButtonElement;
  private readonly picker: HTMLDivElement;
  /** "Present now", pressed ("Stop presenting") while this app presents. */
  private readonly present: HTMLButtonElement;
  /** "Change layout" and its menu of layouts. */
  private readonly layoutBtn: HTMLButtonElement;
  private readonly layoutMenu: HTMLDivElement;
  /** "You are presenting", above the stage while this app presents. */
  private readonly presentingBar: HTMLDivElement;
  private readonly locked: HTMLSpanElement;
  private readonly panelButtons: Record<Panel, HTMLButtonElement>;
  private readonly peopleCount: HTMLSpanElement;
  private readonly chatBadge: HTMLSpanElement;
  /** The lock in the meeting info, and what it opens: "End-to-end encrypted" and the safety code. */
  private readonly e2ee: HTMLButtonElement;
  private readonly e2eeInfo: HTMLDivElement;
  private readonly safetyCode: HTMLElement;
  /** "Reconnecting…" while the connection to the relay is being repaired, and for how long. */
  private readonly banner: HTMLDivElement;
  private readonly bannerTime: HTMLSpanElement;
  private prev: AppState | null = null;

  constructor(ctl: Controller, store: Store, hub: VideoHub) {
    const apple = isApplePlatform(navigator.platform);
    this.stage = new Stage(hub, store);
    this.chat = new ChatPanel(ctl, store);
    this.people = new PeoplePanel(ctl, store);
    this.stats = new StatsPanel(store, hub);
    this.settings = new SettingsPanel(ctl, store);
    this.side = h("aside", { class: "side-panel", testid: "side-panel" }, this.chat.el, this.people.el, this.stats.el, this.settings.el);
    this.clock = h("span", { class: "clock" });
    this.code = h("span", { class: "meeting-code", testid: "meeting-code" });
    this.relay = h("span", { class: "relay-addr", testid: "relay-addr" });
    const copy = h("button", { class: "icon-btn", testid: "btn-copy-invite", title: "Copy invitation (code, address and the relay's certificate)", on: { click: () => void this.copyInvite(store) } }, icon("copy", 18));
    this.safetyCode = h("strong", { class: "safety-code", testid: "safety-code" });
    this.e2eeInfo = h(
      "div",
      { class: "e2ee-info", testid: "e2ee-info", attrs: { role: "dialog", "aria-label": "End-to-end encryption" } },
      h("div", { class: "e2ee-title" }, icon("lock", 18), h("span", { text: "End-to-end encrypted" })),
      h("p", { text: "Video and audio are encrypted on this computer and decrypted only by the people in the call. The relay forwards them without being able to see or hear them." }),
      h("p", { class: "e2ee-code-line" }, h("span", { text: "Safety code " }), this.safetyCode),
      h("p", { class: "e2ee-hint", text: "Read it aloud: if everyone sees the same code, nobody else is listening in. It changes when someone joins or leaves." }),
    );
    show(this.e2eeInfo, false);
    this.e2ee = h(
      "button",
      { class: "icon-btn e2ee", testid: "e2ee-badge", on: { click: () => show(this.e2eeInfo, this.e2eeInfo.hidden) } },
      icon("lock", 16),
      h("span", { class: "e2ee-label", text: "End-to-end encrypted" }),
    );
    this.mic = h("button", { class: "round-btn", testid: "btn-mic", on: { click: () => void ctl.toggleMic() } });
    this.cam = h("button", { class: "round-btn", testid: "btn-camera", on: { click: () => void ctl.toggleCamera() } });
    this.mic.dataset.shortcut = shortcutLabel("d", apple);
    this.cam.dataset.shortcut = shortcutLabel("e", apple);
    this.hand = h("button", { class: "round-btn", testid: "btn-hand", on: { click: () => void ctl.toggleHand() } }, icon("hand"));
    this.hand.dataset.shortcut = shortcutLabel("h", apple, true);
    this.present = h("button", { class: "round-btn", testid: "btn-present", on: { click: () => void ctl.togglePresenting() } }, icon("present"));
    this.present.dataset.shortcut = shortcutLabel("s", apple, true);
    this.layoutMenu = h(
      "div",
      { class: "bar-menu", testid: "layout-menu", attrs: { role: "menu", "aria-label": "Layout" } },
      ...LAYOUT_MODES.map(({ mode, label, hint }) =>
        h(
          "button",
          {
            class: "menu-item",
            testid: `layout-${mode}`,
            attrs: { role: "menuitemradio", "aria-checked": "false", "aria-label": label },
            on: {
              click: () => {
                this.openLayoutMenu(false);
                store.dispatch({ type: "layoutChosen", layout: mode });
              },
            },
          },
          h("span", { class: "menu-label", text: label }),
          h("span", { class: "menu-hint", text: hint }),
        ),
      ),
    );
    show(this.layoutMenu, false);
    this.layoutBtn = h(
      "button",
      { class: "round-btn", testid: "btn-layout", title: "Change layout", attrs: { "aria-label": "Change layout", "aria-haspopup": "menu", "aria-expanded": "false" }, on: { click: () => this.openLayoutMenu(this.layoutMenu.hidden) } },
      icon("layout"),
    );
    this.presentingBar = h(
      "div",
      { class: "presenting-bar", testid: "presenting-banner", attrs: { role: "status" } },
      icon("present", 20),
      h("strong", { text: "You are presenting" }),
      h("span", { class: "presenting-hint", text: "Everyone sees what you share." }),
      h("button", { class: "btn btn-small btn-text", testid: "btn-share-other", text: "Share something else", on: { click: () => void ctl.openScreenPicker() } }),
      h("button", { class: "btn btn-small stop-presenting", testid: "btn-stop-presenting", text: "Stop presenting", on: { click: () => void ctl.stopPresenting() } }),
    );
    show(this.presentingBar, false);
    this.picker = h(
      "div",
      { class: "reaction-picker", testid: "reaction-picker", attrs: { role: "menu", "aria-label": "Send a reaction" } },
      ...REACTIONS.map((r) =>
        h("button", {
          class: "reaction-btn",
          testid: `react-${r}`,
          text: REACTION_EMOJI[r],
          title: REACTION_LABEL[r],
          attrs: { role: "menuitem", "aria-label": REACTION_LABEL[r] },
          on: { click: () => void ctl.react(r) },
        }),
      ),
    );
    show(this.picker, false);
    // A click anywhere but on a popup or its button closes the popup.
    document.addEventListener("click", (e) => {
      const target = e.target as Element;
      if (!this.picker.hidden && !target.closest?.(".reaction-wrap")) show(this.picker, false);
      if (!this.layoutMenu.hidden && !target.closest?.(".layout-wrap")) this.openLayoutMenu(false);
    });
    this.react = h(
      "button",
      { class: "round-btn", testid: "btn-reactions", title: "Send a reaction", attrs: { "aria-label": "Send a reaction", "aria-haspopup": "menu" }, on: { click: () => show(this.picker, this.picker.hidden) } },
      icon("mood"),
    );
    this.locked = h("span", { class: "locked-badge", testid: "locked-badge", title: "The host locked the meeting: no one else can ask to join" }, icon("lock", 16), h("span", { text: "Locked" }));
    const leave = h("button", { class: "round-btn leave", testid: "btn-leave", title: "Leave call", attrs: { "aria-label": "Leave call" }, on: { click: () => void ctl.leaveClicked() } }, icon("callEnd"));
    const panelBtn = (panel: Panel, iconName: IconName, label: string) =>
      h("button", { class: "icon-round", testid: `btn-${panel}`, title: label, attrs: { "aria-label": label }, on: { click: () => store.dispatch({ type: "panelToggled", panel }) } }, icon(iconName));
    this.panelButtons = {
      chat: panelBtn("chat", "chat", "Chat with everyone"),
      participants: panelBtn("participants", "people", "Show everyone"),
      stats: panelBtn("stats", "stats", "Connection stats"),
      settings: panelBtn("settings", "settings", "Settings: devices, noise and echo cancellation"),
    };
    this.chatBadge = h("span", { class: "badge count", testid: "chat-unread" });
    this.panelButtons.chat.append(this.chatBadge);
    this.peopleCount = h("span", { class: "badge count", testid: "people-count" });
    this.panelButtons.participants.append(this.peopleCount);
    this.bannerTime = h("span", { class: "reconnecting-time", testid: "reconnecting-time" });
    this.banner = h(
      "div",
      { class: "reconnecting-banner", testid: "reconnecting-banner", attrs: { id: "reconnecting-banner", role: "status" } },
      h("span", { class: "spinner small" }),
      h("div", {}, h("strong", { text: "Reconnecting…" }), h("div", { class: "reconnecting-detail" }, h("span", { text: "Your connection to the meeting dropped " }), this.bannerTime, h("span", { text: " ago. You're still in the meeting." }))),
    );
    show(this.banner, false);
    this.el = h(
      "div",
      { class: "screen meeting", testid: "screen-meeting" },
      this.banner,
      this.presentingBar,
      h("div", { class: "meeting-body" }, this.stage.el, this.side),
      h(
        "footer",
        { class: "bottom-bar" },
        h("div", { class: "bar-left" }, this.clock, h("span", { class: "bar-sep", text: "|" }), this.code, h("span", { class: "relay-wrap", title: "Address others enter to join" }, icon("lan", 16), this.relay), copy, this.e2ee, this.e2eeInfo, this.locked),
        h(
          "div",
          { class: "bar-center" },
          this.mic,
          this.cam,
          this.hand,
          h("div", { class: "reaction-wrap" }, this.react, this.picker),
          this.present,
          h("div", { class: "layout-wrap" }, this.layoutBtn, this.layoutMenu),
          leave,
        ),
        h("div", { class: "bar-right" }, this.panelButtons.chat, this.panelButtons.participants, this.panelButtons.stats, this.panelButtons.settings),
      ),
    );
    this.tick();
  }

  /** Updates the clock in the bar and the banner's seconds (called once a second). */
  tick(): void {
    const now = Date.now();
    setText(this.clock, formatClock(now));
    this.updateBanner(this.prev?.meeting ?? null, now);
    this.people.tick(now);
  }

  private updateBanner(m: MeetingState | null, nowMs: number): void {
    const seconds = m ? reconnectingSeconds(m, nowMs) : null;
    show(this.banner, seconds !== null);
    if (seconds !== null) setText(this.bannerTime, formatElapsed(seconds));
  }

  update(s: AppState): void {
    const p = this.prev;
    this.prev = s;
    const m = s.meeting;
    this.updateBanner(m, Date.now());
    if (!m) {
      this.stage.clear();
      this.stats.close();
      return;
    }
    if (!p || p.meeting !== m || p.micOn !== s.micOn || p.cameraOn !== s.cameraOn) this.stage.update(s, m);
    setText(this.code, displayCode(m.code));
    setText(this.relay, m.relayAddr);
    show(this.e2ee, m.encryption !== null);
    if (!m.encryption) show(this.e2eeInfo, false);
    setText(this.safetyCode, m.encryption?.safetyCode ?? "");
    const lockLabel = m.encryption ? `End-to-end encrypted · safety code ${m.encryption.safetyCode}` : "";
    setAttr(this.e2ee, "title", lockLabel);
    setAttr(this.e2ee, "aria-label", lockLabel);
    this.toggle(this.mic, s.micOn, "mic", "micOff", "microphone");
    this.toggle(this.cam, s.cameraOn, "cam", "camOff", "camera");
    const up = handRaised(m);
    this.hand.classList.toggle("raised", up);
    setAttr(this.hand, "aria-pressed", up ? "true" : "false");
    const handLabel = `${up ? "Lower" : "Raise"} hand (${this.hand.dataset.shortcut ?? ""})`;
    setAttr(this.hand, "aria-label", handLabel);
    setAttr(this.hand, "title", handLabel);
    const presenting = isPresenting(m);
    this.present.classList.toggle("presenting", presenting);
    setIcon(this.present, presenting ? "stopPresenting" : "present");
    setAttr(this.present, "aria-pressed", presenting ? "true" : "false");
    const presentLabel = presenting ? "Stop presenting" : "Present now";
    setAttr(this.present, "aria-label", presentLabel);
    setAttr(this.present, "title", `${presentLabel} (${this.present.dataset.shortcut ?? ""})`);
    show(this.presentingBar, presenting);
    for (const [i, item] of Array.from(this.layoutMenu.children).entries()) setAttr(item, "aria-checked", LAYOUT_MODES[i]?.mode === m.layout ? "true" : "false");
    show(this.locked, m.locked);
    setAttr(this.locked, "title", isHost(s) ? "You locked the meeting: no one else can ask to join" : "The host locked the meeting: no one else can ask to join");
    for (const [panel, btn] of Object.entries(this.panelButtons) as Array<[Panel, HTMLButtonElement]>) {
      btn.classList.toggle("active", s.panel === panel);
      setAttr(btn, "aria-pressed", s.panel === panel ? "true" : "false");
    }
    show(this.chatBadge, m.unread > 0);
    setText(this.chatBadge, m.unread > 99 ? "99+" : String(m.unread));
    setAttr(this.panelButtons.chat, "aria-label", m.unread > 0 ? `Chat with everyone (${m.unread} unread)` : "Chat with everyone");
    setText(this.peopleCount, String(m.roster.length + s.knocks.length));
    this.peopleCount.classList.toggle("attention", s.knocks.length > 0);
    this.el.classList.toggle("panel-open", s.panel !== null);
    show(this.side, s.panel !== null);
    // The charts want room: the stats panel is wider and lays them out in two columns.
    this.side.classList.toggle("wide", s.panel === "stats");
    this.chat.update(s, s.panel === "chat");
    this.people.update(s, s.panel === "participants");
    this.stats.update(s, s.panel === "stats");
    this.settings.update(s, s.panel === "settings");
  }

  private openLayoutMenu(open: boolean): void {
    show(this.layoutMenu, open);
    setAttr(this.layoutBtn, "aria-expanded", open ? "true" : "false");
  }

  private toggle(btn: HTMLButtonElement, on: boolean, onIcon: IconName, offIcon: IconName, what: string): void {
    setIcon(btn, on ? onIcon : offIcon);
    btn.classList.toggle("off", !on);
    setAttr(btn, "aria-pressed", on ? "false" : "true");
    const label = `Turn ${on ? "off" : "on"} ${what} (${btn.dataset.shortcut ?? ""})`;
    setAttr(btn, "aria-label", label);
    setAttr(btn, "title", label);
  }

  private async copyInvite(store: Store): Promise<void> {
    const m = store.state.meeting;
    if (!m) return;
    const text = m.invitation.text;
    try {
      await navigator.clipboard.writeText(text);
      store.dispatch({ type: "toast", kind: "info", text: "Invitation copied" });
    } catch {
      store.dispatch({ type: "toast", kind: "error", text: "Couldn't copy", detail: text });
    }
  }
}
