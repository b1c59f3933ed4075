/**
 * Draws decoded video frames into the tiles' canvases.
 *
 * Frames arrive as raw binary on one Channel (see core/frame.ts for the layout). Each frame is
 * drawn the moment it arrives, outside any render loop, into the one canvas registered for its
 * id (a participant's camera, or their shared screen's `screenTileId`): I420 through a WebGL
 * shader that converts YUV on the GPU (three single-channel textures), RGBA as a WebGL texture;
 * when WebGL is unavailable, with putImageData.
 *
 * Flow control: after drawing, the hub calls `video_frame_drawn` with the tile's on-screen size
 * in device pixels. The shell sends a participant's next frame only after that, scaled to that
 * size, so nothing queues up and no frame is sent that will not be drawn. A frame for which no
 * canvas is registered is dropped and not acknowledged: the shell then stops sending that
 * participant until a tile for it appears and calls `video_frame_drawn` itself.
 */
import { FpsCounter, i420Planes, i420ToRgba, parseFrame, PixelFormat, type Frame } from "../core/frame";
import type { Ipc } from "../core/ipc";

/** How a canvas is drawn. */
export type RendererKind = "webgl" | "2d";

const VERTEX_SHADER = `
attribute vec2 a_pos;
varying vec2 v_uv;
void main() {
  // Full-canvas quad; texture row 0 is the top of the frame.
  v_uv = vec2((a_pos.x + 1.0) * 0.5, (1.0 - a_pos.y) * 0.5);
  gl_Position = vec4(a_pos, 0.0, 1.0);
}`;

const I420_SHADER = `
precision mediump float;
varying vec2 v_uv;
uniform sampler2D u_y;
uniform sampler2D u_u;
uniform sampler2D u_v;
void main() {
  // BT.601 limited range, the same coefficients as core/frame.ts i420ToRgba.
  float y = 1.164 * (texture2D(u_y, v_uv).r - 0.0627);
  float u = texture2D(u_u, v_uv).r - 0.502;
  float v = texture2D(u_v, v_uv).r - 0.502;
  gl_FragColor = vec4(y + 1.596 * v, y - 0.392 * u - 0.813 * v, y + 2.017 * u, 1.0);
}`;

const RGBA_SHADER = `
precision mediump float;
varying vec2 v_uv;
uniform sampler2D u_rgba;
void main() {
  gl_FragColor = vec4(texture2D(u_rgba, v_uv).rgb, 1.0);
}`;

/** Draws frames into one canvas. */
interface Renderer {
  readonly kind: RendererKind;
  draw(frame: Frame): void;
}

class WebGlRenderer implements Renderer {
  readonly kind = "webgl";
  private readonly i420: WebGLProgram;
  private readonly rgba: WebGLProgram;
  private readonly textures: WebGLTexture[];
  /** Size of each texture's storage, to use texSubImage2D when it fits. */
  private readonly texSize: Array<[number, number]> = [
    [0, 0],
    [0, 0],
    [0, 0],
    [0, 0],
  ];

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly gl: WebGLRenderingContext,
  ) {
    this.i420 = program(gl, VERTEX_SHADER, I420_SHADER);
    this.rgba = program(gl, VERTEX_SHADER, RGBA_SHADER);
    const buf = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, buf);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    this.textures = [0, 1, 2, 3].map(() => {
      const t = gl.createTexture();
      if (!t) throw new Error("createTexture failed");
      gl.bindTexture(gl.TEXTURE_2D, t);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
      return t;
    });
    // Planes of odd width have rows that are not 4-byte aligned.
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    for (const p of [this.i420, this.rgba]) {
      gl.useProgram(p);
      const loc = gl.getAttribLocation(p, "a_pos");
      gl.enableVertexAttribArray(loc);
      gl.vertexAttribPointer(loc, 2, gl.FLOAT, false, 0, 0);
    }
    gl.useProgram(this.i420);
    gl.uniform1i(gl.getUniformLocation(this.i420, "u_y"), 0);
    gl.uniform1i(gl.getUniformLocation(this.i420, "u_u"), 1);
    gl.uniform1i(gl.getUniformLocation(this.i420, "u_v"), 2);
    gl.useProgram(this.rgba);
    gl.uniform1i(gl.getUniformLocation(this.rgba, "u_rgba"), 3);
  }

  draw(frame: Frame): void {
    const gl = this.gl;
    if (this.canvas.width !== frame.width || this.canvas.height !== frame.height) {
      this.canvas.width = frame.width;
      this.canvas.height = frame.height;
    }
    gl.viewport(0, 0, frame.width, frame.height);
    if (frame.format === PixelFormat.I420) {
      const { y, u, v, cw, ch } = i420Planes(frame);
      gl.useProgram(this.i420);
      this.upload(0, gl.LUMINANCE, frame.width, frame.height, y);
      this.upload(1, gl.LUMINANCE, cw, ch, u);
      this.upload(2, gl.LUMINANCE, cw, ch, v);
    } else {
      gl.useProgram(this.rgba);
      this.upload(3, gl.RGBA, frame.width, frame.height, frame.pixels);
    }
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
  }

  private upload(unit: number, format: number, w: number, h: number, data: Uint8Array): void {
    const gl = this.gl;
    gl.activeTexture(gl.TEXTURE0 + unit);
    gl.bindTexture(gl.TEXTURE_2D, this.textures[unit] ?? null);
    const size = this.texSize[unit];
    if (size && size[0] === w && size[1] === h) {
      gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, 0, w, h, format, gl.UNSIGNED_BYTE, data);
    } else {
      gl.texImage2D(gl.TEXTURE_2D, 0, format, w, h, 0, format, gl.UNSIGNED_BYTE, data);
      this.texSize[unit] = [w, h];
    }
  }
}

