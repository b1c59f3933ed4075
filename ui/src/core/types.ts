/**
 * The IPC contract between the page and the Tauri shell, as TypeScript types.
 *
 * `docs/app-ipc.md` is the prose version of this file; the two must agree. Every field name is
 * camelCase because the Rust side serializes with `#[serde(rename_all = "camelCase")]`. Ids that
 * are u64 on the wire (request, file, chat message ids) are counters assigned by the relay and
 * stay far below 2^53, so a JS number holds them exactly.
 */

/** A participant's id inside one meeting; also its UDP sender id. Never 0 (0 is the relay). */
export type ParticipantId = number;

/**
 * The id the shell uses in video frames of the local camera (the home preview and the self view).
 * 0 is the relay's own sender id in media packets, so no participant ever has it.
 */
export const LOCAL_VIDEO_ID: ParticipantId = 0;

/** Someone in the meeting as the roster shows them. */
export interface Participant {
  id: ParticipantId;
  displayName: string;
  isHost: boolean;
  micOn: boolean;
  cameraOn: boolean;
  speaking: boolean;
  /** Relay time (ms since the Unix epoch) at which the participant was admitted. */
  joinedAtMs: number;
}

/** A file spooled on the relay whose SHA-256 the relay verified. */
export interface FileInfo {
  fileId: number;
  name: string;
  size: number;
  /** Lower-case hex SHA-256 of the whole file. */
  sha256: string;
  senderId: ParticipantId;
  senderName: string;
}

/** One chat message as the relay stamped it. */
export interface ChatMessage {
  /** Strictly increasing within a meeting: the order everyone sees. */
  id: number;
  senderId: ParticipantId;
  senderName: string;
  text: string;
  /** Relay time (ms since the Unix epoch). */
  timestampMs: number;
  /** Echo of the id `send_chat` returned, on the sender's own messages only. */
  clientMsgId?: number | null;
  /** Set when the message announces a file. */
  file?: FileInfo | null;
}

/** A capture or playback device. */
export interface Device {
  /** Opaque id to pass back in `choose_devices`. */
  id: string;
  /** Human-readable name. */
  label: string;
  /** True for the device currently in use. */
  selected: boolean;
}

/** Result of `list_devices`. */
export interface DeviceList {
  cameras: Device[];
  microphones: Device[];
  speakers: Device[];
}

/** Arguments of `choose_devices`: omitted kinds stay as they are. */
export interface DeviceChoice {
  camera?: string;
  microphone?: string;
  speaker?: string;
}

/** What the app remembers between runs. */
export interface Settings {
  displayName: string;
  /** The relay address last used to join, "host:port"; empty when none. */
  lastRelayAddr: string;
}

/** Result of `create_meeting`. */
export interface MeetingCreated {
  /** Six ASCII digits. */
  code: string;
  /** The address others should enter to join: the LAN IP and port of the relay. */
  relayAddr: string;
  participantId: ParticipantId;
}

/** Result of `send_chat`: the id the relay will echo in the matching `chat` event. */
export interface ChatSent {
  clientMsgId: number;
}

/** Result of `send_file` and `accept_file`: the id of the transfer in `file-*` events. */
export interface TransferStarted {
  transferId: string;
}

/**
 * Machine-readable reason of a failure, carried by rejected commands and the `error` event.
 * The UI turns each into words (core/errors.ts).
 */
export type ErrorCode =
  | "relayUnreachable"
  | "unknownMeeting"
  | "invalidCode"
  | "invalidName"
  | "invalidRelayAddr"
  | "meetingFull"
  | "deviceBusy"
  | "deviceNotFound"
  | "notHost"
  | "unknownParticipant"
  | "invalidState"
  | "chatTooLong"
  | "fileNotFound"
  | "fileTooLarge"
  | "unknownFile"
  | "hashMismatch"
  | "downloadDirUnwritable"
  | "serverBusy"
  | "rateLimited"
  | "unsupportedVersion"
  | "unauthorized"
  | "internal";

/** What a rejected command or an `error` event carries. */
export interface AppError {
  code: ErrorCode;
  /** Detail in English for logs and as a fallback; the UI prefers its own words per code. */
  message: string;
  /** For device errors: which device. */
  device?: "camera" | "microphone" | "speaker" | null;
  /** For `rateLimited`: milliseconds until the relay accepts the request again. */
  retryAfterMs?: number | null;
}

/** Why a knock vanished from the host's queue without the host answering it. */
export type KnockWithdrawal = "cancelled" | "expired" | "disconnected" | "answered";

/** Why a join request did not lead into the meeting. */
export type JoinRefusal = "denied" | "expired" | "meetingEnded" | "meetingFull";

/** Why a participant left the roster. */
export type LeaveReason = "left" | "disconnected" | "timedOut" | "removed";

