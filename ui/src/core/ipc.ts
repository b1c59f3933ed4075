/**
 * Typed wrappers over Tauri's IPC: one function per command of the contract in
 * `docs/app-ipc.md`, the session events, the binary video Channel, native file drops and the
 * dialog plugin (folders only: files are picked by the shell's `pick_file`). Nothing else in the page calls `invoke` or `listen` directly, so this file and
 * the contract are the whole surface the Rust shell must implement.
 *
 * Commands reject with an {@link AppError} (see core/errors.ts `toAppError` for the
 * normalization of anything else Tauri may throw).
 */
import { Channel, invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import { getCurrentWebview } from "@tauri-apps/api/webview";
import { open as openDialog } from "@tauri-apps/plugin-dialog";
import {
  SESSION_EVENT_NAMES,
  type ChatSent,
  type DeviceChoice,
  type DeviceList,
  type FileOpened,
  type InvitationFields,
  type MediaDevice,
  type MeetingCreated,
  type ParticipantId,
  type Reaction,
  type Role,
  type ScreenChoice,
  type ScreenSource,
  type SessionEvent,
  type SessionEventName,
  type SessionEvents,
  type Settings,
  type StatsSnapshot,
  type TransferStarted,
  type UpdateInfo,
} from "./types";

/** What happens while the user drags files over the window. */
export interface DropHandlers {
  /** Files entered the window (show the drop target). */
  enter(): void;
  /** They left without dropping. */
  leave(): void;
  /** They were dropped: absolute paths of the files. */
  drop(paths: string[]): void;
}

/** The page's whole view of the shell. */
export interface Ipc {
  createMeeting(name: string, relayAddr: string | null): Promise<MeetingCreated>;
  /** `fingerprint`: the relay certificate an invitation names; only that one is trusted then. */
  joinMeeting(code: string, name: string, relayAddr: string, fingerprint: string | null): Promise<void>;
  /** Reads a pasted invitation (the parlor://join link, or the text around it). */
  readInvitation(text: string): Promise<InvitationFields>;
  /** The invitation link the app was opened with (or that was opened since), once; null if none. */
  takeOpenedInvitation(): Promise<string | null>;
  /** A newer signed version of the app; null when up to date or when the build names no update endpoint. */
  checkForUpdate(): Promise<UpdateInfo | null>;
  /** Installs the update `checkForUpdate` found; the app restarts. */
  installUpdate(): Promise<void>;
  /** Trusts a relay's new certificate after the person was told it changed. */
  trustRelayCertificate(relayAddr: string, fingerprint: string): Promise<void>;
  cancelJoin(): Promise<void>;
  admit(requestId: number): Promise<void>;
  deny(requestId: number): Promise<void>;
  removeParticipant(participantId: ParticipantId): Promise<void>;
  /** (Host or co-host) lets everyone waiting in. */
  admitAll(): Promise<void>;
  /** (Host) locks the meeting (new knocks are refused) or unlocks it. */
  lockMeeting(locked: boolean): Promise<void>;
  /** (Host) makes someone host (this app becomes a participant), co-host or participant. */
  setRole(participantId: ParticipantId, role: Role): Promise<void>;
  /** (Host or co-host) turns someone's microphone off. */
  muteParticipant(participantId: ParticipantId): Promise<void>;
  /** (Host or co-host) turns everyone's microphone off but this app's. */
  muteAll(): Promise<void>;
  /** (Host or co-host) asks someone to turn a device on. */
  requestMedia(participantId: ParticipantId, device: MediaDevice): Promise<void>;
  /** (Host) ends the meeting for everyone. */
  endMeeting(): Promise<void>;
  raiseHand(raised: boolean): Promise<void>;
  /** Lowers someone's hand: this app's, or (host or co-host) anyone's. */
  lowerHand(participantId: ParticipantId): Promise<void>;
  react(reaction: Reaction): Promise<void>;
  /** The screens and windows there are to share, with thumbnails. */
  listScreenSources(): Promise<ScreenSource[]>;
  /** Shares `choice` in the meeting (or switches to it); the roster then shows this app presenting. */
  startScreenShare(choice: ScreenChoice): Promise<void>;
  stopScreenShare(): Promise<void>;
  /** A desktop notification (asked for while the window is not focused). */
  notify(title: string, body: string): Promise<void>;
  leaveMeeting(): Promise<void>;
  setMic(on: boolean): Promise<void>;
  setCamera(on: boolean): Promise<void>;
  listDevices(): Promise<DeviceList>;
  chooseDevices(choice: DeviceChoice): Promise<void>;
  sendChat(text: string): Promise<ChatSent>;
  sendFile(path: string): Promise<TransferStarted>;
  acceptFile(fileId: number): Promise<TransferStarted>;
  chooseDownloadDir(dir: string): Promise<void>;
  getDownloadDir(): Promise<string>;
  /** Opens a downloaded file, or shows a program in its folder instead of running it. */
  openFile(path: string): Promise<FileOpened>;
  getStats(): Promise<StatsSnapshot | null>;
  getSettings(): Promise<Settings>;
  saveSettings(settings: Settings): Promise<void>;
  startPreview(): Promise<void>;
  stopPreview(): Promise<void>;
  /** Subscribes to video frames; each message is one frame (see core/frame.ts). */
  videoSubscribe(onFrame: (frame: ArrayBuffer) => void): Promise<void>;
  /** Tells the shell a frame of `participantId` was drawn and the tile's size in device pixels. */
  videoFrameDrawn(participantId: ParticipantId, width: number, height: number): Promise<void>;
  /** Listens to every session event; resolves to the function that stops listening. */
  listenAll(handler: (event: SessionEvent) => void): Promise<() => void>;
  /** Listens to native file drags over the window. */
  onFileDrop(handlers: DropHandlers): Promise<() => void>;
  /** Asks the user for a file to send (the shell's dialog, so the shell knows it was chosen); null when cancelled. */
  pickFile(): Promise<string | null>;
  /** Asks the user for a folder; null when cancelled. */
  pickDirectory(current: string): Promise<string | null>;
}

/** Normalizes a Channel message to an ArrayBuffer: raw responses arrive as one, JSON as number[]. */
export function toArrayBuffer(message: unknown): ArrayBuffer | null {
  if (message instanceof ArrayBuffer) return message;
  if (ArrayBuffer.isView(message)) {
    const v = message as ArrayBufferView;
    return v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength) as ArrayBuffer;
  }
  if (Array.isArray(message)) return Uint8Array.from(message as number[]).buffer;
  return null;
}

