/**
 * The meeting's stage: a tile per camera and per shared screen, placed as core/stage.ts plans
 * and core/layout.ts measures: the grid (with the self view floating beside one other person),
 * or a main tile with the others in a strip, "+N more" counting those without room. A camera
 * tile shows the name, the signal bars, the microphone and hand badges, "Reconnecting…" and
 * floating reactions; a presentation tile shows the whole shared screen, letterboxed, with a
 * full-screen button. Every tile has a pin button that makes it the main tile.
 *
 * Only tiles on screen draw: a hidden one (the strip in Spotlight, the overflow of a long
 * strip) gives its canvas back to the video hub, which then stops acknowledging its frames, so
 * the shell stops sending them.
 */
import { avatarColor, initialOf } from "../core/format";
import { focusLayout, stageLayout, type Rect } from "../core/layout";
import { REACTION_EMOJI, REACTION_LABEL } from "../core/reactions";
import type { StagePlan, TileId } from "../core/stage";
import { latestStats, stagePlan, type AppState, type FloatingReaction, type MeetingState } from "../core/state";
import type { Store } from "../core/store";
import { connectionQuality, qualityWords, type Quality } from "../core/stats";
import { isScreenTileId, LOCAL_VIDEO_ID, tileOwner, type Participant } from "../core/types";
import { h, reconcile, setAttr, setText, show } from "./dom";
import { icon, setIcon, signalBars } from "./icons";
import type { VideoHub } from "./video";

/** What a camera tile shows. */
interface CameraModel {
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
  pinned: boolean;
}

/** What a presentation tile shows. */
interface ScreenModel {
  name: string;
  pinned: boolean;
}

/** How a tile is placed: in the grid, floating (the self view), as the main tile or in the strip. */
type Placement = "grid" | "pip" | "main" | "strip";

/** Keeps a canvas registered with the video hub under one video id while its tile shows. */
class VideoBinding {
  private bound: number | null = null;

  constructor(
    private readonly hub: VideoHub,
    private readonly canvas: HTMLCanvasElement,
    private readonly sizeEl: HTMLElement,
  ) {}

  /** Draws `videoId` into the canvas from now on; null gives the canvas back. */
  bind(videoId: number | null): void {
    if (this.bound === videoId) return;
    if (this.bound !== null) this.hub.detach(this.bound, this.canvas);
    this.bound = videoId;
    if (videoId !== null) this.hub.attach(videoId, this.canvas, this.sizeEl);
  }
}

/** What the stage does with any tile. */
abstract class Tile {
  readonly el: HTMLDivElement;
  protected readonly canvas: HTMLCanvasElement;
  protected readonly actions: HTMLDivElement;
  private readonly pin: HTMLButtonElement;
  private readonly binding: VideoBinding;
  private shown = true;

  constructor(
    readonly id: TileId,
    hub: VideoHub,
    private readonly store: Store,
    canvas: HTMLCanvasElement,
    el: HTMLDivElement,
    pinTestId: string,
  ) {
    this.canvas = canvas;
    this.el = el;
    this.pin = h("button", { class: "tile-btn", testid: pinTestId, on: { click: () => this.togglePin() } }, icon("pin", 20));
    this.actions = h("div", { class: "tile-actions" }, this.pin);
    this.el.append(this.actions);
    this.el.dataset.tileId = String(id);
    this.binding = new VideoBinding(hub, canvas, el);
  }

  /** The video this tile draws (a camera's or a screen's id). */
  protected abstract videoId(): number;

  /** Shows the pin button's state; `whose` names the tile in its label ("Grace Hopper"). */
  protected showPin(pinned: boolean, whose: string): void {
    this.el.classList.toggle("pinned", pinned);
    setAttr(this.pin, "aria-pressed", pinned ? "true" : "false");
    const label = `${pinned ? "Unpin" : "Pin"} ${whose}`;
    setAttr(this.pin, "aria-label", label);
    setAttr(this.pin, "title", label);
  }

  private togglePin(): void {
    const pinned = this.store.state.meeting?.pinned === this.id;
    this.store.dispatch({ type: "tilePinned", tile: pinned ? null : this.id });
  }

  /** Shows the tile (drawing its video) or hides it (giving its canvas back). */
  setShown(on: boolean): void {
    this.shown = on;
    show(this.el, on);
    this.binding.bind(on ? this.videoId() : null);
  }

  /** Follows a change of the video id (the self view's is the local camera's). */
  protected rebind(): void {
    if (this.shown) this.binding.bind(this.videoId());
  }

