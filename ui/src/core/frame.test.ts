import { describe, expect, it } from "vitest";
import { encodeFrame, FpsCounter, FRAME_HEADER_LEN, i420ToRgba, parseFrame, PixelFormat, pixelBytes, type Frame } from "./frame";

describe("frame messages", () => {
  it("round-trips an RGBA frame and reads the little-endian header", () => {
    const px = new Uint8Array(4 * 2 * 4).map((_, i) => i);
    const buf = encodeFrame(0x01020304, 4, 2, PixelFormat.Rgba, px);
    const raw = new Uint8Array(buf);
    expect([...raw.subarray(0, 9)]).toEqual([4, 3, 2, 1, 4, 0, 2, 0, 1]);
    const f = parseFrame(buf) as Frame;
    expect(f).toMatchObject({ participantId: 0x01020304, width: 4, height: 2, format: PixelFormat.Rgba });
    expect(f.pixels.byteLength).toBe(32);
    expect(f.pixels[5]).toBe(5);
  });
  it("sizes I420 planes with rounded-up chroma", () => {
    expect(pixelBytes(PixelFormat.I420, 4, 4)).toBe(16 + 2 * 4);
    expect(pixelBytes(PixelFormat.I420, 5, 3)).toBe(15 + 2 * 3 * 2);
    const buf = encodeFrame(9, 5, 3, PixelFormat.I420, new Uint8Array(27));
    expect(parseFrame(buf)).toMatchObject({ participantId: 9, width: 5, height: 3, format: PixelFormat.I420 });
  });
  it("rejects short, unknown-format, empty and wrong-length messages without throwing", () => {
    expect(parseFrame(new ArrayBuffer(5))).toBe("short");
    const bad = new Uint8Array(encodeFrame(1, 2, 2, PixelFormat.Rgba, new Uint8Array(16)));
    bad[8] = 7;
    expect(parseFrame(bad)).toBe("format");
    expect(parseFrame(encodeFrame(1, 0, 2, PixelFormat.Rgba, new Uint8Array(0)))).toBe("size");
    expect(parseFrame(encodeFrame(1, 2, 2, PixelFormat.Rgba, new Uint8Array(15)))).toBe("length");
    expect(parseFrame(encodeFrame(1, 2, 2, PixelFormat.Rgba, new Uint8Array(17)))).toBe("length");
  });
  it("parses a frame inside a larger buffer view", () => {
    const inner = new Uint8Array(encodeFrame(3, 1, 1, PixelFormat.Rgba, new Uint8Array([1, 2, 3, 4])));
    const outer = new Uint8Array(100);
    outer.set(inner, 10);
    const f = parseFrame(outer.subarray(10, 10 + inner.byteLength)) as Frame;
    expect([...f.pixels]).toEqual([1, 2, 3, 4]);
    expect(FRAME_HEADER_LEN).toBe(12);
  });
});

describe("I420 to RGBA", () => {
  it("converts black, white and saturated red (BT.601 limited range)", () => {
    const make = (y: number, u: number, v: number): Frame => {
      const px = new Uint8Array(pixelBytes(PixelFormat.I420, 2, 2));
      px.fill(y, 0, 4);
      px[4] = u;
      px[5] = v;
      return parseFrame(encodeFrame(1, 2, 2, PixelFormat.I420, px)) as Frame;
    };
    expect([...i420ToRgba(make(16, 128, 128)).subarray(0, 4)]).toEqual([0, 0, 0, 255]);
    expect([...i420ToRgba(make(235, 128, 128)).subarray(0, 4)]).toEqual([255, 255, 255, 255]);
    const red = i420ToRgba(make(81, 90, 240));
    expect(red[0]).toBeGreaterThan(240);
    expect(red[1]).toBeLessThan(20);
    expect(red[2]).toBeLessThan(20);
  });
  it("applies each chroma sample to a 2×2 block, odd sizes included", () => {
    const w = 3, h = 3;
    const px = new Uint8Array(pixelBytes(PixelFormat.I420, w, h));
    px.fill(128, 0, 9);
    // U plane 2×2: make the right column blue-ish.
    px.set([128, 255, 128, 255], 9);
    px.set([128, 128, 128, 128], 13);
    const rgba = i420ToRgba(parseFrame(encodeFrame(1, w, h, PixelFormat.I420, px)) as Frame);
    const blue = (x: number, y: number) => rgba[(y * w + x) * 4 + 2]!;
    expect(blue(2, 0)).toBeGreaterThan(blue(0, 0) + 100);
    expect(blue(2, 2)).toBeGreaterThan(blue(1, 2) + 100);
  });
});

describe("FpsCounter", () => {
  it("counts frames in the last second on a simulated clock", () => {
    const c = new FpsCounter();
    for (let i = 0; i < 40; i++) c.tick(i * 50);
    expect(c.fps(1950)).toBe(20);
    expect(c.fps(2500)).toBe(9);
    expect(c.fps(10_000)).toBe(0);
  });
  it("is bounded", () => {
    const c = new FpsCounter();
    for (let i = 0; i < 5000; i++) c.tick(1000 + i * 0.01);
    expect(c.fps(1050)).toBe(FpsCounter.MAX_EVENTS);
  });
});
