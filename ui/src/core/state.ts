/**
 * The app's state and the one reducer that changes it.
 *
 * Everything the screens show lives in {@link AppState}; every change is an {@link Action}
 * (a session event from the shell, or something the user did) applied by {@link reduce}, which
 * is pure: it takes the current time as an argument, so toasts' expiry and the stats window are
 * tested with a simulated clock. Every list is bounded.
 */
import { describeError, describeLeave, describeRefusal, describeWithdrawal, type UserMessage } from "./errors";
import { displayCode } from "./format";
import { planStage, type LayoutMode, type StagePlan, type TileId } from "./stage";
import { pushSample } from "./stats";
import type {
  AppError,
  CertificateMismatch,
  ChatMessage,
  DeviceList,
  Encryption,
  FileInfo,
  Invitation,
  InvitationFields,
  MediaDevice,
  MeetingCreated,
  MicLevel,
  Participant,
  ParticipantId,
  Reaction,
  Rejoin,
  ScreenChoice,
  ScreenSource,
  SessionEvent,
  SessionEvents,
  Settings,
  StatsSnapshot,
  TransferDirection,
  UpdateInfo,
} from "./types";
import { screenTileId } from "./types";

/** The voice-processing switches of the device settings. */
export type VoiceSetting = "echoCancellation" | "noiseSuppression";

/** Every on/off setting: voice processing, desktop notifications, sounds. */
export type SettingSwitch = VoiceSetting | "notifications" | "sounds";

/** Which screen is up. */
export type Screen = "home" | "waiting" | "meeting" | "ended";

/** Which side panel of the meeting is open. */
export type Panel = "chat" | "participants" | "stats" | "settings";

/** A transient notice at the bottom-left. */
export interface Toast {
  id: number;
  kind: "info" | "error";
  text: string;
  /** Optional second line (errors say what to do). */
  detail: string | null;
  expiresAtMs: number;
}

/** Someone asking the host to be let in. */
export interface Knock {
  requestId: number;
  name: string;
  sinceMs: number;
}

/** A reaction floating over someone's tile until `untilMs`. */
export interface FloatingReaction {
  id: number;
  participantId: ParticipantId;
  reaction: Reaction;
  untilMs: number;
}

/** A moderator's request to turn a device on, waiting for the person's answer. */
export interface MediaRequest {
  by: ParticipantId;
  device: MediaDevice;
}

/** A chat message sent but not yet echoed by the relay. */
export interface PendingChat {
  clientMsgId: number;
  text: string;
  sentAtMs: number;
  error: UserMessage | null;
}

/** A file this app is uploading, or someone else is uploading (direction "remote"). */
export interface Transfer {
  transferId: string;
  direction: Exclude<TransferDirection, "download">;
  fileId: number | null;
  name: string;
  size: number;
  bytes: number;
  rateBytesPerSec: number;
  cwndBytes: number | null;
  status: "sending" | "done" | "failed";
  error: UserMessage | null;
}

/** A file offered in the meeting, and what this app did with it. */
export interface SharedFile {
  info: FileInfo;
  /** "sent" for this app's own files; the others go offered → downloading → saved (or failed). */
  status: "sent" | "offered" | "downloading" | "saved" | "failed";
  transferId: string | null;
  bytes: number;
  rateBytesPerSec: number;
  /** Where the download was saved. */
  path: string | null;
  /** The SHA-256 was checked (by this app for downloads, by the relay for own uploads). */
  verified: boolean;
  error: UserMessage | null;
}

/** Everything about the meeting this app is in. */
export interface MeetingState {
  code: string;
  /** The address to share with people who should join. */
  relayAddr: string;
  /** What "Copy invite" copies: the link and the text with code, address and certificate. */
  invitation: Invitation;
  selfId: ParticipantId;
  hostId: ParticipantId;
  /** Everyone, self included, in join order. */
  roster: Participant[];
  activeSpeaker: ParticipantId | null;
  chat: ChatMessage[];
  pendingChat: PendingChat[];
  files: Record<number, SharedFile>;
  transfers: Record<string, Transfer>;
  /** Chat messages from others since the chat panel was last open. */
  unread: number;
  /** The last {@link HISTORY_WINDOW_MS} of stats, oldest first. */
  stats: StatsSnapshot[];
  /** The end-to-end key's epoch and the safety code to compare aloud; null until known. */
  encryption: Encryption | null;
  /** Set while the connection to the relay is being repaired (`reconnecting` until `resumed`):
   * when it broke, on the page's clock, and why. The meeting, its chat and its stats stay. */
  reconnecting: { sinceMs: number; reason: string } | null;
  /** The host locked the meeting: new knocks are refused. */
  locked: boolean;
  /** Reactions floating over tiles, oldest first. */
  reactions: FloatingReaction[];
  nextReactionId: number;
  /** Who shares a screen, in the order they started (this app included): the newest
   * presentation is the main tile. */
  presenters: ParticipantId[];
  /** This app's presenting as last asked for (Present now, Stop presenting), shown at once and
   * kept until the roster says the same; null when the roster is the truth ({@link isPresenting}). */
  presentingWanted: boolean | null;
  /** The tile pinned as the main one (core/stage.ts); null when none. */
  pinned: TileId | null;
  /** The layout menu's choice. */
  layout: LayoutMode;
}

/** The "Choose what to share" dialog. */
export interface ScreenPicker {
  /** The screens and windows to choose from; null while the shell lists them. */
  sources: ScreenSource[] | null;
  /** Why they could not be listed. */
  error: UserMessage | null;
  /** The chosen one's {@link screenChoiceKey}. */
  selected: string | null;
}

