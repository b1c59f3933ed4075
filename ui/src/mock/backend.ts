/**
 * A stand-in for the Tauri shell, for running the UI in a plain browser (Playwright tests,
 * `npm run dev:mock`). It answers every command of docs/app-ipc.md through Tauri's own
 * `mockIPC`, emits session events through the mocked event plugin, pushes synthetic video
 * frames through the Channel with the same flow control as the real shell (shared screens as
 * slides under their screen tile id, fitted whole into the tile), and turns HTML5 file drops
 * into `tauri://drag-*` events the way the native webview does.
 *
 * Only the test entry (ui/mock.html → src/mock/entry.ts, built into ui/dist-mock) imports this;
 * the app build (ui/dist) never contains it.
 *
 * Tests steer it through `window.__parlorMock` (see {@link MockControl}).
 */
import { mockIPC, mockWindows } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import type { Channel } from "@tauri-apps/api/core";
import { encodeFrame, PixelFormat } from "../core/frame";
import type { AppError, ChatMessage, Device, FileInfo, Invitation, Participant, ParticipantStats, ScreenChoice, ScreenSource, SessionEvents, Settings, StatsSnapshot } from "../core/types";
import { LOCAL_VIDEO_ID, screenTileId } from "../core/types";

/** What tests can do to the mock. */
export interface MockControl {
  /** Every command the page invoked, in order (event-plugin plumbing excluded). */
  calls: Array<{ cmd: string; args: Record<string, unknown> }>;
  /** Lets the waiting joiner in (the host admitted). */
  admit(): void;
  /** Refuses the waiting joiner. */
  refuse(reason: SessionEvents["join-refused"]["reason"]): void;
  /** (Host) someone knocks; returns the request id. */
  knock(name: string): number;
  /** (Host) a knock goes away unanswered. */
  withdraw(requestId: number, reason: SessionEvents["knock-withdrawn"]["reason"]): void;
  /** Someone joins directly; returns their id. */
  addParticipant(name: string, format?: "i420" | "rgba"): number;
  /** Someone leaves. */
  leave(id: number, reason?: SessionEvents["participant-left"]["reason"]): void;
  /** Someone writes in the chat. */
  chatFrom(id: number, text: string): void;
  /** Someone shares a file; returns its file id. */
  offerFile(id: number, name: string, size: number): number;
  /** Someone's upload has reached `bytes` of `size`; returns the id the relay gave it. */
  remoteUploadProgress(name: string, size: number, bytes: number): number;
  /** That upload stopped before the file was offered (the sender's app died). */
  remoteUploadStopped(fileId: number, name: string): void;
  /** Someone's mic or camera changes. */
  setMedia(id: number, micOn: boolean, cameraOn: boolean): void;
  /** The host removes this app. */
  removeMe(): void;
  /** The relay connection drops outside a meeting, or for a reason no resume can repair. */
  disconnect(message: string): void;
  /** Someone's connection drops (`on`: the relay holds their seat) or comes back. */
  setReconnecting(id: number, on: boolean): void;
  /** This app's connection to the relay breaks in the meeting; the shell starts repairing it. */
  dropConnection(reason: string): void;
  /** The repair worked: the seat is back. */
  resumeConnection(): void;
  /** The repair failed: the session is over, and the meeting can be knocked on again. */
  loseConnection(): void;
  /** An invitation link is opened while the app runs (the OS handed it to the shell). */
  openLink(link: string): void;
  /** The update check finds `version` (null: up to date). */
  offerUpdate(version: string | null): void;
  /** Whether the page asked to install the update. */
  updateInstalled: boolean;
  /** The next call of `cmd` rejects with `error`. */
  failNext(cmd: string, error: AppError): void;
  /** Someone raises (or lowers) a hand. */
  setHand(id: number, raised: boolean): void;
  /** Someone reacts. */
  reactFrom(id: number, reaction: SessionEvents["reaction"]["reaction"]): void;
  /** The host (participant `by`) mutes this app. */
  muteMe(by: number): void;
  /** A moderator (`by`) asks this app to turn a device on. */
  askMe(by: number, device: SessionEvents["media-requested"]["device"]): void;
  /** The host (`by`) makes this app a co-host (or takes it back). */
  makeMeCohost(by: number, on: boolean): void;
  /** The host (`by`) ends the meeting for everyone. */
  endMeeting(by: number): void;
  /** The desktop notifications the page asked for, in order. */
  notifications: Array<{ title: string; body: string }>;
  /** Someone starts (or stops) sharing their screen: slides arrive under their screen tile id. */
  present(id: number, on: boolean): void;
  /** This app's share stops by itself (the shared window closed, capture failed). */
  endMyShare(reason: string): void;
  /** Frames pushed per video id (a participant's, or a screen tile's) since start. */
  framesSent: Record<number, number>;
}

declare global {
  interface Window {
    __parlorMock?: MockControl;
  }
}

interface Remote {
  p: Participant;
  format: "i420" | "rgba";
  colors: [string, string];
}

/** Per-participant flow control, as the shell keeps it: one frame in flight at most. */
interface Flow {
  ready: boolean;
  width: number;
  height: number;
  sentThisSecond: number;
  fps: number;
}

/** The certificate fingerprint of the mock's relay. */
export const MOCK_FINGERPRINT = "5e".repeat(32);
/** A relay address whose relay was reinstalled: its certificate changed until trusted. */
export const REINSTALLED_RELAY = "192.168.1.99:7878";

/** The synthetic slides a remote presenter shares, and how often they change. */
const SCREEN_W = 1920;
const SCREEN_H = 1080;
const SCREEN_FPS = 5;
/** The size this app's own screen is sent at: the screen ladder's top level. */
const SHARE_FIT: [number, number] = [1920, 1080];
/** How long the relay takes to echo a media state change back. */
const ECHO_MS = 60;
const SRC_W = 640;
const SRC_H = 360;
const FPS = 20;
const PALETTE: Array<[string, string]> = [
  ["#1e3a5f", "#3f7cac"],
  ["#4a2c4f", "#9b5d8f"],
  ["#2f4f3a", "#6aa37a"],
  ["#5f3b1e", "#c08a4d"],
  ["#263238", "#607d8b"],
];

