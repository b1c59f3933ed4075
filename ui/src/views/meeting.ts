/**
 * The meeting screen: the tile stage, the side panel (chat, people or stats) and the bottom bar
 * with the meeting code, the relay address to share, a lock while the host has locked the
 * meeting, and the round controls (microphone, camera, raise hand, reactions, leave). While the
 * connection to the relay is being repaired a "Reconnecting…" banner counts the seconds; tiles
 * of others whose connection dropped are greyed out with the same words. A raised hand shows on
 * its tile, and reactions float up over their sender's tile for a few seconds.
 */
import type { Controller } from "../core/controller";
import { avatarColor, displayCode, formatClock, formatElapsed, initialOf } from "../core/format";
import { stageLayout, type Rect } from "../core/layout";
import { isApplePlatform, shortcutLabel } from "../core/shortcuts";
import { REACTION_EMOJI, REACTION_LABEL, REACTIONS } from "../core/reactions";
import { handRaised, isHost, latestStats, reconnectingSeconds, stageOrder, type AppState, type FloatingReaction, type MeetingState, type Panel } from "../core/state";
import type { Store } from "../core/store";
import { connectionQuality, qualityWords, type Quality } from "../core/stats";
import { LOCAL_VIDEO_ID, type Participant } from "../core/types";
import { h, reconcile, setAttr, setText, show } from "./dom";
import { icon, setIcon, signalBars, type IconName } from "./icons";
import type { VideoHub } from "./video";
import { ChatPanel } from "./chat";
import { PeoplePanel } from "./people";
import { StatsPanel } from "./stats";
import { SettingsPanel } from "./settings";

/** What a tile shows. */
interface TileModel {
  id: number;
  self: boolean;
  name: string;
  micOn: boolean;
  cameraOn: boolean;
  speaking: boolean;
  quality: Quality;
  /** Their connection dropped; the relay holds their seat for now. */
  reconnecting: boolean;
  handRaised: boolean;
  /** Their reactions floating now, oldest first. */
  reactions: FloatingReaction[];
}

/** One participant's tile with its canvas. */
class TileView {
  readonly el: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  private readonly avatar: HTMLDivElement;
  private readonly name: HTMLDivElement;
  private readonly micOff: HTMLDivElement;
  private readonly quality: HTMLDivElement;
  private readonly reconnecting: HTMLDivElement;
  private readonly hand: HTMLDivElement;
  private readonly reactions: HTMLDivElement;
  private attachedAs: number | null = null;

  constructor(
    readonly id: number,
    private readonly hub: VideoHub,
  ) {
    this.canvas = h("canvas", { class: "video", testid: `video-${id}` });
    this.avatar = h("div", { class: "avatar" });
    this.name = h("div", { class: "name-label", testid: `name-${id}` });
    this.micOff = h("div", { class: "mic-off-badge", testid: `micoff-${id}`, title: "Microphone off" }, icon("micOff", 18));
    this.quality = h("div", { class: "quality", testid: `quality-${id}` }, signalBars());
    this.reconnecting = h("div", { class: "reconnecting-label", testid: `reconnecting-${id}` }, h("span", { class: "spinner small" }), h("span", { text: "Reconnecting…" }));
    show(this.reconnecting, false);
    this.hand = h("div", { class: "hand-badge", testid: `hand-badge-${id}`, title: "Hand raised" }, icon("hand", 18));
    this.reactions = h("div", { class: "tile-reactions", testid: `reactions-${id}`, attrs: { "aria-live": "polite" } });
    this.el = h(
      "div",
      { class: "tile", testid: `tile-${id}` },
      this.canvas,
      h("div", { class: "camera-off" }, this.avatar),
      this.reconnecting,
      this.reactions,
      this.hand,
      this.quality,
      this.micOff,
      this.name,
    );
    this.el.dataset.participantId = String(id);
  }

  update(m: TileModel): void {
    // The self view draws the local camera (id 0), mirrored like a mirror, as Meet does.
    const videoId = m.self ? LOCAL_VIDEO_ID : m.id;
    if (this.attachedAs !== videoId) {
      this.hub.attach(videoId, this.canvas, this.el);
      this.attachedAs = videoId;
    }
    this.canvas.classList.toggle("mirrored", m.self);
    this.el.classList.toggle("self", m.self);
    this.el.classList.toggle("speaking", m.speaking);
    this.el.classList.toggle("video-off", !m.cameraOn);
    this.el.classList.toggle("reconnecting", m.reconnecting);
    show(this.reconnecting, m.reconnecting);
    setText(this.name, m.self ? "You" : m.name);
    setText(this.avatar, initialOf(m.name));
    this.avatar.style.backgroundColor = avatarColor(m.name);
    show(this.micOff, !m.micOn);
    show(this.hand, m.handRaised);
    reconcile(
      this.reactions,
      m.reactions,
      (r) => String(r.id),
      (r) => h("span", { class: "floating-reaction", testid: `reaction-${r.id}`, text: REACTION_EMOJI[r.reaction], title: REACTION_LABEL[r.reaction] }),
      () => undefined,
    );
    this.quality.dataset.quality = m.quality;
    setAttr(this.quality, "title", qualityWords(m.quality));
  }