/** The home screen's form. */
export interface HomeState {
  name: string;
  code: string;
  relayAddr: string;
  /** "New meeting" uses the relay at `relayAddr` instead of hosting one on this computer. */
  hostOnRelay: boolean;
  /** The relay certificate a pasted invitation names (its SHA-256, hex); null once the relay
   * address is typed by hand. Join trusts only this certificate. */
  fingerprint: string | null;
  busy: "create" | "join" | null;
  error: UserMessage | null;
  /** After `relayCertificateChanged`: the new certificate, which the person may decide to trust. */
  trustOffer: CertificateMismatch | null;
  /** A newer version of the app, offered on the home screen. */
  update: UpdateInfo | null;
  /** Its download and installation are under way (the app restarts when done). */
  updating: boolean;
}

/** The screen after a session ends (left, removed, refused, disconnected). */
export interface EndedState {
  title: string;
  detail: string;
  /** Offer "Rejoin" / "Ask to join again". */
  canRejoin: boolean;
  /** The meeting a lost connection was in: "Rejoin" knocks on it again. */
  rejoin: Rejoin | null;
}

/** What a rejoin repeats. */
export interface LastJoin {
  kind: "create" | "join";
  name: string;
  code: string;
  relayAddr: string;
  /** The invitation's certificate fingerprint the join used, if any. */
  fingerprint: string | null;
}

/** The whole state of the page. */
export interface AppState {
  screen: Screen;
  settings: Settings;
  home: HomeState;
  devices: DeviceList;
  micOn: boolean;
  cameraOn: boolean;
  waiting: { code: string; relayAddr: string; requestId: number | null } | null;
  meeting: MeetingState | null;
  knocks: Knock[];
  /** Request ids of every knock shown in this meeting (bounded), so one shown again after a
   * reconnect is not news. */
  knockIdsSeen: number[];
  panel: Panel | null;
  toasts: Toast[];
  ended: EndedState | null;
  downloadDir: string;
  lastJoin: LastJoin | null;
  /** The participant whose removal awaits confirmation in a dialog. */
  confirmRemove: ParticipantId | null;
  /** The host clicked Leave: "Just leave" or "End the call for everyone". */
  leaveAsked: boolean;
  /** A moderator asks this person to turn a device on. */
  mediaRequest: MediaRequest | null;
  nextToastId: number;
  /** The microphone's level on the home screen (from `mic-level`); null before the first. */
  micLevel: MicLevel | null;
  /** The dialog choosing what to present, while it is open. */
  screenPicker: ScreenPicker | null;
}

/** Bounds of every list in the state. */
export const LIMITS = { chat: 500, pendingChat: 50, toasts: 4, knocks: 100, files: 500, transfers: 100, reactions: 30 } as const;
/** How long toasts stay up. */
export const TOAST_MS = { info: 5000, error: 9000 } as const;
/** How long a reaction floats over its sender's tile. */
export const REACTION_MS = 4000;

/** The state at start-up, before settings and devices are loaded. */
export function initialState(): AppState {
  return {
    screen: "home",
    settings: { displayName: "", lastRelayAddr: "", echoCancellation: true, noiseSuppression: true, notifications: true, sounds: false },
    home: { name: "", code: "", relayAddr: "", hostOnRelay: false, fingerprint: null, busy: null, error: null, trustOffer: null, update: null, updating: false },
    devices: { cameras: [], microphones: [], speakers: [] },
    micOn: true,
    cameraOn: true,
    waiting: null,
    meeting: null,
    knocks: [],
    knockIdsSeen: [],
    panel: null,
    toasts: [],
    ended: null,
    downloadDir: "",
    lastJoin: null,
    confirmRemove: null,
    leaveAsked: false,
    mediaRequest: null,
    nextToastId: 1,
    micLevel: null,
    screenPicker: null,
  };
}

/** Everything that changes the state. */
export type Action =
  | { type: "settingsLoaded"; settings: Settings }
  | { type: "devicesListed"; devices: DeviceList }
  | { type: "deviceChosen"; kind: "camera" | "microphone" | "speaker"; id: string }
  | { type: "settingToggled"; setting: SettingSwitch; on: boolean }
  | { type: "downloadDirChanged"; dir: string }
  | { type: "homeInput"; field: "name" | "code" | "relayAddr"; value: string }
  | { type: "invitationRead"; fields: InvitationFields }
  | { type: "updateFound"; update: UpdateInfo }
  | { type: "updateInstalling"; on: boolean }
  | { type: "homeHostOnRelay"; on: boolean }
  | { type: "homeError"; error: UserMessage }
  | { type: "createStarted"; name: string; relayAddr: string }
  | { type: "createSucceeded"; created: MeetingCreated }
  | { type: "joinStarted"; name: string; code: string; relayAddr: string; fingerprint: string | null }
  | { type: "startFailed"; error: AppError }
  | { type: "joinCancelled" }
  | { type: "event"; event: SessionEvent }
  | { type: "micChanged"; on: boolean }
  | { type: "cameraChanged"; on: boolean }
  | { type: "panelToggled"; panel: Panel }
  | { type: "panelClosed" }
  | { type: "toast"; kind: Toast["kind"]; text: string; detail?: string | null }
  | { type: "toastDismissed"; id: number }
  | { type: "commandFailed"; error: AppError }
  | { type: "tick" }
  | { type: "knockAnswered"; requestId: number }
  | { type: "chatPending"; clientMsgId: number; text: string }
  | { type: "chatFailed"; clientMsgId: number; error: AppError }
  | { type: "uploadStarted"; transferId: string; name: string }
  | { type: "uploadFailed"; name: string; error: AppError }
  | { type: "transferDismissed"; transferId: string }
  | { type: "downloadStarted"; fileId: number; transferId: string }
  | { type: "downloadFailed"; fileId: number; error: AppError }
  | { type: "removeAsked"; participantId: ParticipantId | null }
  | { type: "leaveAsked"; on: boolean }
  | { type: "mediaRequestAnswered" }
  | { type: "screenPickerOpened" }
  | { type: "screenSourcesListed"; sources: ScreenSource[] }
  | { type: "screenSourcesFailed"; error: AppError }
  | { type: "screenSourceSelected"; key: string }
  | { type: "screenPickerClosed" }
  | { type: "presentingRequested"; on: boolean }
  | { type: "presentingFailed"; on: boolean; error: AppError }
  | { type: "tilePinned"; tile: TileId | null }
  | { type: "layoutChosen"; layout: LayoutMode }
  | { type: "left" }
  | { type: "returnedHome" };

