/**
 * Carries out what core/alerts.ts finds worth telling: desktop notifications while the window
 * is in the background (when the setting is on; chat at most one every few seconds), and short sounds for joins, leaves and knocks
 * (when that setting is on; off by default). The sounds are made with Web Audio, so the app
 * ships no audio files.
 */
import { alertsFor, type Sound } from "../core/alerts";
import type { Controller } from "../core/controller";
import type { Store } from "../core/store";

/** Chat notifications at most this often; the unread count on the chat button says the rest. */
const CHAT_NOTICE_GAP_MS = 5000;

/** Each sound's notes (Hz) and their length. */
const NOTES: Record<Sound, number[]> = { join: [660, 880], leave: [880, 660], knock: [784, 784] };
const NOTE_S = 0.12;

export class Alerts {
  /** Whether the window has the focus, from its focus and blur events. */
  private focused = document.hasFocus();
  private audio: AudioContext | null = null;
  private lastChatNoticeMs = -Infinity;

  constructor(store: Store, ctl: Controller) {
    window.addEventListener("focus", () => (this.focused = true));
    window.addEventListener("blur", () => (this.focused = false));
    store.subscribe((next, prev) => {
      const { notices, sounds } = alertsFor(prev, next);
      if (next.settings.notifications && !this.focused) {
        for (const n of notices) {
          if (n.chat) {
            // A busy chat does not become a stream of notifications.
            if (Date.now() - this.lastChatNoticeMs < CHAT_NOTICE_GAP_MS) continue;
            this.lastChatNoticeMs = Date.now();
          }
          void ctl.notify(n.title, n.body);
        }
      }
      if (next.settings.sounds) for (const sound of new Set(sounds)) this.play(sound);
    });
  }

  private play(sound: Sound): void {
    try {
      this.audio ??= new AudioContext();
      const ctx = this.audio;
      NOTES[sound].forEach((freq, i) => {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        const start = ctx.currentTime + i * NOTE_S;
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.15, start);
        gain.gain.exponentialRampToValueAtTime(0.001, start + NOTE_S);
        osc.connect(gain).connect(ctx.destination);
        osc.start(start);
        osc.stop(start + NOTE_S);
      });
    } catch (e) {
      // No audio output (or no Web Audio): the meeting goes on without the chime.
      console.warn("cannot play a sound", e);
    }
  }
}