  place(r: Rect, placement: Placement): void {
    const st = this.el.style;
    const px = (n: number) => `${Math.round(n)}px`;
    if (st.left !== px(r.x)) st.left = px(r.x);
    if (st.top !== px(r.y)) st.top = px(r.y);
    if (st.width !== px(r.width)) st.width = px(r.width);
    if (st.height !== px(r.height)) st.height = px(r.height);
    this.el.classList.toggle("pip", placement === "pip");
    this.el.classList.toggle("main", placement === "main");
    this.el.classList.toggle("strip", placement === "strip");
  }

  dispose(): void {
    this.binding.bind(null);
    this.el.remove();
  }
}

/** One participant's camera tile. */
class CameraTile extends Tile {
  private readonly avatar: HTMLDivElement;
  private readonly name: HTMLDivElement;
  private readonly micOff: HTMLDivElement;
  private readonly quality: HTMLDivElement;
  private readonly reconnecting: HTMLDivElement;
  private readonly hand: HTMLDivElement;
  private readonly reactions: HTMLDivElement;
  private self = false;

  constructor(id: number, hub: VideoHub, store: Store) {
    const canvas = h("canvas", { class: "video", testid: `video-${id}` });
    super(id, hub, store, canvas, h("div", { class: "tile", testid: `tile-${id}` }), `pin-${id}`);
    this.avatar = h("div", { class: "avatar" });
    this.name = h("div", { class: "name-label", testid: `name-${id}` });
    this.micOff = h("div", { class: "mic-off-badge", testid: `micoff-${id}`, title: "Microphone off" }, icon("micOff", 18));
    this.quality = h("div", { class: "quality", testid: `quality-${id}` }, signalBars());
    this.reconnecting = h("div", { class: "reconnecting-label", testid: `reconnecting-${id}` }, h("span", { class: "spinner small" }), h("span", { text: "Reconnecting…" }));
    show(this.reconnecting, false);
    this.hand = h("div", { class: "hand-badge", testid: `hand-badge-${id}`, title: "Hand raised" }, icon("hand", 18));
    this.reactions = h("div", { class: "tile-reactions", testid: `reactions-${id}`, attrs: { "aria-live": "polite" } });
    this.el.prepend(canvas, h("div", { class: "camera-off" }, this.avatar), this.reconnecting, this.reactions, this.hand, this.quality, this.micOff, this.name);
    this.el.dataset.participantId = String(id);
  }

  protected videoId(): number {
    // The self view draws the local camera (id 0), mirrored like a mirror, as Meet does.
    return this.self ? LOCAL_VIDEO_ID : this.id;
  }

  update(m: CameraModel): void {
    this.self = m.self;
    this.rebind();
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
    this.showPin(m.pinned, m.self ? "your video" : m.name);
  }
}

/** Someone's shared screen: all of it, letterboxed (the shell sends it fitted whole, never
 * cropped), with a full-screen button. */
class ScreenTile extends Tile {
  private readonly name: HTMLDivElement;
  private readonly fullscreen: HTMLButtonElement;
  private readonly onFullscreenChange = () => this.showFullscreen();

  constructor(id: TileId, hub: VideoHub, store: Store) {
    const presenter = tileOwner(id);
    const canvas = h("canvas", { class: "video screen-video", testid: `screen-video-${presenter}` });
    super(id, hub, store, canvas, h("div", { class: "tile screen-tile", testid: `screen-${presenter}` }), `pin-screen-${presenter}`);
    this.name = h("div", { class: "name-label", testid: `screen-name-${presenter}` });
    this.fullscreen = h("button", { class: "tile-btn", testid: `fullscreen-${presenter}`, on: { click: () => void this.toggleFullscreen(store) } });
    this.actions.append(this.fullscreen);
    // Until the first picture is drawn (the shell shows a screen once all of it arrived).
    const waiting = h("div", { class: "screen-waiting" }, h("span", { class: "spinner small" }), h("span", { text: "Loading the presentation…" }));
    this.el.prepend(canvas, waiting, this.name);
    document.addEventListener("fullscreenchange", this.onFullscreenChange);
    this.showFullscreen();
  }

  protected videoId(): number {
    return this.id;
  }

  update(m: ScreenModel): void {
    const whose = `${m.name}'s presentation`;
    setText(this.name, `${m.name} (presentation)`);
    setAttr(this.el, "aria-label", whose);
    this.showPin(m.pinned, whose);
  }

  private async toggleFullscreen(store: Store): Promise<void> {
    try {
      if (document.fullscreenElement === this.el) await document.exitFullscreen();
      else await this.el.requestFullscreen();
    } catch (e) {
      store.dispatch({ type: "toast", kind: "error", text: "Full screen isn't available", detail: e instanceof Error ? e.message : String(e) });
    }
  }

  private showFullscreen(): void {
    const on = document.fullscreenElement === this.el;
    setIcon(this.fullscreen, on ? "fullscreenExit" : "fullscreen", 20);
    const label = on ? "Exit full screen" : "Full screen";
    setAttr(this.fullscreen, "aria-label", label);
    setAttr(this.fullscreen, "title", label);
  }