/** Installs the mock. Call before the app's modules run. */
export function installMockBackend(): MockControl {
  mockWindows("main");
  const settings: Settings = { displayName: "", lastRelayAddr: "192.168.1.20:7878", echoCancellation: true, noiseSuppression: true, notifications: true, sounds: false };
  const devices = {
    cameras: [dev("cam-hd", "HD Webcam", true), dev("cam-test", "Test pattern")],
    microphones: [dev("mic-built-in", "Built-in Microphone", true), dev("mic-usb", "USB Headset Microphone")],
    speakers: [dev("spk-built-in", "Built-in Speakers", true), dev("spk-usb", "USB Headset")],
  };
  let downloadDir = "/home/ada/Downloads";
  let channel: Channel<ArrayBuffer> | null = null;
  let channelIndex = 0;
  let previewing = false;
  let micOn = true;
  let cameraOn = true;
  const flows = new Map<number, Flow>();
  const remotes = new Map<number, Remote>();
  const failures = new Map<string, AppError>();
  // The relay at REINSTALLED_RELAY presents a new certificate until the page trusts it.
  let trustedReinstalled = false;
  // The app was started with `?open=<invitation link>`; `?update=<version>` offers an update.
  const params = new URLSearchParams(location.search);
  let openedLink: string | null = params.get("open");
  let offeredUpdate: string | null = params.get("update");
  let self: Participant | null = null;
  /** What this app shares, while it presents. */
  let sharing: ScreenSource | null = null;
  let code = "";
  let relayAddr = "";
  let hostId = 0;
  /** When this app's connection broke, while the mock "repairs" it. */
  let droppedAt: number | null = null;
  let waiting: { code: string; name: string; relayAddr: string } | null = null;
  let nextId = 1;
  let nextChat = 1;
  let nextFile = 1;
  let nextRequest = 100;
  let nextClientMsg = 1;
  let nextTransfer = 1;
  const knocks = new Map<number, string>();
  const chat: ChatMessage[] = [];
  const files = new Map<number, FileInfo>();
  let latest: StatsSnapshot | null = null;
  let uploadCwnd: number | null = null;
  let speakerTurn = 0;
  /** Hands raised so far in the meeting (the relay's count). */
  let handsRaised = 0;
  let locked = false;

  const control: MockControl = {
    calls: [],
    updateInstalled: false,
    openLink: (link) => {
      openedLink = link;
      void send("invitation-opened", null);
    },
    offerUpdate: (version) => {
      offeredUpdate = version;
    },
    framesSent: {},
    admit: () => {
      if (!waiting) return;
      const w = waiting;
      waiting = null;
      startSession(w.code, w.relayAddr, w.name, false);
    },
    refuse: (reason) => {
      waiting = null;
      void send("join-refused", { reason });
    },
    knock: (name) => {
      const requestId = nextRequest++;
      knocks.set(requestId, name);
      void send("knock", { requestId, name, waitingSinceMs: Date.now() });
      return requestId;
    },
    withdraw: (requestId, reason) => {
      knocks.delete(requestId);
      void send("knock-withdrawn", { requestId, reason });
    },
    addParticipant: (name, format = "i420") => {
      const p = addRemote(name, format);
      void send("participant-joined", { participant: p });
      return p.id;
    },
    leave: (id, reason = "left") => {
      if (!remotes.delete(id)) return;
      flows.delete(id);
      flows.delete(screenTileId(id));
      void send("participant-left", { participantId: id, reason });
    },
    chatFrom: (id, text) => {
      const r = remotes.get(id);
      if (r) pushChat(r.p, text, null, null);
    },
    offerFile: (id, name, size) => {
      const r = remotes.get(id);
      const fileId = nextFile++;
      if (!r) return fileId;
      const file: FileInfo = { fileId, name, size, sha256: fakeSha(name, size), senderId: id, senderName: r.p.displayName, lost: false };
      files.set(fileId, file);
      void send("file-offer", { file });
      pushChat(r.p, "", file, null);
      return fileId;
    },
    remoteUploadProgress: (name, size, bytes) => {
      const fileId = nextFile++;
      void send("file-progress", { transferId: `r${fileId}`, direction: "remote", fileId, name, size, bytes, rateBytesPerSec: 250_000, cwndBytes: null });
      return fileId;
    },
    remoteUploadStopped: (fileId, name) => {
      const error: AppError = { code: "uploadStopped", message: "the sender's connection ended before the whole file arrived" };
      void send("file-failed", { transferId: `r${fileId}`, direction: "remote", fileId, name, error });
    },
    setMedia: (id, mic, cam) => {
      const r = remotes.get(id);
      if (!r) return;
      r.p = { ...r.p, micOn: mic, cameraOn: cam };
      void send("participant-updated", { participant: r.p });
    },
    removeMe: () => {
      endSession();
      void send("removed", null);
    },
    disconnect: (message) => {
      endSession();
      void send("disconnected", { message, rejoin: null });
    },
    setReconnecting: (id, on) => {
      const r = remotes.get(id);
      if (!r) return;
      r.p = { ...r.p, reconnecting: on };
      void send("participant-updated", { participant: r.p });
    },
    dropConnection: (reason) => {
      if (!self || droppedAt !== null) return;
      droppedAt = Date.now();
      void send("reconnecting", { reason, unheardMs: 0 });
    },
    resumeConnection: () => {
      if (droppedAt === null) return;
      const afterMs = Date.now() - droppedAt;
      droppedAt = null;
      void send("resumed", { afterMs, attempts: Math.max(1, Math.ceil(afterMs / 1000)) });
    },
    loseConnection: () => {
      if (!self) return;
      endSession();
      void send("disconnected", {
        message: "no way back to the relay in 60 s: connection refused",
        rejoin: { code, relayAddr, fingerprint: MOCK_FINGERPRINT },
      });
    },
    failNext: (cmd, error) => failures.set(cmd, error),
    notifications: [],
    setHand: (id, raised) => {
      const r = remotes.get(id);
      if (!r || (r.p.handRaised !== null) === raised) return;
      r.p = { ...r.p, handRaised: raised ? ++handsRaised : null };
      void send("participant-updated", { participant: r.p });
    },
    reactFrom: (id, reaction) => void send("reaction", { participantId: id, reaction }),
    muteMe: (by) => {
      if (!self) return;
      micOn = false;
      self = { ...self, micOn: false };
      void send("muted-by-host", { by });
      void send("participant-updated", { participant: self });
    },
    askMe: (by, device) => void send("media-requested", { by, device }),
    makeMeCohost: (by, on) => {
      if (!self) return;
      self = { ...self, isCohost: on };
      void by;
      void send("participant-updated", { participant: self });
    },
    endMeeting: (by) => {
      if (!self) return;
      endSession();
      void send("meeting-ended", { by });
    },
    present: (id, on) => {
      const r = remotes.get(id);
      if (!r || r.p.presenting === on) return;
      r.p = { ...r.p, presenting: on };
      // The shell forgets a screen's flow when it stops: a new share starts unacknowledged.
      if (!on) flows.delete(screenTileId(id));
      void send("participant-updated", { participant: r.p });
    },
    endMyShare: (reason) => {
      if (self?.presenting) shareEnded(reason);
    },
  };
  window.__parlorMock = control;

  function dev(id: string, label: string, selected = false): Device {
    return { id, label, selected };
  }

  async function send<K extends keyof SessionEvents>(name: K, payload: SessionEvents[K]): Promise<void> {
    await emit(name, payload);
  }

  function addRemote(name: string, format: "i420" | "rgba"): Participant {
    const id = nextId++;
    const p: Participant = { id, displayName: name, isHost: id === hostId, micOn: true, cameraOn: true, speaking: false, joinedAtMs: Date.now(), reconnecting: false, isCohost: false, handRaised: null, presenting: false };
    remotes.set(id, { p, format, colors: PALETTE[id % PALETTE.length] ?? PALETTE[0]! });
    return p;
  }

  /** The invitation the shell would give for this meeting (the mock relay's certificate). */
  function invitation(meetingCode: string, addr: string): Invitation {
    const link = `parlor://join?relay=${encodeURIComponent(addr)}&code=${meetingCode}&fp=${MOCK_FINGERPRINT}`;
    const text = `Join my Parlor meeting: ${link}\nRelay: ${addr}\nMeeting code: ${meetingCode}\nCertificate: ${MOCK_FINGERPRINT}\n`;
    return { link, text, fingerprint: MOCK_FINGERPRINT };
  }

  function startSession(meetingCode: string, addr: string, name: string, asHost: boolean): void {
    code = meetingCode;
    relayAddr = addr;
    remotes.clear();
    nextId = 1;
    if (asHost) {
      self = { id: nextId++, displayName: name, isHost: true, micOn, cameraOn, speaking: false, joinedAtMs: Date.now(), reconnecting: false, isCohost: false, handRaised: null, presenting: false };
      hostId = self.id;
    } else {
      // A meeting in progress: Grace hosts, Linus sends RGBA frames, Grace I420.
      hostId = 1;
      addRemote("Grace Hopper", "i420");
      addRemote("Linus Torvalds", "rgba");
      self = { id: nextId++, displayName: name, isHost: false, micOn, cameraOn, speaking: false, joinedAtMs: Date.now(), reconnecting: false, isCohost: false, handRaised: null, presenting: false };
      const grace = remotes.get(1)!.p;
      chat.length = 0;
      chat.push({ id: nextChat++, senderId: grace.id, senderName: grace.displayName, text: "Welcome! The agenda is in the doc I'll drop here.", timestampMs: Date.now() - 120_000, clientMsgId: null, file: null });
    }
    const me = self;
    const roster = [...[...remotes.values()].map((r) => r.p), me];
    locked = false;
    handsRaised = 0;
    void send("joined", { code, participantId: me.id, hostId, relayAddr, invitation: invitation(code, relayAddr), roster, chatHistory: asHost ? [] : chat.slice(), locked });
    // The meeting key of epoch 1 with this roster: docs/protocol.md §6.10's example code.
    void send("encryption", { epoch: 1, safetyCode: "2534 6208 6676" });
  }

  function endSession(): void {
    self = null;
    sharing = null;
    droppedAt = null;
    remotes.clear();
    knocks.clear();
    for (const id of [...flows.keys()]) if (id !== LOCAL_VIDEO_ID) flows.delete(id);
    latest = null;
  }

  /** This app's MEDIA_STATE says `presenting`; the relay's echo updates the roster a moment later. */
  function setPresenting(on: boolean): void {
    if (!self || self.presenting === on) return;
    self = { ...self, presenting: on };
    const me = self;
    setTimeout(() => {
      if (self?.id === me.id) void send("participant-updated", { participant: self });
    }, ECHO_MS);
  }

  /** This app's share stops by itself, as the engine tells it: the event, then the media
   * state, whose echo updates the roster. */
  function shareEnded(reason: string): void {
    sharing = null;
    void send("screen-share-ended", { reason });
    setPresenting(false);
  }

  /** What `list_screen_sources` offers: two screens and two windows, one without a thumbnail. */
  let screenSources: ScreenSource[] | null = null;
  function listScreenSources(): ScreenSource[] {
    screenSources ??= [
      { choice: { kind: "screen", id: 1 }, name: "Built-in Display", width: 2560, height: 1600, thumbnail: thumbnail(2560, 1600, (c, w, h) => drawDesktop(c, w, h, "#1a73e8")) },
      { choice: { kind: "screen", id: 2 }, name: "DELL U2720Q", width: 3840, height: 2160, thumbnail: thumbnail(3840, 2160, (c, w, h) => drawDesktop(c, w, h, "#188038")) },
      { choice: { kind: "window", id: 4101 }, name: "Q3 roadmap — Slides", width: 1600, height: 900, thumbnail: thumbnail(1600, 900, (c, w, h) => drawSlide(c, w, h, 0)) },
      { choice: { kind: "window", id: 4102 }, name: "Terminal", width: 1200, height: 800, thumbnail: null },
    ];
    return screenSources;
  }

  function pushChat(from: Participant, text: string, file: FileInfo | null, clientMsgId: number | null): void {
    const message: ChatMessage = { id: nextChat++, senderId: from.id, senderName: from.displayName, text, timestampMs: Date.now(), clientMsgId, file };
    chat.push(message);
    void send("chat", { message });
  }

  /** Runs a transfer's progress like the engine reports it: Reno-shaped cwnd, rate per step. */
  function simulateTransfer(
    transferId: string,
    direction: "upload" | "download",
    name: string,
    size: number,
    fileId: number | null,
    durationMs: number,
    done: () => void,
  ): void {
    const stepMs = 200;
    const steps = Math.max(2, Math.round(durationMs / stepMs));
    let bytes = 0;
    let step = 0;
    let cwnd = 16 * 1024;
    let ssthresh = 512 * 1024;
    const timer = setInterval(() => {
      step++;
      const before = bytes;
      bytes = step >= steps ? size : Math.min(size, Math.round((size * step) / steps + ((step % 3) - 1) * size * 0.01));
      if (direction === "upload") {
        // Slow start, one loss at 60 %, then congestion avoidance.
        if (step === Math.round(steps * 0.6)) {
          ssthresh = Math.max(32 * 1024, cwnd / 2);
          cwnd = ssthresh;
        } else cwnd = cwnd < ssthresh ? cwnd * 2 : cwnd + 16 * 1024;
        uploadCwnd = cwnd;
      }
      const rate = ((bytes - before) * 1000) / stepMs;
      void send("file-progress", {
        transferId,
        direction,
        fileId,
        name,
        size,
        bytes,
        rateBytesPerSec: Math.max(0, rate),
        cwndBytes: direction === "upload" ? cwnd : null,
      });
      if (step >= steps) {
        clearInterval(timer);
        if (direction === "upload") uploadCwnd = null;
        done();
      }
    }, stepMs);
  }

  // ---- Video: synthetic frames with the shell's flow control. ----

  const scratch = document.createElement("canvas");
  const ctx2d = scratch.getContext("2d", { willReadFrequently: true });

  function flow(id: number): Flow {
    let f = flows.get(id);
    if (!f) {
      f = { ready: false, width: 0, height: 0, sentThisSecond: 0, fps: 0 };
      flows.set(id, f);
    }
    return f;
  }

  function pushFrame(id: number, colors: [string, string], format: "i420" | "rgba", t: number): void {
    const f = flows.get(id);
    if (!f || !f.ready || !channel || !ctx2d) return;
    // Scale to cover the tile, never above the source size; I420 wants even sizes.
    const scale = Math.min(1, Math.max(f.width / SRC_W, f.height / SRC_H));
    const w = Math.max(2, Math.round((SRC_W * scale) / 2) * 2);
    const hgt = Math.max(2, Math.round((SRC_H * scale) / 2) * 2);
    const rgba = drawScene(ctx2d, scratch, w, hgt, colors, t);
    const msg =
      format === "rgba"
        ? encodeFrame(id, w, hgt, PixelFormat.Rgba, rgba)
        : encodeFrame(id, w, hgt, PixelFormat.I420, rgbaToI420(rgba, w, hgt));
    deliver(channel, id, f, msg);
  }

  const screenScratch = document.createElement("canvas");
  const screenCtx = screenScratch.getContext("2d", { willReadFrequently: true });

  /** A presenter's slide, fitted whole into the tile like the shell's screens (never cropped). */
  function pushScreenFrame(presenter: number, t: number): void {
    const id = screenTileId(presenter);
    const f = flows.get(id);
    if (!f || !f.ready || !channel || !screenCtx) return;
    const scale = Math.min(1, f.width / SCREEN_W, f.height / SCREEN_H);
    const w = Math.max(2, Math.round((SCREEN_W * scale) / 2) * 2);
    const hgt = Math.max(2, Math.round((SCREEN_H * scale) / 2) * 2);
    if (screenScratch.width !== w || screenScratch.height !== hgt) {
      screenScratch.width = w;
      screenScratch.height = hgt;
    }
    drawSlide(screenCtx, w, hgt, t);
    const rgba = new Uint8Array(screenCtx.getImageData(0, 0, w, hgt).data.buffer);
    deliver(channel, id, f, encodeFrame(id, w, hgt, PixelFormat.I420, rgbaToI420(rgba, w, hgt)));
  }

  function deliver(to: Channel<ArrayBuffer>, id: number, f: Flow, msg: ArrayBuffer): void {
    f.ready = false;
    f.sentThisSecond++;
    control.framesSent[id] = (control.framesSent[id] ?? 0) + 1;
    const internals = (window as unknown as { __TAURI_INTERNALS__: { runCallback(id: number, data: unknown): void } }).__TAURI_INTERNALS__;
    internals.runCallback(to.id, { index: channelIndex++, message: msg });
  }

  let tick = 0;
  setInterval(() => {
    const t = performance.now() / 1000;
    const screenTick = tick++ % Math.round(FPS / SCREEN_FPS) === 0;
    if (cameraOn && (previewing || self)) pushFrame(LOCAL_VIDEO_ID, ["#37474f", "#78909c"], "i420", t);
    for (const r of remotes.values()) {
      if (r.p.cameraOn) pushFrame(r.p.id, r.colors, r.format, t);
      if (r.p.presenting && screenTick) pushScreenFrame(r.p.id, t);
    }
  }, 1000 / FPS);

  // ---- The microphone meter: a talker, over a noise floor that noise suppression takes
  // down, ten times a second on the home screen and in a meeting. ----

  setInterval(() => {
    // On the home screen while it previews; in a meeting, what the microphone sends.
    if (!(previewing || self)) return;
    const t = performance.now() / 1000;
    if (self && !micOn) return void send("mic-level", { dbfs: -100, speaking: false });
    const floor = settings.noiseSuppression ? -72 : -48;
    const talking = Math.sin(t / 1.7) > 0;
    const dbfs = talking ? -24 + 6 * Math.sin(t * 7) : floor + 2 * Math.sin(t * 3);
    void send("mic-level", { dbfs, speaking: talking });
  }, 100);

  // ---- Stats and active speaker, once a second. ----

  setInterval(() => {
    for (const f of flows.values()) {
      f.fps = f.sentThisSecond;
      f.sentThisSecond = 0;
    }
    if (!self) return;
    const now = Date.now();
    const s = now / 1000;
    const rows = [...remotes.values()].map((r): ParticipantStats => {
      const f = flows.get(r.p.id);
      const screenFlow = flows.get(screenTileId(r.p.id));
      return {
        participantId: r.p.id,
        fps: r.p.cameraOn ? (f?.fps ?? 0) : 0,
        bitrateKbps: r.p.cameraOn ? Math.round(420 + 60 * Math.sin(s / 3 + r.p.id)) : 24,
        loss: Math.max(0, 0.004 + 0.004 * Math.sin(s / 5 + r.p.id)),
        jitterMs: 4 + 2 * Math.sin(s / 4 + r.p.id),
        width: f && f.width ? Math.min(SRC_W, 640) : 0,
        height: f && f.height ? 360 : 0,
        screen: r.p.presenting
          ? {
              width: SCREEN_W,
              height: SCREEN_H,
              slicesPerSecond: (screenFlow?.fps ?? 0) * 3,
              bitrateKbps: Math.round(640 + 120 * Math.sin(s / 4 + r.p.id)),
              loss: Math.max(0, 0.002 + 0.002 * Math.sin(s / 5)),
              staleTiles: 0,
              staleMs: 0,
              refreshesRequested: 0,
            }
          : null,
      };
    });
    const spike = Math.sin(s / 9) > 0.93;
    latest = {
      timestampMs: now,
      rttMs: 18 + 5 * Math.sin(s / 4) + (spike ? 40 : 0),
      loss: spike ? 0.035 : Math.max(0, 0.003 + 0.003 * Math.sin(s / 6)),
      jitterMs: 5 + 2 * Math.sin(s / 3) + (spike ? 12 : 0),
      fpsSent: cameraOn ? (flows.get(LOCAL_VIDEO_ID)?.fps ?? 0) : 0,
      fpsReceived: rows.reduce((a, r) => a + r.fps, 0) / Math.max(1, rows.length),
      bitrateInKbps: rows.reduce((a, r) => a + r.bitrateKbps, 0) + 256 * rows.length,
      bitrateOutKbps: cameraOn ? 480 + 40 * Math.sin(s / 5) : 256,
      cwndBytes: uploadCwnd,
      qualityLevel: spike ? 1 : 2,
      participants: rows,
      micLevelDbfs: micOn ? -26 + 4 * Math.sin(s) : -100,
      echoCancellation: settings.echoCancellation,
      noiseSuppression: settings.noiseSuppression,
      aecDelayMs: settings.echoCancellation ? 132 : null,
      erleDb: settings.echoCancellation ? 31 + 3 * Math.sin(s / 7) : null,
      screenOut: sharing ? screenOut(sharing, s) : null,
    };
    void send("stats", latest);
    if (Math.floor(s) % 4 === 0) {
      const talkers = [...remotes.values()].filter((r) => r.p.micOn);
      const next = talkers.length ? (talkers[speakerTurn++ % talkers.length]?.p.id ?? null) : null;
      void send("active-speaker", { participantId: next });
    }
  }, 1000);

  // ---- HTML5 drops become native drag-drop events, as in the webview. ----

  const paths = (e: DragEvent) => Array.from(e.dataTransfer?.files ?? []).map((f) => f.name);
  const position = (e: DragEvent) => ({ x: Math.round(e.clientX * devicePixelRatio), y: Math.round(e.clientY * devicePixelRatio) });
  window.addEventListener("dragenter", (e) => {
    e.preventDefault();
    void emit("tauri://drag-enter", { paths: paths(e), position: position(e) });
  });
  window.addEventListener("dragover", (e) => {
    e.preventDefault();
    void emit("tauri://drag-over", { position: position(e) });
  });
  window.addEventListener("dragleave", (e) => {
    if (e.relatedTarget === null) void emit("tauri://drag-leave", null);
  });
  window.addEventListener("drop", (e) => {
    e.preventDefault();
    void emit("tauri://drag-drop", { paths: paths(e), position: position(e) });
  });

  // ---- Commands. ----

  mockIPC(
    async (cmd, rawArgs) => {
      const args = (rawArgs ?? {}) as Record<string, unknown>;
      if (!cmd.startsWith("plugin:event|")) control.calls.push({ cmd, args: cmd === "video_subscribe" ? {} : args });
      const failure = failures.get(cmd);
      if (failure) {
        failures.delete(cmd);
        throw failure;
      }
      switch (cmd) {
        case "get_settings":
          return settings;
        case "save_settings":
          Object.assign(settings, args.settings as Settings);
          return null;
        case "list_devices":
          return devices;
        case "choose_devices":
          for (const [kind, key] of [
            ["camera", "cameras"],
            ["microphone", "microphones"],
            ["speaker", "speakers"],
          ] as const) {
            const id = args[kind];
            if (typeof id === "string") devices[key] = devices[key].map((d) => ({ ...d, selected: d.id === id }));
          }
          return null;
        case "get_download_dir":
          return downloadDir;
        case "choose_download_dir":
          downloadDir = String(args.dir);
          return null;
        case "start_preview":
          previewing = true;
          return null;
        case "stop_preview":
          previewing = false;
          return null;
        case "set_mic":
        case "set_camera": {
          if (cmd === "set_mic") micOn = Boolean(args.on);
          else cameraOn = Boolean(args.on);
          if (self) {
            self = { ...self, micOn, cameraOn };
            void send("participant-updated", { participant: self });
          }
          return null;
        }
        case "video_subscribe":
          channel = args.onFrame as Channel<ArrayBuffer>;
          channelIndex = 0;
          return null;
        case "video_frame_drawn": {
          const f = flow(Number(args.participantId));
          f.ready = true;
          f.width = Number(args.width);
          f.height = Number(args.height);
          return null;
        }
        case "create_meeting": {
          const addr = typeof args.relayAddr === "string" ? args.relayAddr : "192.168.1.20:7878";
          startSession("482913", addr, String(args.name), true);
          return { code: "482913", relayAddr: addr, invitation: invitation("482913", addr), participantId: self!.id };
        }
        case "join_meeting": {
          const c = String(args.code);
          if (c === "000000") throw { code: "unknownMeeting", message: "UNKNOWN_MEETING: no live meeting has this code" } satisfies AppError;
          const addr = String(args.relayAddr);
          const fingerprint = typeof args.fingerprint === "string" ? args.fingerprint : null;
          if (fingerprint !== null && fingerprint !== MOCK_FINGERPRINT) {
            throw { code: "notTheInvitedRelay", message: "not the invited relay", certificate: { relayAddr: addr, expected: fingerprint, presented: MOCK_FINGERPRINT } } satisfies AppError;
          }
          if (fingerprint === null && addr === REINSTALLED_RELAY && !trustedReinstalled) {
            throw { code: "relayCertificateChanged", message: "the relay's certificate changed", certificate: { relayAddr: addr, expected: "0f".repeat(32), presented: MOCK_FINGERPRINT } } satisfies AppError;
          }
          waiting = { code: c, name: String(args.name), relayAddr: String(args.relayAddr) };
          void send("waiting", { code: c, requestId: nextRequest++ });
          return null;
        }
        case "read_invitation": {
          const text = String(args.text);
          const m = /parlor:\/\/join\?relay=([^&\s]+)&code=(\d{6})(?:&fp=([0-9a-f]{64}))?/.exec(text);
          if (!m) throw { code: "invalidInvitation", message: "no parlor://join link in the text" } satisfies AppError;
          return { relayAddr: decodeURIComponent(m[1]!), code: m[2]!, fingerprint: m[3] ?? null };
        }
        case "take_opened_invitation": {
          const link = openedLink;
          openedLink = null;
          return link;
        }
        case "check_for_update":
          return offeredUpdate === null ? null : { version: offeredUpdate, currentVersion: "0.1.0", notes: "Faster joins." };
        case "install_update":
          if (offeredUpdate === null) throw { code: "invalidState", message: "no update to install: check for one first" } satisfies AppError;
          control.updateInstalled = true;
          return null;
        case "trust_relay_certificate":
          if (args.relayAddr === REINSTALLED_RELAY && args.fingerprint === MOCK_FINGERPRINT) trustedReinstalled = true;
          return null;
        case "cancel_join":
          waiting = null;
          return null;
        case "admit": {
          const requestId = Number(args.requestId);
          const name = knocks.get(requestId);
          if (name === undefined) throw { code: "unknownParticipant", message: "no such knock" } satisfies AppError;
          knocks.delete(requestId);
          control.addParticipant(name, "rgba");
          return null;
        }
        case "deny":
          knocks.delete(Number(args.requestId));
          return null;
        case "remove_participant":
          control.leave(Number(args.participantId), "removed");
          return null;
        case "admit_all":
          for (const [requestId, name] of [...knocks]) {
            knocks.delete(requestId);
            control.addParticipant(name, "rgba");
          }
          return null;
        case "lock_meeting": {
          if (!self || self.id !== hostId) throw { code: "notHost", message: "NOT_HOST: only the host may do this" } satisfies AppError;
          const want = Boolean(args.locked);
          if (want !== locked) {
            locked = want;
            void send("meeting-locked", { locked, by: self.id });
          }
          return null;
        }
        case "set_role": {
          if (!self || self.id !== hostId) throw { code: "notHost", message: "NOT_HOST: only the host may do this" } satisfies AppError;
          const r = remotes.get(Number(args.participantId));
          if (!r) throw { code: "unknownParticipant", message: "no such participant" } satisfies AppError;
          const role = String(args.role);
          if (role === "host") {
            hostId = r.p.id;
            r.p = { ...r.p, isHost: true, isCohost: false };
            self = { ...self, isHost: false };
            void send("host-changed", { hostId });
            void send("participant-updated", { participant: self });
          } else {
            r.p = { ...r.p, isCohost: role === "coHost" };
          }
          void send("participant-updated", { participant: r.p });
          return null;
        }
        case "mute_participant":
        case "mute_all": {
          const targets = cmd === "mute_all" ? [...remotes.values()] : [remotes.get(Number(args.participantId))].filter((r) => r !== undefined);
          for (const r of targets) {
            if (!r.p.micOn) continue;
            r.p = { ...r.p, micOn: false, speaking: false };
            void send("participant-updated", { participant: r.p });
          }
          return null;
        }
        case "request_media":
          if (!remotes.has(Number(args.participantId))) throw { code: "unknownParticipant", message: "no such participant" } satisfies AppError;
          return null;
        case "end_meeting": {
          if (!self || self.id !== hostId) throw { code: "notHost", message: "NOT_HOST: only the host may do this" } satisfies AppError;
          const by = self.id;
          endSession();
          void send("meeting-ended", { by });
          return null;
        }
        case "raise_hand": {
          if (!self) throw { code: "invalidState", message: "not in a meeting" } satisfies AppError;
          const raised = Boolean(args.raised);
          if ((self.handRaised !== null) !== raised) {
            self = { ...self, handRaised: raised ? ++handsRaised : null };
            void send("participant-updated", { participant: self });
          }
          return null;
        }
        case "lower_hand": {
          const id = Number(args.participantId);
          if (self && id === self.id) {
            self = { ...self, handRaised: null };
            void send("participant-updated", { participant: self });
          } else control.setHand(id, false);
          return null;
        }
        case "list_screen_sources":
          return listScreenSources();
        case "start_screen_share": {
          if (!self) throw { code: "invalidState", message: "not in a meeting" } satisfies AppError;
          const choice = args.choice as ScreenChoice;
          const source = listScreenSources().find((src) => sameChoice(src.choice, choice));
          setPresenting(true);
          sharing = source ?? null;
          // As in the engine, a source that cannot be opened ends the share by itself.
          if (!source) setTimeout(() => shareEnded("no device: that window is closed"), ECHO_MS);
          return null;
        }
        case "stop_screen_share":
          if (!self) throw { code: "invalidState", message: "not in a meeting" } satisfies AppError;
          sharing = null;
          setPresenting(false);
          return null;
        case "react":
          if (!self) throw { code: "invalidState", message: "not in a meeting" } satisfies AppError;
          void send("reaction", { participantId: self.id, reaction: args.reaction as SessionEvents["reaction"]["reaction"] });
          return null;
        case "notify":
          control.notifications.push({ title: String(args.title), body: String(args.body) });
          return null;
        case "leave_meeting":
          endSession();
          return null;
        case "send_chat": {
          if (!self) throw { code: "invalidState", message: "not in a meeting" } satisfies AppError;
          const clientMsgId = nextClientMsg++;
          const me = self;
          setTimeout(() => pushChat(me, String(args.text), null, clientMsgId), 80);
          return { clientMsgId };
        }
        case "send_file": {
          if (!self) throw { code: "invalidState", message: "not in a meeting" } satisfies AppError;
          const path = String(args.path);
          const name = path.split(/[\\/]/).pop() ?? path;
          const size = 2_400_000 + (name.length % 7) * 310_000;
          const transferId = `u${nextTransfer++}`;
          const me = self;
          simulateTransfer(transferId, "upload", name, size, null, 4000, () => {
            const fileId = nextFile++;
            const file: FileInfo = { fileId, name, size, sha256: fakeSha(name, size), senderId: me.id, senderName: me.displayName, lost: false };
            files.set(fileId, file);
            void send("file-done", { transferId, direction: "upload", fileId, name, size, sha256: file.sha256, verified: true, path: null });
            pushChat(me, "", file, null);
          });
          return { transferId };
        }
        case "accept_file": {
          const fileId = Number(args.fileId);
          const file = files.get(fileId);
          if (!file) throw { code: "unknownFile", message: "no such file" } satisfies AppError;
          const transferId = `d${fileId}`;
          simulateTransfer(transferId, "download", file.name, file.size, fileId, 2000, () => {
            void send("file-done", {
              transferId,
              direction: "download",
              fileId,
              name: file.name,
              size: file.size,
              sha256: file.sha256,
              verified: true,
              path: `${downloadDir}/${file.name}`,
            });
          });
          return { transferId };
        }
        case "open_file":
          return /\.(exe|msi|bat|cmd|sh|js|app|dmg|desktop|appimage)$/i.test(String(args.path)) ? "shownInFolder" : "opened";
        case "pick_file":
          return "/home/ada/Documents/meeting-notes.pdf";
        case "get_stats":
          return latest;
        case "plugin:dialog|open":
          // The page opens the dialog itself for folders only.
          return "/home/ada/Shared";
        default:
          throw { code: "internal", message: `mock: unknown command ${cmd}` } satisfies AppError;
      }
    },
    { shouldMockEvents: true },
  );

  const auto = new URLSearchParams(location.search).get("autoAdmit");
  if (auto !== null) {
    setInterval(() => waiting && control.admit(), Math.max(100, Number(auto) || 1500));
  }
  return control;
}

