// Generated from src-tauri/src/payloads.rs and error.rs by src-tauri/src/typescript.rs.
// Do not edit: change the Rust types and run `npm run gen:types`.

/** A participant's id inside one meeting; also its UDP sender id. Never 0 (0 is the relay). */
export type ParticipantId = number;

export type ActiveSpeaker = { participantId: ParticipantId | null, };

/**
 * What a rejected command or an `error` event carries. The shell's `AppError` serializes
 * through this, its one wire shape, which events can clone and compare.
 */
export type AppError = { code: ErrorCode, 
/**
 * Detail in English for logs and as a fallback; the UI prefers its own words per code.
 */
message: string, 
/**
 * For device errors: which device.
 */
device?: DeviceKind, 
/**
 * For `rateLimited`: milliseconds until the relay accepts the request again.
 */
retryAfterMs?: number, 
/**
 * For `relayCertificateChanged` and `notTheInvitedRelay`: which certificates differ.
 */
certificate?: CertificateMismatch, };

/**
 * Who (the host or a co-host) did it.
 */
export type ByModerator = { by: ParticipantId, };

/**
 * With `relayCertificateChanged` and `notTheInvitedRelay`: the certificate the app expected
 * and the one the relay presented, as SHA-256 fingerprints (64 hex digits).
 */
export type CertificateMismatch = { relayAddr: string, expected: string, presented: string, };

/**
 * One chat message as the relay stamped it.
 */
export type ChatMessage = { 
/**
 * Strictly increasing within a meeting: the order everyone sees.
 */
id: number, senderId: ParticipantId, senderName: string, text: string, 
/**
 * Relay time (ms since the Unix epoch).
 */
timestampMs: number, 
/**
 * Echo of the id `send_chat` returned, on the sender's own messages only.
 */
clientMsgId: number | null, 
/**
 * Set when the message announces a file.
 */
file: FileInfo | null, };

/**
 * Result of `send_chat`: the id the relay will echo in the matching `chat` event.
 */
export type ChatSent = { clientMsgId: number, };

export type ChatWrap = { message: ChatMessage, };

/**
 * A capture or playback device.
 */
export type Device = { 
/**
 * Opaque id to pass back in `choose_devices`.
 */
id: string, 
/**
 * Human-readable name.
 */
label: string, 
/**
 * True for the device currently in use.
 */
selected: boolean, };

/**
 * Arguments of `choose_devices` (ids from `list_devices`): omitted kinds stay as they are.
 */
export type DeviceChoice = { camera?: string, microphone?: string, speaker?: string, };

/**
 * Which device a device error is about.
 */
export type DeviceKind = "camera" | "microphone" | "speaker" | "screen";

/**
 * Result of `list_devices`.
 */
export type DeviceList = { cameras: Array<Device>, microphones: Array<Device>, speakers: Array<Device>, };

export type Disconnected = { message: string, 
/**
 * Set when the connection was lost for good while in a meeting (its seat could not be
 * taken back): `join_meeting` with these and the display name knocks on it again.
 */
rejoin: Rejoin | null, };

/**
 * The meeting's end-to-end encryption, as the meeting info shows it.
 */
export type Encryption = { 
/**
 * The meeting key's epoch: 1 when the meeting starts, one more at each rotation.
 */
epoch: number, 
/**
 * Twelve digits in three groups ("0123 4567 8901"): the same for everyone in the meeting
 * unless someone (the relay included) put itself between participants.
 */
safetyCode: string, };

/**
 * Machine-readable reason of a failure, carried by rejected commands and the `error` event,
 * one per row of the contract's error table. The UI turns each into words (core/errors.ts).
 */
export type ErrorCode = "relayUnreachable" | "unknownMeeting" | "invalidCode" | "invalidName" | "invalidRelayAddr" | "meetingFull" | "deviceBusy" | "deviceNotFound" | "deviceNotAllowed" | "notHost" | "unknownParticipant" | "invalidState" | "chatTooLong" | "fileNotFound" | "fileTooLarge" | "unknownFile" | "hashMismatch" | "downloadDirUnwritable" | "serverBusy" | "rateLimited" | "unsupportedVersion" | "unauthorized" | "resumeRefused" | "directoryUnavailable" | "relayCertificateChanged" | "notTheInvitedRelay" | "invalidInvitation" | "uploadStopped" | "updateFailed" | "internal";

