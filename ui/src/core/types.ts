/**
 * The IPC contract between the page and the Tauri shell, as TypeScript types.
 *
 * The shapes themselves are generated from the shell's Rust types into `ipc-types.ts` (see
 * src-tauri/src/typescript.rs; `npm run gen:types` after changing them, and CI fails when the two
 * differ). This file re-exports them and adds what only the page needs. `docs/app-ipc.md` is the
 * prose version. Every field name is camelCase because the Rust side serializes with
 * `#[serde(rename_all = "camelCase")]`. Ids that are u64 on the wire (request, file, chat message
 * ids) are counters assigned by the relay and stay far below 2^53, so a JS number holds them
 * exactly.
 */
import type { ParticipantId, SessionEvent as ShellEvent } from "./ipc-types";

export type {
  MicLevel,
  ActiveSpeaker,
  AppError,
  CertificateMismatch,
  ChatMessage,
  ChatSent,
  Device,
  DeviceChoice,
  DeviceKind,
  DeviceList,
  Encryption,
  ErrorCode,
  FileDone,
  FileFailed,
  FileInfo,
  FileOpened,
  FileProgress,
  Invitation,
  InvitationFields,
  JoinRefusal,
  Joined,
  KnockWithdrawal,
  LeaveReason,
  MediaDevice,
  MeetingCreated,
  Participant,
  ParticipantId,
  ParticipantStats,
  Reaction,
  Rejoin,
  Role,
  ScreenChoice,
  ScreenInStats,
  ScreenOutStats,
  ScreenSource,
  Settings,
  StatsSnapshot,
  TransferDirection,
  TransferStarted,
  UpdateInfo,
} from "./ipc-types";

/**
 * The id the shell uses in video frames of the local camera (the home preview and the self view).
 * 0 is the relay's own sender id in media packets, so no participant ever has it.
 */
export const LOCAL_VIDEO_ID: ParticipantId = 0;

/**
 * Set in the video-frame id of a shared screen: participant `p`'s screen arrives as
 * `p | 0x80000000` (the shell's `screen_tile_id`). Participant ids never have this bit (the relay
 * counts them from 1), so camera and screen ids never collide. Written as a sum: JavaScript's
 * `|` works on signed 32-bit integers and would make the id negative.
 */
export const SCREEN_TILE_FLAG = 0x80000000;

/** The video-frame (and tile) id of participant `participantId`'s shared screen. */
export function screenTileId(participantId: ParticipantId): number {
  return SCREEN_TILE_FLAG + participantId;
}

/** Whether a video-frame or tile id is a shared screen's rather than a camera's. */
export function isScreenTileId(id: number): boolean {
  return id >= SCREEN_TILE_FLAG;
}

/** The participant a tile id belongs to: the presenter of a screen, or the camera's owner. */
export function tileOwner(id: number): ParticipantId {
  return isScreenTileId(id) ? id - SCREEN_TILE_FLAG : id;
}

/** The name of a session event. */
export type SessionEventName = ShellEvent["name"];

/** Every event the shell emits, keyed by event name, with its payload type (null for `removed`). */
export type SessionEvents = {
  [E in ShellEvent as E["name"]]: E extends { payload: infer P } ? P : null;
};

/** A session event with its name, as the reducer sees it. */
export type SessionEvent = {
  [K in SessionEventName]: { name: K; payload: SessionEvents[K] };
}[SessionEventName];

/** Each event name once; a name the shell adds or drops fails the page's type check here. */
const EVENT_NAMES: Record<SessionEventName, true> = {
  waiting: true,
  knock: true,
  "knock-withdrawn": true,
  "join-refused": true,
  joined: true,
  encryption: true,
  "participant-joined": true,
  "participant-left": true,
  "participant-updated": true,
  "host-changed": true,
  removed: true,
  "meeting-locked": true,
  "muted-by-host": true,
  "media-requested": true,
  "meeting-ended": true,
  reaction: true,
  "screen-share-ended": true,
  chat: true,
  "file-offer": true,
  "file-progress": true,
  "file-done": true,
  "file-failed": true,
  "active-speaker": true,
  stats: true,
  error: true,
  reconnecting: true,
  resumed: true,
  disconnected: true,
  "invitation-opened": true,
  "mic-level": true,
};

/** Every event name, for subscribing to all of them at once. */
export const SESSION_EVENT_NAMES = Object.keys(EVENT_NAMES) as readonly SessionEventName[];
