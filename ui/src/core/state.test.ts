import { describe, expect, it } from "vitest";
import { activeTransfers, handRaised, initialState, isHost, isModerator, isPresenting, latestStats, LIMITS, raisedHands, REACTION_MS, reconnectingSeconds, reduce, screenChoiceKey, stageOrder, stagePlan, TOAST_MS, type Action, type AppState } from "./state";
import { last, sample } from "./test-fixtures";
import { screenTileId, type ChatMessage, type FileInfo, type Invitation, type Participant, type ScreenSource, type SessionEvent } from "./types";

const T0 = 1_700_000_000_000;

function run(actions: Array<Action | SessionEvent>, start: AppState = initialState(), now = T0): AppState {
  return actions.reduce<AppState>((s, a) => reduce(s, "type" in a ? a : { type: "event", event: a }, now), start);
}

function person(id: number, name: string, over: Partial<Participant> = {}): Participant {
  return { id, displayName: name, isHost: false, micOn: true, cameraOn: true, speaking: false, joinedAtMs: T0 + id, reconnecting: false, isCohost: false, handRaised: null, presenting: false, ...over };
}

function chat(id: number, senderId: number, text: string, over: Partial<ChatMessage> = {}): ChatMessage {
  return { id, senderId, senderName: senderId === 1 ? "Ada" : "Grace", text, timestampMs: T0 + id, clientMsgId: null, file: null, ...over };
}

function invitation(code: string, relayAddr: string): Invitation {
  const link = `parlor://join?relay=${encodeURIComponent(relayAddr)}&code=${code}`;
  return { link, text: `Join my Parlor meeting: ${link}\n`, fingerprint: null };
}

const file: FileInfo = { fileId: 5, name: "report.pdf", size: 2_000_000, sha256: "ab".repeat(32), senderId: 2, senderName: "Grace", lost: false };

/** Ada (1) has joined a meeting hosted by Grace (2). */
function inMeeting(): AppState {
  return run([
    { type: "joinStarted", name: "Ada", code: "482913", relayAddr: "192.168.1.20:7878", fingerprint: null },
    { name: "waiting", payload: { code: "482913", requestId: 77 } },
    {
      name: "joined",
      payload: {
        code: "482913",
        participantId: 1,
        hostId: 2,
        relayAddr: "192.168.1.20:7878",
        invitation: invitation("482913", "192.168.1.20:7878"),
        roster: [person(2, "Grace"), person(1, "Ada")],
        chatHistory: [chat(3, 2, "earlier"), chat(1, 2, "first")],
        locked: false,
      },
    },
  ]);
}

describe("home → waiting → meeting", () => {
  it("fills the form from saved settings without overwriting typing", () => {
    const typed = run([{ type: "homeInput", field: "name", value: "Typed" }]);
    const s = reduce(typed, { type: "settingsLoaded", settings: { displayName: "Saved", lastRelayAddr: "10.0.0.2:7878", echoCancellation: true, noiseSuppression: false, notifications: true, sounds: false } }, T0);
    expect(s.home.name).toBe("Typed");
    expect(s.home.relayAddr).toBe("10.0.0.2:7878");
  });

  it("walks a joiner through the waiting room into the meeting", () => {
    const waiting = run([
      { type: "joinStarted", name: "Ada", code: "482913", relayAddr: "192.168.1.20:7878", fingerprint: null },
      { name: "waiting", payload: { code: "482913", requestId: 77 } },
    ]);
    expect(waiting.screen).toBe("waiting");
    expect(waiting.waiting).toEqual({ code: "482913", relayAddr: "192.168.1.20:7878", requestId: 77 });
    expect(waiting.settings.lastRelayAddr).toBe("192.168.1.20:7878");
    const s = inMeeting();
    expect(s.screen).toBe("meeting");
    expect(s.waiting).toBeNull();
    const m = s.meeting!;
    expect(m.roster.map((p) => p.id)).toEqual([1, 2]);
    expect(m.roster.find((p) => p.id === 2)!.isHost).toBe(true);
    expect(m.chat.map((c) => c.id)).toEqual([1, 3]);
    expect(isHost(s)).toBe(false);
    expect(stageOrder(m)).toEqual([1, 2]);
  });

  it("says why a join was refused", () => {
    const s = run([
      { type: "joinStarted", name: "Ada", code: "482913", relayAddr: "r:1", fingerprint: null },
      { name: "waiting", payload: { code: "482913", requestId: 77 } },
      { name: "join-refused", payload: { reason: "denied" } },
    ]);
    expect(s.screen).toBe("ended");
    expect(s.ended).toMatchObject({ title: "You can't join this meeting", canRejoin: true });
    expect(s.ended!.detail).toMatch(/denied/);
    const ended = run([
      { type: "joinStarted", name: "Ada", code: "482913", relayAddr: "r:1", fingerprint: null },
      { name: "join-refused", payload: { reason: "meetingEnded" } },
    ]);
    expect(ended.ended!.canRejoin).toBe(false);
  });

  it("ignores a stray refusal when not joining", () => {
    const s = inMeeting();
    expect(reduce(s, { type: "event", event: { name: "join-refused", payload: { reason: "denied" } } }, T0)).toBe(s);
  });

  it("puts a failed start's words on the home form, naming address and code", () => {
    const s = run([
      { type: "joinStarted", name: "Ada", code: "482913", relayAddr: "192.168.1.20:7878", fingerprint: null },
      { type: "startFailed", error: { code: "relayUnreachable", message: "refused" } },
    ]);
    expect(s.screen).toBe("home");
    expect(s.home.busy).toBeNull();
    expect(s.home.error!.title).toBe("Can't reach the relay at 192.168.1.20:7878");
    const wrong = run([
      { type: "joinStarted", name: "Ada", code: "000000", relayAddr: "r:1", fingerprint: null },
      { name: "error", payload: { code: "unknownMeeting", message: "no such meeting" } },
    ]);
    expect(wrong.home.error!.title).toBe("No meeting with code 000-000");
  });

  it("cancels the waiting room", () => {
    const s = run([
      { type: "joinStarted", name: "Ada", code: "482913", relayAddr: "r:1", fingerprint: null },
      { name: "waiting", payload: { code: "482913", requestId: 77 } },
      { type: "joinCancelled" },
    ]);
    expect(s.screen).toBe("home");
    expect(s.waiting).toBeNull();
  });
});