export type FileDone = { transferId: string, direction: TransferDirection, fileId: number, name: string, size: number, sha256: string, 
/**
 * Downloads: the SHA-256 of the bytes on disk matched. Uploads: the relay verified it.
 */
verified: boolean, 
/**
 * Downloads: where the file was saved. Null otherwise.
 */
path: string | null, };

export type FileFailed = { transferId: string, direction: TransferDirection, fileId: number | null, name: string, error: AppError, };

/**
 * A file spooled on the relay whose SHA-256 the relay verified.
 */
export type FileInfo = { fileId: number, name: string, size: number, 
/**
 * Lower-case hex SHA-256 of the whole file.
 */
sha256: string, senderId: ParticipantId, senderName: string, 
/**
 * The relay that held it stopped and another took the meeting over: it cannot be
 * downloaded any more.
 */
lost: boolean, };

export type FileOffer = { file: FileInfo, };

/**
 * Result of `open_file`: what the shell did with the downloaded file.
 */
export type FileOpened = "opened" | "shownInFolder";

export type FileProgress = { transferId: string, direction: TransferDirection, 
/**
 * Null for an upload the relay has not yet given an id.
 */
fileId: number | null, name: string, size: number, bytes: number, 
/**
 * Throughput over the last second, bytes per second.
 */
rateBytesPerSec: number, 
/**
 * Congestion window of this transfer in bytes (uploads); null when not known.
 */
cwndBytes: number | null, };

export type HostChanged = { hostId: ParticipantId, };

/**
 * An invitation to the current meeting (docs/protocol.md §1.2).
 */
export type Invitation = { 
/**
 * `parlor://join?relay=…&code=…&fp=…`.
 */
link: string, 
/**
 * The link and each part on a line of its own, to paste into a message.
 */
text: string, 
/**
 * The relay certificate's SHA-256 fingerprint the invitation pins (64 hex digits); none
 * for a relay with a CA-signed certificate.
 */
fingerprint: string | null, };

/**
 * Result of `read_invitation`: what a pasted invitation names.
 */
export type InvitationFields = { relayAddr: string, code: string, 
/**
 * The fingerprint to pass to `join_meeting`, if the invitation pins one.
 */
fingerprint: string | null, };

/**
 * Why a join request did not lead into the meeting.
 */
export type JoinRefusal = "denied" | "expired" | "meetingEnded" | "meetingFull" | "locked";

export type JoinRefused = { reason: JoinRefusal, };

export type Joined = { code: string, participantId: ParticipantId, hostId: ParticipantId, 
/**
 * Address to share so others can join (as in `MeetingCreated.relayAddr`).
 */
relayAddr: string, 
/**
 * The invitation "Copy invite" copies: relay address, code and the relay's certificate.
 */
invitation: Invitation, 
/**
 * Everyone, this participant included.
 */
roster: Array<Participant>, 
/**
 * Most recent chat messages, oldest first.
 */
chatHistory: Array<ChatMessage>, 
/**
 * The host locked the meeting: new knocks are refused.
 */
locked: boolean, };

export type Knock = { requestId: number, name: string, 
/**
 * Relay time (ms since the Unix epoch) of the knock, to show how long they have waited.
 */
waitingSinceMs: number, };

/**
 * Why a knock vanished from the host's queue without the host answering it.
 */
export type KnockWithdrawal = "cancelled" | "expired" | "disconnected" | "answered";

export type KnockWithdrawn = { requestId: number, reason: KnockWithdrawal, };

/**
 * Why a participant left the roster.
 */
export type LeaveReason = "left" | "disconnected" | "timedOut" | "removed";

/**
 * A device the host asks someone to turn on.
 */
export type MediaDevice = "mic" | "camera";

export type MediaRequested = { by: ParticipantId, device: MediaDevice, };

/**
 * Result of `create_meeting`.
 */
export type MeetingCreated = { 
/**
 * Six ASCII digits.
 */
code: string, 
/**
 * The address others should enter to join: the LAN IP and port of the relay.
 */
relayAddr: string, 
/**
 * The invitation "Copy invite" copies (as in the `joined` event).
 */
invitation: Invitation, participantId: ParticipantId, };

export type MeetingLocked = { locked: boolean, by: ParticipantId, };

/**
 * Payload of `mic-level`.
 */
export type MicLevel = { 
/**
 * RMS level of the last 100 ms after voice processing (noise suppression and gain control
 * as set), dBFS (-100 for silence).
 */
dbfs: number, 
/**
 * Whether that counts as speaking.
 */
speaking: boolean, };

