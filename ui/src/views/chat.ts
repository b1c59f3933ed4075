/**
 * The chat panel: messages with names and times, files shared in the meeting (Save, Open and
 * the SHA-256 verified mark), uploads in progress with rate and congestion window, the clip
 * button and the composer. Files dropped anywhere on the window are sent by the app view.
 */
import type { Controller } from "../core/controller";
import { formatBytes, formatClock, formatRate } from "../core/format";
import { activeTransfers, type AppState, type MeetingState, type PendingChat, type SharedFile, type Transfer } from "../core/state";
import type { Store } from "../core/store";
import type { ChatMessage } from "../core/types";
import { h, reconcile, setAttr, setText, show } from "./dom";
import { icon } from "./icons";

/** Messages from one sender within this long share one name-and-time header, as in Meet. */
const GROUP_MS = 60_000;

type Item = { kind: "msg"; msg: ChatMessage; head: boolean; self: boolean } | { kind: "pending"; p: PendingChat };

export class ChatPanel {
  readonly el: HTMLElement;
  private readonly list: HTMLDivElement;
  private readonly transfers: HTMLDivElement;
  private readonly input: HTMLTextAreaElement;
  private readonly dirText: HTMLSpanElement;
  private readonly empty: HTMLDivElement;
  private prevMeeting: MeetingState | null = null;
  private prevDir = "";
  private wasOpen = false;

  constructor(
    private readonly ctl: Controller,
    private readonly store: Store,
  ) {
    this.list = h("div", { class: "chat-list", testid: "chat-list", attrs: { "aria-live": "polite" } });
    this.empty = h("div", { class: "chat-empty", text: "No messages yet. Drag a file here to send it to everyone." });
    this.transfers = h("div", { class: "transfers", testid: "transfers" });
    this.input = h("textarea", {
      class: "chat-input",
      testid: "chat-input",
      attrs: { placeholder: "Send a message", rows: "1", maxlength: "4000", "aria-label": "Send a message to everyone" },
      on: {
        keydown: (e) => {
          if (e.key === "Enter" && !e.shiftKey) {
            e.preventDefault();
            void this.send();
          }
        },
      },
    });
    this.dirText = h("span", { class: "dir-text", testid: "download-dir" });
    this.el = h(
      "section",
      { class: "panel chat-panel", testid: "panel-chat" },
      panelHeader("In-call messages", store),
      h("div", { class: "panel-note", text: "Messages and files can only be seen by people in the meeting. Files are checked with SHA-256." }),
      h("div", { class: "chat-scroll" }, this.empty, this.list, this.transfers),
      h(
        "div",
        { class: "download-dir" },
        icon("folder", 16),
        this.dirText,
        h("button", { class: "link-btn", testid: "btn-change-download-dir", text: "Change", on: { click: () => void ctl.chooseDownloadDir() } }),
      ),
      h(
        "div",
        { class: "composer" },
        h("button", { class: "icon-btn", testid: "btn-attach", title: "Send a file", attrs: { "aria-label": "Send a file" }, on: { click: () => void ctl.pickAndSendFile() } }, icon("attach", 20)),
        this.input,
        h("button", { class: "icon-btn send", testid: "btn-send-chat", title: "Send message", attrs: { "aria-label": "Send message" }, on: { click: () => void this.send() } }, icon("send", 20)),
      ),
    );
  }

  update(s: AppState, open: boolean): void {
    show(this.el, open);
    const m = s.meeting;
    if (!open || !m) {
      this.wasOpen = false;
      return;
    }
    if (!this.wasOpen) queueMicrotask(() => this.input.focus());
    const opened = !this.wasOpen;
    this.wasOpen = true;
    if (this.prevDir !== s.downloadDir) {
      this.prevDir = s.downloadDir;
      setText(this.dirText, s.downloadDir ? `Downloads go to ${s.downloadDir}` : "Choose where downloads go");
    }
    if (!opened && this.prevMeeting === m) return;
    this.prevMeeting = m;
    const scroller = this.list.parentElement as HTMLElement;
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    const items: Item[] = [];
    let last: ChatMessage | null = null;
    for (const msg of m.chat) {
      const head = !last || last.senderId !== msg.senderId || msg.timestampMs - last.timestampMs > GROUP_MS;
      items.push({ kind: "msg", msg, head, self: msg.senderId === m.selfId });
      last = msg;
    }
    for (const p of m.pendingChat) items.push({ kind: "pending", p });
    show(this.empty, items.length === 0);
    reconcile(
      this.list,
      items,
      (it) => (it.kind === "msg" ? `m${it.msg.id}` : `p${it.p.clientMsgId}`),
      (it) => (it.kind === "msg" ? messageEl(it.msg, this.ctl) : h("div", { class: "msg pending" })),
      (el, it) => (it.kind === "msg" ? updateMessage(el, it.msg, it.head, it.self, m) : updatePending(el, it.p)),
    );
    reconcile(
      this.transfers,
      activeTransfers(m),
      (t) => t.transferId,
      (t) => transferEl(t, this.store),
      (el, t) => updateTransfer(el, t, m),
    );
    if (atBottom || opened) scroller.scrollTop = scroller.scrollHeight;
  }

