import { describe, expect, it } from "vitest";
import { focusLayout, gridLayout, stageLayout, TILE_ASPECT, TILE_GAP, type Rect } from "./layout";

function inside(r: Rect, w: number, h: number): boolean {
  return r.x >= 0 && r.y >= 0 && r.x + r.width <= w + 0.5 && r.y + r.height <= h + 0.5;
}
function overlap(a: Rect, b: Rect): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

describe("gridLayout", () => {
  it("is empty for no tiles or no room", () => {
    expect(gridLayout(0, 1280, 720).tiles).toEqual([]);
    expect(gridLayout(3, 0, 720).tiles).toEqual([]);
  });
  it("gives one tile the whole width of a 16:9 stage", () => {
    const g = gridLayout(1, 1280, 720);
    expect(g.cols).toBe(1);
    expect(g.tiles[0]).toEqual({ x: 0, y: 0, width: 1280, height: 720 });
  });
  it("puts two side by side on a wide stage and stacks them on a tall one", () => {
    expect(gridLayout(2, 1280, 600).cols).toBe(2);
    expect(gridLayout(2, 500, 900).cols).toBe(1);
  });
  it("uses a 2×2 grid for four on a 16:9 stage and 3×2 for six", () => {
    expect(gridLayout(4, 1280, 720)).toMatchObject({ cols: 2, rows: 2 });
    expect(gridLayout(6, 1280, 720)).toMatchObject({ cols: 3, rows: 2 });
  });
  it("centres a short last row", () => {
    const g = gridLayout(3, 1280, 720);
    expect(g).toMatchObject({ cols: 2, rows: 2 });
    const [a, b, c] = g.tiles as [Rect, Rect, Rect];
    expect(a.y).toBe(b.y);
    const lastCentre = c.x + c.width / 2;
    expect(Math.abs(lastCentre - 640)).toBeLessThanOrEqual(1);
  });
  it("keeps every tile 16:9, inside the stage, apart by the gap, for many sizes", () => {
    for (const n of [1, 2, 3, 4, 5, 7, 9, 12, 16, 25]) {
      for (const [w, h] of [[1280, 720], [800, 560], [1920, 1080], [700, 1000], [333, 211]] as const) {
        const g = gridLayout(n, w, h);
        expect(g.tiles).toHaveLength(n);
        for (const [i, t] of g.tiles.entries()) {
          expect(inside(t, w, h)).toBe(true);
          // 16:9 up to the whole-pixel rounding of each side.
          expect(Math.abs(t.width - t.height * TILE_ASPECT)).toBeLessThanOrEqual(2);
          for (const u of g.tiles.slice(i + 1)) expect(overlap(t, u)).toBe(false);
        }
        if (g.cols > 1) {
          const [a, b] = g.tiles as [Rect, Rect];
          expect(b.x - (a.x + a.width)).toBeGreaterThanOrEqual(TILE_GAP - 1);
        }
      }
    }
  });
  it("picks the column count with the largest tiles", () => {
    const n = 5;
    const best = gridLayout(n, 1280, 720).tileWidth;
    for (let cols = 1; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      const w = Math.min((1280 - TILE_GAP * (cols - 1)) / cols, ((720 - TILE_GAP * (rows - 1)) / rows) * TILE_ASPECT);
      expect(best).toBeGreaterThanOrEqual(Math.floor(w));
    }
  });
});

describe("stageLayout", () => {
  it("fills the stage with the self view when alone", () => {
    const s = stageLayout([7], 7, 1280, 720);
    expect(s.pip).toBeNull();
    expect(s.tiles).toEqual([{ id: 7, x: 0, y: 0, width: 1280, height: 720 }]);
  });
  it("floats the self view bottom-right with one other person", () => {
    const s = stageLayout([7, 9], 7, 1280, 720);
    expect(s.tiles.map((t) => t.id)).toEqual([9]);
    expect(s.pip?.id).toBe(7);
    const pip = s.pip!;
    expect(pip.x + pip.width).toBeLessThan(1280);
    expect(pip.y + pip.height).toBeLessThan(720);
    expect(pip.width).toBeGreaterThanOrEqual(160);
  });
  it("puts everyone in the grid from three people", () => {
    const s = stageLayout([7, 9, 11], 7, 1280, 720);
    expect(s.pip).toBeNull();
    expect(s.tiles.map((t) => t.id)).toEqual([7, 9, 11]);
  });
});

