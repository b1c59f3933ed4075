/**
 * What the buttons do: validates input, calls the shell through {@link Ipc}, and records the
 * outcome in the {@link Store}. DOM-free, so its tests drive it against Tauri's IPC mock.
 * Every failure ends up in the state as words (home form error, toast, or ended screen);
 * none is swallowed.
 */
import { describeError, toAppError } from "./errors";
import { baseName, MAX_CHAT_CHARS, normalizeCode, normalizeName, normalizeRelayAddr } from "./format";
import type { Ipc } from "./ipc";
import type { Store } from "./store";
import { handRaised, isHost, isPresenting, screenChoiceKey, type SettingSwitch } from "./state";
import type { ShortcutAction } from "./shortcuts";
import type { AppError, MediaDevice, ParticipantId, Reaction, Role } from "./types";

/** The operations the views call. */
export class Controller {
  private unlisten: (() => void) | null = null;
  private previewing = false;
  /** Counts the picker's openings, so a list that arrives after it closed (or reopened) is dropped. */
  private pickerOpenings = 0;

  constructor(
    private readonly store: Store,
    private readonly ipc: Ipc,
  ) {}

  /** Subscribes to session events and loads settings, devices and the download folder. */
  async start(): Promise<void> {
    this.unlisten = await this.ipc.listenAll((event) => {
      if (event.name === "invitation-opened") void this.openTakenInvitation();
      this.store.dispatch({ type: "event", event });
    });
    // After listening: a link opened from now on comes as an event, one opened before waits.
    await this.openTakenInvitation();
    void this.checkForUpdate();
    // Move the camera preview with the screens: on at home and in the waiting room, off in a
    // meeting (where the shell sends the self view on its own while the camera is on).
    this.store.subscribe((s, prev) => {
      if (s.screen !== prev.screen || s.cameraOn !== prev.cameraOn) void this.syncPreview();
      // Fill the stats panel at once instead of waiting for the first `stats` event.
      if (s.screen === "meeting" && prev.screen !== "meeting") void this.loadStats();
    });
    const [settings, devices, dir] = await Promise.allSettled([this.ipc.getSettings(), this.ipc.listDevices(), this.ipc.getDownloadDir()]);
    if (settings.status === "fulfilled") this.store.dispatch({ type: "settingsLoaded", settings: settings.value });
    else this.fail(settings.reason);
    if (devices.status === "fulfilled") this.store.dispatch({ type: "devicesListed", devices: devices.value });
    else this.fail(devices.reason);
    if (dir.status === "fulfilled") this.store.dispatch({ type: "downloadDirChanged", dir: dir.value });
    else this.fail(dir.reason);
    await this.syncPreview();
  }

  /** Stops listening to the shell. */
  stop(): void {
    this.unlisten?.();
    this.unlisten = null;
  }

  private async loadStats(): Promise<void> {
    await this.call(async () => {
      const snapshot = await this.ipc.getStats();
      if (snapshot && this.store.state.meeting) this.store.dispatch({ type: "event", event: { name: "stats", payload: snapshot } });
    });
  }

  /** Lists the devices again (one may have been plugged in since). */
  async refreshDevices(): Promise<void> {
    await this.call(async () => this.store.dispatch({ type: "devicesListed", devices: await this.ipc.listDevices() }));
  }

  private async syncPreview(): Promise<void> {
    const s = this.store.state;
    const want = s.cameraOn && s.screen !== "meeting";
    if (want === this.previewing) return;
    this.previewing = want;
    try {
      await (want ? this.ipc.startPreview() : this.ipc.stopPreview());
    } catch (e) {
      this.previewing = false;
      this.fail(e);
    }
  }

  /** "New meeting": validates the name, starts the meeting (embedded relay when no address). */
  async createMeeting(): Promise<void> {
    const home = this.store.state.home;
    if (home.busy) return;
    const name = normalizeName(home.name);
    if (!name) return this.homeError({ code: "invalidName", message: "empty name" });
    let relayAddr: string | null = null;
    if (home.hostOnRelay) {
      relayAddr = normalizeRelayAddr(home.relayAddr);
      if (!relayAddr) return this.homeError({ code: "invalidRelayAddr", message: home.relayAddr });
    }
    this.store.dispatch({ type: "createStarted", name, relayAddr: relayAddr ?? "" });
    await this.saveSettings();
    try {
      // null asks the shell to host the meeting on a relay embedded in the app.
      const created = await this.ipc.createMeeting(name, relayAddr);
      this.store.dispatch({ type: "createSucceeded", created });
    } catch (e) {
      this.store.dispatch({ type: "startFailed", error: toAppError(e) });
    }
  }