function sameChoice(a: ScreenChoice, b: ScreenChoice): boolean {
  return a.kind === b.kind && (a.kind === "synthetic" || (b.kind !== "synthetic" && a.id === b.id));
}

/** What the stats say of this app's share: the source fitted to the screen ladder's top level. */
function screenOut(source: ScreenSource, s: number): NonNullable<StatsSnapshot["screenOut"]> {
  const scale = Math.min(1, SHARE_FIT[0] / source.width, SHARE_FIT[1] / source.height);
  return {
    width: Math.round((source.width * scale) / 2) * 2,
    height: Math.round((source.height * scale) / 2) * 2,
    fps: 5,
    bitrateKbps: Math.round(520 + 160 * Math.sin(s / 3)),
    changedFraction: 0.03 + 0.02 * Math.sin(s / 2),
    quality: "1080p",
    encodeMs: 11 + 3 * Math.sin(s),
  };
}

/** A JPEG data URL of a picture of `width` × `height`, drawn small like the shell's thumbnails. */
function thumbnail(width: number, height: number, draw: (ctx: CanvasRenderingContext2D, w: number, h: number) => void): string | null {
  const canvas = document.createElement("canvas");
  canvas.width = 320;
  canvas.height = Math.round((320 * height) / width);
  const ctx = canvas.getContext("2d");
  if (!ctx) return null;
  draw(ctx, canvas.width, canvas.height);
  return canvas.toDataURL("image/jpeg", 0.8);
}

