/**
 * Formatting and input validation: what the user types and what the screens print.
 * Pure functions, no DOM, so every rule is unit-tested.
 */

/** Longest display name the relay accepts, in characters (protocol MAX_DISPLAY_NAME_CHARS). */
export const MAX_NAME_CHARS = 64;
/** Longest chat message the relay accepts, in characters (protocol MAX_CHAT_CHARS). */
export const MAX_CHAT_CHARS = 4000;

/**
 * Turns what the user typed as a meeting code ("123 456", "123-456", pasted with spaces) into six
 * digits, or null when it is not a code.
 */
export function normalizeCode(input: string): string | null {
  const stripped = input.replace(/[\s-]/g, "");
  return /^[0-9]{6}$/.test(stripped) ? stripped : null;
}

/** Shows a six-digit code the way people read it aloud: "123-456". */
export function displayCode(code: string): string {
  return /^[0-9]{6}$/.test(code) ? `${code.slice(0, 3)}-${code.slice(3)}` : code;
}

/**
 * Checks a relay address "host:port" (or "[v6]:port"). Returns the trimmed address, or null when
 * it has no host or no valid port.
 */
export function normalizeRelayAddr(input: string): string | null {
  const addr = input.trim();
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(addr);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  return addr;
}

/** Trims a display name; null when empty or longer than the relay allows. */
export function normalizeName(input: string): string | null {
  const name = input.trim();
  if (name.length === 0 || [...name].length > MAX_NAME_CHARS) return null;
  return name;
}

/** "1.5 MB", "800 KB", "12 B": sizes in decimal units as file managers show them. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "–";
  if (bytes < 1000) return `${Math.round(bytes)} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  const digits = value < 10 ? 1 : 0;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** "2.4 MB/s". */
export function formatRate(bytesPerSec: number): string {
  return `${formatBytes(bytesPerSec)}/s`;
}

/** Clock time of a message, "14:05", in the user's locale-independent 24 h form. */
export function formatClock(timestampMs: number, timeZoneOffsetMin = new Date(timestampMs).getTimezoneOffset()): string {
  const local = new Date(timestampMs - timeZoneOffsetMin * 60_000);
  const hh = String(local.getUTCHours()).padStart(2, "0");
  const mm = String(local.getUTCMinutes()).padStart(2, "0");
  return `${hh}:${mm}`;
}

/** A span of whole seconds, "12 s" or "1 min 5 s". */
export function formatElapsed(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** Percent with one decimal below 10 %: "0.4%", "12%". */
export function formatPercent(fraction: number): string {
  if (!Number.isFinite(fraction)) return "–";
  const pct = fraction * 100;
  return pct < 10 ? `${pct.toFixed(1)}%` : `${Math.round(pct)}%`;
}

/** The quality ladder of the video engine, index → label. */
export const QUALITY_LABELS = ["144p", "240p", "360p", "480p"] as const;

/** Label of a quality level index; out-of-range indices are shown as unknown. */
export function qualityLabel(level: number): string {
  return QUALITY_LABELS[level] ?? "–";
}

/** The initial shown in an avatar when a camera is off. */
export function initialOf(name: string): string {
  const first = [...name.trim()][0];
  return first ? first.toLocaleUpperCase() : "?";
}

/** A stable avatar colour per name, from a small palette that reads well on dark grey. */
export function avatarColor(name: string): string {
  const palette = ["#1e8e3e", "#d93025", "#9334e6", "#e37400", "#1a73e8", "#c5221f", "#12b5cb", "#e52592"];
  let h = 0;
  for (const ch of name) h = (h * 31 + (ch.codePointAt(0) ?? 0)) >>> 0;
  return palette[h % palette.length] ?? palette[0]!;
}

/** The last path component of a file path (either separator), for showing a chosen file. */
export function baseName(path: string): string {
  const parts = path.split(/[\\/]/).filter((p) => p.length > 0);
  return parts[parts.length - 1] ?? path;
}