function program(gl: WebGLRenderingContext, vs: string, fs: string): WebGLProgram {
  const p = gl.createProgram();
  if (!p) throw new Error("createProgram failed");
  for (const [type, src] of [
    [gl.VERTEX_SHADER, vs],
    [gl.FRAGMENT_SHADER, fs],
  ] as const) {
    const s = gl.createShader(type);
    if (!s) throw new Error("createShader failed");
    gl.shaderSource(s, src);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(`shader: ${gl.getShaderInfoLog(s) ?? "?"}`);
    gl.attachShader(p, s);
  }
  gl.linkProgram(p);
  if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error(`link: ${gl.getProgramInfoLog(p) ?? "?"}`);
  return p;
}

class CanvasRenderer implements Renderer {
  readonly kind = "2d";
  private image: ImageData | null = null;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly ctx: CanvasRenderingContext2D,
  ) {}

  draw(frame: Frame): void {
    if (this.canvas.width !== frame.width || this.canvas.height !== frame.height) {
      this.canvas.width = frame.width;
      this.canvas.height = frame.height;
    }
    if (!this.image || this.image.width !== frame.width || this.image.height !== frame.height) {
      this.image = this.ctx.createImageData(frame.width, frame.height);
    }
    if (frame.format === PixelFormat.Rgba) this.image.data.set(frame.pixels);
    // I420 without WebGL: convert on the CPU into the reused ImageData.
    else i420ToRgba(frame, this.image.data);
    this.ctx.putImageData(this.image, 0, 0);
  }
}

/** Makes the best renderer the canvas supports. */
function makeRenderer(canvas: HTMLCanvasElement, allowWebGl: boolean): Renderer | null {
  if (allowWebGl) {
    const gl = canvas.getContext("webgl", {
      alpha: false,
      antialias: false,
      depth: false,
      stencil: false,
      preserveDrawingBuffer: false,
      powerPreference: "low-power",
    });
    if (gl) {
      try {
        return new WebGlRenderer(canvas, gl);
      } catch (e) {
        console.warn("WebGL renderer failed, falling back to 2D", e);
        return null;
      }
    }
  }
  const ctx = canvas.getContext("2d", { alpha: false });
  return ctx ? new CanvasRenderer(canvas, ctx) : null;
}

/** A canvas registered for one participant. */
interface Slot {
  canvas: HTMLCanvasElement;
  /** The element whose size is the tile's on-screen size. */
  sizeEl: HTMLElement;
  renderer: Renderer | null;
  /** Tile size in device pixels, as last told to the shell. */
  width: number;
  height: number;
  observer: ResizeObserver;
  fps: FpsCounter;
  drawn: number;
}

