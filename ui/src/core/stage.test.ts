import { describe, expect, it } from "vitest";
import { planStage, type StageInput } from "./stage";
import { screenTileId } from "./types";

/** This app (1) with Grace (2) and Linus (3), nobody presenting, in Auto. */
function input(over: Partial<StageInput> = {}): StageInput {
  return { participants: [1, 2, 3], selfId: 1, presenters: [], activeSpeaker: null, pinned: null, layout: "auto", ...over };
}

const screen = screenTileId;

describe("planStage", () => {
  it("shows everyone's camera in the grid while nobody presents", () => {
    expect(planStage(input())).toEqual({ tiles: [1, 2, 3], main: null, others: [1, 2, 3] });
  });

  it("makes a presenter's screen the main tile with every camera, theirs too, in the strip", () => {
    const plan = planStage(input({ presenters: [2] }));
    expect(plan.main).toBe(screen(2));
    expect(plan.others).toEqual([1, 2, 3]);
    expect(plan.tiles).toEqual([screen(2), 1, 2, 3]);
  });

  it("gives this app's own presentation no tile", () => {
    expect(planStage(input({ presenters: [1] }))).toEqual({ tiles: [1, 2, 3], main: null, others: [1, 2, 3] });
    expect(planStage(input({ presenters: [1, 3] })).main).toBe(screen(3));
  });

  it("shows the newest of several presentations as main and the others first in the strip", () => {
    const plan = planStage(input({ presenters: [2, 3] }));
    expect(plan.main).toBe(screen(3));
    expect(plan.others).toEqual([screen(2), 1, 2, 3]);
  });

  it("makes a pinned tile the main one, over any presentation", () => {
    const camera = planStage(input({ presenters: [2], pinned: 3 }));
    expect(camera.main).toBe(3);
    expect(camera.others).toEqual([screen(2), 1, 2]);
    const older = planStage(input({ presenters: [2, 3], pinned: screen(2) }));
    expect(older.main).toBe(screen(2));
    expect(older.others).toEqual([screen(3), 1, 2, 3]);
    // Pinned with nobody presenting: Auto leaves the grid for it.
    expect(planStage(input({ pinned: 1 }))).toMatchObject({ main: 1, others: [2, 3] });
  });

  it("ignores a pin on a tile that is gone", () => {
    expect(planStage(input({ pinned: screen(2) })).main).toBeNull();
    expect(planStage(input({ pinned: 9, presenters: [3] })).main).toBe(screen(3));
  });

  it("goes back to the grid when the presenter leaves", () => {
    expect(planStage(input({ participants: [1, 3], presenters: [2] }))).toEqual({ tiles: [1, 3], main: null, others: [1, 3] });
  });

  it("puts every tile, presentations first, in the grid when Tiled", () => {
    const plan = planStage(input({ layout: "tiled", presenters: [2, 3], pinned: 2 }));
    expect(plan).toEqual({ tiles: [screen(3), screen(2), 1, 2, 3], main: null, others: [screen(3), screen(2), 1, 2, 3] });
  });

  it("shows only the main tile in Spotlight: the presentation, else whoever speaks, else the first other", () => {
    expect(planStage(input({ layout: "spotlight", presenters: [2] }))).toEqual({ tiles: [screen(2), 1, 2, 3], main: screen(2), others: [] });
    expect(planStage(input({ layout: "spotlight", activeSpeaker: 3 })).main).toBe(3);
    // This app speaking does not put its own camera on the stage.
    expect(planStage(input({ layout: "spotlight", activeSpeaker: 1 })).main).toBe(2);
    expect(planStage(input({ layout: "spotlight", pinned: 1, presenters: [2] })).main).toBe(1);
  });

  it("always has a main tile in Sidebar, with everyone else beside it", () => {
    expect(planStage(input({ layout: "sidebar" }))).toMatchObject({ main: 2, others: [1, 3] });
    expect(planStage(input({ layout: "sidebar", activeSpeaker: 3 }))).toMatchObject({ main: 3, others: [1, 2] });
    expect(planStage(input({ layout: "sidebar", participants: [1] }))).toMatchObject({ main: 1, others: [] });
  });
});