/** Applies one action at wall-clock time `nowMs` and returns the next state. */
export function reduce(state: AppState, action: Action, nowMs: number): AppState {
  switch (action.type) {
    case "settingToggled":
      return { ...state, settings: { ...state.settings, [action.setting]: action.on } };
    case "settingsLoaded": {
      const s = action.settings;
      return {
        ...state,
        settings: s,
        home: {
          ...state.home,
          name: state.home.name || s.displayName,
          relayAddr: state.home.relayAddr || s.lastRelayAddr,
        },
      };
    }
    case "devicesListed":
      return { ...state, devices: action.devices };
    case "deviceChosen": {
      const key = action.kind === "camera" ? "cameras" : action.kind === "microphone" ? "microphones" : "speakers";
      const list = state.devices[key].map((d) => ({ ...d, selected: d.id === action.id }));
      return { ...state, devices: { ...state.devices, [key]: list } };
    }
    case "downloadDirChanged":
      return { ...state, downloadDir: action.dir };
    case "homeInput": {
      // An address typed by hand is not the invitation's: its fingerprint no longer applies.
      const fingerprint = action.field === "relayAddr" ? null : state.home.fingerprint;
      return { ...state, home: { ...state.home, [action.field]: action.value, fingerprint, error: null, trustOffer: null } };
    }
    case "invitationRead": {
      const { code, relayAddr, fingerprint } = action.fields;
      return { ...state, home: { ...state.home, code, relayAddr, fingerprint: fingerprint ?? null, error: null, trustOffer: null } };
    }
    case "updateFound":
      return { ...state, home: { ...state.home, update: action.update } };
    case "updateInstalling":
      return { ...state, home: { ...state.home, updating: action.on, error: action.on ? null : state.home.error } };
    case "homeHostOnRelay":
      return { ...state, home: { ...state.home, hostOnRelay: action.on, error: null } };
    case "homeError":
      return { ...state, home: { ...state.home, error: action.error, busy: null } };
    case "createStarted":
      return {
        ...state,
        home: { ...state.home, busy: "create", error: null, trustOffer: null },
        lastJoin: { kind: "create", name: action.name, code: "", relayAddr: action.relayAddr, fingerprint: null },
        settings: { ...state.settings, displayName: action.name, lastRelayAddr: action.relayAddr || state.settings.lastRelayAddr },
      };
    case "createSucceeded":
      return onCreated(state, action.created, nowMs);
    case "joinStarted":
      return {
        ...state,
        home: { ...state.home, busy: "join", error: null, trustOffer: null },
        lastJoin: { kind: "join", name: action.name, code: action.code, relayAddr: action.relayAddr, fingerprint: action.fingerprint },
        settings: { ...state.settings, displayName: action.name, lastRelayAddr: action.relayAddr },
      };
    case "startFailed": {
      const ctx = { relayAddr: state.lastJoin?.relayAddr, code: state.lastJoin?.code ? displayCode(state.lastJoin.code) : undefined };
      const error = describeError(action.error, ctx);
      // A failure after the home screen was left (e.g. the rejoin from the ended screen) goes
      // back home so the message sits next to the form that can fix it.
      const trustOffer = action.error.code === "relayCertificateChanged" ? (action.error.certificate ?? null) : null;
      return { ...state, screen: state.screen === "meeting" ? state.screen : "home", waiting: null, home: { ...state.home, busy: null, error, trustOffer } };
    }
    case "joinCancelled":
      return { ...state, screen: "home", waiting: null, home: { ...state.home, busy: null } };
    case "event":
      return onEvent(state, action.event, nowMs);
    case "micChanged":
      return { ...state, micOn: action.on };
    case "cameraChanged":
      return { ...state, cameraOn: action.on };
    case "panelToggled": {
      const panel = state.panel === action.panel ? null : action.panel;
      const meeting = state.meeting && panel === "chat" ? { ...state.meeting, unread: 0 } : state.meeting;
      return { ...state, panel, meeting };
    }
    case "panelClosed":
      return { ...state, panel: null };
    case "toast":
      return addToast(state, action.kind, action.text, action.detail ?? null, nowMs);
    case "toastDismissed":
      return { ...state, toasts: state.toasts.filter((t) => t.id !== action.id) };
    case "commandFailed": {
      const words = describeError(action.error, { relayAddr: state.meeting?.relayAddr });
      return addToast(state, "error", words.title, words.detail, nowMs);
    }
    case "tick": {
      const toasts = state.toasts.filter((t) => t.expiresAtMs > nowMs);
      const next = toasts.length === state.toasts.length ? state : { ...state, toasts };
      return withMeeting(next, (m) => {
        const reactions = m.reactions.filter((r) => r.untilMs > nowMs);
        return reactions.length === m.reactions.length ? m : { ...m, reactions };
      });
    }
    case "knockAnswered":
      return { ...state, knocks: state.knocks.filter((k) => k.requestId !== action.requestId) };
    case "chatPending":
      return withMeeting(state, (m) => ({
        ...m,
        pendingChat: bounded([...m.pendingChat, { clientMsgId: action.clientMsgId, text: action.text, sentAtMs: nowMs, error: null }], LIMITS.pendingChat),
      }));
    case "chatFailed": {
      const error = describeError(action.error);
      return withMeeting(state, (m) => ({
        ...m,
        pendingChat: m.pendingChat.map((p) => (p.clientMsgId === action.clientMsgId ? { ...p, error } : p)),
      }));
    }
    case "uploadStarted":
      return withMeeting(state, (m) => {
        if (m.transfers[action.transferId]) return m;
        const t: Transfer = {
          transferId: action.transferId,
          direction: "upload",
          fileId: null,
          name: action.name,
          size: 0,
          bytes: 0,
          rateBytesPerSec: 0,
          cwndBytes: null,
          status: "sending",
          error: null,
        };
        return { ...m, transfers: boundedRecord({ ...m.transfers, [t.transferId]: t }, LIMITS.transfers) };
      });
    case "uploadFailed": {
      const words = describeError(action.error);
      return addToast(state, "error", `Couldn't send ${action.name}: ${words.title}`, words.detail, nowMs);
    }
    case "transferDismissed":
      return withMeeting(state, (m) => ({ ...m, transfers: omit(m.transfers, action.transferId) }));
    case "downloadStarted":
      // The shell's events for this download can beat accept_file's reply (a small file on a
      // fast network is saved first): never move a saved file back, nor lose progress.
      return updateFile(state, action.fileId, (f) =>
        f.status === "saved"
          ? { ...f, transferId: action.transferId }
          : { ...f, status: "downloading", transferId: action.transferId, bytes: f.status === "downloading" ? f.bytes : 0, error: null },
      );
    case "downloadFailed": {
      const words = describeError(action.error);
      const next = updateFile(state, action.fileId, (f) => ({ ...f, status: "failed", error: words }));
      return addToast(next, "error", words.title, words.detail, nowMs);
    }
    case "removeAsked":
      return { ...state, confirmRemove: action.participantId };
    case "leaveAsked":
      return { ...state, leaveAsked: action.on };
    case "mediaRequestAnswered":
      return { ...state, mediaRequest: null };
    case "screenPickerOpened":
      return state.meeting ? { ...state, screenPicker: { sources: null, error: null, selected: null } } : state;
    case "screenSourcesListed": {
      const picker = state.screenPicker;
      if (!picker) return state;
      const keys = action.sources.map((src) => screenChoiceKey(src.choice));
      const selected = picker.selected !== null && keys.includes(picker.selected) ? picker.selected : (keys[0] ?? null);
      return { ...state, screenPicker: { sources: action.sources, error: null, selected } };
    }
    case "screenSourcesFailed":
      return state.screenPicker ? { ...state, screenPicker: { sources: [], error: describeError(action.error), selected: null } } : state;
    case "screenSourceSelected": {
      const picker = state.screenPicker;
      if (!picker?.sources?.some((src) => screenChoiceKey(src.choice) === action.key)) return state;
      return { ...state, screenPicker: { ...picker, selected: action.key } };
    }
    case "screenPickerClosed":
      return state.screenPicker ? { ...state, screenPicker: null } : state;
    case "presentingRequested":
      return withMeeting(state, (m) => ({ ...m, presentingWanted: settled(m, action.on) }));
    case "presentingFailed": {
      const words = describeError(action.error, { relayAddr: state.meeting?.relayAddr });
      const next = withMeeting(state, (m) => ({ ...m, presentingWanted: null }));
      return addToast(next, "error", `${action.on ? "Couldn't present" : "Couldn't stop presenting"}: ${words.title}`, words.detail, nowMs);
    }
    case "tilePinned":
      // Pinning asks for a main tile, which the grid of Tiled does not have.
      return withMeeting(state, (m) => ({ ...m, pinned: action.tile, layout: action.tile !== null && m.layout === "tiled" ? "auto" : m.layout }));
    case "layoutChosen":
      return withMeeting(state, (m) => ({ ...m, layout: action.layout, pinned: action.layout === "tiled" ? null : m.pinned }));
    case "left":
      return endSession(state, { title: "You left the meeting", detail: "", canRejoin: true, rejoin: null });
    case "returnedHome":
      return { ...state, screen: "home", ended: null, waiting: null, home: { ...state.home, busy: null } };
  }
}