  /** "Join": validates name, code and relay address, then knocks. */
  async joinMeeting(): Promise<void> {
    const home = this.store.state.home;
    if (home.busy) return;
    const name = normalizeName(home.name);
    if (!name) return this.homeError({ code: "invalidName", message: "empty name" });
    const code = normalizeCode(home.code);
    if (!code) return this.homeError({ code: "invalidCode", message: home.code });
    const relayAddr = normalizeRelayAddr(home.relayAddr);
    if (!relayAddr) return this.homeError({ code: "invalidRelayAddr", message: home.relayAddr });
    await this.knock(name, code, relayAddr, home.fingerprint);
  }

  private async knock(name: string, code: string, relayAddr: string, fingerprint: string | null): Promise<void> {
    this.store.dispatch({ type: "joinStarted", name, code, relayAddr, fingerprint });
    await this.saveSettings();
    try {
      await this.ipc.joinMeeting(code, name, relayAddr, fingerprint);
    } catch (e) {
      this.store.dispatch({ type: "startFailed", error: toAppError(e) });
    }
  }

  /** A pasted invitation fills in the code, the relay address and the certificate to trust. Whether it could be read. */
  async readInvitation(text: string): Promise<boolean> {
    try {
      const fields = await this.ipc.readInvitation(text);
      this.store.dispatch({ type: "invitationRead", fields });
      return true;
    } catch (e) {
      this.homeError(toAppError(e));
      return false;
    }
  }

  /**
   * An invitation link the app was opened with (clicked in a mail or chat): fills in Join like a
   * pasted one. In a meeting it is kept for after, and a toast says so.
   */
  async openTakenInvitation(): Promise<void> {
    let link: string | null;
    try {
      link = await this.ipc.takeOpenedInvitation();
    } catch (e) {
      return this.fail(e);
    }
    if (link === null) return;
    const read = await this.readInvitation(link);
    const screen = this.store.state.screen;
    if (read && (screen === "meeting" || screen === "waiting")) {
      this.store.dispatch({ type: "toast", kind: "info", text: "Invitation opened", detail: "Leave this meeting to join the one you were invited to: it is filled in on the home screen." });
    }
  }

  /** Asks the shell once whether a newer version exists (only builds with an update endpoint look). */
  private async checkForUpdate(): Promise<void> {
    try {
      const update = await this.ipc.checkForUpdate();
      if (update) this.store.dispatch({ type: "updateFound", update });
    } catch (e) {
      // Offline or the endpoint is down: the app works as it is, the log says why.
      console.warn("update check failed", toAppError(e).message);
    }
  }

  /** "Update and restart": downloads, verifies and installs the update; the app restarts. */
  async installUpdate(): Promise<void> {
    if (!this.store.state.home.update || this.store.state.home.updating) return;
    this.store.dispatch({ type: "updateInstalling", on: true });
    try {
      await this.ipc.installUpdate();
    } catch (e) {
      this.store.dispatch({ type: "updateInstalling", on: false });
      this.homeError(toAppError(e));
    }
  }

  /** After "the relay has a new identity": trusts its new certificate and tries again. */
  async trustNewCertificate(): Promise<void> {
    const offer = this.store.state.home.trustOffer;
    if (!offer) return;
    try {
      await this.ipc.trustRelayCertificate(offer.relayAddr, offer.presented);
    } catch (e) {
      return this.homeError(toAppError(e));
    }
    const last = this.store.state.lastJoin;
    if (last?.kind === "join") await this.knock(last.name, last.code, last.relayAddr, last.fingerprint);
    else await this.createMeeting();
  }

