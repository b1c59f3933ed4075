import { describe, expect, it } from "vitest";
import { isApplePlatform, shortcutFor, shortcutLabel, type KeyLike } from "./shortcuts";

const key = (k: string, mods: Partial<KeyLike> = {}): KeyLike => ({ key: k, ctrlKey: false, metaKey: false, altKey: false, shiftKey: false, ...mods });

describe("shortcuts", () => {
  it("maps Ctrl+D and Ctrl+E off Apple platforms", () => {
    expect(shortcutFor(key("d", { ctrlKey: true }), false)).toBe("toggleMic");
    expect(shortcutFor(key("e", { ctrlKey: true }), false)).toBe("toggleCamera");
    expect(shortcutFor(key("D", { ctrlKey: true }), false)).toBe("toggleMic");
    expect(shortcutFor(key("d", { metaKey: true }), false)).toBeNull();
  });
  it("maps ⌘D and ⌘E on Apple platforms and leaves Ctrl+D alone", () => {
    expect(shortcutFor(key("d", { metaKey: true }), true)).toBe("toggleMic");
    expect(shortcutFor(key("e", { metaKey: true }), true)).toBe("toggleCamera");
    expect(shortcutFor(key("d", { ctrlKey: true }), true)).toBeNull();
  });
  it("ignores plain letters and extra modifiers", () => {
    expect(shortcutFor(key("d"), false)).toBeNull();
    expect(shortcutFor(key("d", { ctrlKey: true, shiftKey: true }), false)).toBeNull();
    expect(shortcutFor(key("e", { ctrlKey: true, altKey: true }), false)).toBeNull();
    expect(shortcutFor(key("x", { ctrlKey: true }), false)).toBeNull();
  });
  it("closes panels with Escape", () => {
    expect(shortcutFor(key("Escape"), false)).toBe("closePanel");
    expect(shortcutFor(key("Escape", { ctrlKey: true }), false)).toBeNull();
  });
  it("detects platforms and labels", () => {
    expect(isApplePlatform("MacIntel")).toBe(true);
    expect(isApplePlatform("Linux x86_64")).toBe(false);
    expect(shortcutLabel("d", true)).toBe("⌘D");
    expect(shortcutLabel("d", false)).toBe("Ctrl+D");
    expect(shortcutLabel("h", true, true)).toBe("⌘⌥H");
    expect(shortcutLabel("s", false, true)).toBe("Ctrl+Alt+S");
  });
});

describe("raise hand", () => {
  it("is Ctrl+Alt+H, or ⌘⌥H on a Mac whose ⌥H types another character", () => {
    expect(shortcutFor(key("h", { ctrlKey: true, altKey: true }), false)).toBe("toggleHand");
    expect(shortcutFor(key("˙", { metaKey: true, altKey: true, code: "KeyH" }), true)).toBe("toggleHand");
    expect(shortcutFor(key("h", { ctrlKey: true }), false)).toBeNull();
    expect(shortcutFor(key("h", { altKey: true }), false)).toBeNull();
    expect(shortcutFor(key("h", { ctrlKey: true, altKey: true, shiftKey: true }), false)).toBeNull();
  });
});

describe("present", () => {
  it("is Ctrl+Alt+S, or ⌘⌥S on a Mac whose ⌥S types ß", () => {
    expect(shortcutFor(key("s", { ctrlKey: true, altKey: true }), false)).toBe("togglePresenting");
    expect(shortcutFor(key("S", { ctrlKey: true, altKey: true, code: "KeyS" }), false)).toBe("togglePresenting");
    expect(shortcutFor(key("ß", { metaKey: true, altKey: true, code: "KeyS" }), true)).toBe("togglePresenting");
  });
  it("leaves Ctrl+S (save), Alt+S and the other platform's modifier alone", () => {
    expect(shortcutFor(key("s", { ctrlKey: true }), false)).toBeNull();
    expect(shortcutFor(key("s", { altKey: true }), false)).toBeNull();
    expect(shortcutFor(key("s", { ctrlKey: true, altKey: true, shiftKey: true }), false)).toBeNull();
    expect(shortcutFor(key("s", { ctrlKey: true, altKey: true }), true)).toBeNull();
    expect(shortcutFor(key("s", { metaKey: true, altKey: true }), false)).toBeNull();
  });
  it("goes by the physical key when the layout puts another letter there", () => {
    // On a layout whose S key types another letter with Alt held, the key still presents; a
    // key with no shortcut does nothing.
    expect(shortcutFor(key("ś", { ctrlKey: true, altKey: true, code: "KeyS" }), false)).toBe("togglePresenting");
    expect(shortcutFor(key("x", { ctrlKey: true, altKey: true, code: "KeyX" }), false)).toBeNull();
  });
});