/**
 * Someone in the meeting as the roster shows them.
 */
export type Participant = { id: ParticipantId, displayName: string, isHost: boolean, micOn: boolean, cameraOn: boolean, speaking: boolean, 
/**
 * Relay time (ms since the Unix epoch) at which the participant was admitted.
 */
joinedAtMs: number, 
/**
 * The participant's connection dropped and the relay holds their seat for a grace window
 * (30 s by default): a `participant-updated` with false when they are back, a
 * `participant-left` when the window ends without them.
 */
reconnecting: boolean, 
/**
 * A co-host: admits, denies, mutes and removes like the host.
 */
isCohost: boolean, 
/**
 * Set while their hand is up: the meeting's count of raised hands when it went up, so
 * listing hands by it, lowest first, puts the first raised first.
 */
handRaised: number | null, 
/**
 * Sharing a screen: its frames come with the tile id `screenTileId(id)`.
 */
presenting: boolean, };

export type ParticipantLeft = { participantId: ParticipantId, reason: LeaveReason, };

/**
 * Per-participant receive statistics, one row each in the stats panel.
 */
export type ParticipantStats = { participantId: ParticipantId, 
/**
 * Frames per second received (decoded) from this participant.
 */
fps: number, bitrateKbps: number, 
/**
 * Loss fraction 0..=1 of this participant's media as received here.
 */
loss: number, jitterMs: number, 
/**
 * Width of the last decoded frame (0 when none).
 */
width: number, 
/**
 * Height of the last decoded frame (0 when none).
 */
height: number, 
/**
 * Their shared screen, while any of it arrives.
 */
screen: ScreenInStats | null, };

export type ParticipantWrap = { participant: Participant, };

/**
 * A reaction (👍 ❤️ 😂 😮 👏 🎉, in this order).
 */
export type Reaction = "thumbsUp" | "heart" | "laugh" | "surprised" | "clap" | "party";

export type ReactionSent = { participantId: ParticipantId, reaction: Reaction, };

export type Reconnecting = { 
/**
 * Why the connection broke, in English (for logs and as a detail).
 */
reason: string, 
/**
 * How long nothing had come from the relay when the break was noticed (0 when the
 * connection closed outright): the drop began that long before this event.
 */
unheardMs: number, };

/**
 * The meeting a lost connection was in, as `join_meeting` takes it.
 */
export type Rejoin = { 
/**
 * Six ASCII digits.
 */
code: string, 
/**
 * The relay the session was connected to ("host:port").
 */
relayAddr: string, 
/**
 * That relay's certificate (SHA-256, 64 hex digits), to trust only it; null for a
 * CA-signed relay.
 */
fingerprint: string | null, };

export type Resumed = { 
/**
 * How long the connection was broken.
 */
afterMs: number, 
/**
 * At which attempt the seat came back (1 = the first).
 */
attempts: number, };

/**
 * What the host makes someone (`set_role`).
 */
export type Role = "host" | "coHost" | "participant";

/**
 * What to share (`start_screen_share`).
 */
export type ScreenChoice = { "kind": "screen", "id": number | null } | { "kind": "window", "id": number } | { "kind": "synthetic" };

/**
 * A remote shared screen in the stats panel.
 */
export type ScreenInStats = { width: number, height: number, 
/**
 * Slices (parts of updates) received per second.
 */
slicesPerSecond: number, bitrateKbps: number, loss: number, 
/**
 * Tiles possibly out of date now, and for how long the oldest has been, ms.
 */
staleTiles: number, staleMs: number, refreshesRequested: number, };

/**
 * This app's own shared screen in the stats panel.
 */
export type ScreenOutStats = { width: number, height: number, 
/**
 * Updates sent per second (a still screen sends only its slow refresh).
 */
fps: number, bitrateKbps: number, 
/**
 * Fraction 0..=1 of the picture that changed per capture.
 */
changedFraction: number, 
/**
 * The screen ladder's level, e.g. "1080p".
 */
quality: string, encodeMs: number, };

export type ScreenShareEnded = { reason: string, };

/**
 * What can be shared: a screen or a window (`list_screen_sources`), for the picker.
 */
export type ScreenSource = { choice: ScreenChoice, name: string, width: number, height: number, 
/**
 * A small picture of it (`data:image/jpeg;base64,…`), null if it could not be captured.
 */
thumbnail: string | null, };

/**
 * Every event the shell emits: `name` is the event name the page listens to and `payload` what
 * it receives (`removed` has none: the page gets null). `UiEvent::to_page` splits the two.
 */