describe("hosting", () => {
  const created = { code: "111222", relayAddr: "192.168.1.5:7878", invitation: invitation("111222", "192.168.1.5:7878"), participantId: 1 };
  const joined: SessionEvent = {
    name: "joined",
    payload: { code: "111222", participantId: 1, hostId: 1, relayAddr: "192.168.1.5:7878", invitation: created.invitation, roster: [person(1, "Ada", { isHost: true })], chatHistory: [], locked: false },
  };

  it("enters the meeting whichever of the reply and the joined event comes first", () => {
    const start: Action = { type: "createStarted", name: "Ada", relayAddr: "" };
    const a = run([start, { type: "createSucceeded", created }, joined]);
    const b = run([start, joined, { type: "createSucceeded", created }]);
    for (const s of [a, b]) {
      expect(s.screen).toBe("meeting");
      expect(s.meeting).toMatchObject({ code: "111222", relayAddr: "192.168.1.5:7878", selfId: 1, hostId: 1 });
      expect(s.meeting!.roster.map((p) => p.displayName)).toEqual(["Ada"]);
      expect(isHost(s)).toBe(true);
    }
  });

  it("shows the safety code of the newest key whichever order the reply and the events come in", () => {
    const start: Action = { type: "createStarted", name: "Ada", relayAddr: "" };
    const first: SessionEvent = { name: "encryption", payload: { epoch: 1, safetyCode: "2534 6208 6676" } };
    const rotated: SessionEvent = { name: "encryption", payload: { epoch: 2, safetyCode: "5418 6325 6302" } };
    const a = run([start, { type: "createSucceeded", created }, joined, first]);
    const b = run([start, joined, first, { type: "createSucceeded", created }]);
    for (const s of [a, b]) expect(s.meeting!.encryption).toEqual({ epoch: 1, safetyCode: "2534 6208 6676" });
    expect(reduce(a, { type: "event", event: rotated }, T0).meeting!.encryption?.safetyCode).toBe("5418 6325 6302");
    // Before any key, nothing claims encryption.
    expect(run([start, joined]).meeting!.encryption).toBeNull();
  });

  it("keeps a chat sent between the reply and the joined event", () => {
    const s = run([
      { type: "createStarted", name: "Ada", relayAddr: "" },
      { type: "createSucceeded", created },
      { name: "chat", payload: { message: chat(1, 1, "hi", { clientMsgId: 1 }) } },
      joined,
    ]);
    expect(s.meeting!.chat.map((c) => c.text)).toEqual(["hi"]);
  });

  it("queues knocks, answers them by id and says why one vanished", () => {
    let s = run([{ type: "createStarted", name: "Ada", relayAddr: "" }, joined]);
    s = run(
      [
        { name: "knock", payload: { requestId: 10, name: "Linus", waitingSinceMs: T0 } },
        { name: "knock", payload: { requestId: 11, name: "Margaret", waitingSinceMs: T0 } },
        { name: "knock", payload: { requestId: 12, name: "Ken", waitingSinceMs: T0 } },
        { name: "knock", payload: { requestId: 10, name: "Linus", waitingSinceMs: T0 } },
      ],
      s,
    );
    expect(s.knocks.map((k) => k.name)).toEqual(["Linus", "Margaret", "Ken"]);
    s = reduce(s, { type: "knockAnswered", requestId: 11 }, T0);
    expect(s.knocks.map((k) => k.requestId)).toEqual([10, 12]);
    s = reduce(s, { type: "event", event: { name: "knock-withdrawn", payload: { requestId: 12, reason: "cancelled" } } }, T0);
    expect(s.knocks.map((k) => k.requestId)).toEqual([10]);
    expect(last(s.toasts)!.text).toBe("Ken stopped asking to join");
  });

  it("bounds the knock queue", () => {
    let s = run([{ type: "createStarted", name: "Ada", relayAddr: "" }, joined]);
    for (let i = 0; i < LIMITS.knocks + 20; i++) s = reduce(s, { type: "event", event: { name: "knock", payload: { requestId: i, name: `K${i}`, waitingSinceMs: T0 } } }, T0);
    expect(s.knocks).toHaveLength(LIMITS.knocks);
    expect(s.knocks[0]!.requestId).toBe(20);
  });

  it("drops the old host's knocks when the host role moves away", () => {
    let s = run([{ type: "createStarted", name: "Ada", relayAddr: "" }, joined, { name: "participant-joined", payload: { participant: person(2, "Grace") } }]);
    s = run([{ name: "knock", payload: { requestId: 10, name: "Linus", waitingSinceMs: T0 } }, { name: "host-changed", payload: { hostId: 2 } }], s);
    expect(s.knocks).toEqual([]);
    expect(isHost(s)).toBe(false);
    expect(s.meeting!.roster.find((p) => p.id === 2)!.isHost).toBe(true);
    expect(last(s.toasts)!.text).toBe("Grace is now the host");
  });
});