function onCreated(state: AppState, created: MeetingCreated, nowMs: number): AppState {
  if (state.meeting && state.meeting.code === created.code) {
    return { ...state, meeting: { ...state.meeting, relayAddr: created.relayAddr, invitation: created.invitation } };
  }
  // The `joined` event has not arrived yet: show the meeting with ourselves in it; the event
  // replaces the roster when it comes.
  const self: Participant = {
    id: created.participantId,
    displayName: state.lastJoin?.name ?? state.home.name,
    isHost: true,
    micOn: state.micOn,
    cameraOn: state.cameraOn,
    speaking: false,
    joinedAtMs: nowMs,
    reconnecting: false,
    isCohost: false,
    handRaised: null,
    presenting: false,
  };
  return {
    ...state,
    screen: "meeting",
    home: { ...state.home, busy: null, error: null },
    waiting: null,
    ended: null,
    panel: null,
    knocks: [],
    meeting: newMeeting(created.code, created.relayAddr, created.invitation, created.participantId, created.participantId, [self], []),
  };
}

function newMeeting(
  code: string,
  relayAddr: string,
  invitation: Invitation,
  selfId: ParticipantId,
  hostId: ParticipantId,
  roster: Participant[],
  chat: ChatMessage[],
): MeetingState {
  const files: Record<number, SharedFile> = {};
  for (const msg of chat) if (msg.file) files[msg.file.fileId] = offeredFile(msg.file, selfId);
  return {
    code,
    relayAddr,
    invitation,
    selfId,
    hostId,
    roster: sortRoster(roster.map((p) => ({ ...p, isHost: p.id === hostId }))),
    activeSpeaker: null,
    chat: bounded([...chat].sort((a, b) => a.id - b.id), LIMITS.chat),
    pendingChat: [],
    files: boundedRecord(files, LIMITS.files),
    transfers: {},
    unread: 0,
    stats: [],
    encryption: null,
    reconnecting: null,
    locked: false,
    reactions: [],
    nextReactionId: 1,
    presenters: roster.filter((p) => p.presenting).map((p) => p.id),
    presentingWanted: null,
    pinned: null,
    layout: "auto",
  };
}