/** The real implementation over `@tauri-apps/api`. */
export function tauriIpc(): Ipc {
  // Kept alive here: a Channel whose object is collected stops delivering.
  let frameChannel: Channel<ArrayBuffer> | null = null;
  return {
    createMeeting: (name, relayAddr) => invoke<MeetingCreated>("create_meeting", { name, relayAddr }),
    joinMeeting: (code, name, relayAddr, fingerprint) => invoke<void>("join_meeting", { code, name, relayAddr, fingerprint }),
    readInvitation: (text) => invoke<InvitationFields>("read_invitation", { text }),
    takeOpenedInvitation: () => invoke<string | null>("take_opened_invitation"),
    checkForUpdate: () => invoke<UpdateInfo | null>("check_for_update"),
    installUpdate: () => invoke<void>("install_update"),
    trustRelayCertificate: (relayAddr, fingerprint) => invoke<void>("trust_relay_certificate", { relayAddr, fingerprint }),
    cancelJoin: () => invoke<void>("cancel_join"),
    admit: (requestId) => invoke<void>("admit", { requestId }),
    deny: (requestId) => invoke<void>("deny", { requestId }),
    removeParticipant: (participantId) => invoke<void>("remove_participant", { participantId }),
    admitAll: () => invoke<void>("admit_all"),
    lockMeeting: (locked) => invoke<void>("lock_meeting", { locked }),
    setRole: (participantId, role) => invoke<void>("set_role", { participantId, role }),
    muteParticipant: (participantId) => invoke<void>("mute_participant", { participantId }),
    muteAll: () => invoke<void>("mute_all"),
    requestMedia: (participantId, device) => invoke<void>("request_media", { participantId, device }),
    endMeeting: () => invoke<void>("end_meeting"),
    raiseHand: (raised) => invoke<void>("raise_hand", { raised }),
    lowerHand: (participantId) => invoke<void>("lower_hand", { participantId }),
    react: (reaction) => invoke<void>("react", { reaction }),
    listScreenSources: () => invoke<ScreenSource[]>("list_screen_sources"),
    startScreenShare: (choice) => invoke<void>("start_screen_share", { choice }),
    stopScreenShare: () => invoke<void>("stop_screen_share"),
    notify: (title, body) => invoke<void>("notify", { title, body }),
    leaveMeeting: () => invoke<void>("leave_meeting"),
    setMic: (on) => invoke<void>("set_mic", { on }),
    setCamera: (on) => invoke<void>("set_camera", { on }),
    listDevices: () => invoke<DeviceList>("list_devices"),
    chooseDevices: (choice) => invoke<void>("choose_devices", { ...choice }),
    sendChat: (text) => invoke<ChatSent>("send_chat", { text }),
    sendFile: (path) => invoke<TransferStarted>("send_file", { path }),
    acceptFile: (fileId) => invoke<TransferStarted>("accept_file", { fileId }),
    chooseDownloadDir: (dir) => invoke<void>("choose_download_dir", { dir }),
    getDownloadDir: () => invoke<string>("get_download_dir"),
    openFile: (path) => invoke<FileOpened>("open_file", { path }),
    getStats: () => invoke<StatsSnapshot | null>("get_stats"),
    getSettings: () => invoke<Settings>("get_settings"),
    saveSettings: (settings) => invoke<void>("save_settings", { settings }),
    startPreview: () => invoke<void>("start_preview"),
    stopPreview: () => invoke<void>("stop_preview"),
    videoSubscribe: async (onFrame) => {
      const channel = new Channel<ArrayBuffer>();
      channel.onmessage = (message: unknown) => {
        const buf = toArrayBuffer(message);
        if (buf) onFrame(buf);
      };
      frameChannel = channel;
      await invoke<void>("video_subscribe", { onFrame: frameChannel });
    },
    videoFrameDrawn: (participantId, width, height) => invoke<void>("video_frame_drawn", { participantId, width, height }),
    listenAll: async (handler) => {
      const unlisteners = await Promise.all(
        SESSION_EVENT_NAMES.map((name) => listenOne(name, (payload) => handler({ name, payload } as SessionEvent))),
      );
      return () => unlisteners.forEach((u) => u());
    },
    onFileDrop: async (h) => {
      const unlisten = await getCurrentWebview().onDragDropEvent((event) => {
        const p = event.payload;
        if (p.type === "enter") h.enter();
        else if (p.type === "leave") h.leave();
        else if (p.type === "drop") h.drop(p.paths);
      });
      return () => unlisten();
    },
    pickFile: () => invoke<string | null>("pick_file"),
    pickDirectory: async (current) => {
      const picked = await openDialog({ multiple: false, directory: true, defaultPath: current || undefined, title: "Save downloads to" });
      return typeof picked === "string" ? picked : null;
    },
  };
}

function listenOne<K extends SessionEventName>(name: K, handler: (payload: SessionEvents[K]) => void): Promise<UnlistenFn> {
  return listen<SessionEvents[K]>(name, (e) => handler(e.payload));
}