  private async send(): Promise<void> {
    const text = this.input.value;
    if (await this.ctl.sendChat(text)) {
      // Clear only what was sent: typing may have continued while the command ran.
      if (this.input.value === text) this.input.value = "";
    }
  }
}

/** A panel's title row with its close button. */
export function panelHeader(title: string, store: Store): HTMLElement {
  return h(
    "header",
    { class: "panel-header" },
    h("h2", { text: title }),
    h("button", { class: "icon-btn", testid: "btn-close-panel", title: "Close", attrs: { "aria-label": "Close" }, on: { click: () => store.dispatch({ type: "panelClosed" }) } }, icon("close", 20)),
  );
}

function messageEl(msg: ChatMessage, ctl: Controller): HTMLElement {
  const el = h(
    "div",
    { class: "msg", testid: `chat-msg-${msg.id}` },
    h("div", { class: "msg-head" }, h("span", { class: "msg-name" }), h("span", { class: "msg-time" })),
  );
  if (msg.file) el.append(fileCard(msg.file.fileId, ctl));
  else el.append(h("div", { class: "msg-text", text: msg.text }));
  return el;
}

function updateMessage(el: HTMLElement, msg: ChatMessage, head: boolean, self: boolean, m: MeetingState): void {
  const headEl = el.firstElementChild as HTMLElement;
  show(headEl, head);
  el.classList.toggle("continued", !head);
  if (head) {
    setText(headEl.children[0] as HTMLElement, self ? "You" : msg.senderName);
    setText(headEl.children[1] as HTMLElement, formatClock(msg.timestampMs));
  }
  if (msg.file) {
    const f = m.files[msg.file.fileId];
    const card = el.querySelector<HTMLElement>(".file-card");
    if (f && card) updateFileCard(card, f);
  }
}

function updatePending(el: HTMLElement, p: PendingChat): void {
  if (!el.firstChild) {
    el.append(h("div", { class: "msg-head" }, h("span", { class: "msg-name", text: "You" }), h("span", { class: "msg-time" })), h("div", { class: "msg-text", text: p.text }));
  }
  const time = el.querySelector(".msg-time");
  if (time) setText(time, p.error ? `Not sent: ${p.error.title}` : "Sending…");
  el.classList.toggle("failed", p.error !== null);
}

function fileCard(fileId: number, ctl: Controller): HTMLElement {
  const save = h("button", { class: "btn btn-small btn-outline", testid: `file-save-${fileId}`, on: { click: () => void ctl.acceptFile(fileId) } }, icon("download", 16), h("span", { text: "Save" }));
  const open = h("button", {
    class: "btn btn-small btn-outline",
    testid: `file-open-${fileId}`,
    on: {
      click: (e) => {
        const path = (e.currentTarget as HTMLElement).dataset.path;
        if (path) void ctl.openFile(path);
      },
    },
  }, icon("open", 16), h("span", { text: "Open" }));
  return h(
    "div",
    { class: "file-card", testid: `file-${fileId}` },
    h("div", { class: "file-icon" }, icon("file", 28)),
    h(
      "div",
      { class: "file-body" },
      h("div", { class: "file-name" }),
      h("div", { class: "file-sub" }, h("span", { class: "file-size" }), h("span", { class: "file-status" })),
      h("div", { class: "verified", testid: `file-verified-${fileId}` }, icon("verified", 14), h("span", { text: "SHA-256 verified" })),
      h("div", { class: "progress" }, h("div", { class: "progress-fill" })),
      h("div", { class: "file-error" }),
      h("div", { class: "file-actions" }, save, open),
    ),
  );
}