describe("roster", () => {
  it("toasts joins and departures of others, with the reason", () => {
    let s = inMeeting();
    s = run([{ name: "participant-joined", payload: { participant: person(3, "Linus") } }], s);
    expect(last(s.toasts)!.text).toBe("Linus joined");
    expect(s.meeting!.roster.map((p) => p.id)).toEqual([1, 2, 3]);
    s = run([{ name: "participant-left", payload: { participantId: 3, reason: "timedOut" } }], s);
    expect(last(s.toasts)!.text).toMatch(/Linus stopped responding/);
    expect(s.meeting!.roster.map((p) => p.id)).toEqual([1, 2]);
  });

  it("updates mic and camera state and tracks the active speaker", () => {
    let s = inMeeting();
    s = run([{ name: "participant-updated", payload: { participant: person(2, "Grace", { micOn: false }) } }, { name: "active-speaker", payload: { participantId: 2 } }], s);
    expect(s.meeting!.roster.find((p) => p.id === 2)!.micOn).toBe(false);
    expect(s.meeting!.roster.find((p) => p.id === 2)!.isHost).toBe(true);
    expect(s.meeting!.activeSpeaker).toBe(2);
    s = run([{ name: "participant-left", payload: { participantId: 2, reason: "left" } }], s);
    expect(s.meeting!.activeSpeaker).toBeNull();
  });

  it("ends the session when removed or disconnected, and on leaving", () => {
    const removed = run([{ name: "removed", payload: null }], inMeeting());
    expect(removed).toMatchObject({ screen: "ended", meeting: null });
    expect(removed.ended).toMatchObject({ title: "You've been removed from the meeting", canRejoin: false });
    const lost = run([{ name: "disconnected", payload: { message: "connection reset", rejoin: null } }], inMeeting());
    expect(lost.ended).toMatchObject({ title: "You lost connection to the meeting", detail: "connection reset", canRejoin: true, rejoin: null });
    const chatty = run([{ name: "participant-joined", payload: { participant: person(3, "Linus") } }, { type: "commandFailed", error: { code: "deviceBusy", message: "" } }], inMeeting());
    expect(chatty.toasts).toHaveLength(2);
    const left = run([{ type: "left" }], chatty);
    expect(left.toasts.map((t) => t.kind)).toEqual(["error"]);
    expect(left.ended!.title).toBe("You left the meeting");
    expect(run([{ type: "returnedHome" }], left).screen).toBe("home");
  });
});

describe("connection drops", () => {
  const rejoin = { code: "482913", relayAddr: "192.168.1.20:7878", fingerprint: "5e".repeat(32) };

  it("keeps the meeting, its chat and its stats history while reconnecting, and clears the banner on resume", () => {
    let s = inMeeting();
    for (let i = 0; i < 5; i++) s = reduce(s, { type: "event", event: { name: "stats", payload: sample(T0 + i * 1000) } }, T0 + i * 1000);
    s = reduce(s, { type: "event", event: { name: "reconnecting", payload: { reason: "no answer from the relay", unheardMs: 0 } } }, T0 + 5000);
    expect(s.screen).toBe("meeting");
    expect(s.meeting!.reconnecting).toEqual({ sinceMs: T0 + 5000, reason: "no answer from the relay" });
    expect(reconnectingSeconds(s.meeting!, T0 + 5000)).toBe(0);
    expect(reconnectingSeconds(s.meeting!, T0 + 17_400)).toBe(12);
    // A second notice does not restart the count.
    s = reduce(s, { type: "event", event: { name: "reconnecting", payload: { reason: "again", unheardMs: 0 } } }, T0 + 8000);
    expect(s.meeting!.reconnecting!.sinceMs).toBe(T0 + 5000);
    // What was missed arrives before `resumed`; samples keep coming.
    s = run([{ name: "chat", payload: { message: chat(4, 2, "missed") } }], s, T0 + 9000);
    s = reduce(s, { type: "event", event: { name: "stats", payload: sample(T0 + 9000) } }, T0 + 9000);
    const toasts = s.toasts.length;
    s = reduce(s, { type: "event", event: { name: "resumed", payload: { afterMs: 4200, attempts: 2 } } }, T0 + 9200);
    expect(s.screen).toBe("meeting");
    expect(s.meeting!.reconnecting).toBeNull();
    expect(reconnectingSeconds(s.meeting!, T0 + 9200)).toBeNull();
    expect(s.meeting!.stats.map((x) => x.timestampMs)).toEqual([0, 1000, 2000, 3000, 4000, 9000].map((d) => T0 + d));
    expect(s.meeting!.chat.map((c) => c.text)).toEqual(["first", "earlier", "missed"]);
    expect(s.toasts).toHaveLength(toasts + 1);
    expect(last(s.toasts)!.text).toBe("Reconnected");
    // A stray `resumed` changes nothing.
    expect(reduce(s, { type: "event", event: { name: "resumed", payload: { afterMs: 1, attempts: 1 } } }, T0)).toBe(s);
  });

  it("counts a silent relay's break from when it was last heard", () => {
    const s = reduce(inMeeting(), { type: "event", event: { name: "reconnecting", payload: { reason: "no media from the relay for 3 s", unheardMs: 3000 } } }, T0 + 10_000);
    expect(s.meeting!.reconnecting!.sinceMs).toBe(T0 + 7000);
    expect(reconnectingSeconds(s.meeting!, T0 + 10_000)).toBe(3);
  });

  it("ignores a reconnect notice outside a meeting", () => {
    const home = initialState();
    expect(reduce(home, { type: "event", event: { name: "reconnecting", payload: { reason: "x", unheardMs: 0 } } }, T0)).toBe(home);
  });

  it("marks a participant whose connection dropped until they are back or gone", () => {
    let s = run([{ name: "participant-updated", payload: { participant: person(2, "Grace", { reconnecting: true }) } }], inMeeting());
    const grace = () => s.meeting!.roster.find((p) => p.id === 2);
    expect(grace()).toMatchObject({ reconnecting: true, isHost: true });
    s = run([{ name: "participant-updated", payload: { participant: person(2, "Grace") } }], s);
    expect(grace()!.reconnecting).toBe(false);
    s = run([{ name: "participant-updated", payload: { participant: person(2, "Grace", { reconnecting: true }) } }, { name: "participant-left", payload: { participantId: 2, reason: "timedOut" } }], s);
    expect(grace()).toBeUndefined();
    expect(last(s.toasts)!.text).toMatch(/Grace stopped responding/);
  });

  it("offers to knock again on a meeting whose connection was lost for good", () => {
    const s = run(
      [
        { name: "reconnecting", payload: { reason: "connection reset", unheardMs: 0 } },
        { name: "disconnected", payload: { message: "no way back to the relay in 60 s", rejoin } },
      ],
      inMeeting(),
    );
    expect(s).toMatchObject({ screen: "ended", meeting: null });
    expect(s.ended).toMatchObject({ title: "You lost your connection", canRejoin: true, rejoin });
    expect(s.ended!.detail).toMatch(/meeting 482-913 \(no way back to the relay in 60 s\)\. Rejoin/);
    expect(run([{ type: "returnedHome" }], s)).toMatchObject({ screen: "home", ended: null });
  });
});

