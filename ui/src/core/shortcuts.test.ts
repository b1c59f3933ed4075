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
  });
});
