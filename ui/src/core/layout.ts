/**
 * Tile layout of the meeting stage, as Meet arranges it: 16:9 tiles as large as the stage
 * allows, the last row centred, and with exactly two people the other person fills the stage
 * while the self view floats in a corner. With a main tile (a presentation, a pinned tile) it
 * takes the stage and the others line up in a strip on its right, or below it on a stage taller
 * than wide. Which tiles go where is core/stage.ts's decision; this file makes the rectangles.
 */

/** A rectangle in CSS pixels relative to the stage's top-left corner. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The result of {@link gridLayout}. */
export interface GridLayout {
  cols: number;
  rows: number;
  tileWidth: number;
  tileHeight: number;
  /** One rectangle per tile, in reading order. */
  tiles: Rect[];
}

/** Gap between tiles, CSS pixels. */
export const TILE_GAP = 8;
/** Tile aspect ratio (width / height). */
export const TILE_ASPECT = 16 / 9;

/**
 * Arranges `n` tiles of aspect {@link TILE_ASPECT} in a `width` × `height` stage: tries every
 * column count and keeps the one with the largest tiles (ties go to fewer columns), then centres
 * the grid and the last, possibly shorter, row.
 */
export function gridLayout(n: number, width: number, height: number, gap = TILE_GAP, aspect = TILE_ASPECT): GridLayout {
  const count = Math.max(0, Math.floor(n));
  if (count === 0 || width <= 0 || height <= 0) return { cols: 0, rows: 0, tileWidth: 0, tileHeight: 0, tiles: [] };
  let best = { cols: 1, rows: count, w: 0, h: 0 };
  for (let cols = 1; cols <= count; cols++) {
    const rows = Math.ceil(count / cols);
    const cellW = (width - gap * (cols - 1)) / cols;
    const cellH = (height - gap * (rows - 1)) / rows;
    if (cellW <= 0 || cellH <= 0) continue;
    const w = Math.min(cellW, cellH * aspect);
    const h = w / aspect;
    if (w > best.w + 0.01) best = { cols, rows, w, h };
  }
  const { cols, rows } = best;
  const tileWidth = Math.floor(best.w);
  const tileHeight = Math.floor(best.h);
  const gridH = rows * tileHeight + (rows - 1) * gap;
  const top = (height - gridH) / 2;
  const tiles: Rect[] = [];
  for (let i = 0; i < count; i++) {
    const row = Math.floor(i / cols);
    const inRow = row === rows - 1 ? count - row * cols : cols;
    const col = i - row * cols;
    const rowW = inRow * tileWidth + (inRow - 1) * gap;
    const left = (width - rowW) / 2;
    tiles.push({
      x: Math.round(left + col * (tileWidth + gap)),
      y: Math.round(top + row * (tileHeight + gap)),
      width: tileWidth,
      height: tileHeight,
    });
  }
  return { cols, rows, tileWidth, tileHeight, tiles };
}

/** Where each participant's tile goes on the stage. */
export interface StageLayout {
  /** Tiles in the grid, in the order given. */
  tiles: Array<{ id: number } & Rect>;
  /** The floating self view, when there is one. */
  pip: ({ id: number } & Rect) | null;
}

/** Width of the floating self view as a fraction of the stage width, and its bounds in px. */
const PIP_FRACTION = 0.22;
const PIP_MIN_WIDTH = 160;
const PIP_MAX_WIDTH = 320;
const PIP_MARGIN = 16;

/**
 * Lays out a meeting: `ids` are everyone in display order, `selfId` is this app's participant.
 * Alone: the self view fills the stage. With one other person: they fill the stage and the self
 * view floats bottom-right. Three or more: everyone, self included, in the grid.
 */