describe("chat", () => {
  it("orders by relay id, ignores duplicates and replaces the pending copy", () => {
    let s = inMeeting();
    s = run([{ type: "chatPending", clientMsgId: 9, text: "hello" }], s);
    expect(s.meeting!.pendingChat.map((p) => p.text)).toEqual(["hello"]);
    s = run([{ name: "chat", payload: { message: chat(5, 1, "hello", { clientMsgId: 9 }) } }, { name: "chat", payload: { message: chat(4, 2, "before") } }, { name: "chat", payload: { message: chat(5, 1, "hello", { clientMsgId: 9 }) } }], s);
    expect(s.meeting!.pendingChat).toEqual([]);
    expect(s.meeting!.chat.map((c) => c.id)).toEqual([1, 3, 4, 5]);
  });

  it("counts unread messages and toasts them while the panel is closed", () => {
    let s = inMeeting();
    s = run([{ name: "chat", payload: { message: chat(4, 2, "Hi Ada!") } }], s);
    expect(s.meeting!.unread).toBe(1);
    expect(last(s.toasts)!.text).toBe("Grace: Hi Ada!");
    s = run([{ type: "panelToggled", panel: "chat" }], s);
    expect(s.panel).toBe("chat");
    expect(s.meeting!.unread).toBe(0);
    const toasts = s.toasts.length;
    s = run([{ name: "chat", payload: { message: chat(6, 2, "again") } }], s);
    expect(s.meeting!.unread).toBe(0);
    expect(s.toasts).toHaveLength(toasts);
    s = run([{ type: "panelToggled", panel: "chat" }], s);
    expect(s.panel).toBeNull();
  });

  it("marks a failed send with words", () => {
    const s = run([{ type: "chatPending", clientMsgId: 1, text: "x" }, { type: "chatFailed", clientMsgId: 1, error: { code: "chatTooLong", message: "" } }], inMeeting());
    expect(s.meeting!.pendingChat[0]!.error!.title).toBe("Message too long");
  });

  it("keeps at most the last 500 messages", () => {
    let s = inMeeting();
    for (let i = 10; i < 10 + LIMITS.chat + 5; i++) s = reduce(s, { type: "event", event: { name: "chat", payload: { message: chat(i, 2, `m${i}`) } } }, T0);
    expect(s.meeting!.chat).toHaveLength(LIMITS.chat);
    expect(last(s.meeting!.chat)!.id).toBe(10 + LIMITS.chat + 4);
  });
});