function updateFileCard(card: HTMLElement, f: SharedFile): void {
  const q = <T extends Element>(sel: string) => card.querySelector(sel) as T;
  setText(q(".file-name"), f.info.name);
  setAttr(q(".file-name"), "title", f.info.name);
  setText(q(".file-size"), formatBytes(f.info.size));
  const status =
    f.status === "sent"
      ? " · Sent to everyone"
      : f.status === "offered"
        ? ""
        : f.status === "downloading"
          ? ` · ${Math.floor((100 * f.bytes) / Math.max(1, f.info.size))}% · ${formatRate(f.rateBytesPerSec)}`
          : f.status === "saved"
            ? " · Saved"
            : " · Not saved";
  const lost = f.info.lost && f.status !== "saved" && f.status !== "sent";
  setText(q(".file-status"), lost ? " · No longer available: the relay that held it stopped" : status);
  const verified = q<HTMLElement>(".verified");
  show(verified, f.verified && (f.status === "saved" || f.status === "sent"));
  setAttr(verified, "title", `SHA-256 ${f.info.sha256}${f.status === "sent" ? " (checked by the relay)" : " (checked on this computer)"}`);
  const progress = q<HTMLElement>(".progress");
  show(progress, f.status === "downloading");
  (progress.firstElementChild as HTMLElement).style.width = `${Math.min(100, (100 * f.bytes) / Math.max(1, f.info.size))}%`;
  const err = q<HTMLElement>(".file-error");
  show(err, f.error !== null);
  setText(err, f.error ? `${f.error.title}. ${f.error.detail}` : "");
  const save = card.querySelector<HTMLButtonElement>("[data-testid^=file-save]")!;
  const open = card.querySelector<HTMLButtonElement>("[data-testid^=file-open]")!;
  show(save, !lost && (f.status === "offered" || f.status === "failed"));
  setText(save.lastElementChild!, f.status === "failed" ? "Try again" : "Save");
  show(open, f.status === "saved" && f.path !== null);
  if (f.path) {
    open.dataset.path = f.path;
    setAttr(open, "title", f.path);
  }
}

function transferEl(t: Transfer, store: Store): HTMLElement {
  return h(
    "div",
    { class: "transfer", testid: `upload-${t.transferId}` },
    h("div", { class: "file-icon" }, icon("file", 24)),
    h(
      "div",
      { class: "file-body" },
      h("div", { class: "file-name" }),
      h("div", { class: "progress" }, h("div", { class: "progress-fill" })),
      h("div", { class: "transfer-figures", testid: `upload-figures-${t.transferId}` }),
    ),
    h(
      "button",
      { class: "icon-btn dismiss", testid: `upload-dismiss-${t.transferId}`, title: "Dismiss", attrs: { "aria-label": "Dismiss" }, on: { click: () => store.dispatch({ type: "transferDismissed", transferId: t.transferId }) } },
      icon("close", 18),
    ),
  );
}

function updateTransfer(el: HTMLElement, t: Transfer, m: MeetingState): void {
  const pct = t.size > 0 ? Math.min(100, (100 * t.bytes) / t.size) : 0;
  const who = t.direction === "remote" ? "Someone is sending" : "Sending";
  const sender = t.direction === "remote" && t.fileId !== null ? m.files[t.fileId]?.info.senderName : undefined;
  setText(el.querySelector(".file-name")!, `${sender ? `${sender} is sending` : who} ${t.name}`);
  (el.querySelector(".progress-fill") as HTMLElement).style.width = `${pct}%`;
  el.classList.toggle("failed", t.status === "failed");
  show(el.querySelector(".dismiss") as HTMLElement, t.status === "failed");
  const parts =
    t.status === "failed"
      ? t.direction === "remote"
        ? [`${t.error?.title ?? "Upload stopped"}: ${t.error?.detail ?? ""}`]
        : [`Failed: ${t.error?.title ?? "unknown error"}`]
      : [`${Math.floor(pct)}%`, `${formatBytes(t.bytes)} of ${formatBytes(t.size)}`, formatRate(t.rateBytesPerSec), ...(t.cwndBytes !== null ? [`cwnd ${formatBytes(t.cwndBytes)}`] : [])];
  setText(el.querySelector(".transfer-figures")!, parts.join(" · "));
}
