/**
 * A minimal store: holds the {@link AppState}, applies actions with the reducer at the time the
 * injected clock gives, and tells subscribers after each change. Subscribers get the previous
 * state too, so views update only what changed.
 */
import { initialState, reduce, type Action, type AppState } from "./state";

/** Called after each change with the new and the previous state. */
export type Listener = (state: AppState, prev: AppState) => void;

/** The store. */
export class Store {
  private current: AppState;
  private readonly listeners = new Set<Listener>();

  constructor(
    private readonly now: () => number = Date.now,
    initial: AppState = initialState(),
  ) {
    this.current = initial;
  }

  /** The current state. */
  get state(): AppState {
    return this.current;
  }

  /** Applies an action; listeners run only when the state changed. */
  dispatch(action: Action): void {
    const prev = this.current;
    const next = reduce(prev, action, this.now());
    if (next === prev) return;
    this.current = next;
    for (const l of [...this.listeners]) l(next, prev);
  }

  /** Registers a listener; returns the function that removes it. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
