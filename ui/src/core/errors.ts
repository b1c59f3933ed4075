/**
 * Turns failures into words a person can act on.
 *
 * Commands reject with an {@link AppError}; Tauri itself may reject with a bare string (an
 * unknown command, a panic in the shell). {@link toAppError} normalizes both, and
 * {@link describeError} says what went wrong and what to do about it. Nothing is swallowed:
 * an unknown code still shows the shell's own message.
 */
import type { AppError, DeviceKind, ErrorCode, JoinRefusal, KnockWithdrawal, LeaveReason } from "./types";

/** An error as a screen shows it: a headline and a sentence on what to do. */
export interface UserMessage {
  title: string;
  detail: string;
}

/** Each code once; a code the shell adds or drops fails the page's type check here. */
const CODES: Record<ErrorCode, true> = {
  relayUnreachable: true,
  unknownMeeting: true,
  invalidCode: true,
  invalidName: true,
  invalidRelayAddr: true,
  meetingFull: true,
  deviceBusy: true,
  deviceNotFound: true,
  deviceNotAllowed: true,
  notHost: true,
  unknownParticipant: true,
  invalidState: true,
  chatTooLong: true,
  fileNotFound: true,
  fileTooLarge: true,
  unknownFile: true,
  hashMismatch: true,
  downloadDirUnwritable: true,
  serverBusy: true,
  rateLimited: true,
  unsupportedVersion: true,
  unauthorized: true,
  resumeRefused: true,
  directoryUnavailable: true,
  relayCertificateChanged: true,
  notTheInvitedRelay: true,
  invalidInvitation: true,
  uploadStopped: true,
  updateFailed: true,
  internal: true,
};
const KNOWN_CODES: ReadonlySet<string> = new Set(Object.keys(CODES));

/** Each device kind once, checked against the shell's type like the codes. */
const DEVICE_KINDS: Record<DeviceKind, true> = { camera: true, microphone: true, speaker: true, screen: true };
const KNOWN_DEVICES: ReadonlySet<string> = new Set(Object.keys(DEVICE_KINDS));

/** Normalizes whatever a rejected `invoke` produced into an {@link AppError}. */
export function toAppError(raw: unknown): AppError {
  if (raw !== null && typeof raw === "object") {
    const obj = raw as Record<string, unknown>;
    const message = typeof obj.message === "string" ? obj.message : JSON.stringify(raw);
    const code = typeof obj.code === "string" && KNOWN_CODES.has(obj.code) ? (obj.code as ErrorCode) : "internal";
    const error: AppError = { code, message };
    if (typeof obj.device === "string" && KNOWN_DEVICES.has(obj.device)) error.device = obj.device as DeviceKind;
    if (typeof obj.retryAfterMs === "number" && Number.isFinite(obj.retryAfterMs) && obj.retryAfterMs >= 0) {
      error.retryAfterMs = obj.retryAfterMs;
    }
    const cert = obj.certificate as Record<string, unknown> | null | undefined;
    if (cert && typeof cert.relayAddr === "string" && typeof cert.expected === "string" && typeof cert.presented === "string") {
      error.certificate = { relayAddr: cert.relayAddr, expected: cert.expected, presented: cert.presented };
    }
    return error;
  }
  if (typeof raw === "string") return { code: "internal", message: raw };
  return { code: "internal", message: String(raw) };
}

/** Optional facts that make the words more precise. */
export interface ErrorContext {
  relayAddr?: string;
  code?: string;
}