/** The page's side of the video pipeline. */
export class VideoHub {
  private readonly slots = new Map<number, Slot>();
  private readonly fpsByParticipant = new Map<number, FpsCounter>();
  private readonly watched = new WeakSet<HTMLCanvasElement>();
  /** Frames that arrived malformed or for no tile; for diagnostics. */
  readonly dropped = { malformed: 0, noTile: 0, drawFailed: 0 };

  constructor(
    private readonly ipc: Ipc,
    private readonly now: () => number = () => performance.now(),
    private readonly allowWebGl = true,
  ) {}

  /** Subscribes to the frame Channel. */
  async start(): Promise<void> {
    await this.ipc.videoSubscribe((buf) => this.onFrame(buf));
  }

  /**
   * Registers the canvas that shows `participantId`. `sizeEl` is the tile, whose size is measured
   * (the canvas itself may be hidden while the camera is off).
   */
  attach(participantId: number, canvas: HTMLCanvasElement, sizeEl: HTMLElement): void {
    const current = this.slots.get(participantId);
    if (current?.canvas === canvas) return;
    if (current) this.detach(participantId, current.canvas);
    const slot: Slot = {
      canvas,
      sizeEl,
      renderer: null,
      width: 0,
      height: 0,
      observer: new ResizeObserver(() => this.measure(participantId, slot)),
      fps: this.fpsByParticipant.get(participantId) ?? new FpsCounter(),
      drawn: 0,
    };
    this.fpsByParticipant.set(participantId, slot.fps);
    this.slots.set(participantId, slot);
    slot.observer.observe(sizeEl);
    if (!this.watched.has(canvas)) {
      this.watched.add(canvas);
      // A lost GPU context (driver reset, too many contexts) is rebuilt on the next frame after
      // the browser restores it; preventDefault is what allows the restore.
      canvas.addEventListener("webglcontextlost", (e) => {
        e.preventDefault();
        for (const s of this.slots.values()) if (s.canvas === canvas) s.renderer = null;
      });
    }
  }

  /** Unregisters a canvas (when its tile goes away). */
  detach(participantId: number, canvas: HTMLCanvasElement): void {
    const slot = this.slots.get(participantId);
    if (!slot || slot.canvas !== canvas) return;
    slot.observer.disconnect();
    this.slots.delete(participantId);
  }

  /** How each registered canvas draws ("webgl" or "2d"), once it drew a frame. */
  rendererOf(participantId: number): RendererKind | null {
    return this.slots.get(participantId)?.renderer?.kind ?? null;
  }

  /** Frames drawn per second over the last second, per participant. */
  fps(): Record<number, number> {
    const now = this.now();
    const out: Record<number, number> = {};
    for (const [id, counter] of this.fpsByParticipant) out[id] = counter.fps(now);
    return out;
  }

  private measure(participantId: number, slot: Slot): void {
    const rect = slot.sizeEl.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const width = Math.round(rect.width * dpr);
    const height = Math.round(rect.height * dpr);
    if (width === 0 || height === 0) return;
    if (width === slot.width && height === slot.height) return;
    slot.width = width;
    slot.height = height;
    // A new size is also a readiness signal: the first frame, or the next one at the new size.
    this.ack(participantId, width, height);
  }

  private ack(participantId: number, width: number, height: number): void {
    this.ipc.videoFrameDrawn(participantId, width, height).catch((e: unknown) => console.warn("video_frame_drawn failed", e));
  }

  private onFrame(buf: ArrayBuffer): void {
    const frame = parseFrame(buf);
    if (typeof frame === "string") {
      this.dropped.malformed++;
      return;
    }
    const slot = this.slots.get(frame.participantId);
    if (!slot) {
      this.dropped.noTile++;
      return;
    }
    try {
      if (!slot.renderer) {
        slot.renderer = makeRenderer(slot.canvas, this.allowWebGl);
        if (slot.renderer) slot.canvas.dataset.renderer = slot.renderer.kind;
      }
      slot.renderer?.draw(frame);
    } catch (e) {
      this.dropped.drawFailed++;
      console.warn("drawing a frame failed", e);
    }
    slot.drawn++;
    slot.fps.tick(this.now());
    if (slot.width > 0 && slot.height > 0) this.ack(frame.participantId, slot.width, slot.height);
    else this.measure(frame.participantId, slot);
  }
}
