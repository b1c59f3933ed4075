/**
 * The page's half of the video flow control, with fakes for the few DOM pieces it touches:
 * a frame is drawn only into a registered canvas, each draw is acknowledged with the tile's
 * size in device pixels, and frames nobody shows are dropped unacknowledged.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { encodeFrame, PixelFormat } from "../core/frame";
import type { Ipc } from "../core/ipc";
import { screenTileId } from "../core/types";
import { VideoHub } from "./video";

class FakeResizeObserver {
  static all: FakeResizeObserver[] = [];
  observed: unknown[] = [];
  constructor(readonly cb: () => void) {
    FakeResizeObserver.all.push(this);
  }
  observe(el: unknown): void {
    this.observed.push(el);
  }
  disconnect(): void {
    this.observed = [];
  }
  fire(): void {
    this.cb();
  }
}

function fakeCanvas() {
  const putImageData = vi.fn();
  const ctx = {
    createImageData: (w: number, h: number) => ({ width: w, height: h, data: new Uint8ClampedArray(w * h * 4) }),
    putImageData,
  };
  const canvas = { width: 0, height: 0, dataset: {} as Record<string, string>, getContext: (kind: string) => (kind === "2d" ? ctx : null), addEventListener: () => undefined };
  return { canvas: canvas as unknown as HTMLCanvasElement, putImageData };
}

function fakeTile(width: number, height: number) {
  const size = { width, height };
  return { el: { getBoundingClientRect: () => size } as unknown as HTMLElement, size };
}

let onFrame: (buf: ArrayBuffer) => void = () => undefined;
let acks: Array<[number, number, number]>;
let clock = 0;

function hub(): VideoHub {
  const ipc = {
    videoSubscribe: async (cb: (buf: ArrayBuffer) => void) => {
      onFrame = cb;
    },
    videoFrameDrawn: async (id: number, w: number, h: number) => {
      acks.push([id, w, h]);
    },
  } as unknown as Ipc;
  return new VideoHub(ipc, () => clock, false);
}

const rgba = (id: number, w = 2, h = 2) => encodeFrame(id, w, h, PixelFormat.Rgba, new Uint8Array(w * h * 4).fill(9));

beforeEach(() => {
  FakeResizeObserver.all = [];
  acks = [];
  clock = 0;
  vi.stubGlobal("ResizeObserver", FakeResizeObserver);
  vi.stubGlobal("window", { devicePixelRatio: 2 });
});

afterEach(() => vi.unstubAllGlobals());

describe("VideoHub", () => {
  it("says it is ready at the tile's device-pixel size once the tile is measured", async () => {
    const h = hub();
    await h.start();
    const { canvas } = fakeCanvas();
    h.attach(7, canvas, fakeTile(320, 180).el);
    expect(acks).toEqual([]);
    FakeResizeObserver.all[0]!.fire();
    expect(acks).toEqual([[7, 640, 360]]);
    // The same size again is no news.
    FakeResizeObserver.all[0]!.fire();
    expect(acks).toHaveLength(1);
  });

  it("draws a frame into the participant's canvas and acknowledges it", async () => {
    const h = hub();
    await h.start();
    const { canvas, putImageData } = fakeCanvas();
    h.attach(7, canvas, fakeTile(100, 50).el);
    FakeResizeObserver.all[0]!.fire();
    onFrame(rgba(7, 4, 2));
    expect(putImageData).toHaveBeenCalledTimes(1);
    expect(canvas.width).toBe(4);
    expect(canvas.height).toBe(2);
    expect(canvas.dataset.renderer).toBe("2d");
    expect(acks).toEqual([
      [7, 200, 100],
      [7, 200, 100],
    ]);
  });

  it("draws a shared screen into its own canvas beside the presenter's camera, acknowledged under the screen's id", async () => {
    const h = hub();
    await h.start();
    const camera = fakeCanvas();
    const screen = fakeCanvas();
    const id = screenTileId(7);
    expect(id).toBe(2147483655);
    h.attach(7, camera.canvas, fakeTile(160, 90).el);
    h.attach(id, screen.canvas, fakeTile(800, 600).el);
    for (const o of FakeResizeObserver.all) o.fire();
    acks = [];
    // The header's u32 id with the top bit set, as the shell writes it.
    onFrame(rgba(id, 8, 4));
    expect(screen.putImageData).toHaveBeenCalledTimes(1);
    expect(camera.putImageData).not.toHaveBeenCalled();
    expect(acks).toEqual([[id, 1600, 1200]]);
    expect(h.fps()[id]).toBe(1);
  });

  it("converts I420 on the CPU without WebGL", async () => {
    const h = hub();
    await h.start();
    const { canvas, putImageData } = fakeCanvas();
    h.attach(3, canvas, fakeTile(10, 10).el);
    const px = new Uint8Array(4 + 2);
    px.fill(235, 0, 4);
    px.fill(128, 4);
    onFrame(encodeFrame(3, 2, 2, PixelFormat.I420, px));
    const image = putImageData.mock.calls[0]![0] as { data: Uint8ClampedArray };
    expect([...image.data.subarray(0, 4)]).toEqual([255, 255, 255, 255]);
  });

  it("drops frames nobody shows and malformed ones, without acknowledging", async () => {
    const h = hub();
    await h.start();
    onFrame(rgba(9));
    onFrame(new ArrayBuffer(3));
    expect(acks).toEqual([]);
    expect(h.dropped).toMatchObject({ noTile: 1, malformed: 1 });
  });

  it("stops drawing into a detached canvas and hands the id to a new one", async () => {
    const h = hub();
    await h.start();
    const a = fakeCanvas();
    const b = fakeCanvas();
    const tile = fakeTile(10, 10).el;
    h.attach(0, a.canvas, tile);
    h.attach(0, b.canvas, tile);
    // Detaching the old canvas late (the home preview leaving after the meeting tile arrived)
    // must not unregister the new one.
    h.detach(0, a.canvas);
    onFrame(rgba(0));
    expect(a.putImageData).not.toHaveBeenCalled();
    expect(b.putImageData).toHaveBeenCalledTimes(1);
    h.detach(0, b.canvas);
    onFrame(rgba(0));
    expect(b.putImageData).toHaveBeenCalledTimes(1);
  });

  it("reports frames drawn per second per participant", async () => {
    const h = hub();
    await h.start();
    const { canvas } = fakeCanvas();
    h.attach(5, canvas, fakeTile(10, 10).el);
    for (let i = 0; i < 20; i++) {
      clock = i * 50;
      onFrame(rgba(5));
    }
    clock = 999;
    expect(h.fps()).toEqual({ 5: 20 });
    clock = 5000;
    expect(h.fps()).toEqual({ 5: 0 });
  });
});
