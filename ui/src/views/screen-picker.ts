/**
 * "Choose what to share", the dialog "Present now" opens: the screens and windows the shell
 * lists (`list_screen_sources`), each with its thumbnail, name and size, in two groups (Entire
 * screen, Window), then Share and Cancel. A double click shares at once; Escape, Cancel or a
 * click beside the dialog closes it. While the list comes it says so, and why it could not be
 * had when the shell refused (no screen capture in this session, no permission).
 */
import type { Controller } from "../core/controller";
import { screenChoiceKey, type AppState, type ScreenPicker } from "../core/state";
import type { Store } from "../core/store";
import type { ScreenSource } from "../core/types";
import { h, reconcile, setAttr, setText, show } from "./dom";
import { icon } from "./icons";

export class ScreenPickerView {
  /** The scrim holding the dialog. */
  readonly el: HTMLDivElement;
  private readonly status: HTMLDivElement;
  private readonly statusTitle: HTMLElement;
  private readonly statusDetail: HTMLElement;
  private readonly screensHead: HTMLHeadingElement;
  private readonly screens: HTMLDivElement;
  private readonly windowsHead: HTMLHeadingElement;
  private readonly windows: HTMLDivElement;
  private readonly share: HTMLButtonElement;
  private prev: ScreenPicker | null = null;

  constructor(
    private readonly ctl: Controller,
    private readonly store: Store,
  ) {
    this.statusTitle = h("strong");
    this.statusDetail = h("span");
    this.status = h("div", { class: "picker-status", testid: "screen-picker-status" }, this.statusTitle, this.statusDetail);
    this.screensHead = h("h3", { class: "picker-group", text: "Entire screen", attrs: { id: "picker-screens" } });
    this.screens = h("div", { class: "picker-sources", testid: "screen-group-screens", attrs: { role: "radiogroup", "aria-labelledby": "picker-screens" } });
    this.windowsHead = h("h3", { class: "picker-group", text: "Window", attrs: { id: "picker-windows" } });
    this.windows = h("div", { class: "picker-sources", testid: "screen-group-windows", attrs: { role: "radiogroup", "aria-labelledby": "picker-windows" } });
    this.share = h("button", { class: "btn btn-text primary-text", testid: "btn-share-screen", text: "Share", on: { click: () => void ctl.shareChosenScreen() } });
    this.el = h(
      "div",
      { class: "scrim", testid: "screen-picker", on: { click: (e) => e.target === this.el && ctl.closeScreenPicker() } },
      h(
        "div",
        { class: "dialog screen-picker", attrs: { role: "dialog", "aria-modal": "true", "aria-labelledby": "picker-title" } },
        h("h2", { text: "Choose what to share", attrs: { id: "picker-title" } }),
        h("p", { text: "Everyone in the meeting sees it until you stop presenting." }),
        this.status,
        h("div", { class: "picker-scroll" }, this.screensHead, this.screens, this.windowsHead, this.windows),
        h(
          "div",
          { class: "dialog-actions" },
          h("button", { class: "btn btn-text", testid: "btn-cancel-share", text: "Cancel", on: { click: () => ctl.closeScreenPicker() } }),
          this.share,
        ),
      ),
    );
    show(this.el, false);
  }

  update(s: AppState): void {
    const picker = s.screen === "meeting" ? s.screenPicker : null;
    if (picker === this.prev) return;
    const listedNow = picker?.sources != null && this.prev?.sources == null;
    this.prev = picker;
    show(this.el, picker !== null);
    if (!picker) {
      // The next opening lists afresh, with new thumbnails.
      this.screens.replaceChildren();
      this.windows.replaceChildren();
      return;
    }
    const sources = picker.sources ?? [];
    const error = picker.error;
    show(this.status, picker.sources === null || error !== null || sources.length === 0);
    this.status.classList.toggle("error", error !== null);
    setAttr(this.status, "role", error ? "alert" : "status");
    setText(this.statusTitle, picker.sources === null ? "Looking for screens and windows…" : error ? error.title : "There is nothing to share");
    setText(this.statusDetail, error?.detail ?? "");
    const screens = sources.filter((src) => src.choice.kind !== "window");
    const windows = sources.filter((src) => src.choice.kind === "window");
    this.group(this.screensHead, this.screens, screens, picker.selected);
    this.group(this.windowsHead, this.windows, windows, picker.selected);
    this.share.disabled = picker.selected === null;
    // Keyboard users start on the chosen source once the list is in.
    if (listedNow) this.el.querySelector<HTMLElement>('.picker-source[aria-checked="true"]')?.focus();
  }

  private group(head: HTMLElement, list: HTMLElement, sources: readonly ScreenSource[], selected: string | null): void {
    show(head, sources.length > 0);
    show(list, sources.length > 0);
    reconcile(
      list,
      sources,
      (src) => screenChoiceKey(src.choice),
      (src) => this.sourceEl(src),
      (el, src) => this.updateSource(el, src, screenChoiceKey(src.choice) === selected),
    );
  }

  private sourceEl(src: ScreenSource): HTMLButtonElement {
    const key = screenChoiceKey(src.choice);
    const thumb = src.thumbnail ? h("img", { class: "picker-thumb", attrs: { src: src.thumbnail, alt: "" } }) : h("div", { class: "picker-thumb none" }, icon("desktop", 40));
    return h(
      "button",
      {
        class: "picker-source",
        testid: `screen-source-${key}`,
        attrs: { role: "radio" },
        on: {
          click: () => this.store.dispatch({ type: "screenSourceSelected", key }),
          dblclick: () => {
            this.store.dispatch({ type: "screenSourceSelected", key });
            void this.ctl.shareChosenScreen();
          },
        },
      },
      thumb,
      h("span", { class: "picker-name" }),
      h("span", { class: "picker-size" }),
    );
  }

  private updateSource(el: HTMLElement, src: ScreenSource, selected: boolean): void {
    const size = `${src.width} × ${src.height}`;
    setText(el.querySelector(".picker-name")!, src.name);
    setText(el.querySelector(".picker-size")!, size);
    setAttr(el, "aria-label", `${src.name}, ${size}`);
    setAttr(el, "title", src.name);
    setAttr(el, "aria-checked", selected ? "true" : "false");
  }
}