/** The words for an error. */
export function describeError(err: AppError, ctx: ErrorContext = {}): UserMessage {
  if (err.device === "screen") {
    const screen = describeScreenError(err);
    if (screen) return screen;
  }
  const device = err.device ?? "camera";
  switch (err.code) {
    case "relayUnreachable":
      return {
        title: ctx.relayAddr ? `Can't reach the relay at ${ctx.relayAddr}` : "Can't reach the relay",
        detail: "Check the address and that the relay is running on that computer, then try again.",
      };
    case "unknownMeeting":
      return {
        title: ctx.code ? `No meeting with code ${ctx.code}` : "No meeting with that code",
        detail: "Check the code with the person who invited you; the meeting may also have ended.",
      };
    case "invalidCode":
      return { title: "That code doesn't look right", detail: "A meeting code is 6 digits, like 123-456." };
    case "invalidName":
      return { title: "Enter your name", detail: "Others see it in the meeting; use 1 to 64 characters." };
    case "invalidRelayAddr":
      return {
        title: "That relay address doesn't look right",
        detail: "Enter it as host:port, for example 192.168.1.20:7878.",
      };
    case "relayCertificateChanged": {
      const c = err.certificate;
      const relay = c?.relayAddr ?? ctx.relayAddr;
      return {
        title: relay ? `The relay at ${relay} has a new identity` : "The relay has a new identity",
        detail:
          "Its certificate is not the one this app trusted before" +
          (c ? ` (${shortFingerprint(c.expected)}, now ${shortFingerprint(c.presented)})` : "") +
          ". If whoever runs it reinstalled it, check the new fingerprint with them and trust it; otherwise someone may be intercepting the connection.",
      };
    }
    case "notTheInvitedRelay":
      return {
        title: "This isn't the relay you were invited to",
        detail:
          "The relay's certificate" +
          (err.certificate ? ` (${shortFingerprint(err.certificate.presented)}) is not the one the invitation names (${shortFingerprint(err.certificate.expected)})` : " is not the one the invitation names") +
          ". Someone may be intercepting the connection: ask the host for a new invitation.",
      };
    case "invalidInvitation":
      return {
        title: "That isn't a Parlor invitation",
        detail: "Paste the whole invitation (it contains a parlor://join link), or type the code and relay address.",
      };
    case "meetingFull":
      return { title: "This meeting is full", detail: "Ask the host to make room, then try again." };
    case "deviceBusy":
      return {
        title: `Your ${device} is in use`,
        detail: `Another app is using your ${device}. Close it, then turn the ${device} on again.`,
      };
    case "deviceNotAllowed":
      return {
        title: `Parlor may not use your ${device}`,
        detail: `Answer the system's question, or allow Parlor in the privacy settings (${capitalize(device)}), then turn the ${device} on again.`,
      };
    case "deviceNotFound":
      return {
        title: `No ${device} found`,
        detail: `Connect a ${device} or pick another one in the device settings.`,
      };
    case "notHost":
      return { title: "Only the host can do that", detail: "Ask the meeting host." };
    case "unknownParticipant":
      return { title: "That person is no longer here", detail: "They may have left or stopped asking to join." };
    case "invalidState":
      return { title: "That isn't possible right now", detail: err.message };
    case "chatTooLong":
      return { title: "Message too long", detail: "Messages can be up to 4000 characters. Send it in parts." };
    case "fileNotFound":
      return { title: "Can't read that file", detail: "It may have been moved or you may lack permission to read it." };
    case "fileTooLarge":
      return { title: "File too large", detail: "The relay does not accept files that big." };
    case "unknownFile":
      return { title: "File no longer available", detail: "It was removed from the relay, or the meeting ended." };
    case "hashMismatch":
      return {
        title: "File arrived damaged",
        detail: "Its SHA-256 did not match, so it was discarded. Try again.",
      };
    case "downloadDirUnwritable":
      return { title: "Can't save to the download folder", detail: "Choose another folder for downloads." };
    case "serverBusy":
      // The relay says which room ran out ("this meeting's files would pass …").
      return {
        title: "The relay is out of room",
        detail: err.message ? `${capitalize(err.message)}.` : "It is out of room right now. Try again in a moment.",
      };
    case "rateLimited":
      return {
        title: "Too many attempts",
        detail:
          err.retryAfterMs != null
            ? `The relay is slowing this down. Try again in ${describeWait(err.retryAfterMs)}.`
            : "The relay is slowing this down. Try again in a moment.",
      };
    case "unsupportedVersion":
      return {
        title: "The relay runs another version of Parlor",
        detail: "Update Parlor on both computers to the same version.",
      };
    case "unauthorized":
      return { title: "Not allowed", detail: "Your session is no longer valid. Rejoin the meeting." };
    case "resumeRefused":
      return { title: "Your place in the meeting is gone", detail: "You were away too long to get it back. Ask to join the meeting again." };
    case "directoryUnavailable":
      return {
        title: "The meeting can't be found right now",
        detail: "The relays can't reach the list of their meetings. Try again in a few seconds.",
      };
    case "uploadStopped":
      return { title: "Upload stopped", detail: err.message ? `${capitalize(err.message)}.` : "It will not finish." };
    case "updateFailed":
      return { title: "The update didn't install", detail: `${capitalize(err.message || "it failed")}. This version keeps running; try again later.` };
    case "internal":
      return { title: "Something went wrong", detail: err.message || "Unknown error." };
  }
}

