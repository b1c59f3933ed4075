/**
 * The reactions people can send, in the order the picker shows them, with the emoji each one
 * is. The names are the shell's {@link Reaction} type (generated from Rust), so a reaction
 * added or dropped there fails the page's type check here.
 */
import type { Reaction } from "./types";

export const REACTION_EMOJI: Record<Reaction, string> = {
  thumbsUp: "👍",
  heart: "❤️",
  laugh: "😂",
  surprised: "😮",
  clap: "👏",
  party: "🎉",
};

/** The picker's order (the object's, which is the protocol's). */
export const REACTIONS = Object.keys(REACTION_EMOJI) as Reaction[];

/** Words for screen readers and tooltips. */
export const REACTION_LABEL: Record<Reaction, string> = {
  thumbsUp: "Thumbs up",
  heart: "Heart",
  laugh: "Laugh",
  surprised: "Surprised",
  clap: "Clap",
  party: "Party",
};