/** Which way a file transfer goes, from this app's point of view. */
export type TransferDirection =
  /** This app uploads a file it sends to the meeting. */
  | "upload"
  /** This app downloads a file someone offered. */
  | "download"
  /** Someone else uploads to the relay (progress reported by the relay). */
  | "remote";

/** Per-participant receive statistics, one row each in the stats panel. */
export interface ParticipantStats {
  participantId: ParticipantId;
  /** Frames per second received (decoded) from this participant. */
  fps: number;
  bitrateKbps: number;
  /** Loss fraction 0..=1 of this participant's media as received here. */
  loss: number;
  jitterMs: number;
  /** Resolution of the last decoded frame (0 when none). */
  width: number;
  height: number;
}

/** One stats sample; the shell emits one a second (`stats` event) and returns one (`get_stats`). */
export interface StatsSnapshot {
  /** Wall-clock time of the sample, ms since the Unix epoch. */
  timestampMs: number;
  /** Round-trip time to the relay. */
  rttMs: number;
  /** Loss fraction 0..=1 of all media received over the last interval. */
  loss: number;
  jitterMs: number;
  fpsSent: number;
  fpsReceived: number;
  bitrateInKbps: number;
  bitrateOutKbps: number;
  /** Congestion window of the active file transfer, bytes; null when no transfer runs. */
  cwndBytes: number | null;
  /** Index on the quality ladder: 0 = 144p, 1 = 240p, 2 = 360p, 3 = 480p. */
  qualityLevel: number;
  participants: ParticipantStats[];
}

/** Every event the shell emits, keyed by event name, with its payload type. */
export interface SessionEvents {
  /** The joiner is in the waiting room; the host has been asked. */
  waiting: { code: string; requestId: number };
  /** (Host) someone asks to join. Knocks queue; each is answered by `requestId`. */
  knock: { requestId: number; name: string };
  /** (Host) a knock went away unanswered. */
  "knock-withdrawn": { requestId: number; reason: KnockWithdrawal };
  /** (Joiner) the join did not happen. */
  "join-refused": { reason: JoinRefusal };
  /** This app is in the meeting (after create or admission). */
  joined: {
    code: string;
    participantId: ParticipantId;
    hostId: ParticipantId;
    /** Address to share so others can join (as in `MeetingCreated.relayAddr`). */
    relayAddr: string;
    /** Everyone, this participant included. */
    roster: Participant[];
    /** Most recent chat messages, oldest first. */
    chatHistory: ChatMessage[];
  };
  "participant-joined": { participant: Participant };
  "participant-left": { participantId: ParticipantId; reason: LeaveReason };
  "participant-updated": { participant: Participant };
  "host-changed": { hostId: ParticipantId };
  /** This app was removed by the host; the session is over. */
  removed: null;
  chat: { message: ChatMessage };
  "file-offer": { file: FileInfo };
  "file-progress": {
    transferId: string;
    direction: TransferDirection;
    /** Null for an upload the relay has not yet given an id. */
    fileId: number | null;
    name: string;
    size: number;
    bytes: number;
    /** Throughput over the last second, bytes per second. */
    rateBytesPerSec: number;
    /** Congestion window of this transfer in bytes (uploads); null when not known. */
    cwndBytes: number | null;
  };
  "file-done": {
    transferId: string;
    direction: TransferDirection;
    fileId: number;
    name: string;
    size: number;
    sha256: string;
    /** Downloads: the SHA-256 of the bytes on disk matched. Uploads: the relay verified it. */
    verified: boolean;
    /** Downloads: where the file was saved. Null otherwise. */
    path: string | null;
  };
  "file-failed": {
    transferId: string;
    direction: TransferDirection;
    fileId: number | null;
    name: string;
    error: AppError;
  };
  /** Who is talking now (loudest recent speaker), or null for silence. */
  "active-speaker": { participantId: ParticipantId | null };
  stats: StatsSnapshot;
  /** Something failed outside a command's own reply (e.g. the camera stopped). */
  error: AppError;
  /** The connection to the relay is gone; the session is over. */
  disconnected: { message: string };
}

/** The name of a session event. */
export type SessionEventName = keyof SessionEvents;

/** Every event name, for subscribing to all of them at once. */
export const SESSION_EVENT_NAMES: readonly SessionEventName[] = [
  "waiting",
  "knock",
  "knock-withdrawn",
  "join-refused",
  "joined",
  "participant-joined",
  "participant-left",
  "participant-updated",
  "host-changed",
  "removed",
  "chat",
  "file-offer",
  "file-progress",
  "file-done",
  "file-failed",
  "active-speaker",
  "stats",
  "error",
  "disconnected",
];

/** A session event with its name, as the reducer sees it. */
export type SessionEvent = {
  [K in SessionEventName]: { name: K; payload: SessionEvents[K] };
}[SessionEventName];
