/**
 * What deserves a desktop notification or a sound, from one state change to the next: a knock
 * (for the host and co-hosts), a hand raised (for them too), a chat message from someone else,
 * and, as sounds, people joining and leaving. Pure, so it is unit-tested; the view that plays
 * the sounds and the controller that asks the shell for notifications decide whether they are
 * wanted (the settings, and whether the window has the focus).
 */
import { isModerator, type AppState } from "./state";

/** A desktop notification's words; `chat` ones may be thinned out by the caller. */
export interface Notice {
  title: string;
  body: string;
  chat: boolean;
}

/** The sounds the meeting makes, when sounds are on. */
export type Sound = "join" | "leave" | "knock";

/** What changed between `prev` and `next` that a person away from the window would want to know. */
export interface Alerts {
  notices: Notice[];
  sounds: Sound[];
}

/** Longest chat text put in a notification. */
const NOTICE_TEXT_CHARS = 140;

export function alertsFor(prev: AppState, next: AppState): Alerts {
  const notices: Notice[] = [];
  const sounds: Sound[] = [];
  const before = prev.meeting;
  const m = next.meeting;
  // Nothing before the meeting is on screen, nor for what its own arrival brings (the roster,
  // the chat history).
  if (!m || !before || before.code !== m.code) return { notices, sounds };
  if (next.knocks !== prev.knocks) {
    // A knock shown again (after a reconnect) is not news.
    const known = new Set(prev.knockIdsSeen);
    for (const k of next.knocks.filter((k) => !known.has(k.requestId))) {
      notices.push({ title: `${k.name} wants to join`, body: "Open Parlor to admit or deny.", chat: false });
      sounds.push("knock");
    }
  }
  if (m.roster !== before.roster) {
    const had = new Map(before.roster.map((p) => [p.id, p]));
    const has = new Set(m.roster.map((p) => p.id));
    for (const p of m.roster) {
      const old = had.get(p.id);
      if (!old) {
        if (p.id !== m.selfId) sounds.push("join");
      } else if (p.id !== m.selfId && p.handRaised !== null && old.handRaised === null && isModerator(next)) {
        notices.push({ title: `${p.displayName} raised a hand`, body: "Open Parlor to see who wants to speak.", chat: false });
      }
    }
    if (before.roster.some((p) => !has.has(p.id))) sounds.push("leave");
  }
  if (m.chat !== before.chat) {
    const seen = new Set(before.chat.map((c) => c.id));
    for (const c of m.chat.filter((c) => !seen.has(c.id) && c.senderId !== m.selfId)) {
      const text = c.file ? `shared ${c.file.name}` : c.text;
      const body = [...text].length > NOTICE_TEXT_CHARS ? `${[...text].slice(0, NOTICE_TEXT_CHARS - 1).join("")}…` : text;
      notices.push({ title: c.senderName, body, chat: true });
    }
  }
  return { notices, sounds };
}
