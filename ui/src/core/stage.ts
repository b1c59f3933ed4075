/**
 * What the meeting stage shows, decided as Meet decides it: which tile is the main one and which
 * go in the strip beside it, or all in the grid, from who is in the meeting, who presents, what
 * is pinned and the layout chosen in the layout menu. Where each tile goes on screen is
 * core/layout.ts's business.
 *
 * Tiles are named by the id of the video they draw: a participant's id for their camera, and
 * `screenTileId(id)` for their shared screen. This app's own screen never has a tile: the shell
 * sends no frames of it.
 */
import { screenTileId, type ParticipantId } from "./types";

/** The layout menu's choices. */
export type LayoutMode = "auto" | "tiled" | "spotlight" | "sidebar";

/** The layout menu's order, with each choice's name and what it does. */
export const LAYOUT_MODES: ReadonlyArray<{ mode: LayoutMode; label: string; hint: string }> = [
  { mode: "auto", label: "Auto", hint: "The grid, or a presentation or pinned tile large with everyone beside it" },
  { mode: "tiled", label: "Tiled", hint: "Everyone and every presentation in the grid" },
  { mode: "spotlight", label: "Spotlight", hint: "Only the presentation, the pinned tile or whoever speaks" },
  { mode: "sidebar", label: "Sidebar", hint: "One large tile with everyone else beside it" },
];

/** A tile: a camera's participant id, or a shared screen's {@link screenTileId}. */
export type TileId = number;

/** What the stage is planned from. */
export interface StageInput {
  /** Everyone in the meeting in display order (this app first, then join order). */
  participants: readonly ParticipantId[];
  selfId: ParticipantId;
  /** Who shares a screen, in the order they started (this app may be among them). */
  presenters: readonly ParticipantId[];
  /** The loudest recent speaker, if any. */
  activeSpeaker: ParticipantId | null;
  /** The tile the person pinned; one no longer on the stage is ignored. */
  pinned: TileId | null;
  layout: LayoutMode;
}

/** What the stage shows. */
export interface StagePlan {
  /** Every tile on the stage, shown or not: the others' screens, most recent first, then the cameras. */
  tiles: TileId[];
  /** The large tile; null when everything is in the grid. */
  main: TileId | null;
  /** With a main tile, the strip beside it (empty in spotlight); without, the grid. In order. */
  others: TileId[];
}

/**
 * Plans the stage. Auto shows the grid until someone else presents or a tile is pinned; then
 * the pinned tile, or else the newest presentation, is the main tile with everything else in
 * the strip. Sidebar always has a main tile (the pinned one, the newest presentation, whoever
 * speaks, or else the first other person); Spotlight shows that tile alone; Tiled puts every
 * tile, screens first, in the grid.
 */
export function planStage(input: StageInput): StagePlan {
  const present = new Set(input.participants);
  const screens = input.presenters
    .filter((id) => id !== input.selfId && present.has(id))
    .reverse()
    .map(screenTileId);
  const tiles = [...screens, ...input.participants];
  const pinned = input.pinned !== null && tiles.includes(input.pinned) ? input.pinned : null;
  const focus = (main: TileId | null, strip: boolean): StagePlan =>
    main === null ? { tiles, main: null, others: tiles } : { tiles, main, others: strip ? tiles.filter((t) => t !== main) : [] };
  switch (input.layout) {
    case "tiled":
      return { tiles, main: null, others: tiles };
    case "auto":
      return focus(pinned ?? screens[0] ?? null, true);
    case "sidebar":
      return focus(mainTile(input, screens, pinned), true);
    case "spotlight":
      return focus(mainTile(input, screens, pinned), false);
  }
}

/** The main tile of Sidebar and Spotlight. */
function mainTile(input: StageInput, screens: readonly TileId[], pinned: TileId | null): TileId | null {
  if (pinned !== null) return pinned;
  if (screens[0] !== undefined) return screens[0];
  const others = input.participants.filter((id) => id !== input.selfId);
  const speaker = input.activeSpeaker;
  if (speaker !== null && others.includes(speaker)) return speaker;
  return others[0] ?? input.participants[0] ?? null;
}