  /** From the ended screen: knock again on the meeting a lost connection was in, or else do
   * again what led into the last meeting. */
  async rejoin(): Promise<void> {
    const { lastJoin: last, ended, settings } = this.store.state;
    this.store.dispatch({ type: "returnedHome" });
    const lost = ended?.rejoin;
    if (lost) {
      const name = last?.name || settings.displayName;
      if (!name) return this.homeError({ code: "invalidName", message: "empty name" });
      return this.knock(name, lost.code, lost.relayAddr, lost.fingerprint);
    }
    if (!last) return;
    if (last.kind === "join") await this.knock(last.name, last.code, last.relayAddr, last.fingerprint);
    else {
      this.store.dispatch({ type: "homeInput", field: "name", value: last.name });
      if (last.relayAddr) this.store.dispatch({ type: "homeInput", field: "relayAddr", value: last.relayAddr });
      this.store.dispatch({ type: "homeHostOnRelay", on: last.relayAddr !== "" });
      await this.createMeeting();
    }
  }

  /** Leaves the waiting room. */
  async cancelJoin(): Promise<void> {
    this.store.dispatch({ type: "joinCancelled" });
    await this.call(() => this.ipc.cancelJoin());
  }

  async admit(requestId: number): Promise<void> {
    this.store.dispatch({ type: "knockAnswered", requestId });
    await this.call(() => this.ipc.admit(requestId));
  }

  async deny(requestId: number): Promise<void> {
    this.store.dispatch({ type: "knockAnswered", requestId });
    await this.call(() => this.ipc.deny(requestId));
  }

  /** Asks for confirmation before removing (the dialog calls {@link confirmRemove}). */
  askRemove(participantId: ParticipantId | null): void {
    this.store.dispatch({ type: "removeAsked", participantId });
  }

  async confirmRemove(): Promise<void> {
    const id = this.store.state.confirmRemove;
    this.store.dispatch({ type: "removeAsked", participantId: null });
    if (id !== null) await this.call(() => this.ipc.removeParticipant(id));
  }

  /** "Admit all": everyone waiting comes in. */
  async admitAll(): Promise<void> {
    for (const k of this.store.state.knocks) this.store.dispatch({ type: "knockAnswered", requestId: k.requestId });
    await this.call(() => this.ipc.admitAll());
  }

  /** (Host) locks or unlocks the meeting; `meeting-locked` confirms it. */
  async setLocked(locked: boolean): Promise<void> {
    await this.call(() => this.ipc.lockMeeting(locked));
  }

  async setRole(participantId: ParticipantId, role: Role): Promise<void> {
    await this.call(() => this.ipc.setRole(participantId, role));
  }

  async mute(participantId: ParticipantId): Promise<void> {
    await this.call(() => this.ipc.muteParticipant(participantId));
  }

  async muteAll(): Promise<void> {
    await this.call(() => this.ipc.muteAll());
    this.store.dispatch({ type: "toast", kind: "info", text: "Everyone else is muted", detail: "They can unmute themselves." });
  }

  async requestMedia(participantId: ParticipantId, device: MediaDevice): Promise<void> {
    await this.call(() => this.ipc.requestMedia(participantId, device));
    const name = this.store.state.meeting?.roster.find((p) => p.id === participantId)?.displayName ?? "They";
    this.store.dispatch({ type: "toast", kind: "info", text: `Asked ${name} to turn on their ${device === "mic" ? "microphone" : "camera"}` });
  }

  /** The answer to a moderator's request: "Turn on" turns the device on, "Not now" does nothing. */
  async answerMediaRequest(turnOn: boolean): Promise<void> {
    const request = this.store.state.mediaRequest;
    this.store.dispatch({ type: "mediaRequestAnswered" });
    if (!request || !turnOn) return;
    if (request.device === "mic" && !this.store.state.micOn) await this.toggleMic();
    if (request.device === "camera" && !this.store.state.cameraOn) await this.toggleCamera();
  }

  /** Raises this app's hand, or lowers it. */
  async toggleHand(): Promise<void> {
    const m = this.store.state.meeting;
    if (!m) return;
    const up = handRaised(m);
    await this.call(() => this.ipc.raiseHand(!up));
  }

  async lowerHand(participantId: ParticipantId): Promise<void> {
    await this.call(() => this.ipc.lowerHand(participantId));
  }

  async react(reaction: Reaction): Promise<void> {
    await this.call(() => this.ipc.react(reaction));
  }