function onEvent(state: AppState, event: SessionEvent, nowMs: number): AppState {
  switch (event.name) {
    case "waiting": {
      const p = event.payload;
      return {
        ...state,
        screen: "waiting",
        waiting: { code: p.code, relayAddr: state.lastJoin?.relayAddr ?? "", requestId: p.requestId },
        home: { ...state.home, busy: null, error: null },
      };
    }
    case "joined":
      return onJoined(state, event.payload);
    case "encryption":
      return withMeeting(state, (m) => ({ ...m, encryption: event.payload }));
    case "join-refused": {
      if (state.screen !== "waiting" && state.home.busy !== "join") return state;
      const words = describeRefusal(event.payload.reason);
      return {
        ...state,
        screen: "ended",
        waiting: null,
        home: { ...state.home, busy: null },
        ended: { ...words, canRejoin: event.payload.reason !== "meetingEnded", rejoin: null },
      };
    }
    case "knock": {
      const { requestId, name, waitingSinceMs } = event.payload;
      if (state.knocks.some((k) => k.requestId === requestId)) return state;
      // The relay's time of the knock, so a knock shown late (to a new co-host) says how long it
      // has really waited; never in the page's future.
      const sinceMs = Math.min(waitingSinceMs, nowMs);
      const knockIdsSeen = state.knockIdsSeen.includes(requestId) ? state.knockIdsSeen : bounded([...state.knockIdsSeen, requestId], 2 * LIMITS.knocks);
      return { ...state, knocks: bounded([...state.knocks, { requestId, name, sinceMs }], LIMITS.knocks), knockIdsSeen };
    }
    case "knock-withdrawn": {
      const knock = state.knocks.find((k) => k.requestId === event.payload.requestId);
      if (!knock) return state;
      const next = { ...state, knocks: state.knocks.filter((k) => k !== knock) };
      // Another moderator answered: the "joined" (or nothing, for a denial) says enough.
      if (event.payload.reason === "answered") return next;
      return addToast(next, "info", describeWithdrawal(knock.name, event.payload.reason), null, nowMs);
    }
    case "participant-joined": {
      const p = event.payload.participant;
      if (!state.meeting) return state;
      const existed = state.meeting.roster.some((r) => r.id === p.id);
      const next = withMeeting(state, (m) => ({ ...m, roster: upsertParticipant(m.roster, p, m.hostId), presenters: trackPresenter(m.presenters, p) }));
      return existed || p.id === state.meeting.selfId ? next : addToast(next, "info", `${p.displayName} joined`, null, nowMs);
    }
    case "participant-left": {
      const m = state.meeting;
      if (!m) return state;
      const gone = m.roster.find((r) => r.id === event.payload.participantId);
      if (!gone) return state;
      const next = withMeeting(state, (mm) => ({
        ...mm,
        roster: mm.roster.filter((r) => r.id !== gone.id),
        activeSpeaker: mm.activeSpeaker === gone.id ? null : mm.activeSpeaker,
        presenters: mm.presenters.filter((id) => id !== gone.id),
        pinned: mm.pinned === gone.id || mm.pinned === screenTileId(gone.id) ? null : mm.pinned,
      }));
      const closed = next.confirmRemove === gone.id ? { ...next, confirmRemove: null } : next;
      return addToast(closed, "info", describeLeave(gone.displayName, event.payload.reason), null, nowMs);
    }
    case "participant-updated":
      return onParticipantUpdated(state, event.payload.participant, nowMs);
    case "meeting-locked": {
      const m = state.meeting;
      if (!m) return state;
      const { locked, by } = event.payload;
      const next = withMeeting(state, (mm) => ({ ...mm, locked }));
      const who = by === m.selfId ? "You" : nameOf(m, by);
      const text = locked ? `${who} locked the meeting` : `${who} unlocked the meeting`;
      const detail = locked ? "No one else can ask to join." : "People can ask to join again.";
      return addToast(next, "info", text, detail, nowMs);
    }
    case "muted-by-host": {
      const m = state.meeting;
      if (!m) return state;
      return addToast({ ...state, micOn: false }, "info", `${nameOf(m, event.payload.by)} muted you`, "Turn your microphone back on when you want to talk.", nowMs);
    }
    case "media-requested":
      return state.meeting ? { ...state, mediaRequest: event.payload } : state;
    case "meeting-ended": {
      const m = state.meeting;
      const byMe = m !== null && event.payload.by === m.selfId;
      const title = byMe ? "You ended the meeting for everyone" : "The host ended the meeting";
      return endSession(state, { title, detail: byMe ? "" : "The meeting is over for everyone.", canRejoin: false, rejoin: null });
    }
    case "screen-share-ended": {
      const { reason } = event.payload;
      const next = withMeeting(state, (m) => ({ ...m, presentingWanted: settled(m, false) }));
      return addToast(next, "error", `Screen sharing stopped: ${reason}`, null, nowMs);
    }
    case "reaction": {
      const { participantId, reaction } = event.payload;
      return withMeeting(state, (m) => ({
        ...m,
        reactions: bounded([...m.reactions, { id: m.nextReactionId, participantId, reaction, untilMs: nowMs + REACTION_MS }], LIMITS.reactions),
        nextReactionId: m.nextReactionId + 1,
      }));
    }
    case "host-changed": {
      const m = state.meeting;
      if (!m) return state;
      const hostId = event.payload.hostId;
      // The new host is not also a co-host.
      const next = withMeeting(state, (mm) => ({ ...mm, hostId, roster: mm.roster.map((r) => ({ ...r, isHost: r.id === hostId, isCohost: r.id === hostId ? false : r.isCohost })) }));
      const name = m.roster.find((r) => r.id === hostId)?.displayName;
      const text = hostId === m.selfId ? "You are now the host" : name ? `${name} is now the host` : "The host changed";
      // Knocks go to the moderators; one who no longer is one sees them no more.
      const stillModerator = hostId === m.selfId || m.roster.some((r) => r.id === m.selfId && r.isCohost);
      return addToast(stillModerator ? next : { ...next, knocks: [] }, "info", text, null, nowMs);
    }
    case "removed":
      return endSession(state, { title: "You've been removed from the meeting", detail: "The host removed you.", canRejoin: false, rejoin: null });
    case "reconnecting": {
      const { reason, unheardMs } = event.payload;
      // The banner counts from the break: from when the relay was last heard, and a second
      // notice keeps the first one's start.
      const sinceMs = nowMs - unheardMs;
      return withMeeting(state, (m) => (m.reconnecting ? m : { ...m, reconnecting: { sinceMs, reason } }));
    }
    case "resumed": {
      if (!state.meeting?.reconnecting) return state;
      // Knocks answered or withdrawn while away were never heard of: the relay shows a
      // moderator every knock still waiting right after this, so the list starts again.
      const next = isModerator(state) ? { ...state, knocks: [] } : state;
      return addToast(withMeeting(next, (m) => ({ ...m, reconnecting: null })), "info", "Reconnected", null, nowMs);
    }
    case "disconnected": {
      if (state.screen !== "meeting" && state.screen !== "waiting") return state;
      const { message, rejoin } = event.payload;
      if (rejoin) {
        const reason = message ? ` (${message})` : "";
        const detail = `Parlor couldn't get you back into meeting ${displayCode(rejoin.code)}${reason}. Rejoin to ask to be let in again.`;
        return endSession(state, { title: "You lost your connection", detail, canRejoin: true, rejoin });
      }
      return endSession(state, { title: "You lost connection to the meeting", detail: message, canRejoin: true, rejoin: null });
    }
    case "invitation-opened":
      // The controller takes the link from the shell and reads it; nothing to show yet.
      return state;
    case "mic-level":
      return { ...state, micLevel: event.payload };
    case "chat":
      return onChat(state, event.payload.message, nowMs);
    case "file-offer": {
      const f = event.payload.file;
      return withMeeting(state, (m) => {
        const known = m.files[f.fileId];
        // An offer seen again as lost (its relay died and another took the meeting over).
        if (known) return f.lost && !known.info.lost ? { ...m, files: { ...m.files, [f.fileId]: { ...known, info: f } } } : m;
        return { ...m, files: boundedRecord({ ...m.files, [f.fileId]: offeredFile(f, m.selfId) }, LIMITS.files) };
      });
    }
    case "file-progress":
      return onFileProgress(state, event.payload);
    case "file-done":
      return onFileDone(state, event.payload);
    case "file-failed": {
      const p = event.payload;
      const words = describeError(p.error);
      let next = state;
      if (p.direction === "download" && p.fileId !== null) {
        next = updateFile(next, p.fileId, (f) => ({ ...f, status: "failed", error: words }));
      } else if (p.direction === "upload") {
        next = withMeeting(next, (m) => {
          const t = m.transfers[p.transferId];
          const base: Transfer = t ?? newTransfer(p.transferId, "upload", p.name, 0, p.fileId);
          return { ...m, transfers: { ...m.transfers, [p.transferId]: { ...base, status: "failed", error: words } } };
        });
      } else {
        // Someone else's upload stopped: its card says so until dismissed; no toast, as it is
        // not this person's doing.
        return withMeeting(next, (m) => {
          const t = m.transfers[p.transferId];
          if (!t) return m;
          return { ...m, transfers: { ...m.transfers, [p.transferId]: { ...t, status: "failed", error: words } } };
        });
      }
      return addToast(next, "error", `${p.name}: ${words.title}`, words.detail, nowMs);
    }
    case "active-speaker":
      return withMeeting(state, (m) => ({ ...m, activeSpeaker: event.payload.participantId }));
    case "stats":
      return withMeeting(state, (m) => ({ ...m, stats: pushSample(m.stats, event.payload) }));
    case "error": {
      const err = event.payload;
      if (state.home.busy !== null && state.screen === "home") return reduce(state, { type: "startFailed", error: err }, nowMs);
      return reduce(state, { type: "commandFailed", error: err }, nowMs);
    }
  }
}