describe("focusLayout", () => {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

  it("gives the main tile the stage and lines the strip up on the right of a wide stage", () => {
    const f = focusLayout(100, ids(3), 1280, 720, true);
    const [main, ...strip] = f.tiles;
    expect(f.more).toBeNull();
    expect(main).toMatchObject({ id: 100, x: 0, y: 0, height: 720 });
    expect(strip.map((t) => t.id)).toEqual([1, 2, 3]);
    for (const t of strip) {
      expect(t.x).toBeGreaterThanOrEqual(main!.width + TILE_GAP);
      expect(t.x + t.width).toBe(1280);
      expect(Math.abs(t.width - t.height * TILE_ASPECT)).toBeLessThanOrEqual(2);
    }
    // One column, top to bottom, centred.
    expect(strip[1]!.y).toBeGreaterThan(strip[0]!.y);
    expect(Math.abs(strip[0]!.y - (720 - (strip[2]!.y + strip[2]!.height)))).toBeLessThanOrEqual(1);
  });

  it("puts the strip along the bottom of a stage taller than wide", () => {
    const f = focusLayout(100, ids(2), 500, 800, true);
    const [main, ...strip] = f.tiles;
    expect(main).toMatchObject({ x: 0, y: 0, width: 500 });
    for (const t of strip) {
      expect(t.y).toBeGreaterThanOrEqual(main!.height + TILE_GAP);
      expect(t.y + t.height).toBe(800);
    }
    expect(strip[1]!.x).toBeGreaterThan(strip[0]!.x);
  });

  it("fits a camera as main in 16:9 but lets a screen take all the room", () => {
    const camera = focusLayout(100, ids(2), 1280, 720, false).tiles[0]!;
    const screen = focusLayout(100, ids(2), 1280, 720, true).tiles[0]!;
    expect(Math.abs(camera.width - camera.height * TILE_ASPECT)).toBeLessThanOrEqual(2);
    expect(screen.width * screen.height).toBeGreaterThan(camera.width * camera.height);
  });

  it("leaves the whole stage to the main tile when the strip is empty (spotlight)", () => {
    expect(focusLayout(100, [], 1280, 720, true)).toEqual({ tiles: [{ id: 100, x: 0, y: 0, width: 1280, height: 720 }], more: null });
  });

  it("shrinks strip tiles to fit everyone, then counts those without room", () => {
    const five = focusLayout(100, ids(5), 1280, 720, true);
    expect(five.tiles).toHaveLength(6);
    expect(five.more).toBeNull();
    const many = focusLayout(100, ids(30), 1280, 720, true);
    const shown = many.tiles.length - 1;
    expect(many.more).not.toBeNull();
    expect(shown + many.more!.count).toBe(30);
    expect(many.tiles.slice(1).map((t) => t.id)).toEqual(ids(shown));
  });

  it("keeps every tile inside the stage and apart, for many sizes and counts", () => {
    for (const n of [0, 1, 2, 4, 7, 12, 40]) {
      for (const [w, h] of [[1280, 720], [872, 624], [392, 464], [1920, 1080], [800, 300]] as const) {
        const f = focusLayout(100, ids(n), w, h, n % 2 === 0);
        const rects: Rect[] = [...f.tiles, ...(f.more ? [f.more] : [])];
        for (const [i, r] of rects.entries()) {
          expect(inside(r, w, h)).toBe(true);
          expect(r.width).toBeGreaterThan(0);
          for (const u of rects.slice(i + 1)) expect(overlap(r, u)).toBe(false);
        }
      }
    }
  });
});