  /** "Present now" (and "Share something else" while presenting): opens the choice of what to
   * share and lists the screens and windows, or says in the dialog why they cannot be listed. */
  async openScreenPicker(): Promise<void> {
    if (!this.store.state.meeting) return;
    const opening = ++this.pickerOpenings;
    this.store.dispatch({ type: "screenPickerOpened" });
    try {
      const sources = await this.ipc.listScreenSources();
      if (opening === this.pickerOpenings) this.store.dispatch({ type: "screenSourcesListed", sources });
    } catch (e) {
      if (opening === this.pickerOpenings) this.store.dispatch({ type: "screenSourcesFailed", error: toAppError(e) });
    }
  }

  /** Cancel, Escape or a click beside the dialog. */
  closeScreenPicker(): void {
    this.pickerOpenings++;
    this.store.dispatch({ type: "screenPickerClosed" });
  }

  /** "Share": presents what is chosen in the picker (or switches to it while presenting). The
   * button shows it at once; the roster confirms it, or a failure puts it back with a toast. */
  async shareChosenScreen(): Promise<void> {
    const picker = this.store.state.screenPicker;
    const source = picker?.sources?.find((src) => screenChoiceKey(src.choice) === picker.selected);
    if (!source) return;
    this.closeScreenPicker();
    this.store.dispatch({ type: "presentingRequested", on: true });
    try {
      await this.ipc.startScreenShare(source.choice);
    } catch (e) {
      this.store.dispatch({ type: "presentingFailed", on: true, error: toAppError(e) });
    }
  }

  /** "Stop presenting". */
  async stopPresenting(): Promise<void> {
    this.store.dispatch({ type: "presentingRequested", on: false });
    try {
      await this.ipc.stopScreenShare();
    } catch (e) {
      this.store.dispatch({ type: "presentingFailed", on: false, error: toAppError(e) });
    }
  }

  /** The bar's present button and Ctrl+Alt+S: stops presenting, or else opens (or closes) the
   * choice of what to present. */
  async togglePresenting(): Promise<void> {
    const m = this.store.state.meeting;
    if (!m) return;
    if (isPresenting(m)) return this.stopPresenting();
    if (this.store.state.screenPicker) return this.closeScreenPicker();
    return this.openScreenPicker();
  }

  /** A desktop notification; one that cannot be shown is logged, not shown as an error. */
  async notify(title: string, body: string): Promise<void> {
    try {
      await this.ipc.notify(title, body);
    } catch (e) {
      console.warn("notification not shown", toAppError(e).message);
    }
  }

  /** The Leave button: the host chooses between leaving and ending the call for everyone. */
  async leaveClicked(): Promise<void> {
    const s = this.store.state;
    if (isHost(s) && (s.meeting?.roster.length ?? 0) > 1) {
      this.store.dispatch({ type: "leaveAsked", on: true });
      return;
    }
    await this.leave();
  }

  /** (Host) "End the call for everyone". */
  async endForEveryone(): Promise<void> {
    this.store.dispatch({ type: "leaveAsked", on: false });
    await this.call(() => this.ipc.endMeeting());
  }

  async leave(): Promise<void> {
    this.store.dispatch({ type: "left" });
    await this.call(() => this.ipc.leaveMeeting());
  }

  returnHome(): void {
    this.store.dispatch({ type: "returnedHome" });
  }

  async toggleMic(): Promise<void> {
    const on = !this.store.state.micOn;
    try {
      await this.ipc.setMic(on);
      this.store.dispatch({ type: "micChanged", on });
    } catch (e) {
      this.fail(e);
    }
  }

  async toggleCamera(): Promise<void> {
    const on = !this.store.state.cameraOn;
    try {
      await this.ipc.setCamera(on);
      this.store.dispatch({ type: "cameraChanged", on });
    } catch (e) {
      this.fail(e);
    }
  }

  async chooseDevice(kind: "camera" | "microphone" | "speaker", id: string): Promise<void> {
    try {
      await this.ipc.chooseDevices({ [kind]: id });
      this.store.dispatch({ type: "deviceChosen", kind, id });
    } catch (e) {
      this.fail(e);
      // Show what is really selected after a refusal.
      await this.refreshDevices();
    }
  }