function onParticipantUpdated(state: AppState, p: Participant, nowMs: number): AppState {
  const m = state.meeting;
  const before = m?.roster.find((r) => r.id === p.id);
  if (!m || !before) return state;
  const next = withMeeting(state, (mm) => ({
    ...mm,
    roster: upsertParticipant(mm.roster, p, mm.hostId),
    presenters: trackPresenter(mm.presenters, p),
    // A presentation that ends takes its pin with it.
    pinned: !p.presenting && mm.pinned === screenTileId(p.id) ? null : mm.pinned,
    // The roster now says what was asked for: it is the truth again.
    presentingWanted: p.id === mm.selfId && mm.presentingWanted === p.presenting ? null : mm.presentingWanted,
  }));
  if (p.id === m.selfId) {
    if (p.isCohost && !before.isCohost) return addToast(next, "info", "You are now a co-host", "You can admit people, mute and remove others.", nowMs);
    if (!p.isCohost && before.isCohost && p.id !== m.hostId) return addToast({ ...next, knocks: [] }, "info", "You are no longer a co-host", null, nowMs);
    return next;
  }
  if (p.handRaised !== null && before.handRaised === null && isModerator(state)) {
    return addToast(next, "info", `${p.displayName} raised a hand`, null, nowMs);
  }
  return next;
}

function nameOf(m: MeetingState, id: ParticipantId): string {
  return m.roster.find((r) => r.id === id)?.displayName ?? "The host";
}

