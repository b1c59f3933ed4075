/**
 * Keyboard shortcuts, Meet's: Ctrl+D (⌘+D on macOS) toggles the microphone, Ctrl+E (⌘+E)
 * the camera, Ctrl+Alt+H (⌘+⌥+H) raises or lowers the hand, and Ctrl+Alt+S (⌘+⌥+S) starts
 * presenting (it opens the choice of what to share) or stops. The mapping is a pure function
 * of the key event's fields so it is unit-tested.
 */

/** What a shortcut does. */
export type ShortcutAction = "toggleMic" | "toggleCamera" | "toggleHand" | "togglePresenting" | "closePanel";

/** The fields of a KeyboardEvent the mapping reads. */
export interface KeyLike {
  key: string;
  /** The physical key ("KeyH"), when known. */
  code?: string;
  ctrlKey: boolean;
  metaKey: boolean;
  altKey: boolean;
  shiftKey: boolean;
}

/** The shortcuts held with Alt as well as Ctrl (⌘), by letter. */
const WITH_ALT: Readonly<Record<string, ShortcutAction>> = { h: "toggleHand", s: "togglePresenting" };

/** True on Apple platforms, where the command key plays Ctrl's part. */
export function isApplePlatform(platform: string): boolean {
  return /mac|iphone|ipad|ipod/i.test(platform);
}

/**
 * The action for a key press, or null. On macOS only ⌘ counts as the modifier and on other
 * systems only Ctrl, so Ctrl+D on a Mac (delete forward in text fields) keeps its meaning.
 */
export function shortcutFor(e: KeyLike, apple: boolean): ShortcutAction | null {
  if (e.key === "Escape" && !e.ctrlKey && !e.metaKey && !e.altKey) return "closePanel";
  const primary = apple ? e.metaKey && !e.ctrlKey : e.ctrlKey && !e.metaKey;
  if (!primary || e.shiftKey) return null;
  if (e.altKey) {
    // With Alt the key may come out as another character (⌥H is "˙", ⌥S "ß" on a Mac): read
    // `code`'s letter too.
    const physical = /^Key([A-Z])$/.exec(e.code ?? "")?.[1]?.toLowerCase();
    return (physical !== undefined ? WITH_ALT[physical] : undefined) ?? WITH_ALT[e.key.toLowerCase()] ?? null;
  }
  switch (e.key.toLowerCase()) {
    case "d":
      return "toggleMic";
    case "e":
      return "toggleCamera";
    default:
      return null;
  }
}

/** The label of a shortcut for tooltips: "Ctrl+D" or "⌘D"; with `alt`, "Ctrl+Alt+H" or "⌘⌥H". */
export function shortcutLabel(letter: string, apple: boolean, alt = false): string {
  const l = letter.toUpperCase();
  if (apple) return alt ? `⌘⌥${l}` : `⌘${l}`;
  return alt ? `Ctrl+Alt+${l}` : `Ctrl+${l}`;
}