describe("files", () => {
  it("shows an upload's progress with rate and cwnd, then the sent, verified file", () => {
    let s = run([{ type: "uploadStarted", transferId: "u1", name: "notes.txt" }], inMeeting());
    expect(activeTransfers(s.meeting!).map((t) => t.name)).toEqual(["notes.txt"]);
    s = run(
      [{ name: "file-progress", payload: { transferId: "u1", direction: "upload", fileId: null, name: "notes.txt", size: 1000, bytes: 400, rateBytesPerSec: 2000, cwndBytes: 65536 } }],
      s,
    );
    expect(s.meeting!.transfers.u1).toMatchObject({ bytes: 400, size: 1000, rateBytesPerSec: 2000, cwndBytes: 65536, status: "sending" });
    s = run([{ name: "file-done", payload: { transferId: "u1", direction: "upload", fileId: 8, name: "notes.txt", size: 1000, sha256: "cd".repeat(32), verified: true, path: null } }], s);
    expect(activeTransfers(s.meeting!)).toEqual([]);
    expect(s.meeting!.files[8]).toMatchObject({ status: "sent", verified: true });
    expect(s.meeting!.files[8]!.info.senderId).toBe(1);
  });

  it("keeps a failed upload, with words, until dismissed", () => {
    let s = run(
      [
        { type: "uploadStarted", transferId: "u1", name: "notes.txt" },
        { name: "file-failed", payload: { transferId: "u1", direction: "upload", fileId: null, name: "notes.txt", error: { code: "fileTooLarge", message: "" } } },
      ],
      inMeeting(),
    );
    expect(activeTransfers(s.meeting!)[0]).toMatchObject({ status: "failed", error: { title: "File too large" } });
    expect(last(s.toasts)!.text).toBe("notes.txt: File too large");
    s = run([{ type: "transferDismissed", transferId: "u1" }], s);
    expect(activeTransfers(s.meeting!)).toEqual([]);
  });

  it("creates the upload entry when progress beats send_file's reply", () => {
    const s = run(
      [{ name: "file-progress", payload: { transferId: "u2", direction: "upload", fileId: null, name: "a.bin", size: 10, bytes: 5, rateBytesPerSec: 1, cwndBytes: null } }, { type: "uploadStarted", transferId: "u2", name: "a.bin" }],
      inMeeting(),
    );
    expect(s.meeting!.transfers.u2).toMatchObject({ bytes: 5, size: 10 });
  });

  it("takes a received file from offer to saved and verified", () => {
    let s = run([{ name: "chat", payload: { message: chat(9, 2, "", { file }) } }, { name: "file-offer", payload: { file } }], inMeeting());
    expect(s.meeting!.files[5]).toMatchObject({ status: "offered", verified: false });
    s = run([{ type: "downloadStarted", fileId: 5, transferId: "d5" }], s);
    expect(s.meeting!.files[5]!.status).toBe("downloading");
    s = run([{ name: "file-progress", payload: { transferId: "d5", direction: "download", fileId: 5, name: "report.pdf", size: 2_000_000, bytes: 1_000_000, rateBytesPerSec: 5e6, cwndBytes: null } }], s);
    expect(s.meeting!.files[5]).toMatchObject({ bytes: 1_000_000, rateBytesPerSec: 5e6 });
    s = run([{ name: "file-done", payload: { transferId: "d5", direction: "download", fileId: 5, name: "report.pdf", size: 2_000_000, sha256: file.sha256, verified: true, path: "/home/ada/Downloads/report.pdf" } }], s);
    expect(s.meeting!.files[5]).toMatchObject({ status: "saved", verified: true, path: "/home/ada/Downloads/report.pdf" });
  });

  it("marks an offer lost when it is offered again as lost after a failover", () => {
    let s = run([{ name: "chat", payload: { message: chat(9, 2, "", { file }) } }, { name: "file-offer", payload: { file } }], inMeeting());
    expect(s.meeting!.files[5]!.info.lost).toBe(false);
    s = run([{ name: "file-offer", payload: { file: { ...file, lost: true } } }], s);
    expect(s.meeting!.files[5]).toMatchObject({ status: "offered", info: { lost: true } });
    // Offered again as it was (say, replayed), it stays lost.
    s = run([{ name: "file-offer", payload: { file } }], s);
    expect(s.meeting!.files[5]!.info.lost).toBe(true);
  });

  it("keeps a download saved when its events beat accept_file's reply", () => {
    let s = run([{ name: "file-offer", payload: { file } }], inMeeting());
    s = run([{ name: "file-progress", payload: { transferId: "d5", direction: "download", fileId: 5, name: "report.pdf", size: 2_000_000, bytes: 2_000_000, rateBytesPerSec: 5e6, cwndBytes: null } }], s);
    s = run([{ name: "file-done", payload: { transferId: "d5", direction: "download", fileId: 5, name: "report.pdf", size: 2_000_000, sha256: file.sha256, verified: true, path: "/home/ada/Downloads/report.pdf" } }], s);
    s = run([{ type: "downloadStarted", fileId: 5, transferId: "d5" }], s);
    expect(s.meeting!.files[5]).toMatchObject({ status: "saved", verified: true, bytes: 2_000_000, transferId: "d5" });
  });

  it("says why a download failed", () => {
    let s = run([{ name: "file-offer", payload: { file } }], inMeeting());
    s = run([{ name: "file-failed", payload: { transferId: "d5", direction: "download", fileId: 5, name: "report.pdf", error: { code: "hashMismatch", message: "" } } }], s);
    expect(s.meeting!.files[5]!.status).toBe("failed");
    expect(s.meeting!.files[5]!.error!.title).toBe("File arrived damaged");
    expect(last(s.toasts)!.text).toBe("report.pdf: File arrived damaged");
  });

  it("shows someone else's upload until it is done", () => {
    let s = run([{ name: "file-progress", payload: { transferId: "r7", direction: "remote", fileId: 7, name: "big.iso", size: 100, bytes: 10, rateBytesPerSec: 0, cwndBytes: null } }], inMeeting());
    expect(activeTransfers(s.meeting!)).toHaveLength(1);
    s = run([{ name: "file-done", payload: { transferId: "r7", direction: "remote", fileId: 7, name: "big.iso", size: 100, sha256: "", verified: true, path: null } }], s);
    expect(activeTransfers(s.meeting!)).toHaveLength(0);
  });

  it("says when someone else's upload stopped, until dismissed", () => {
    let s = run([{ name: "file-progress", payload: { transferId: "r7", direction: "remote", fileId: 7, name: "big.iso", size: 100, bytes: 10, rateBytesPerSec: 0, cwndBytes: null } }], inMeeting());
    const toasts = s.toasts.length;
    const error = { code: "uploadStopped" as const, message: "the sender's connection ended before the whole file arrived" };
    s = run([{ name: "file-failed", payload: { transferId: "r7", direction: "remote", fileId: 7, name: "big.iso", error } }], s);
    const t = s.meeting!.transfers["r7"]!;
    expect(t.status).toBe("failed");
    expect(t.error).toEqual({ title: "Upload stopped", detail: "The sender's connection ended before the whole file arrived." });
    expect(s.toasts.length).toBe(toasts);
    s = reduce(s, { type: "transferDismissed", transferId: "r7" }, T0);
    expect(s.meeting!.transfers["r7"]).toBeUndefined();
    // A stop of an upload this app never saw adds nothing.
    s = run([{ name: "file-failed", payload: { transferId: "r9", direction: "remote", fileId: 9, name: "x", error } }], s);
    expect(s.meeting!.transfers["r9"]).toBeUndefined();
  });
});

