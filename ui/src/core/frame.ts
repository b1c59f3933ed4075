/**
 * The binary video-frame message the shell pushes through the `video_subscribe` Channel, and
 * what the page needs around it: header parsing with length checks, an encoder (used by the
 * browser mock and by tests), an I420 → RGBA converter for canvases without WebGL, and a
 * frames-per-second counter driven by the caller's clock.
 *
 * Layout (little-endian), 12-byte header then pixels:
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0 | 4 | participantId (u32; 0 = the local camera) |
 * | 4 | 2 | width (u16, pixels) |
 * | 6 | 2 | height (u16, pixels) |
 * | 8 | 1 | format: 1 = RGBA, 2 = I420 |
 * | 9 | 3 | reserved, zero |
 * | 12 | … | pixels |
 *
 * RGBA: width × height × 4 bytes, rows top to bottom, no padding. I420: the Y plane
 * (width × height), then U, then V (each ⌈width/2⌉ × ⌈height/2⌉), no padding.
 */

/** Length of the frame header in bytes. */
export const FRAME_HEADER_LEN = 12;

/** Pixel formats of a frame. */
export const PixelFormat = { Rgba: 1, I420: 2 } as const;
/** A pixel format value: 1 = RGBA, 2 = I420. */
export type PixelFormat = (typeof PixelFormat)[keyof typeof PixelFormat];

/** A parsed frame: views into the received buffer, nothing copied. */
export interface Frame {
  participantId: number;
  width: number;
  height: number;
  format: PixelFormat;
  /** All pixel bytes after the header. */
  pixels: Uint8Array;
}

/** Why a message is not a valid frame. */
export type FrameError = "short" | "format" | "size" | "length";

/** Bytes of pixel data a frame of this size and format carries. */
export function pixelBytes(format: PixelFormat, width: number, height: number): number {
  if (format === PixelFormat.Rgba) return width * height * 4;
  const cw = Math.ceil(width / 2);
  const ch = Math.ceil(height / 2);
  return width * height + 2 * cw * ch;
}

/** Parses a frame message; never throws, returns the reason when the bytes are not a frame. */
export function parseFrame(buf: ArrayBuffer | Uint8Array): Frame | FrameError {
  const bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  if (bytes.byteLength < FRAME_HEADER_LEN) return "short";
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const participantId = view.getUint32(0, true);
  const width = view.getUint16(4, true);
  const height = view.getUint16(6, true);
  const rawFormat = view.getUint8(8);
  if (rawFormat !== PixelFormat.Rgba && rawFormat !== PixelFormat.I420) return "format";
  const format = rawFormat as PixelFormat;
  if (width === 0 || height === 0) return "size";
  if (bytes.byteLength - FRAME_HEADER_LEN !== pixelBytes(format, width, height)) return "length";
  return { participantId, width, height, format, pixels: bytes.subarray(FRAME_HEADER_LEN) };
}

/** Builds a frame message (the inverse of {@link parseFrame}). */
export function encodeFrame(participantId: number, width: number, height: number, format: PixelFormat, pixels: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(FRAME_HEADER_LEN + pixels.byteLength);
  const view = new DataView(out);
  view.setUint32(0, participantId, true);
  view.setUint16(4, width, true);
  view.setUint16(6, height, true);
  view.setUint8(8, format);
  new Uint8Array(out, FRAME_HEADER_LEN).set(pixels);
  return out;
}

/** The Y, U and V planes of an I420 frame, as views. */
export function i420Planes(frame: Frame): { y: Uint8Array; u: Uint8Array; v: Uint8Array; cw: number; ch: number } {
  const ySize = frame.width * frame.height;
  const cw = Math.ceil(frame.width / 2);
  const ch = Math.ceil(frame.height / 2);
  const cSize = cw * ch;
  return {
    y: frame.pixels.subarray(0, ySize),
    u: frame.pixels.subarray(ySize, ySize + cSize),
    v: frame.pixels.subarray(ySize + cSize, ySize + 2 * cSize),
    cw,
    ch,
  };
}

const clamp = (x: number): number => (x < 0 ? 0 : x > 255 ? 255 : x);

/**
 * Converts I420 (BT.601 limited range, as JPEG decoders hand it over after range expansion is
 * skipped) to RGBA. Used only when WebGL is unavailable; the WebGL path does this on the GPU
 * with the same coefficients.
 */
export function i420ToRgba(frame: Frame, out: Uint8ClampedArray = new Uint8ClampedArray(frame.width * frame.height * 4)): Uint8ClampedArray {
  const { y, u, v, cw } = i420Planes(frame);
  const w = frame.width;
  for (let row = 0; row < frame.height; row++) {
    const crow = (row >> 1) * cw;
    for (let col = 0; col < w; col++) {
      const Y = 1.164 * ((y[row * w + col] ?? 0) - 16);
      const ci = crow + (col >> 1);
      const U = (u[ci] ?? 128) - 128;
      const V = (v[ci] ?? 128) - 128;
      const o = (row * w + col) * 4;
      out[o] = clamp(Y + 1.596 * V);
      out[o + 1] = clamp(Y - 0.392 * U - 0.813 * V);
      out[o + 2] = clamp(Y + 2.017 * U);
      out[o + 3] = 255;
    }
  }
  return out;
}

/**
 * Frames drawn per second over a sliding one-second window. Time comes from the caller
 * (performance.now() in the page, a simulated clock in tests). Bounded: at most
 * {@link FpsCounter.MAX_EVENTS} timestamps are kept.
 */
export class FpsCounter {
  static readonly MAX_EVENTS = 512;
  static readonly WINDOW_MS = 1000;
  private stamps: number[] = [];

  /** Records one drawn frame at `nowMs`. */
  tick(nowMs: number): void {
    this.stamps.push(nowMs);
    this.prune(nowMs);
    if (this.stamps.length > FpsCounter.MAX_EVENTS) this.stamps.splice(0, this.stamps.length - FpsCounter.MAX_EVENTS);
  }

  /** Frames drawn in the last second before `nowMs`. */
  fps(nowMs: number): number {
    this.prune(nowMs);
    return this.stamps.length * (1000 / FpsCounter.WINDOW_MS);
  }

  private prune(nowMs: number): void {
    const cutoff = nowMs - FpsCounter.WINDOW_MS;
    let drop = 0;
    while (drop < this.stamps.length && (this.stamps[drop] ?? 0) <= cutoff) drop++;
    if (drop > 0) this.stamps.splice(0, drop);
  }
}