function onJoined(state: AppState, p: SessionEvents["joined"]): AppState {
  const prev = state.meeting;
  const meeting = newMeeting(p.code, p.relayAddr, p.invitation, p.participantId, p.hostId, p.roster, p.chatHistory);
  meeting.locked = p.locked;
  // create_meeting may have answered first: keep what the page already added since.
  if (prev && prev.code === p.code && prev.selfId === p.participantId) {
    meeting.chat = mergeChat(prev.chat, meeting.chat);
    meeting.pendingChat = prev.pendingChat;
    meeting.transfers = prev.transfers;
    meeting.files = { ...prev.files, ...meeting.files };
    meeting.stats = prev.stats;
    meeting.encryption = prev.encryption;
    meeting.reactions = prev.reactions;
    meeting.nextReactionId = prev.nextReactionId;
    meeting.pinned = prev.pinned;
    meeting.layout = prev.layout;
    meeting.presentingWanted = settled(meeting, prev.presentingWanted);
  }
  return {
    ...state,
    screen: "meeting",
    meeting,
    waiting: null,
    ended: null,
    panel: prev ? state.panel : null,
    knocks: prev ? state.knocks : [],
    knockIdsSeen: prev ? state.knockIdsSeen : [],
    home: { ...state.home, busy: null, error: null },
  };
}

function onChat(state: AppState, msg: ChatMessage, nowMs: number): AppState {
  const m = state.meeting;
  if (!m || m.chat.some((c) => c.id === msg.id)) return state;
  const fromOther = msg.senderId !== m.selfId;
  const files =
    msg.file && !m.files[msg.file.fileId]
      ? boundedRecord({ ...m.files, [msg.file.fileId]: offeredFile(msg.file, m.selfId) }, LIMITS.files)
      : m.files;
  const panelOpen = state.panel === "chat";
  const next: AppState = {
    ...state,
    meeting: {
      ...m,
      chat: mergeChat(m.chat, [msg]),
      pendingChat: m.pendingChat.filter((p) => msg.clientMsgId === undefined || msg.clientMsgId === null || fromOther || p.clientMsgId !== msg.clientMsgId),
      files,
      unread: fromOther && !panelOpen ? m.unread + 1 : m.unread,
    },
  };
  if (!fromOther || panelOpen) return next;
  const text = msg.file ? `${msg.senderName} shared ${msg.file.name}` : `${msg.senderName}: ${msg.text}`;
  return addToast(next, "info", text.length > 120 ? `${text.slice(0, 119)}…` : text, null, nowMs);
}

function onFileProgress(state: AppState, p: SessionEvents["file-progress"]): AppState {
  if (p.direction === "download") {
    if (p.fileId === null) return state;
    return updateFile(state, p.fileId, (f) => ({
      ...f,
      status: "downloading",
      transferId: p.transferId,
      bytes: p.bytes,
      rateBytesPerSec: p.rateBytesPerSec,
    }));
  }
  const direction = p.direction;
  return withMeeting(state, (m) => {
    const prev = m.transfers[p.transferId] ?? newTransfer(p.transferId, direction, p.name, p.size, p.fileId);
    if (prev.status !== "sending") return m;
    const t: Transfer = {
      ...prev,
      name: p.name,
      size: p.size,
      bytes: p.bytes,
      fileId: p.fileId ?? prev.fileId,
      rateBytesPerSec: p.rateBytesPerSec,
      cwndBytes: p.cwndBytes,
    };
    return { ...m, transfers: boundedRecord({ ...m.transfers, [p.transferId]: t }, LIMITS.transfers) };
  });
}

function onFileDone(state: AppState, p: SessionEvents["file-done"]): AppState {
  if (p.direction === "download") {
    return updateFile(state, p.fileId, (f) => ({
      ...f,
      status: "saved",
      bytes: p.size,
      path: p.path,
      verified: p.verified,
      error: null,
    }));
  }
  if (p.direction === "remote") return withMeeting(state, (m) => ({ ...m, transfers: omit(m.transfers, p.transferId) }));
  return withMeeting(state, (m) => {
    const prev = m.transfers[p.transferId] ?? newTransfer(p.transferId, "upload", p.name, p.size, p.fileId);
    const t: Transfer = { ...prev, status: "done", fileId: p.fileId, bytes: p.size, size: p.size };
    const existing = m.files[p.fileId];
    const info: FileInfo = existing?.info ?? {
      fileId: p.fileId,
      name: p.name,
      size: p.size,
      sha256: p.sha256,
      senderId: m.selfId,
      senderName: m.roster.find((r) => r.id === m.selfId)?.displayName ?? "",
    };
    const file: SharedFile = { ...(existing ?? offeredFile(info, m.selfId)), status: "sent", verified: p.verified };
    return {
      ...m,
      transfers: { ...m.transfers, [p.transferId]: t },
      files: boundedRecord({ ...m.files, [p.fileId]: file }, LIMITS.files),
    };
  });
}

function newTransfer(transferId: string, direction: Transfer["direction"], name: string, size: number, fileId: number | null): Transfer {
  return { transferId, direction, fileId, name, size, bytes: 0, rateBytesPerSec: 0, cwndBytes: null, status: "sending", error: null };
}

function offeredFile(info: FileInfo, selfId: ParticipantId): SharedFile {
  const own = info.senderId === selfId;
  return {
    info,
    status: own ? "sent" : "offered",
    transferId: null,
    bytes: 0,
    rateBytesPerSec: 0,
    path: null,
    // The relay only offers files whose SHA-256 it verified on upload.
    verified: own,
    error: null,
  };
}

function endSession(state: AppState, ended: EndedState): AppState {
  return {
    ...state,
    screen: "ended",
    ended,
    meeting: null,
    waiting: null,
    knocks: [],
    knockIdsSeen: [],
    panel: null,
    confirmRemove: null,
    leaveAsked: false,
    mediaRequest: null,
    screenPicker: null,
    home: { ...state.home, busy: null },
    // News about the meeting (joins, chat) is stale once it is over; errors may still matter.
    toasts: state.toasts.filter((t) => t.kind === "error"),
  };
}