  place(r: Rect, pip: boolean): void {
    const st = this.el.style;
    const px = (n: number) => `${Math.round(n)}px`;
    if (st.left !== px(r.x)) st.left = px(r.x);
    if (st.top !== px(r.y)) st.top = px(r.y);
    if (st.width !== px(r.width)) st.width = px(r.width);
    if (st.height !== px(r.height)) st.height = px(r.height);
    this.el.classList.toggle("pip", pip);
  }

  dispose(): void {
    if (this.attachedAs !== null) this.hub.detach(this.attachedAs, this.canvas);
    this.attachedAs = null;
  }
}

/** The grid of tiles, laid out by core/layout.ts whenever the roster or the stage size changes. */
class Stage {
  readonly el: HTMLDivElement;
  private readonly tiles = new Map<number, TileView>();
  private models: TileModel[] = [];
  private selfId = -1;
  private width = 0;
  private height = 0;

  constructor(private readonly hub: VideoHub) {
    this.el = h("div", { class: "stage", testid: "stage" });
    new ResizeObserver(() => {
      this.width = this.el.clientWidth;
      this.height = this.el.clientHeight;
      this.layout();
    }).observe(this.el);
  }

  update(s: AppState, m: MeetingState): void {
    const stats = latestStats(m);
    const byId = new Map<number, Participant>(m.roster.map((p) => [p.id, p]));
    const rows = new Map((stats?.participants ?? []).map((r) => [r.participantId, r]));
    this.selfId = m.selfId;
    this.models = stageOrder(m).flatMap((id) => {
      const p = byId.get(id);
      if (!p) return [];
      const self = id === m.selfId;
      const row = rows.get(id);
      const quality = self
        ? connectionQuality(stats?.loss ?? null, stats ? stats.rttMs + stats.jitterMs : null)
        : connectionQuality(row?.loss ?? null, row && stats ? stats.rttMs + row.jitterMs : null);
      return [
        {
          id,
          self,
          name: p.displayName,
          micOn: self ? s.micOn : p.micOn,
          cameraOn: self ? s.cameraOn : p.cameraOn,
          speaking: m.activeSpeaker === id,
          quality,
          // Our own dropped connection shows as the banner instead.
          reconnecting: !self && p.reconnecting,
          handRaised: p.handRaised !== null,
          reactions: m.reactions.filter((r) => r.participantId === id),
        },
      ];
    });
    const live = new Set(this.models.map((t) => t.id));
    for (const [id, tile] of this.tiles) {
      if (!live.has(id)) {
        tile.dispose();
        tile.el.remove();
        this.tiles.delete(id);
      }
    }
    for (const model of this.models) {
      let tile = this.tiles.get(model.id);
      if (!tile) {
        tile = new TileView(model.id, this.hub);
        this.tiles.set(model.id, tile);
        this.el.append(tile.el);
      }
      tile.update(model);
    }
    this.layout();
  }

  /** Forgets every tile (the meeting ended). */
  clear(): void {
    for (const tile of this.tiles.values()) {
      tile.dispose();
      tile.el.remove();
    }
    this.tiles.clear();
    this.models = [];
  }

  private layout(): void {
    if (this.width === 0 || this.height === 0) return;
    const ids = this.models.map((t) => t.id);
    const lay = stageLayout(ids, this.selfId, this.width, this.height);
    for (const t of lay.tiles) this.tiles.get(t.id)?.place(t, false);
    if (lay.pip) {
      const tile = this.tiles.get(lay.pip.id);
      if (tile) {
        tile.place(lay.pip, true);
        // The floating self view stays on top of the big tile.
        if (this.el.lastElementChild !== tile.el) this.el.append(tile.el);
      }
    }
  }
}

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
    this.stage = new Stage(hub);
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
    this.hand.dataset.shortcut = apple ? "⌘⌥H" : "Ctrl+Alt+H";
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
    // A click anywhere but on the picker or its button closes the picker.
    document.addEventListener("click", (e) => {
      if (!this.picker.hidden && !(e.target as Element).closest?.(".reaction-wrap")) show(this.picker, false);
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
      h("div", { class: "meeting-body" }, this.stage.el, this.side),
      h(
        "footer",
        { class: "bottom-bar" },
        h("div", { class: "bar-left" }, this.clock, h("span", { class: "bar-sep", text: "|" }), this.code, h("span", { class: "relay-wrap", title: "Address others enter to join" }, icon("lan", 16), this.relay), copy, this.e2ee, this.e2eeInfo, this.locked),
        h("div", { class: "bar-center" }, this.mic, this.cam, this.hand, h("div", { class: "reaction-wrap" }, this.react, this.picker), leave),
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