/** A desktop: wallpaper in `accent`, a few windows and a taskbar. */
function drawDesktop(ctx: CanvasRenderingContext2D, w: number, h: number, accent: string): void {
  const g = ctx.createLinearGradient(0, 0, w, h);
  g.addColorStop(0, "#202124");
  g.addColorStop(1, accent);
  ctx.fillStyle = g;
  ctx.fillRect(0, 0, w, h);
  ctx.fillStyle = "rgba(255,255,255,0.92)";
  ctx.fillRect(w * 0.08, h * 0.1, w * 0.5, h * 0.55);
  ctx.fillStyle = "rgba(232,234,237,0.85)";
  ctx.fillRect(w * 0.45, h * 0.3, w * 0.45, h * 0.45);
  ctx.fillStyle = "rgba(32,33,36,0.9)";
  ctx.fillRect(0, h * 0.92, w, h * 0.08);
}

/** A slide of a presentation at time `t` (s): a title, bullets, a growing bar chart and a
 * pointer moving over it, so that a shared screen changes a little at a time. */
function drawSlide(ctx: CanvasRenderingContext2D, w: number, h: number, t: number): void {
  ctx.save();
  ctx.scale(w / SCREEN_W, h / SCREEN_H);
  const g = ctx.createLinearGradient(0, 0, SCREEN_W, SCREEN_H);
  g.addColorStop(0, "#0b3d91");
  g.addColorStop(1, "#4285f4");
  ctx.fillStyle = g;
  ctx.fillRect(0, 0, SCREEN_W, SCREEN_H);
  ctx.fillStyle = "#ffffff";
  ctx.font = "bold 96px sans-serif";
  ctx.fillText("Q3 roadmap", 120, 200);
  ctx.font = "48px sans-serif";
  ["Ship screen sharing", "Halve join time", "Relay on ARM boards"].forEach((line, i) => ctx.fillText(`• ${line}`, 140, 340 + i * 90));
  const bars = ["#fbbc04", "#34a853", "#ea4335", "#e8eaed"];
  bars.forEach((color, i) => {
    const height = 160 + 120 * i + 40 * Math.sin(t / 2 + i);
    ctx.fillStyle = color;
    ctx.fillRect(1180 + i * 150, 900 - height, 110, height);
  });
  ctx.fillStyle = "#ea4335";
  ctx.beginPath();
  ctx.arc(1180 + 300 + 260 * Math.sin(t / 1.5), 520 + 120 * Math.cos(t / 1.5), 18, 0, 2 * Math.PI);
  ctx.fill();
  ctx.restore();
}