function addToast(state: AppState, kind: Toast["kind"], text: string, detail: string | null, nowMs: number): AppState {
  const toast: Toast = { id: state.nextToastId, kind, text, detail, expiresAtMs: nowMs + TOAST_MS[kind] };
  return { ...state, toasts: bounded([...state.toasts, toast], LIMITS.toasts), nextToastId: state.nextToastId + 1 };
}

function withMeeting(state: AppState, f: (m: MeetingState) => MeetingState): AppState {
  if (!state.meeting) return state;
  const meeting = f(state.meeting);
  return meeting === state.meeting ? state : { ...state, meeting };
}

function updateFile(state: AppState, fileId: number, f: (file: SharedFile) => SharedFile): AppState {
  return withMeeting(state, (m) => {
    const file = m.files[fileId];
    return file ? { ...m, files: { ...m.files, [fileId]: f(file) } } : m;
  });
}

function upsertParticipant(roster: Participant[], p: Participant, hostId: ParticipantId): Participant[] {
  const fixed = { ...p, isHost: p.id === hostId };
  const i = roster.findIndex((r) => r.id === p.id);
  if (i < 0) return sortRoster([...roster, fixed]);
  const next = roster.slice();
  next[i] = fixed;
  return next;
}

/** The presenters after `p`'s update: appended when they start, dropped when they stop. */
function trackPresenter(presenters: ParticipantId[], p: Participant): ParticipantId[] {
  const listed = presenters.includes(p.id);
  if (p.presenting === listed) return presenters;
  return p.presenting ? [...presenters, p.id] : presenters.filter((id) => id !== p.id);
}

/** What to keep of a wish to present (or stop): nothing once the roster already says it. */
function settled(m: MeetingState, want: boolean | null): boolean | null {
  const self = m.roster.find((r) => r.id === m.selfId);
  return want === (self?.presenting ?? false) ? null : want;
}

function sortRoster(roster: Participant[]): Participant[] {
  return roster.slice().sort((a, b) => a.joinedAtMs - b.joinedAtMs || a.id - b.id);
}

function mergeChat(a: readonly ChatMessage[], b: readonly ChatMessage[]): ChatMessage[] {
  const byId = new Map<number, ChatMessage>();
  for (const m of a) byId.set(m.id, m);
  for (const m of b) byId.set(m.id, m);
  return bounded([...byId.values()].sort((x, y) => x.id - y.id), LIMITS.chat);
}

function bounded<T>(list: T[], max: number): T[] {
  return list.length > max ? list.slice(list.length - max) : list;
}

/** Keeps the `max` entries with the highest insertion order (JS preserves it for string keys). */
function boundedRecord<K extends string | number, V>(rec: Record<K, V>, max: number): Record<K, V> {
  const keys = Object.keys(rec);
  if (keys.length <= max) return rec;
  const out = {} as Record<string, V>;
  for (const k of keys.slice(keys.length - max)) out[k] = (rec as Record<string, V>)[k] as V;
  return out as Record<K, V>;
}

function omit<V>(rec: Record<string, V>, key: string): Record<string, V> {
  if (!(key in rec)) return rec;
  const out = { ...rec };
  delete out[key];
  return out;
}

// ---- Selectors: derived facts the views read. ----

/** True when this app hosts the meeting. */
export function isHost(state: AppState): boolean {
  return state.meeting !== null && state.meeting.hostId === state.meeting.selfId;
}

/** True when this app hosts the meeting or is a co-host: it admits, mutes and removes. */
export function isModerator(state: AppState): boolean {
  const m = state.meeting;
  return m !== null && (m.hostId === m.selfId || m.roster.some((r) => r.id === m.selfId && r.isCohost));
}

/** Everyone with a hand up, first raised first. */
export function raisedHands(m: MeetingState): Participant[] {
  return m.roster.filter((p) => p.handRaised !== null).sort((a, b) => (a.handRaised ?? 0) - (b.handRaised ?? 0));
}

/** Whether this app's own hand is up. */
export function handRaised(m: MeetingState): boolean {
  return m.roster.some((p) => p.id === m.selfId && p.handRaised !== null);
}

/** Tile order on the stage: self first, then others in join order. */
export function stageOrder(m: MeetingState): ParticipantId[] {
  const others = m.roster.filter((p) => p.id !== m.selfId).map((p) => p.id);
  return [m.selfId, ...others];
}

/** Whether this app presents, as far as the person can tell: what they last asked for until the
 * roster confirms it, then the roster. */
export function isPresenting(m: MeetingState): boolean {
  return m.presentingWanted ?? m.roster.some((p) => p.id === m.selfId && p.presenting);
}

/** What the stage shows now (core/stage.ts). */
export function stagePlan(m: MeetingState): StagePlan {
  return planStage({ participants: stageOrder(m), selfId: m.selfId, presenters: m.presenters, activeSpeaker: m.activeSpeaker, pinned: m.pinned, layout: m.layout });
}

/** A source's identity in the picker: its kind and id ("screen:1", "window:42", "synthetic"). */
export function screenChoiceKey(choice: ScreenChoice): string {
  return choice.kind === "synthetic" ? "synthetic" : `${choice.kind}:${choice.id ?? "main"}`;
}

/** Whole seconds since the connection broke, while it is being repaired; null otherwise. */
export function reconnectingSeconds(m: MeetingState, nowMs: number): number | null {
  return m.reconnecting ? Math.max(0, Math.floor((nowMs - m.reconnecting.sinceMs) / 1000)) : null;
}

/** The newest stats sample, if any. */
export function latestStats(m: MeetingState): StatsSnapshot | null {
  return m.stats[m.stats.length - 1] ?? null;
}

/** Uploads (own and remote) still running or failed, oldest first. */
export function activeTransfers(m: MeetingState): Transfer[] {
  return Object.values(m.transfers).filter((t) => t.status !== "done");
}
