/**
 * The controller and the real IPC wrappers against Tauri's own IPC mock: checks the command
 * names and camelCase arguments of the contract, and that events and failures reach the state.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { clearMocks, mockIPC, mockWindows } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { Controller } from "./controller";
import { isPresenting } from "./state";
import { encodeFrame, parseFrame, PixelFormat, type Frame } from "./frame";
import { tauriIpc, toArrayBuffer } from "./ipc";
import { Store } from "./store";
import { last } from "./test-fixtures";
import type { Channel } from "@tauri-apps/api/core";

type Call = { cmd: string; args: Record<string, unknown> | undefined };

let calls: Call[];
let handlers: Record<string, (args: Record<string, unknown> | undefined) => unknown>;

beforeEach(() => {
  vi.stubGlobal("window", globalThis);
  calls = [];
  handlers = {
    get_settings: () => ({ displayName: "Ada", lastRelayAddr: "192.168.1.20:7878" }),
    list_devices: () => ({
      cameras: [{ id: "cam0", label: "Test pattern", selected: true }],
      microphones: [{ id: "mic0", label: "Tone", selected: true }],
      speakers: [{ id: "null", label: "Null sink", selected: true }],
    }),
    get_download_dir: () => "/home/ada/Downloads",
  };
  mockWindows("main");
  mockIPC(
    (cmd, args) => {
      calls.push({ cmd, args: args as Record<string, unknown> | undefined });
      const h = handlers[cmd];
      return h ? h(args as Record<string, unknown> | undefined) : null;
    },
    { shouldMockEvents: true },
  );
});

afterEach(() => {
  clearMocks();
  vi.unstubAllGlobals();
});

const commands = () => calls.map((c) => c.cmd).filter((c) => !c.startsWith("plugin:event|"));
const argsOf = (cmd: string) => calls.filter((c) => c.cmd === cmd).map((c) => c.args);
const flush = () => new Promise((r) => setTimeout(r, 0));
const FINGERPRINT = "5e".repeat(32);
const INVITATION = {
  link: `parlor://join?relay=10.0.0.7%3A5000&code=482913&fp=${FINGERPRINT}`,
  text: `Join my Parlor meeting: parlor://join?relay=10.0.0.7%3A5000&code=482913&fp=${FINGERPRINT}\nRelay: 10.0.0.7:5000\nMeeting code: 482913\nCertificate: ${FINGERPRINT}\n`,
  fingerprint: FINGERPRINT,
};

async function started(): Promise<{ store: Store; ctl: Controller }> {
  const store = new Store();
  const ctl = new Controller(store, tauriIpc());
  await ctl.start();
  return { store, ctl };
}

describe("start-up", () => {
  it("loads settings, devices and the download folder and starts the preview", async () => {
    const { store } = await started();
    expect(store.state.home).toMatchObject({ name: "Ada", relayAddr: "192.168.1.20:7878" });
    expect(store.state.devices.cameras[0]!.label).toBe("Test pattern");
    expect(store.state.downloadDir).toBe("/home/ada/Downloads");
    expect(commands()).toContain("start_preview");
  });

  it("shows a failure to load settings instead of swallowing it", async () => {
    handlers.get_settings = () => {
      throw { code: "internal", message: "settings file is corrupt" };
    };
    const { store } = await started();
    expect(store.state.toasts.map((t) => t.detail)).toContain("settings file is corrupt");
  });
});

describe("joining", () => {
  it("validates before calling the shell", async () => {
    const { store, ctl } = await started();
    store.dispatch({ type: "homeInput", field: "code", value: "12345" });
    await ctl.joinMeeting();
    expect(store.state.home.error!.title).toBe("That code doesn't look right");
    store.dispatch({ type: "homeInput", field: "code", value: "123-456" });
    store.dispatch({ type: "homeInput", field: "relayAddr", value: "nowhere" });
    await ctl.joinMeeting();
    expect(store.state.home.error!.title).toBe("That relay address doesn't look right");
    store.dispatch({ type: "homeInput", field: "name", value: "  " });
    await ctl.joinMeeting();
    expect(store.state.home.error!.title).toBe("Enter your name");
    expect(commands()).not.toContain("join_meeting");
  });

  it("knocks with camelCase arguments, waits, and enters on the joined event", async () => {
    const { store, ctl } = await started();
    store.dispatch({ type: "homeInput", field: "code", value: "482 913" });
    await ctl.joinMeeting();
    expect(argsOf("join_meeting")).toEqual([{ code: "482913", name: "Ada", relayAddr: "192.168.1.20:7878", fingerprint: null }]);
    expect(argsOf("save_settings")).toEqual([{ settings: { displayName: "Ada", lastRelayAddr: "192.168.1.20:7878" } }]);
    await emit("waiting", { code: "482913", requestId: 4 });
    expect(store.state.screen).toBe("waiting");
    await emit("joined", {
      code: "482913",
      participantId: 3,
      hostId: 1,
      relayAddr: "192.168.1.20:7878",
      invitation: INVITATION,
      roster: [
        { id: 1, displayName: "Grace", isHost: true, micOn: true, cameraOn: true, speaking: false, joinedAtMs: 1 },
        { id: 3, displayName: "Ada", isHost: false, micOn: true, cameraOn: true, speaking: false, joinedAtMs: 2 },
      ],
      chatHistory: [],
    });
    expect(store.state.screen).toBe("meeting");
    await flush();
    expect(commands()).toContain("stop_preview");
  });

  it("shows a wrong code in words", async () => {
    handlers.join_meeting = () => {
      throw { code: "unknownMeeting", message: "UNKNOWN_MEETING" };
    };
    const { store, ctl } = await started();
    store.dispatch({ type: "homeInput", field: "code", value: "000000" });
    await ctl.joinMeeting();
    expect(store.state.screen).toBe("home");
    expect(store.state.home.error!.title).toBe("No meeting with code 000-000");
  });

  it("reads a pasted invitation and joins trusting only its certificate", async () => {
    handlers.read_invitation = (args) => {
      expect(args).toEqual({ text: INVITATION.text });
      return { relayAddr: "10.0.0.7:5000", code: "482913", fingerprint: FINGERPRINT };
    };
    const { store, ctl } = await started();
    await ctl.readInvitation(INVITATION.text);
    expect(store.state.home).toMatchObject({ code: "482913", relayAddr: "10.0.0.7:5000", fingerprint: FINGERPRINT });
    await ctl.joinMeeting();
    expect(argsOf("join_meeting")).toEqual([{ code: "482913", name: "Ada", relayAddr: "10.0.0.7:5000", fingerprint: FINGERPRINT }]);
    // An address typed by hand afterwards is not the invitation's.
    store.dispatch({ type: "homeInput", field: "relayAddr", value: "10.0.0.8:5000" });
    expect(store.state.home.fingerprint).toBeNull();
  });

  it("says when a pasted text is not an invitation", async () => {
    handlers.read_invitation = () => {
      throw { code: "invalidInvitation", message: "no parlor://join link in the text" };
    };
    const { store, ctl } = await started();
    await ctl.readInvitation("parlor://nonsense");
    expect(store.state.home.error!.title).toBe("That isn't a Parlor invitation");
  });

  it("offers to trust a relay's new certificate, and retries the join once trusted", async () => {
    let trusted = false;
    const certificate = { relayAddr: "192.168.1.20:7878", expected: "a".repeat(64), presented: "b".repeat(64) };
    handlers.join_meeting = () => {
      if (!trusted) throw { code: "relayCertificateChanged", message: "changed", certificate };
      return null;
    };
    handlers.trust_relay_certificate = () => {
      trusted = true;
      return null;
    };
    const { store, ctl } = await started();
    store.dispatch({ type: "homeInput", field: "code", value: "482913" });
    await ctl.joinMeeting();
    expect(store.state.home.error!.title).toBe("The relay at 192.168.1.20:7878 has a new identity");
    expect(store.state.home.error!.detail).toContain("aaaa aaaa…, now bbbb bbbb…");
    expect(store.state.home.trustOffer).toEqual(certificate);
    await ctl.trustNewCertificate();
    expect(argsOf("trust_relay_certificate")).toEqual([{ relayAddr: "192.168.1.20:7878", fingerprint: "b".repeat(64) }]);
    expect(argsOf("join_meeting")).toHaveLength(2);
    expect(store.state.home).toMatchObject({ busy: "join", error: null, trustOffer: null });
  });

  it("refuses a relay that is not the invited one without offering to trust it", async () => {
    handlers.join_meeting = () => {
      throw { code: "notTheInvitedRelay", message: "x", certificate: { relayAddr: "10.0.0.7:5000", expected: "c".repeat(64), presented: "d".repeat(64) } };
    };
    const { store, ctl } = await started();
    store.dispatch({ type: "homeInput", field: "code", value: "482913" });
    await ctl.joinMeeting();
    expect(store.state.home.error!.title).toBe("This isn't the relay you were invited to");
    expect(store.state.home.trustOffer).toBeNull();
  });

  it("cancels the knock", async () => {
    const { store, ctl } = await started();
    store.dispatch({ type: "homeInput", field: "code", value: "482913" });
    await ctl.joinMeeting();
    await emit("waiting", { code: "482913", requestId: 4 });
    await ctl.cancelJoin();
    expect(store.state.screen).toBe("home");
    expect(commands()).toContain("cancel_join");
  });
});

describe("hosting", () => {
  it("hosts on the embedded relay unless asked to use the address", async () => {
    handlers.create_meeting = () => ({ code: "111222", relayAddr: "192.168.1.5:7878", invitation: INVITATION, participantId: 1 });
    const { store, ctl } = await started();
    await ctl.createMeeting();
    expect(argsOf("create_meeting")).toEqual([{ name: "Ada", relayAddr: null }]);
    expect(store.state.screen).toBe("meeting");
    expect(store.state.meeting!.relayAddr).toBe("192.168.1.5:7878");
    await ctl.leave();
    expect(commands()).toContain("leave_meeting");
    ctl.returnHome();
    store.dispatch({ type: "homeHostOnRelay", on: true });
    await ctl.createMeeting();
    expect(argsOf("create_meeting")[1]).toEqual({ name: "Ada", relayAddr: "192.168.1.20:7878" });
  });

  it("stays in the meeting while reconnecting, and a lost host knocks on its own meeting again", async () => {
    handlers.create_meeting = () => ({ code: "111222", relayAddr: "192.168.1.5:7878", invitation: INVITATION, participantId: 1 });
    const { store, ctl } = await started();
    await ctl.createMeeting();
    const before = commands().length;
    await emit("reconnecting", { reason: "no answer from the relay" });
    await emit("resumed", { afterMs: 2500, attempts: 1 });
    await flush();
    expect(store.state.screen).toBe("meeting");
    expect(commands().slice(before)).toEqual([]);
    await emit("reconnecting", { reason: "connection reset" });
    await emit("disconnected", { message: "no way back", rejoin: { code: "111222", relayAddr: "127.0.0.1:7878", fingerprint: FINGERPRINT } });
    expect(store.state.ended!.title).toBe("You lost your connection");
    await ctl.rejoin();
    // Not a new meeting: a knock on the lost one, trusting only its relay's certificate.
    expect(argsOf("create_meeting")).toHaveLength(1);
    expect(argsOf("join_meeting")).toEqual([{ code: "111222", name: "Ada", relayAddr: "127.0.0.1:7878", fingerprint: FINGERPRINT }]);
    await emit("waiting", { code: "111222", requestId: 9 });
    expect(store.state.screen).toBe("waiting");
  });

  it("fills the stats at once on entering the meeting", async () => {
    handlers.create_meeting = () => ({ code: "111222", relayAddr: "192.168.1.5:7878", participantId: 1 });
    handlers.get_stats = () => ({
      timestampMs: 5000, rttMs: 12, loss: 0, jitterMs: 2, fpsSent: 20, fpsReceived: 0,
      bitrateInKbps: 0, bitrateOutKbps: 400, cwndBytes: null, qualityLevel: 3, participants: [],
    });
    const { store, ctl } = await started();
    await ctl.createMeeting();
    await flush();
    expect(store.state.meeting!.stats.map((s) => s.rttMs)).toEqual([12]);
  });

  it("admits, denies and removes by id", async () => {
    handlers.create_meeting = () => ({ code: "111222", relayAddr: "192.168.1.5:7878", participantId: 1 });
    const { store, ctl } = await started();
    await ctl.createMeeting();
    await emit("knock", { requestId: 10, name: "Linus" });
    await emit("knock", { requestId: 11, name: "Margaret" });
    expect(store.state.knocks).toHaveLength(2);
    await ctl.admit(10);
    await ctl.deny(11);
    expect(argsOf("admit")).toEqual([{ requestId: 10 }]);
    expect(argsOf("deny")).toEqual([{ requestId: 11 }]);
    expect(store.state.knocks).toEqual([]);
    ctl.askRemove(2);
    expect(store.state.confirmRemove).toBe(2);
    await ctl.confirmRemove();
    expect(argsOf("remove_participant")).toEqual([{ participantId: 2 }]);
    expect(store.state.confirmRemove).toBeNull();
  });

  it("sends the host's controls, hands and reactions by the contract's names", async () => {
    handlers.create_meeting = () => ({ code: "111222", relayAddr: "192.168.1.5:7878", invitation: INVITATION, participantId: 1 });
    const { store, ctl } = await started();
    await ctl.createMeeting();
    await emit("knock", { requestId: 10, name: "Linus", waitingSinceMs: 1 });
    await emit("knock", { requestId: 11, name: "Margaret", waitingSinceMs: 2 });
    await ctl.admitAll();
    expect(store.state.knocks).toEqual([]);
    await ctl.setLocked(true);
    await ctl.setRole(2, "coHost");
    await ctl.mute(2);
    await ctl.muteAll();
    await ctl.requestMedia(2, "camera");
    await ctl.lowerHand(2);
    await ctl.react("heart");
    await ctl.toggleHand();
    expect(commands().slice(-9)).toEqual(["admit_all", "lock_meeting", "set_role", "mute_participant", "mute_all", "request_media", "lower_hand", "react", "raise_hand"]);
    expect(argsOf("lock_meeting")).toEqual([{ locked: true }]);
    expect(argsOf("set_role")).toEqual([{ participantId: 2, role: "coHost" }]);
    expect(argsOf("request_media")).toEqual([{ participantId: 2, device: "camera" }]);
    expect(argsOf("react")).toEqual([{ reaction: "heart" }]);
    expect(argsOf("raise_hand")).toEqual([{ raised: true }]);
  });

  it("asks a host with company whether to end the call for everyone", async () => {
    handlers.create_meeting = () => ({ code: "111222", relayAddr: "192.168.1.5:7878", invitation: INVITATION, participantId: 1 });
    const { store, ctl } = await started();
    await ctl.createMeeting();
    await emit("participant-joined", { participant: { id: 2, displayName: "Grace", isHost: false, micOn: true, cameraOn: true, speaking: false, joinedAtMs: 5, reconnecting: false, isCohost: false, handRaised: null } });
    await ctl.leaveClicked();
    expect(store.state.leaveAsked).toBe(true);
    expect(commands()).not.toContain("leave_meeting");
    await ctl.endForEveryone();
    expect(commands()).toContain("end_meeting");
    await emit("meeting-ended", { by: 1 });
    expect(store.state.ended!.title).toBe("You ended the meeting for everyone");
  });

  it("turns a device on only when the person accepts a moderator's request", async () => {
    handlers.create_meeting = () => ({ code: "111222", relayAddr: "192.168.1.5:7878", invitation: INVITATION, participantId: 1 });
    const { store, ctl } = await started();
    await ctl.createMeeting();
    await ctl.toggleCamera();
    expect(store.state.cameraOn).toBe(false);
    await emit("media-requested", { by: 2, device: "camera" });
    await ctl.answerMediaRequest(false);
    expect(store.state.cameraOn).toBe(false);
    await emit("media-requested", { by: 2, device: "camera" });
    await ctl.answerMediaRequest(true);
    expect(store.state.cameraOn).toBe(true);
    expect(argsOf("set_camera")).toEqual([{ on: false }, { on: true }]);
  });
});

describe("devices and media", () => {
  it("toggles the mic and keeps the state when the device is busy", async () => {
    const { store, ctl } = await started();
    await ctl.toggleMic();
    expect(argsOf("set_mic")).toEqual([{ on: false }]);
    expect(store.state.micOn).toBe(false);
    handlers.set_camera = () => {
      throw { code: "deviceBusy", message: "EBUSY", device: "camera" };
    };
    await ctl.shortcut("toggleCamera");
    expect(store.state.cameraOn).toBe(true);
    expect(last(store.state.toasts)!.text).toBe("Your camera is in use");
  });

  it("chooses a device by kind", async () => {
    const { store, ctl } = await started();
    await ctl.chooseDevice("microphone", "mic0");
    expect(argsOf("choose_devices")).toEqual([{ microphone: "mic0" }]);
    expect(store.state.devices.microphones[0]!.selected).toBe(true);
  });

  it("delivers raw frames from the Channel and reports drawn frames", async () => {
    const ipc = tauriIpc();
    const got: Frame[] = [];
    await ipc.videoSubscribe((buf) => {
      const f = parseFrame(buf);
      if (typeof f !== "string") got.push(f);
    });
    const channel = argsOf("video_subscribe")[0]!.onFrame as Channel<ArrayBuffer>;
    const frame = encodeFrame(7, 2, 2, PixelFormat.Rgba, new Uint8Array(16).fill(200));
    const internals = (globalThis as unknown as { __TAURI_INTERNALS__: { runCallback(id: number, data: unknown): void } }).__TAURI_INTERNALS__;
    internals.runCallback(channel.id, { index: 0, message: frame });
    internals.runCallback(channel.id, { index: 1, message: frame });
    expect(got.map((f) => f.participantId)).toEqual([7, 7]);
    await ipc.videoFrameDrawn(7, 640, 360);
    expect(argsOf("video_frame_drawn")).toEqual([{ participantId: 7, width: 640, height: 360 }]);
  });

  it("accepts frames as ArrayBuffer, typed array or JSON array", () => {
    expect(toArrayBuffer(new Uint8Array([1, 2]).buffer)!.byteLength).toBe(2);
    expect(new Uint8Array(toArrayBuffer(new Uint8Array([0, 1, 2, 3]).subarray(1, 3))!)).toEqual(new Uint8Array([1, 2]));
    expect(new Uint8Array(toArrayBuffer([5, 6])!)).toEqual(new Uint8Array([5, 6]));
    expect(toArrayBuffer("nope")).toBeNull();
  });
});

describe("chat and files", () => {
  async function hosting() {
    handlers.create_meeting = () => ({ code: "111222", relayAddr: "192.168.1.5:7878", participantId: 1 });
    const r = await started();
    await r.ctl.createMeeting();
    return r;
  }

  it("sends trimmed chat and refuses empty or over-long text", async () => {
    handlers.send_chat = () => ({ clientMsgId: 42 });
    const { store, ctl } = await hosting();
    expect(await ctl.sendChat("   ")).toBe(false);
    expect(await ctl.sendChat("x".repeat(4001))).toBe(false);
    expect(last(store.state.toasts)!.text).toBe("Message too long");
    expect(await ctl.sendChat("  hello ")).toBe(true);
    expect(argsOf("send_chat")).toEqual([{ text: "hello" }]);
    expect(store.state.meeting!.pendingChat.map((p) => p.clientMsgId)).toEqual([42]);
    await emit("chat", { message: { id: 1, senderId: 1, senderName: "Ada", text: "hello", timestampMs: 5, clientMsgId: 42 } });
    expect(store.state.meeting!.pendingChat).toEqual([]);
  });

  it("sends dropped and picked files by path", async () => {
    let n = 0;
    handlers.send_file = () => ({ transferId: `u${++n}` });
    handlers.pick_file = () => "/home/ada/Documents/plan.pdf";
    const { store, ctl } = await hosting();
    const ipc = tauriIpc();
    const dropped: string[][] = [];
    let entered = 0;
    await ipc.onFileDrop({ enter: () => entered++, leave: () => undefined, drop: (p) => dropped.push(p) });
    await emit("tauri://drag-enter", { paths: ["/tmp/a.txt"], position: { x: 1, y: 2 } });
    await emit("tauri://drag-drop", { paths: ["/tmp/a.txt", "/tmp/b.txt"], position: { x: 1, y: 2 } });
    expect(entered).toBe(1);
    expect(dropped).toEqual([["/tmp/a.txt", "/tmp/b.txt"]]);
    await ctl.sendFiles(dropped[0]!);
    await ctl.pickAndSendFile();
    expect(argsOf("send_file")).toEqual([{ path: "/tmp/a.txt" }, { path: "/tmp/b.txt" }, { path: "/home/ada/Documents/plan.pdf" }]);
    expect(Object.values(store.state.meeting!.transfers).map((t) => t.name)).toEqual(["a.txt", "b.txt", "plan.pdf"]);
  });

  it("says when a file cannot be sent", async () => {
    handlers.send_file = () => {
      throw { code: "fileNotFound", message: "ENOENT" };
    };
    const { store, ctl } = await hosting();
    await ctl.sendFiles(["/gone.txt"]);
    expect(last(store.state.toasts)!.text).toBe("Couldn't send gone.txt: Can't read that file");
  });

  it("saves, opens and picks the download folder", async () => {
    handlers.accept_file = () => ({ transferId: "d5" });
    handlers["plugin:dialog|open"] = () => "/data/incoming";
    const { store, ctl } = await hosting();
    await emit("file-offer", { file: { fileId: 5, name: "r.pdf", size: 10, sha256: "00", senderId: 2, senderName: "Grace" } });
    await ctl.acceptFile(5);
    expect(argsOf("accept_file")).toEqual([{ fileId: 5 }]);
    expect(store.state.meeting!.files[5]!.status).toBe("downloading");
    handlers.open_file = (args) => ((args as { path: string }).path.endsWith(".exe") ? "shownInFolder" : "opened");
    await ctl.openFile("/home/ada/Downloads/r.pdf");
    expect(argsOf("open_file")).toEqual([{ path: "/home/ada/Downloads/r.pdf" }]);
    expect(store.state.toasts).toEqual([]);
    await ctl.openFile("/home/ada/Downloads/setup.exe");
    expect(store.state.toasts.map((t) => [t.kind, t.text])).toEqual([["info", "setup.exe is shown in its folder"]]);
    await ctl.chooseDownloadDir();
    expect(argsOf("choose_download_dir")).toEqual([{ dir: "/data/incoming" }]);
    expect(store.state.downloadDir).toBe("/data/incoming");
  });
});

describe("opened invitations and updates", () => {
  const fields = { relayAddr: "10.0.0.7:5000", code: "482913", fingerprint: FINGERPRINT };

  it("fills Join from the link the app was started with, once", async () => {
    let waiting: string | null = INVITATION.link;
    handlers.take_opened_invitation = () => {
      const link = waiting;
      waiting = null;
      return link;
    };
    handlers.read_invitation = (args) => {
      expect(args).toEqual({ text: INVITATION.link });
      return fields;
    };
    const { store } = await started();
    expect(store.state.home).toMatchObject({ code: "482913", relayAddr: "10.0.0.7:5000", fingerprint: FINGERPRINT });
    expect(argsOf("read_invitation")).toHaveLength(1);
  });

  it("takes a link opened while running when the shell says so, and keeps it for after a meeting", async () => {
    let waiting: string | null = null;
    handlers.take_opened_invitation = () => {
      const link = waiting;
      waiting = null;
      return link;
    };
    handlers.read_invitation = () => fields;
    const { store } = await started();
    expect(argsOf("read_invitation")).toHaveLength(0);
    store.dispatch({ type: "event", event: { name: "waiting", payload: { code: "111111", requestId: 1 } } });
    waiting = INVITATION.link;
    await emit("invitation-opened", null);
    await flush();
    expect(argsOf("read_invitation")).toHaveLength(1);
    expect(store.state.screen).toBe("waiting");
    expect(store.state.home.code).toBe("482913");
    expect(store.state.toasts.map((t) => t.text)).toContain("Invitation opened");
    // A second event for the same link finds nothing left to take.
    await emit("invitation-opened", null);
    await flush();
    expect(argsOf("read_invitation")).toHaveLength(1);
  });

  it("shows a malformed link's error on the home screen", async () => {
    handlers.take_opened_invitation = () => "parlor://nonsense";
    handlers.read_invitation = () => {
      throw { code: "invalidInvitation", message: "no parlor://join link in the text" };
    };
    const { store } = await started();
    expect(store.state.home.error!.title).toBe("That isn't a Parlor invitation");
  });

  it("offers an update the shell found and reports a failed installation", async () => {
    handlers.check_for_update = () => ({ version: "0.2.0", currentVersion: "0.1.0", notes: null });
    handlers.install_update = () => {
      throw { code: "updateFailed", message: "the signature does not match" };
    };
    const { store, ctl } = await started();
    await flush();
    expect(store.state.home.update).toEqual({ version: "0.2.0", currentVersion: "0.1.0", notes: null });
    await ctl.installUpdate();
    expect(commands()).toContain("install_update");
    expect(store.state.home.updating).toBe(false);
    expect(store.state.home.error).toMatchObject({ title: "The update didn't install" });
    expect(store.state.home.error!.detail).toContain("The signature does not match");
  });

  it("offers nothing when the shell finds no update", async () => {
    const { store, ctl } = await started();
    await flush();
    expect(commands()).toContain("check_for_update");
    expect(store.state.home.update).toBeNull();
    await ctl.installUpdate();
    expect(commands()).not.toContain("install_update");
  });
});

describe("presenting", () => {
  const SOURCES = [
    { choice: { kind: "screen", id: 1 }, name: "Built-in Display", width: 2560, height: 1600, thumbnail: "data:image/jpeg;base64,AA==" },
    { choice: { kind: "window", id: 42 }, name: "Slides", width: 1600, height: 900, thumbnail: null },
  ];
  const ada = (presenting: boolean) => ({ id: 1, displayName: "Ada", isHost: true, micOn: true, cameraOn: true, speaking: false, joinedAtMs: 5, reconnecting: false, isCohost: false, handRaised: null, presenting });

  async function hosting() {
    handlers.create_meeting = () => ({ code: "111222", relayAddr: "192.168.1.5:7878", invitation: INVITATION, participantId: 1 });
    handlers.list_screen_sources = () => SOURCES;
    const app = await started();
    await app.ctl.createMeeting();
    return app;
  }

  it("lists what to share, shares the chosen source, and shows it before the roster does", async () => {
    const { store, ctl } = await hosting();
    await ctl.togglePresenting();
    expect(commands()).toContain("list_screen_sources");
    expect(store.state.screenPicker).toMatchObject({ selected: "screen:1" });
    expect(store.state.screenPicker!.sources).toHaveLength(2);
    store.dispatch({ type: "screenSourceSelected", key: "window:42" });
    await ctl.shareChosenScreen();
    expect(argsOf("start_screen_share")).toEqual([{ choice: { kind: "window", id: 42 } }]);
    expect(store.state.screenPicker).toBeNull();
    expect(isPresenting(store.state.meeting!)).toBe(true);
    await emit("participant-updated", { participant: ada(true) });
    expect(store.state.meeting!.presentingWanted).toBeNull();
    // The same button (or Ctrl+Alt+S) stops.
    await ctl.shortcut("togglePresenting");
    expect(commands()).toContain("stop_screen_share");
    expect(isPresenting(store.state.meeting!)).toBe(false);
  });

  it("says in the dialog why nothing can be listed, and Escape closes it", async () => {
    const { store, ctl } = await hosting();
    handlers.list_screen_sources = () => {
      throw { code: "deviceBusy", message: "device error: screen capture is not supported on this session", device: "screen" };
    };
    await ctl.openScreenPicker();
    expect(store.state.screenPicker!.error!.title).toBe("Your screen can't be shared");
    await ctl.shortcut("closePanel");
    expect(store.state.screenPicker).toBeNull();
    await ctl.shareChosenScreen();
    expect(commands()).not.toContain("start_screen_share");
  });

  it("drops a list that arrives after the picker closed", async () => {
    const { store, ctl } = await hosting();
    let answer: (sources: unknown) => void = () => undefined;
    handlers.list_screen_sources = () => new Promise((resolve) => (answer = resolve));
    const opening = ctl.openScreenPicker();
    await flush();
    ctl.closeScreenPicker();
    answer(SOURCES);
    await opening;
    expect(store.state.screenPicker).toBeNull();
  });

  it("puts the button back with a toast when sharing is refused", async () => {
    const { store, ctl } = await hosting();
    handlers.start_screen_share = () => {
      throw { code: "invalidState", message: "not in a meeting" };
    };
    await ctl.openScreenPicker();
    await ctl.shareChosenScreen();
    expect(isPresenting(store.state.meeting!)).toBe(false);
    expect(last(store.state.toasts)).toMatchObject({ text: "Couldn't present: That isn't possible right now", detail: "not in a meeting" });
  });

  it("shows the shell's reason when the share stops by itself", async () => {
    const { store } = await hosting();
    await emit("participant-updated", { participant: ada(true) });
    expect(isPresenting(store.state.meeting!)).toBe(true);
    await emit("screen-share-ended", { reason: "no device: that window is closed" });
    expect(isPresenting(store.state.meeting!)).toBe(false);
    expect(last(store.state.toasts)!.text).toBe("Screen sharing stopped: no device: that window is closed");
  });

  it("does nothing outside a meeting", async () => {
    const { store, ctl } = await started();
    await ctl.shortcut("togglePresenting");
    expect(store.state.screenPicker).toBeNull();
    expect(commands()).not.toContain("list_screen_sources");
  });
});