function fakeSha(name: string, size: number): string {
  let h = 2166136261 >>> 0;
  for (const ch of `${name}:${size}`) h = Math.imul(h ^ (ch.codePointAt(0) ?? 0), 16777619) >>> 0;
  let out = "";
  for (let i = 0; i < 8; i++) {
    h = Math.imul(h ^ (h >>> 15), 2246822507) >>> 0;
    out += h.toString(16).padStart(8, "0");
  }
  return out;
}

/** Draws a stand-in "camera picture": a gradient room and a swaying silhouette. */
function drawScene(
  ctx: CanvasRenderingContext2D,
  canvas: HTMLCanvasElement,
  w: number,
  h: number,
  colors: [string, string],
  t: number,
): Uint8Array {
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const g = ctx.createLinearGradient(0, 0, w, h);
  g.addColorStop(0, colors[0]);
  g.addColorStop(1, colors[1]);
  ctx.fillStyle = g;
  ctx.fillRect(0, 0, w, h);
  // A window of light moving across the back wall.
  const lx = ((t * 0.08) % 1) * w * 1.4 - w * 0.2;
  ctx.fillStyle = "rgba(255,255,255,0.08)";
  ctx.fillRect(lx, h * 0.12, w * 0.18, h * 0.45);
  // Head and shoulders.
  const cx = w / 2 + Math.sin(t * 1.3) * w * 0.03;
  const cy = h * 0.42 + Math.sin(t * 2.1) * h * 0.01;
  ctx.fillStyle = "rgba(20,20,24,0.55)";
  ctx.beginPath();
  ctx.ellipse(cx, h * 1.02, w * 0.24, h * 0.36, 0, Math.PI, 2 * Math.PI);
  ctx.fill();
  ctx.fillStyle = "#d9b99b";
  ctx.beginPath();
  ctx.arc(cx, cy, h * 0.15, 0, 2 * Math.PI);
  ctx.fill();
  ctx.fillStyle = "rgba(60,40,30,0.9)";
  ctx.beginPath();
  ctx.arc(cx, cy - h * 0.04, h * 0.155, Math.PI * 1.05, Math.PI * 1.95);
  ctx.fill();
  return new Uint8Array(ctx.getImageData(0, 0, w, h).data.buffer);
}

/** RGBA → I420 (BT.601 limited range), the inverse of core/frame.ts i420ToRgba. */
function rgbaToI420(rgba: Uint8Array, w: number, h: number): Uint8Array {
  const cw = w >> 1;
  const ch = h >> 1;
  const out = new Uint8Array(w * h + 2 * cw * ch);
  for (let i = 0, p = 0; i < w * h; i++, p += 4) {
    out[i] = (0.257 * rgba[p]! + 0.504 * rgba[p + 1]! + 0.098 * rgba[p + 2]! + 16) | 0;
  }
  const uOff = w * h;
  const vOff = uOff + cw * ch;
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      const p = (y * 2 * w + x * 2) * 4;
      const r = rgba[p]!;
      const g = rgba[p + 1]!;
      const b = rgba[p + 2]!;
      out[uOff + y * cw + x] = (-0.148 * r - 0.291 * g + 0.439 * b + 128) | 0;
      out[vOff + y * cw + x] = (0.439 * r - 0.368 * g - 0.071 * b + 128) | 0;
    }
  }
  return out;
}
