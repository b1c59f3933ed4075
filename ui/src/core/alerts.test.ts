import { describe, expect, it } from "vitest";
import { alertsFor } from "./alerts";
import { initialState, reduce, type AppState } from "./state";
import type { Participant, SessionEvent } from "./types";

const T0 = 1_700_000_000_000;

function person(id: number, name: string, over: Partial<Participant> = {}): Participant {
  return { id, displayName: name, isHost: false, micOn: true, cameraOn: true, speaking: false, joinedAtMs: T0 + id, reconnecting: false, isCohost: false, handRaised: null, presenting: false, ...over };
}

function apply(s: AppState, event: SessionEvent): AppState {
  return reduce(s, { type: "event", event }, T0);
}

/** This app (1) in a meeting with Grace (2); `host` says who hosts. */
function meeting(host: number): AppState {
  const link = "parlor://join?relay=r%3A1&code=111222";
  return apply(reduce(initialState(), { type: "createStarted", name: "Ada", relayAddr: "" }, T0), {
    name: "joined",
    payload: {
      code: "111222",
      participantId: 1,
      hostId: host,
      relayAddr: "r:1",
      invitation: { link, text: link, fingerprint: null },
      roster: [person(1, "Ada"), person(2, "Grace")],
      chatHistory: [{ id: 1, senderId: 2, senderName: "Grace", text: "old news", timestampMs: T0, clientMsgId: null, file: null }],
      locked: false,
    },
  });
}

describe("alerts", () => {
  it("says nothing about what a meeting brings when it starts", () => {
    const before = reduce(initialState(), { type: "createStarted", name: "Ada", relayAddr: "" }, T0);
    expect(alertsFor(before, meeting(1))).toEqual({ notices: [], sounds: [] });
  });

  it("notifies a knock, a raised hand (moderators only) and chat from others; chimes joins, leaves and knocks", () => {
    const s = meeting(1);
    const knock = apply(s, { name: "knock", payload: { requestId: 5, name: "Ken", waitingSinceMs: T0 } });
    expect(alertsFor(s, knock)).toEqual({ notices: [{ title: "Ken wants to join", body: "Open Parlor to admit or deny.", chat: false }], sounds: ["knock"] });
    const hand = apply(knock, { name: "participant-updated", payload: { participant: person(2, "Grace", { handRaised: 1 }) } });
    expect(alertsFor(knock, hand).notices.map((n) => n.title)).toEqual(["Grace raised a hand"]);
    const chat = apply(hand, { name: "chat", payload: { message: { id: 2, senderId: 2, senderName: "Grace", text: "x".repeat(300), timestampMs: T0, clientMsgId: null, file: null } } });
    const [notice] = alertsFor(hand, chat).notices;
    expect(notice!.title).toBe("Grace");
    expect(notice!.chat).toBe(true);
    expect([...notice!.body]).toHaveLength(140);
    const own = apply(chat, { name: "chat", payload: { message: { id: 3, senderId: 1, senderName: "Ada", text: "mine", timestampMs: T0, clientMsgId: 1, file: null } } });
    expect(alertsFor(chat, own).notices).toEqual([]);
    const joined = apply(own, { name: "participant-joined", payload: { participant: person(3, "Linus") } });
    expect(alertsFor(own, joined).sounds).toEqual(["join"]);
    const left = apply(joined, { name: "participant-left", payload: { participantId: 3, reason: "left" } });
    expect(alertsFor(joined, left).sounds).toEqual(["leave"]);
  });

  it("does not announce again the knocks a moderator is shown after a reconnect", () => {
    let s = apply(meeting(1), { name: "knock", payload: { requestId: 5, name: "Ken", waitingSinceMs: T0 } });
    s = apply(s, { name: "reconnecting", payload: { reason: "gone", unheardMs: 0 } });
    const resumed = apply(s, { name: "resumed", payload: { afterMs: 900, attempts: 1 } });
    expect(resumed.knocks).toEqual([]);
    const again = apply(resumed, { name: "knock", payload: { requestId: 5, name: "Ken", waitingSinceMs: T0 } });
    expect(again.knocks.map((k) => k.requestId)).toEqual([5]);
    expect(alertsFor(resumed, again)).toEqual({ notices: [], sounds: [] });
  });

  it("tells a participant who is not a moderator nothing about hands", () => {
    const s = meeting(2);
    const hand = apply(s, { name: "participant-updated", payload: { participant: person(2, "Grace", { isHost: true, handRaised: 1 }) } });
    expect(alertsFor(s, hand)).toEqual({ notices: [], sounds: [] });
  });
});