/**
 * The words for a failure to list what can be shared: a screen is not "in use" like a camera,
 * and the shell's message says what the system refused (e.g. "screen capture is not supported
 * on this session"). Null for codes that mean the same for every device.
 */
function describeScreenError(err: AppError): UserMessage | null {
  switch (err.code) {
    case "deviceBusy":
      return {
        title: "Your screen can't be shared",
        detail: `${err.message ? capitalize(err.message) : "The system did not let Parlor capture it"}. Sharing needs a desktop session that allows screen capture.`,
      };
    case "deviceNotAllowed":
      return {
        title: "Parlor may not record your screen",
        detail: "Allow Parlor in the privacy settings (Screen Recording), then present again.",
      };
    case "deviceNotFound":
      return { title: "Nothing to share", detail: "Parlor found no screen on this computer to share." };
    default:
      return null;
  }
}

/** Words for a join request that did not lead into the meeting. */
export function describeRefusal(reason: JoinRefusal): UserMessage {
  switch (reason) {
    case "denied":
      return { title: "You can't join this meeting", detail: "Someone in the meeting denied your request to join." };
    case "expired":
      return { title: "No one let you in", detail: "No one responded to your request to join. Try again." };
    case "meetingEnded":
      return { title: "The meeting has ended", detail: "It ended while you were waiting to be let in." };
    case "meetingFull":
      return { title: "This meeting is full", detail: "Ask the host to make room, then try again." };
    case "locked":
      return { title: "This meeting is locked", detail: "The host locked it, so no one can ask to join. Ask the host to unlock it, then try again." };
  }
}

/** The toast when someone leaves, in words. */
export function describeLeave(name: string, reason: LeaveReason): string {
  switch (reason) {
    case "left":
      return `${name} left the meeting`;
    case "disconnected":
      return `${name} lost connection`;
    case "timedOut":
      return `${name} stopped responding and was dropped`;
    case "removed":
      return `${name} was removed from the meeting`;
  }
}

/** The toast when a knock disappears without the host answering it. */
export function describeWithdrawal(name: string, reason: KnockWithdrawal): string {
  switch (reason) {
    case "cancelled":
      return `${name} stopped asking to join`;
    case "expired":
      return `${name}'s request to join expired`;
    case "disconnected":
      return `${name} lost connection while waiting`;
    case "answered":
      return `${name}'s request was answered by another host or co-host`;
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A wait as a person says it: "5 s", "2 min", "1 h 5 min" (rounded up, never "0 s"). */
export function describeWait(ms: number): string {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest === 0 ? `${hours} h` : `${hours} h ${rest} min`;
}

/** The first 8 hex digits of a fingerprint, grouped as people compare them aloud. */
export function shortFingerprint(fingerprint: string): string {
  const hex = fingerprint.replace(/[^0-9a-fA-F]/g, "").toLowerCase();
  return `${hex.slice(0, 4)} ${hex.slice(4, 8)}…`;
}

/** A whole fingerprint in groups of four hex digits, to read out or compare. */
export function groupedFingerprint(fingerprint: string): string {
  const hex = fingerprint.replace(/[^0-9a-fA-F]/g, "").toLowerCase();
  return hex.match(/.{1,4}/g)?.join(" ") ?? "";
}
