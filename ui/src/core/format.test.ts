import { describe, expect, it } from "vitest";
import {
  avatarColor,
  baseName,
  displayCode,
  formatBytes,
  formatClock,
  formatElapsed,
  formatPercent,
  formatRate,
  initialOf,
  normalizeCode,
  normalizeName,
  normalizeRelayAddr,
  qualityLabel,
} from "./format";

describe("meeting codes", () => {
  it("accepts six digits typed with spaces or dashes", () => {
    expect(normalizeCode("123456")).toBe("123456");
    expect(normalizeCode(" 123-456 ")).toBe("123456");
    expect(normalizeCode("123 456")).toBe("123456");
  });
  it("rejects anything else", () => {
    expect(normalizeCode("12345")).toBeNull();
    expect(normalizeCode("1234567")).toBeNull();
    expect(normalizeCode("12a456")).toBeNull();
    expect(normalizeCode("１２３４５６")).toBeNull();
    expect(normalizeCode("")).toBeNull();
  });
  it("displays as 3-3", () => {
    expect(displayCode("482913")).toBe("482-913");
    expect(displayCode("oops")).toBe("oops");
  });
});

describe("relay addresses", () => {
  it("accepts host:port, names and bracketed IPv6", () => {
    expect(normalizeRelayAddr(" 192.168.1.20:7878 ")).toBe("192.168.1.20:7878");
    expect(normalizeRelayAddr("relay.local:1")).toBe("relay.local:1");
    expect(normalizeRelayAddr("[fe80::1]:65535")).toBe("[fe80::1]:65535");
  });
  it("rejects missing or out-of-range ports and junk", () => {
    expect(normalizeRelayAddr("192.168.1.20")).toBeNull();
    expect(normalizeRelayAddr("host:0")).toBeNull();
    expect(normalizeRelayAddr("host:65536")).toBeNull();
    expect(normalizeRelayAddr(":7878")).toBeNull();
    expect(normalizeRelayAddr("a b:1")).toBeNull();
    expect(normalizeRelayAddr("fe80::1:7878")).toBeNull();
  });
});

describe("names", () => {
  it("trims and bounds", () => {
    expect(normalizeName("  Ada ")).toBe("Ada");
    expect(normalizeName("   ")).toBeNull();
    expect(normalizeName("x".repeat(64))).toHaveLength(64);
    expect(normalizeName("x".repeat(65))).toBeNull();
    // Counted in characters, not UTF-16 units: 64 emoji are fine.
    expect(normalizeName("😀".repeat(64))).not.toBeNull();
  });
  it("gives initials and stable colours", () => {
    expect(initialOf("ada")).toBe("A");
    expect(initialOf(" ")).toBe("?");
    expect(initialOf("émile")).toBe("É");
    expect(avatarColor("Ada")).toBe(avatarColor("Ada"));
    expect(avatarColor("Ada")).toMatch(/^#[0-9a-f]{6}$/);
  });
});

describe("numbers", () => {
  it("formats sizes and rates", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(1500)).toBe("1.5 KB");
    expect(formatBytes(2_400_000)).toBe("2.4 MB");
    expect(formatBytes(123_000_000)).toBe("123 MB");
    expect(formatBytes(-1)).toBe("–");
    expect(formatRate(1_250_000)).toBe("1.3 MB/s");
  });
  it("formats percent and quality", () => {
    expect(formatPercent(0.004)).toBe("0.4%");
    expect(formatPercent(0.25)).toBe("25%");
    expect(formatPercent(Number.NaN)).toBe("–");
    expect(qualityLabel(0)).toBe("144p");
    expect(qualityLabel(3)).toBe("480p");
    expect(qualityLabel(7)).toBe("–");
  });
  it("formats clock times in the given zone", () => {
    const t = Date.UTC(2025, 0, 1, 14, 5, 59);
    expect(formatClock(t, 0)).toBe("14:05");
    expect(formatClock(t, -60)).toBe("15:05");
    expect(formatClock(t, 300)).toBe("09:05");
  });
  it("formats elapsed seconds", () => {
    expect(formatElapsed(0)).toBe("0 s");
    expect(formatElapsed(12.9)).toBe("12 s");
    expect(formatElapsed(65)).toBe("1 min 5 s");
    expect(formatElapsed(-3)).toBe("0 s");
  });
  it("takes the base name of either kind of path", () => {
    expect(baseName("/home/ada/report.pdf")).toBe("report.pdf");
    expect(baseName("C:\\Users\\ada\\x.png")).toBe("x.png");
    expect(baseName("plain.txt")).toBe("plain.txt");
  });
});