describe("stats and toasts", () => {
  it("keeps a 60 s stats history", () => {
    let s = inMeeting();
    for (let i = 0; i < 90; i++) s = reduce(s, { type: "event", event: { name: "stats", payload: sample(T0 + i * 1000) } }, T0);
    expect(s.meeting!.stats).toHaveLength(61);
    expect(latestStats(s.meeting!)!.timestampMs).toBe(T0 + 89_000);
  });

  it("expires toasts on the simulated clock and bounds them", () => {
    let s = run([{ type: "toast", kind: "info", text: "one" }], initialState(), T0);
    s = reduce(s, { type: "commandFailed", error: { code: "deviceBusy", message: "", device: "camera" } }, T0 + 1000);
    expect(s.toasts.map((t) => t.text)).toEqual(["one", "Your camera is in use"]);
    expect(reduce(s, { type: "tick" }, T0 + TOAST_MS.info - 1)).toBe(s);
    s = reduce(s, { type: "tick" }, T0 + TOAST_MS.info);
    expect(s.toasts.map((t) => t.text)).toEqual(["Your camera is in use"]);
    s = reduce(s, { type: "tick" }, T0 + 1000 + TOAST_MS.error);
    expect(s.toasts).toEqual([]);
    for (let i = 0; i < 10; i++) s = reduce(s, { type: "toast", kind: "info", text: `t${i}` }, T0);
    expect(s.toasts).toHaveLength(LIMITS.toasts);
    expect(last(s.toasts)!.text).toBe("t9");
    s = reduce(s, { type: "toastDismissed", id: s.toasts[0]!.id }, T0);
    expect(s.toasts).toHaveLength(LIMITS.toasts - 1);
  });
});

describe("microphone level and voice processing", () => {
  it("keeps the newest level and flips one voice switch at a time", () => {
    let s = run([]);
    expect(s.micLevel).toBeNull();
    expect(s.settings.echoCancellation && s.settings.noiseSuppression).toBe(true);
    s = reduce(s, { type: "event", event: { name: "mic-level", payload: { dbfs: -31.5, speaking: true } } }, T0);
    expect(s.micLevel).toEqual({ dbfs: -31.5, speaking: true });
    s = reduce(s, { type: "settingToggled", setting: "noiseSuppression", on: false }, T0);
    expect(s.settings.noiseSuppression).toBe(false);
    expect(s.settings.echoCancellation).toBe(true);
    // Starting a meeting remembers the name and address without losing the switches.
    s = reduce(s, { type: "createStarted", name: "Ada", relayAddr: "" }, T0);
    expect(s.settings).toMatchObject({ displayName: "Ada", noiseSuppression: false, echoCancellation: true });
  });
});

