/**
 * Tile layout of the meeting stage, as Meet arranges it: 16:9 tiles as large as the stage
 * allows, the last row centred, and with exactly two people the other person fills the stage
 * while the self view floats in a corner.
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