export function stageLayout(ids: readonly number[], selfId: number, width: number, height: number): StageLayout {
  const others = ids.filter((id) => id !== selfId);
  const hasSelf = ids.includes(selfId);
  if (hasSelf && others.length === 1) {
    const grid = gridLayout(1, width, height);
    const pipW = Math.round(Math.min(PIP_MAX_WIDTH, Math.max(PIP_MIN_WIDTH, width * PIP_FRACTION)));
    const pipH = Math.round(pipW / TILE_ASPECT);
    const first = grid.tiles[0];
    const other = others[0];
    if (first && other !== undefined && pipW + PIP_MARGIN * 2 < width && pipH + PIP_MARGIN * 2 < height) {
      return {
        tiles: [{ id: other, ...first }],
        pip: { id: selfId, x: width - pipW - PIP_MARGIN, y: height - pipH - PIP_MARGIN, width: pipW, height: pipH },
      };
    }
  }
  const grid = gridLayout(ids.length, width, height);
  return {
    tiles: ids.flatMap((id, i) => {
      const rect = grid.tiles[i];
      return rect ? [{ id, ...rect }] : [];
    }),
    pip: null,
  };
}

/** Where the tiles go when one of them is the main tile. */
export interface FocusLayout {
  /** The main tile first, then the strip's tiles that have room, in order. */
  tiles: Array<{ id: number } & Rect>;
  /** How many strip tiles had no room, counted ("+3") in the strip's last place; null when all fit. */
  more: ({ count: number } & Rect) | null;
}

/** The strip's thickness as a fraction of the stage, and its bounds in px. */
const STRIP_FRACTION = 0.2;
const STRIP_MIN = 120;
const STRIP_MAX = 280;
/** Strip tiles shrink to fit everyone down to this length along the strip, then overflow. */
const STRIP_TILE_MIN = 72;

/**
 * Lays out a main tile and a strip of `strip` tiles in a `width` × `height` stage. The strip
 * runs down the right side, or along the bottom when the stage is taller than wide; its 16:9
 * tiles shrink to fit and, below {@link STRIP_TILE_MIN}, the last place counts those left out.
 * With `fillMain` the main tile takes all the room left (a shared screen, drawn letterboxed
 * inside it); otherwise it is the largest centred 16:9 tile (a camera). An empty strip leaves the
 * whole stage to the main tile.
 */
export function focusLayout(main: number, strip: readonly number[], width: number, height: number, fillMain: boolean, gap = TILE_GAP, aspect = TILE_ASPECT): FocusLayout {
  if (width <= 0 || height <= 0) return { tiles: [], more: null };
  const right = width >= height;
  const along = right ? height : width;
  const across = right ? width : height;
  // The strip's thickness: a share of the stage, within bounds, never more than half of it.
  const thickness = strip.length === 0 ? 0 : Math.floor(Math.min(across / 2, Math.max(STRIP_MIN, Math.min(STRIP_MAX, across * STRIP_FRACTION))));
  // A strip tile's full length along the strip (its height on the right, its width below).
  const fullLength = right ? thickness / aspect : thickness * aspect;
  const fitLength = strip.length === 0 ? 0 : (along - gap * (strip.length - 1)) / strip.length;
  const length = Math.floor(Math.min(fullLength, Math.max(fitLength, Math.min(STRIP_TILE_MIN, fullLength))));
  // The places along the strip; when not every tile has one, the last place holds the count.
  const places = length > 0 ? Math.max(1, Math.floor((along + gap) / (length + gap))) : 0;
  const shown = strip.length <= places ? strip.length : places - 1;
  const slots = Math.min(strip.length, places);
  const tileW = right ? Math.floor(length * aspect) : length;
  const tileH = right ? length : Math.floor(length / aspect);
  const run = slots * length + Math.max(0, slots - 1) * gap;
  const start = Math.round((along - run) / 2);
  const stripX = right ? width - tileW : 0;
  const stripY = right ? 0 : height - tileH;
  const place = (i: number): Rect => ({
    x: right ? stripX : start + i * (length + gap),
    y: right ? start + i * (length + gap) : stripY,
    width: tileW,
    height: tileH,
  });
  // The main tile has the top-left of the stage, up to the strip.
  const mainW = right && slots > 0 ? width - tileW - gap : width;
  const mainH = !right && slots > 0 ? height - tileH - gap : height;
  const mainRect = fillMain ? { x: 0, y: 0, width: mainW, height: mainH } : gridLayout(1, mainW, mainH, gap, aspect).tiles[0];
  const tiles: FocusLayout["tiles"] = mainRect ? [{ id: main, ...mainRect }] : [];
  for (let i = 0; i < shown; i++) tiles.push({ id: strip[i]!, ...place(i) });
  const more = shown < strip.length ? { count: strip.length - shown, ...place(shown) } : null;
  return { tiles, more };
}