export type SessionEvent = { "name": "waiting", "payload": Waiting } | { "name": "knock", "payload": Knock } | { "name": "knock-withdrawn", "payload": KnockWithdrawn } | { "name": "join-refused", "payload": JoinRefused } | { "name": "joined", "payload": Joined } | { "name": "encryption", "payload": Encryption } | { "name": "participant-joined", "payload": ParticipantWrap } | { "name": "participant-left", "payload": ParticipantLeft } | { "name": "participant-updated", "payload": ParticipantWrap } | { "name": "host-changed", "payload": HostChanged } | { "name": "removed" } | { "name": "meeting-locked", "payload": MeetingLocked } | { "name": "muted-by-host", "payload": ByModerator } | { "name": "media-requested", "payload": MediaRequested } | { "name": "meeting-ended", "payload": ByModerator } | { "name": "reaction", "payload": ReactionSent } | { "name": "screen-share-ended", "payload": ScreenShareEnded } | { "name": "chat", "payload": ChatWrap } | { "name": "file-offer", "payload": FileOffer } | { "name": "file-progress", "payload": FileProgress } | { "name": "file-done", "payload": FileDone } | { "name": "file-failed", "payload": FileFailed } | { "name": "active-speaker", "payload": ActiveSpeaker } | { "name": "stats", "payload": StatsSnapshot } | { "name": "error", "payload": AppError } | { "name": "reconnecting", "payload": Reconnecting } | { "name": "resumed", "payload": Resumed } | { "name": "disconnected", "payload": Disconnected } | { "name": "invitation-opened" } | { "name": "mic-level", "payload": MicLevel };

/**
 * What the app remembers between runs.
 */
export type Settings = { displayName: string, 
/**
 * The relay address last used to join, "host:port"; empty when none.
 */
lastRelayAddr: string, 
/**
 * Cancel the echo of what the speaker plays in the microphone signal (on by default).
 */
echoCancellation: boolean, 
/**
 * Suppress steady background noise in the microphone signal (on by default).
 */
noiseSuppression: boolean, 
/**
 * A desktop notification, while the window is not focused, for a knock, a raised hand
 * (host) and a chat message (on by default).
 */
notifications: boolean, 
/**
 * A short sound when someone joins, leaves or knocks (off by default).
 */
sounds: boolean, };

/**
 * One stats sample; the shell emits one a second (`stats` event) and returns one (`get_stats`).
 */
export type StatsSnapshot = { 
/**
 * Wall-clock time of the sample, ms since the Unix epoch.
 */
timestampMs: number, 
/**
 * Round-trip time to the relay.
 */
rttMs: number, 
/**
 * Loss fraction 0..=1 of all media received over the last interval.
 */
loss: number, jitterMs: number, fpsSent: number, fpsReceived: number, bitrateInKbps: number, bitrateOutKbps: number, 
/**
 * Congestion window of the active file transfer, bytes; null when no transfer runs.
 */
cwndBytes: number | null, 
/**
 * Index on the quality ladder: 0 = 144p, 1 = 240p, 2 = 360p, 3 = 480p.
 */
qualityLevel: number, participants: Array<ParticipantStats>, 
/**
 * The level of what the microphone sends (after voice processing), dBFS.
 */
micLevelDbfs: number, 
/**
 * Whether echo cancellation and noise suppression run on the microphone.
 */
echoCancellation: boolean, noiseSuppression: boolean, 
/**
 * The echo path delay the echo canceller estimated, ms; null while it has none.
 */
aecDelayMs: number | null, 
/**
 * How much the echo canceller takes off the echo, dB; null while it has no estimate.
 */
erleDb: number | null, 
/**
 * This app's shared screen, while it presents.
 */
screenOut: ScreenOutStats | null, };

/**
 * Which way a file transfer goes, from this app's point of view.
 */
export type TransferDirection = "upload" | "download" | "remote";

/**
 * Result of `send_file` and `accept_file`: the id of the transfer in `file-*` events.
 */
export type TransferStarted = { transferId: string, };

/**
 * Result of `check_for_update`: a newer, signed version of the app that can be installed.
 */
export type UpdateInfo = { 
/**
 * The new version, e.g. "0.2.0".
 */
version: string, 
/**
 * The version running now.
 */
currentVersion: string, 
/**
 * The release notes, if the update has any.
 */
notes: string | null, };

export type Waiting = { code: string, requestId: number, };