  /** Sends a chat message; returns false when there was nothing to send or it is too long. */
  async sendChat(raw: string): Promise<boolean> {
    const text = raw.trim();
    if (text.length === 0) return false;
    if ([...text].length > MAX_CHAT_CHARS) {
      this.fail({ code: "chatTooLong", message: `${[...text].length} characters` });
      return false;
    }
    try {
      const { clientMsgId } = await this.ipc.sendChat(text);
      // The echo may already have arrived; the reducer drops the pending copy then.
      const echoed = this.store.state.meeting?.chat.some((m) => m.clientMsgId === clientMsgId && m.senderId === this.store.state.meeting?.selfId);
      if (!echoed) this.store.dispatch({ type: "chatPending", clientMsgId, text });
      return true;
    } catch (e) {
      this.fail(e);
      return false;
    }
  }

  /** Sends files by path (drop, clip button). */
  async sendFiles(paths: readonly string[]): Promise<void> {
    if (!this.store.state.meeting) return;
    for (const path of paths) {
      try {
        const { transferId } = await this.ipc.sendFile(path);
        this.store.dispatch({ type: "uploadStarted", transferId, name: baseName(path) });
      } catch (e) {
        this.store.dispatch({ type: "uploadFailed", name: baseName(path), error: toAppError(e) });
      }
    }
  }

  /** The clip button: asks for a file, then sends it. */
  async pickAndSendFile(): Promise<void> {
    try {
      const path = await this.ipc.pickFile();
      if (path) await this.sendFiles([path]);
    } catch (e) {
      this.fail(e);
    }
  }

  /** "Save" on a received file: downloads it into the download folder. */
  async acceptFile(fileId: number): Promise<void> {
    try {
      const { transferId } = await this.ipc.acceptFile(fileId);
      this.store.dispatch({ type: "downloadStarted", fileId, transferId });
    } catch (e) {
      this.store.dispatch({ type: "downloadFailed", fileId, error: toAppError(e) });
    }
  }

  /** "Open" on a downloaded file; a program is shown in its folder instead, and the toast says why. */
  async openFile(path: string): Promise<void> {
    try {
      if ((await this.ipc.openFile(path)) === "shownInFolder") {
        this.store.dispatch({
          type: "toast",
          kind: "info",
          text: `${baseName(path)} is shown in its folder`,
          detail: "Programs and scripts from a meeting are not opened directly. Open it yourself only if you trust the sender.",
        });
      }
    } catch (e) {
      this.fail(e);
    }
  }

  /** Lets the user pick the download folder. */
  async chooseDownloadDir(): Promise<void> {
    try {
      const dir = await this.ipc.pickDirectory(this.store.state.downloadDir);
      if (!dir) return;
      await this.ipc.chooseDownloadDir(dir);
      this.store.dispatch({ type: "downloadDirChanged", dir });
    } catch (e) {
      this.fail(e);
    }
  }

  /** Runs a keyboard shortcut. */
  async shortcut(action: ShortcutAction): Promise<void> {
    switch (action) {
      case "toggleMic":
        return this.toggleMic();
      case "toggleCamera":
        return this.toggleCamera();
      case "toggleHand":
        return this.toggleHand();
      case "togglePresenting":
        return this.togglePresenting();
      case "closePanel":
        if (this.store.state.screenPicker) this.closeScreenPicker();
        else if (this.store.state.confirmRemove !== null) this.askRemove(null);
        else if (this.store.state.leaveAsked) this.store.dispatch({ type: "leaveAsked", on: false });
        else if (this.store.state.mediaRequest) this.store.dispatch({ type: "mediaRequestAnswered" });
        else this.store.dispatch({ type: "panelClosed" });
        return;
    }
  }

  /** Switches echo cancellation, noise suppression, notifications or sounds: saved, and applied
   * at once (voice processing to the microphone meter and to a meeting in progress). */
  async setSwitch(setting: SettingSwitch, on: boolean): Promise<void> {
    this.store.dispatch({ type: "settingToggled", setting, on });
    await this.saveSettings();
  }

  private async saveSettings(): Promise<void> {
    await this.call(() => this.ipc.saveSettings(this.store.state.settings));
  }

  private homeError(err: AppError): void {
    this.store.dispatch({ type: "homeError", error: describeError(err) });
  }

  private fail(e: unknown): void {
    this.store.dispatch({ type: "commandFailed", error: toAppError(e) });
  }

  private async call(f: () => Promise<unknown>): Promise<void> {
    try {
      await f();
    } catch (e) {
      this.fail(e);
    }
  }
}