  override dispose(): void {
    document.removeEventListener("fullscreenchange", this.onFullscreenChange);
    super.dispose();
  }
}

/** The stage: tiles kept by id, placed again whenever the plan or the stage's size changes. */
export class Stage {
  readonly el: HTMLDivElement;
  private readonly cameras = new Map<number, CameraTile>();
  private readonly screens = new Map<TileId, ScreenTile>();
  /** "+N more" in the strip's last place when not everyone has room. */
  private readonly more: HTMLDivElement;
  private plan: StagePlan = { tiles: [], main: null, others: [] };
  private selfId = -1;
  private width = 0;
  private height = 0;

  constructor(
    private readonly hub: VideoHub,
    private readonly store: Store,
  ) {
    this.more = h("div", { class: "tile strip more-tiles", testid: "strip-more" });
    show(this.more, false);
    this.el = h("div", { class: "stage", testid: "stage" }, this.more);
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
    this.plan = stagePlan(m);
    const cameraModels: CameraModel[] = [];
    const screenModels = new Map<TileId, ScreenModel>();
    for (const id of this.plan.tiles) {
      const p = byId.get(tileOwner(id));
      if (!p) continue;
      if (isScreenTileId(id)) {
        screenModels.set(id, { name: p.displayName, pinned: m.pinned === id });
        continue;
      }
      const self = id === m.selfId;
      const row = rows.get(id);
      const quality = self
        ? connectionQuality(stats?.loss ?? null, stats ? stats.rttMs + stats.jitterMs : null)
        : connectionQuality(row?.loss ?? null, row && stats ? stats.rttMs + row.jitterMs : null);
      cameraModels.push({
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
        pinned: m.pinned === id,
      });
    }
    const cameraIds = new Set(cameraModels.map((c) => c.id));
    this.prune(this.cameras, cameraIds);
    this.prune(this.screens, new Set(screenModels.keys()));
    for (const model of cameraModels) this.tile(this.cameras, model.id, () => new CameraTile(model.id, this.hub, this.store)).update(model);
    for (const [id, model] of screenModels) this.tile(this.screens, id, () => new ScreenTile(id, this.hub, this.store)).update(model);
    this.el.dataset.layout = this.plan.main === null ? "grid" : this.plan.others.length > 0 ? "sidebar" : "spotlight";
    this.layout();
  }

  /** Forgets every tile (the meeting ended). */
  clear(): void {
    this.prune(this.cameras, new Set());
    this.prune(this.screens, new Set());
    this.plan = { tiles: [], main: null, others: [] };
  }

  private tile<T extends Tile>(tiles: Map<TileId, T>, id: TileId, make: () => T): T {
    let tile = tiles.get(id);
    if (!tile) {
      tile = make();
      tiles.set(id, tile);
      this.el.insertBefore(tile.el, this.more);
    }
    return tile;
  }

  private prune<T extends Tile>(tiles: Map<TileId, T>, live: ReadonlySet<TileId>): void {
    for (const [id, tile] of tiles) {
      if (live.has(id)) continue;
      tile.dispose();
      tiles.delete(id);
    }
  }

  private layout(): void {
    if (this.width === 0 || this.height === 0) return;
    const placed = new Set<TileId>();
    const put = (id: TileId, r: Rect, placement: Placement) => {
      const tile = this.cameras.get(id) ?? this.screens.get(id);
      if (!tile) return;
      tile.place(r, placement);
      placed.add(id);
    };
    const { main, others } = this.plan;
    let more: ({ count: number } & Rect) | null = null;
    if (main === null) {
      const lay = stageLayout(others, this.selfId, this.width, this.height);
      for (const t of lay.tiles) put(t.id, t, "grid");
      if (lay.pip) {
        put(lay.pip.id, lay.pip, "pip");
        // The floating self view stays on top of the big tile.
        const tile = this.cameras.get(lay.pip.id);
        if (tile && tile.el.nextElementSibling !== this.more) this.el.insertBefore(tile.el, this.more);
      }
    } else {
      const lay = focusLayout(main, others, this.width, this.height, isScreenTileId(main));
      for (const t of lay.tiles) put(t.id, t, t.id === main ? "main" : "strip");
      more = lay.more;
    }
    for (const [id, tile] of [...this.cameras, ...this.screens]) tile.setShown(placed.has(id));
    show(this.more, more !== null);
    if (more) {
      setText(this.more, `${more.count} more`);
      Object.assign(this.more.style, { left: `${more.x}px`, top: `${more.y}px`, width: `${more.width}px`, height: `${more.height}px` });
    }
  }
}
