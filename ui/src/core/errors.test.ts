import { describe, expect, it } from "vitest";
import { describeError, describeLeave, describeRefusal, describeWait, describeWithdrawal, groupedFingerprint, shortFingerprint, toAppError } from "./errors";
import type { ErrorCode } from "./types";

describe("toAppError", () => {
  it("keeps a well-formed AppError", () => {
    expect(toAppError({ code: "deviceBusy", message: "EBUSY", device: "microphone" })).toEqual({
      code: "deviceBusy",
      message: "EBUSY",
      device: "microphone",
    });
  });
  it("maps unknown codes, strings and junk to internal with the text kept", () => {
    expect(toAppError({ code: "weird", message: "boom" })).toEqual({ code: "internal", message: "boom" });
    expect(toAppError("command create_meeting not found")).toEqual({ code: "internal", message: "command create_meeting not found" });
    expect(toAppError(42)).toEqual({ code: "internal", message: "42" });
    expect(toAppError({ nope: 1 }).message).toBe('{"nope":1}');
  });
  it("keeps which certificates differ, and drops a malformed account of them", () => {
    const certificate = { relayAddr: "10.0.0.2:5000", expected: "a".repeat(64), presented: "b".repeat(64) };
    expect(toAppError({ code: "relayCertificateChanged", message: "m", certificate }).certificate).toEqual(certificate);
    expect(toAppError({ code: "relayCertificateChanged", message: "m", certificate: { relayAddr: 3 } }).certificate).toBeUndefined();
  });
});

describe("fingerprints", () => {
  it("are shown short to compare at a glance and grouped to read out", () => {
    const fp = "AB:CD:" + "0123456789abcdef".repeat(3) + "0123456789ab" + "cdef";
    expect(shortFingerprint(fp)).toBe("abcd 0123…");
    expect(groupedFingerprint("0123456789abcdef")).toBe("0123 4567 89ab cdef");
  });
});

describe("describeError", () => {
  it("names the relay address when it cannot be reached", () => {
    const w = describeError({ code: "relayUnreachable", message: "ECONNREFUSED" }, { relayAddr: "10.0.0.2:7878" });
    expect(w.title).toBe("Can't reach the relay at 10.0.0.2:7878");
    expect(w.detail).toMatch(/Check the address/);
  });
  it("names the wrong code", () => {
    expect(describeError({ code: "unknownMeeting", message: "" }, { code: "123-456" }).title).toBe("No meeting with code 123-456");
  });
  it("keeps a screen as the device, and says what stops sharing in a screen's own words", () => {
    const err = toAppError({ code: "deviceBusy", message: "device error: screen capture is not supported on this session", device: "screen" });
    expect(err.device).toBe("screen");
    const busy = describeError(err);
    expect(busy.title).toBe("Your screen can't be shared");
    expect(busy.detail).toContain("screen capture is not supported on this session");
    expect(describeError({ code: "deviceNotAllowed", message: "", device: "screen" }).detail).toMatch(/Screen Recording/);
    expect(describeError({ code: "deviceNotFound", message: "", device: "screen" }).title).toBe("Nothing to share");
    // Codes that mean the same for every device keep their words.
    expect(describeError({ code: "invalidState", message: "not in a meeting", device: "screen" }).detail).toBe("not in a meeting");
    expect(toAppError({ code: "deviceBusy", message: "m", device: "printer" }).device).toBeUndefined();
  });
  it("names the busy device", () => {
    expect(describeError({ code: "deviceBusy", message: "", device: "microphone" }).title).toBe("Your microphone is in use");
    expect(describeError({ code: "deviceBusy", message: "" }).title).toBe("Your camera is in use");
  });
  it("has words for every code and shows the shell's text for internal errors", () => {
    const codes: ErrorCode[] = [
      "relayUnreachable", "unknownMeeting", "invalidCode", "invalidName", "invalidRelayAddr", "meetingFull",
      "deviceBusy", "deviceNotFound", "notHost", "unknownParticipant", "invalidState", "chatTooLong", "fileNotFound", "fileTooLarge",
      "unknownFile", "hashMismatch", "downloadDirUnwritable", "serverBusy", "rateLimited", "unsupportedVersion", "unauthorized", "resumeRefused", "directoryUnavailable", "internal",
    ];
    for (const code of codes) {
      const w = describeError({ code, message: "detail from the shell" });
      expect(w.title.length).toBeGreaterThan(5);
      expect(w.detail.length).toBeGreaterThan(5);
    }
    expect(describeError({ code: "internal", message: "disk full" }).detail).toBe("disk full");
  });
});

describe("server busy", () => {
  it("says which room ran out, in the relay's words", () => {
    const w = describeError({ code: "serverBusy", message: "your files would pass the 1 GiB one participant may share in a meeting" });
    expect(w.title).toBe("The relay is out of room");
    expect(w.detail).toBe("Your files would pass the 1 GiB one participant may share in a meeting.");
    expect(describeError({ code: "serverBusy", message: "" }).detail).toContain("Try again in a moment");
  });
});

describe("rate limits", () => {
  it("says how long to wait, in words", () => {
    const err = toAppError({ code: "rateLimited", message: "too many joins", retryAfterMs: 60_000 });
    expect(err.retryAfterMs).toBe(60_000);
    const w = describeError(err);
    expect(w.title).toBe("Too many attempts");
    expect(w.detail).toBe("The relay is slowing this down. Try again in 1 min.");
    expect(describeError({ code: "rateLimited", message: "" }).detail).toContain("in a moment");
  });
  it("ignores a retry time that is not a number", () => {
    expect(toAppError({ code: "rateLimited", message: "x", retryAfterMs: "soon" }).retryAfterMs).toBeUndefined();
    expect(toAppError({ code: "rateLimited", message: "x", retryAfterMs: -5 }).retryAfterMs).toBeUndefined();
  });
  it("rounds waits up to what a person reads", () => {
    expect(describeWait(1)).toBe("1 s");
    expect(describeWait(500)).toBe("1 s");
    expect(describeWait(59_000)).toBe("59 s");
    expect(describeWait(59_001)).toBe("1 min");
    expect(describeWait(60_000)).toBe("1 min");
    expect(describeWait(61_000)).toBe("2 min");
    expect(describeWait(3_600_000)).toBe("1 h");
    expect(describeWait(3_900_000)).toBe("1 h 5 min");
  });
});

describe("refusals, departures and withdrawals", () => {
  it("says why a join did not happen", () => {
    expect(describeRefusal("denied").detail).toMatch(/denied your request/);
    expect(describeRefusal("expired").detail).toMatch(/No one responded/);
    expect(describeRefusal("meetingEnded").title).toMatch(/ended/);
    expect(describeRefusal("meetingFull").title).toMatch(/full/);
  });
  it("says why someone left", () => {
    expect(describeLeave("Ada", "left")).toBe("Ada left the meeting");
    expect(describeLeave("Ada", "removed")).toBe("Ada was removed from the meeting");
    expect(describeLeave("Ada", "timedOut")).toMatch(/stopped responding/);
    expect(describeWithdrawal("Bob", "cancelled")).toBe("Bob stopped asking to join");
    expect(describeWithdrawal("Bob", "expired")).toMatch(/expired/);
  });
});