describe("host controls, hands and reactions", () => {
  /** Ada (1) hosts; Grace (2) and Linus (3) are in. */
  function hosting(): AppState {
    return run([
      { type: "createStarted", name: "Ada", relayAddr: "" },
      {
        name: "joined",
        payload: {
          code: "111222",
          participantId: 1,
          hostId: 1,
          relayAddr: "r:1",
          invitation: invitation("111222", "r:1"),
          roster: [person(1, "Ada", { isHost: true }), person(2, "Grace"), person(3, "Linus")],
          chatHistory: [],
          locked: false,
        },
      },
    ]);
  }

  it("shows the lock, says who locked it, and a joiner hears it is locked", () => {
    let s = run([{ name: "meeting-locked", payload: { locked: true, by: 1 } }], hosting());
    expect(s.meeting!.locked).toBe(true);
    expect(last(s.toasts)!.text).toBe("You locked the meeting");
    s = run([{ name: "meeting-locked", payload: { locked: false, by: 1 } }], s);
    expect(s.meeting!.locked).toBe(false);
    const refused = run([
      { type: "joinStarted", name: "Ada", code: "482913", relayAddr: "r:1", fingerprint: null },
      { name: "join-refused", payload: { reason: "locked" } },
    ]);
    expect(refused.ended).toMatchObject({ title: "This meeting is locked", canRejoin: true });
  });

  it("orders raised hands first raised first and tells the host, not a participant", () => {
    let s = run(
      [
        { name: "participant-updated", payload: { participant: person(3, "Linus", { handRaised: 1 }) } },
        { name: "participant-updated", payload: { participant: person(2, "Grace", { handRaised: 2 }) } },
      ],
      hosting(),
    );
    expect(raisedHands(s.meeting!).map((p) => p.displayName)).toEqual(["Linus", "Grace"]);
    expect(s.toasts.map((t) => t.text)).toEqual(["Linus raised a hand", "Grace raised a hand"]);
    s = run([{ name: "participant-updated", payload: { participant: person(3, "Linus") } }], s);
    expect(raisedHands(s.meeting!).map((p) => p.id)).toEqual([2]);
    const guest = run([{ name: "participant-updated", payload: { participant: person(2, "Grace", { isHost: true, handRaised: 1 }) } }], inMeeting());
    expect(guest.toasts).toEqual([]);
    expect(handRaised(guest.meeting!)).toBe(false);
  });

  it("a co-host sees knocks with the relay's waiting time and loses them when demoted", () => {
    const guest = inMeeting();
    expect(isModerator(guest)).toBe(false);
    let s = run([{ name: "participant-updated", payload: { participant: person(1, "Ada", { isCohost: true }) } }], guest);
    expect(isModerator(s)).toBe(true);
    expect(last(s.toasts)!.text).toBe("You are now a co-host");
    s = run([{ name: "knock", payload: { requestId: 9, name: "Ken", waitingSinceMs: T0 - 30_000 } }], s);
    expect(s.knocks[0]!.sinceMs).toBe(T0 - 30_000);
    s = run([{ name: "participant-updated", payload: { participant: person(1, "Ada") } }], s);
    expect(isModerator(s)).toBe(false);
    expect(s.knocks).toEqual([]);
  });

  it("turns the microphone off when a moderator mutes this app, and asks before turning anything on", () => {
    let s = run([{ type: "micChanged", on: true }, { name: "muted-by-host", payload: { by: 2 } }], inMeeting());
    expect(s.micOn).toBe(false);
    expect(last(s.toasts)!.text).toBe("Grace muted you");
    s = run([{ name: "media-requested", payload: { by: 2, device: "camera" } }], s);
    expect(s.mediaRequest).toEqual({ by: 2, device: "camera" });
    expect(s.cameraOn).toBe(true);
    s = reduce(s, { type: "mediaRequestAnswered" }, T0);
    expect(s.mediaRequest).toBeNull();
  });

  it("floats reactions over their sender's tile for a few seconds, bounded", () => {
    let s = run([{ name: "reaction", payload: { participantId: 2, reaction: "clap" } }], hosting());
    expect(s.meeting!.reactions).toMatchObject([{ participantId: 2, reaction: "clap", untilMs: T0 + REACTION_MS }]);
    s = reduce(s, { type: "tick" }, T0 + REACTION_MS - 1);
    expect(s.meeting!.reactions).toHaveLength(1);
    s = reduce(s, { type: "tick" }, T0 + REACTION_MS);
    expect(s.meeting!.reactions).toEqual([]);
    for (let i = 0; i < LIMITS.reactions + 5; i++) s = reduce(s, { type: "event", event: { name: "reaction", payload: { participantId: 3, reaction: "party" } } }, T0);
    expect(s.meeting!.reactions).toHaveLength(LIMITS.reactions);
    expect(new Set(s.meeting!.reactions.map((r) => r.id)).size).toBe(LIMITS.reactions);
  });

  it("a knock another moderator answered goes without a toast; a new host is not also a co-host", () => {
    let s = run([{ name: "knock", payload: { requestId: 9, name: "Ken", waitingSinceMs: T0 } }], hosting());
    const toasts = s.toasts.length;
    s = run([{ name: "knock-withdrawn", payload: { requestId: 9, reason: "answered" } }], s);
    expect(s.knocks).toEqual([]);
    expect(s.toasts).toHaveLength(toasts);
    s = run([{ name: "participant-updated", payload: { participant: person(2, "Grace", { isCohost: true }) } }, { name: "host-changed", payload: { hostId: 2 } }], s);
    expect(s.meeting!.roster.find((p) => p.id === 2)).toMatchObject({ isHost: true, isCohost: false });
  });

  it("ends the session with the host's words when the meeting is ended for everyone", () => {
    const s = run([{ name: "meeting-ended", payload: { by: 2 } }], inMeeting());
    expect(s.screen).toBe("ended");
    expect(s.ended).toMatchObject({ title: "The host ended the meeting", canRejoin: false });
    const mine = run([{ type: "leaveAsked", on: true }, { name: "meeting-ended", payload: { by: 1 } }], hosting());
    expect(mine.ended!.title).toBe("You ended the meeting for everyone");
    expect(mine.leaveAsked).toBe(false);
  });
});

describe("presenting", () => {
  const updated = (p: Participant): SessionEvent => ({ name: "participant-updated", payload: { participant: p } });
  const joined = (p: Participant): SessionEvent => ({ name: "participant-joined", payload: { participant: p } });
  const sources: ScreenSource[] = [
    { choice: { kind: "screen", id: 1 }, name: "Built-in Display", width: 2560, height: 1600, thumbnail: "data:image/jpeg;base64,AA==" },
    { choice: { kind: "window", id: 42 }, name: "Slides", width: 1600, height: 900, thumbnail: null },
  ];

  it("shows a click at once and takes the roster's word once it agrees", () => {
    let s = run([{ type: "presentingRequested", on: true }], inMeeting());
    expect(isPresenting(s.meeting!)).toBe(true);
    // Another change of this app (it speaks) before the relay echoes the share keeps the wish.
    s = run([updated(person(1, "Ada", { speaking: true }))], s);
    expect(isPresenting(s.meeting!)).toBe(true);
    s = run([updated(person(1, "Ada", { presenting: true }))], s);
    expect(s.meeting!.presentingWanted).toBeNull();
    expect(isPresenting(s.meeting!)).toBe(true);
    s = run([{ type: "presentingRequested", on: false }], s);
    expect(isPresenting(s.meeting!)).toBe(false);
    s = run([updated(person(1, "Ada", { presenting: false }))], s);
    expect(s.meeting!.presentingWanted).toBeNull();
    expect(isPresenting(s.meeting!)).toBe(false);
  });

  it("puts the button back and says why when the shell refuses", () => {
    const s = run([{ type: "presentingRequested", on: true }, { type: "presentingFailed", on: true, error: { code: "invalidState", message: "not in a meeting" } }], inMeeting());
    expect(isPresenting(s.meeting!)).toBe(false);
    expect(last(s.toasts)).toMatchObject({ kind: "error", text: "Couldn't present: That isn't possible right now", detail: "not in a meeting" });
  });

  it("says why a share stopped by itself, once and at once, before the roster follows", () => {
    let s = run([updated(person(1, "Ada", { presenting: true })), { name: "error", payload: { code: "internal", message: "the relay refused a chat message" } }], inMeeting());
    expect(isPresenting(s.meeting!)).toBe(true);
    const before = s.toasts.length;
    s = run([{ name: "screen-share-ended", payload: { reason: "the shared window was closed" } }], s);
    expect(isPresenting(s.meeting!)).toBe(false);
    expect(s.toasts).toHaveLength(before + 1);
    expect(last(s.toasts)).toMatchObject({ kind: "error", text: "Screen sharing stopped: the shared window was closed" });
    // Other errors stay.
    expect(s.toasts.some((t) => t.detail === "the relay refused a chat message")).toBe(true);
    s = run([updated(person(1, "Ada", { presenting: false }))], s);
    expect(s.meeting!.presentingWanted).toBeNull();
  });

  it("keeps presenters in the order they started, whoever joins or leaves", () => {
    let s = run([updated(person(2, "Grace", { presenting: true })), joined(person(3, "Linus", { presenting: true }))], inMeeting());
    expect(s.meeting!.presenters).toEqual([2, 3]);
    expect(stagePlan(s.meeting!).main).toBe(screenTileId(3));
    s = run([updated(person(3, "Linus", { presenting: false })), updated(person(3, "Linus", { presenting: true }))], s);
    expect(s.meeting!.presenters).toEqual([2, 3]);
    s = run([updated(person(2, "Grace", { presenting: false })), updated(person(2, "Grace", { presenting: true }))], s);
    expect(s.meeting!.presenters).toEqual([3, 2]);
    expect(stagePlan(s.meeting!).main).toBe(screenTileId(2));
    s = run([{ name: "participant-left", payload: { participantId: 2, reason: "left" } }], s);
    expect(s.meeting!.presenters).toEqual([3]);
    expect(stagePlan(s.meeting!).main).toBe(screenTileId(3));
  });

  it("takes the presenters from the roster on joining", () => {
    const s = run([
      { type: "joinStarted", name: "Ada", code: "482913", relayAddr: "r:1", fingerprint: null },
      {
        name: "joined",
        payload: { code: "482913", participantId: 1, hostId: 2, relayAddr: "r:1", invitation: invitation("482913", "r:1"), roster: [person(2, "Grace", { presenting: true }), person(1, "Ada")], chatHistory: [], locked: false },
      },
    ]);
    expect(s.meeting!.presenters).toEqual([2]);
    expect(stagePlan(s.meeting!).main).toBe(screenTileId(2));
  });

  it("drops a pin when its tile goes, and goes back to the grid when the presentation ends", () => {
    let s = run([updated(person(2, "Grace", { presenting: true })), { type: "tilePinned", tile: screenTileId(2) }], inMeeting());
    expect(stagePlan(s.meeting!).main).toBe(screenTileId(2));
    s = run([updated(person(2, "Grace", { presenting: false }))], s);
    expect(s.meeting!.pinned).toBeNull();
    expect(stagePlan(s.meeting!).main).toBeNull();
    s = run([{ type: "tilePinned", tile: 2 }, { name: "participant-left", payload: { participantId: 2, reason: "left" } }], s);
    expect(s.meeting!.pinned).toBeNull();
  });

  it("leaves Tiled for a pin, and forgets the pin when Tiled is chosen", () => {
    let s = run([{ type: "layoutChosen", layout: "tiled" }, { type: "tilePinned", tile: 2 }], inMeeting());
    expect(s.meeting).toMatchObject({ layout: "auto", pinned: 2 });
    expect(stagePlan(s.meeting!).main).toBe(2);
    s = run([{ type: "layoutChosen", layout: "spotlight" }], s);
    expect(s.meeting).toMatchObject({ layout: "spotlight", pinned: 2 });
    s = run([{ type: "layoutChosen", layout: "tiled" }], s);
    expect(s.meeting).toMatchObject({ layout: "tiled", pinned: null });
    expect(stagePlan(s.meeting!).main).toBeNull();
  });

  it("opens the picker only in a meeting, chooses the first source, and keeps a choice still listed", () => {
    expect(run([{ type: "screenPickerOpened" }]).screenPicker).toBeNull();
    let s = run([{ type: "screenPickerOpened" }], inMeeting());
    expect(s.screenPicker).toEqual({ sources: null, error: null, selected: null });
    s = run([{ type: "screenSourcesListed", sources }], s);
    expect(s.screenPicker!.selected).toBe("screen:1");
    s = run([{ type: "screenSourceSelected", key: "window:42" }, { type: "screenSourceSelected", key: "window:7" }], s);
    expect(s.screenPicker!.selected).toBe("window:42");
    s = run([{ type: "screenSourcesListed", sources: sources.slice().reverse() }], s);
    expect(s.screenPicker!.selected).toBe("window:42");
    s = run([{ type: "screenPickerClosed" }, { type: "screenSourcesListed", sources }], s);
    expect(s.screenPicker).toBeNull();
  });

  it("says in the picker why nothing can be listed, and closes it with the meeting", () => {
    let s = run([{ type: "screenPickerOpened" }, { type: "screenSourcesFailed", error: { code: "deviceBusy", message: "screen capture is not supported on this session", device: "screen" } }], inMeeting());
    expect(s.screenPicker).toMatchObject({ sources: [], selected: null, error: { title: "Your screen can't be shared" } });
    expect(s.screenPicker!.error!.detail).toBe("Screen capture is not supported on this session. Sharing needs a desktop session that allows screen capture.");
    s = run([{ type: "left" }], s);
    expect(s.screenPicker).toBeNull();
  });

  it("names sources by kind and id", () => {
    expect(screenChoiceKey({ kind: "screen", id: 3 })).toBe("screen:3");
    expect(screenChoiceKey({ kind: "screen", id: null })).toBe("screen:main");
    expect(screenChoiceKey({ kind: "window", id: 77 })).toBe("window:77");
    expect(screenChoiceKey({ kind: "synthetic" })).toBe("synthetic");
  });
});
