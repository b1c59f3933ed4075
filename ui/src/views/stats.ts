/**
 * The stats panel: live uPlot charts of RTT, loss, jitter, FPS, bitrate and the file transfer's
 * congestion window over the last 60 s, the current quality level, one row per participant,
 * and, while screens are shared, this app's presentation as sent and one row per presentation
 * received. Charts exist only while the panel is open, so a closed panel costs nothing.
 */
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { formatPercent, qualityLabel } from "../core/format";
import { HISTORY_WINDOW_MS, chartSeries, screenInCells, screenOutWords, voiceWords, type ChartSeries } from "../core/stats";
import { latestStats, type AppState, type MeetingState } from "../core/state";
import type { Store } from "../core/store";
import type { StatsSnapshot } from "../core/types";
import { h, reconcile, setText, show } from "./dom";
import { panelHeader } from "./chat";
import type { VideoHub } from "./video";

interface ChartDef {
  key: string;
  title: string;
  unit: string;
  series: Array<{ label: string; color: string; pick: (c: ChartSeries) => Array<number | null> }>;
  /** The headline number. */
  now: (s: StatsSnapshot) => string;
  /** Lowest top of the y axis, so a flat line near zero does not look dramatic. */
  minTop: number;
}

const BLUE = "#1a73e8";
const GREEN = "#1e8e3e";
const ORANGE = "#e37400";
const RED = "#d93025";
const PURPLE = "#9334e6";

const CHARTS: ChartDef[] = [
  { key: "rtt", title: "Round-trip time", unit: "ms", series: [{ label: "RTT", color: BLUE, pick: (c) => c.rttMs }], now: (s) => `${Math.round(s.rttMs)} ms`, minTop: 50 },
  { key: "loss", title: "Packet loss", unit: "%", series: [{ label: "Loss", color: RED, pick: (c) => c.lossPct }], now: (s) => formatPercent(s.loss), minTop: 5 },
  { key: "jitter", title: "Jitter", unit: "ms", series: [{ label: "Jitter", color: ORANGE, pick: (c) => c.jitterMs }], now: (s) => `${Math.round(s.jitterMs)} ms`, minTop: 20 },
  {
    key: "fps",
    title: "Frame rate",
    unit: "fps",
    series: [
      { label: "Sent", color: BLUE, pick: (c) => c.fpsSent },
      { label: "Received", color: GREEN, pick: (c) => c.fpsReceived },
    ],
    now: (s) => `${Math.round(s.fpsSent)} ↑ ${Math.round(s.fpsReceived)} ↓`,
    minTop: 30,
  },
  {
    key: "bitrate",
    title: "Bitrate",
    unit: "kbps",
    series: [
      { label: "Out", color: BLUE, pick: (c) => c.bitrateOutKbps },
      { label: "In", color: GREEN, pick: (c) => c.bitrateInKbps },
    ],
    now: (s) => `${Math.round(s.bitrateOutKbps)} ↑ ${Math.round(s.bitrateInKbps)} ↓ kbps`,
    minTop: 500,
  },
  {
    key: "cwnd",
    title: "File transfer cwnd",
    unit: "KB",
    series: [{ label: "cwnd", color: PURPLE, pick: (c) => c.cwndKB }],
    now: (s) => (s.cwndBytes === null ? "idle" : `${Math.round(s.cwndBytes / 1024)} KB`),
    minTop: 64,
  },
];

const CHART_HEIGHT = 96;

interface LiveChart {
  def: ChartDef;
  plot: uPlot;
}

export class StatsPanel {
  readonly el: HTMLElement;
  private readonly quality: HTMLDivElement;
  private readonly voice: HTMLDivElement;
  private readonly chartsEl: HTMLDivElement;
  private readonly rows: HTMLTableSectionElement;
  /** This app's presentation as sent, while it presents. */
  private readonly screenOut: HTMLDivElement;
  /** Presentations received, one row each, while anyone else presents. */
  private readonly screensIn: HTMLElement;
  private readonly screenRows: HTMLTableSectionElement;
  private readonly empty: HTMLDivElement;
  private readonly nowEls = new Map<string, HTMLElement>();
  private readonly hosts = new Map<string, HTMLElement>();
  private charts: LiveChart[] = [];
  private prevMeeting: MeetingState | null = null;
  private readonly resizer = new ResizeObserver(() => this.fit());

  constructor(
    store: Store,
    private readonly hub: VideoHub,
  ) {
    this.quality = h("div", { class: "quality-chip", testid: "stats-quality" });
    this.empty = h("div", { class: "panel-note", testid: "stats-empty", text: "Waiting for the first measurements…" });
    this.chartsEl = h(
      "div",
      { class: "charts" },
      ...CHARTS.map((def) => {
        const now = h("span", { class: "chart-now", testid: `stat-${def.key}` });
        const host = h("div", { class: "chart-host" });
        this.nowEls.set(def.key, now);
        this.hosts.set(def.key, host);
        return h(
          "div",
          { class: "chart", testid: `chart-${def.key}` },
          h("div", { class: "chart-head" }, h("span", { class: "chart-title", text: def.title }), now),
          host,
          h("div", { class: "chart-legend" }, ...def.series.map((s) => h("span", { class: "legend-item" }, swatch(s.color), h("span", { text: s.label })))),
        );
      }),
    );
    this.rows = h("tbody", { testid: "stats-rows" });
    this.voice = h("div", { class: "voice-stats", testid: "stat-voice" });
    this.screenOut = h("div", { class: "voice-stats", testid: "stat-screen-out" });
    this.screenRows = h("tbody", { testid: "stats-screen-rows" });
    this.screensIn = h(
      "div",
      {},
      h("h3", { class: "section-title", text: "Presentations received" }),
      h(
        "table",
        { class: "stats-table" },
        h("thead", {}, h("tr", {}, ...["Name", "Res.", "slices/s", "kbps", "loss", "stale tiles"].map((t) => h("th", { text: t })))),
        this.screenRows,
      ),
    );
    this.resizer.observe(this.chartsEl);
    this.el = h(
      "section",
      { class: "panel stats-panel", testid: "panel-stats" },
      panelHeader("Connection stats", store),
      h(
        "div",
        { class: "panel-scroll" },
        h("div", { class: "quality-row" }, h("span", { class: "quality-label", text: "Your video is sent at" }), this.quality),
        this.voice,
        this.screenOut,
        this.empty,
        this.chartsEl,
        h("h3", { class: "section-title", text: "Receiving from" }),
        h(
          "table",
          { class: "stats-table" },
          h("thead", {}, h("tr", {}, ...["Name", "Res.", "fps", "drawn", "kbps", "loss", "jitter"].map((t) => h("th", { text: t })))),
          this.rows,
        ),
        this.screensIn,
      ),
    );
  }

  update(s: AppState, open: boolean): void {
    show(this.el, open);
    const m = s.meeting;
    if (!open || !m) {
      this.close();
      return;
    }
    if (this.charts.length === 0) this.openCharts();
    if (this.prevMeeting && this.prevMeeting.stats === m.stats && this.prevMeeting.roster === m.roster) return;
    this.prevMeeting = m;
    const latest = latestStats(m);
    show(this.empty, latest === null);
    setText(this.quality, latest ? qualityLabel(latest.qualityLevel) : "–");
    setText(this.voice, latest ? voiceWords(latest) : "");
    const series = chartSeries(m.stats);
    const newest = series.t[series.t.length - 1] ?? 0;
    const xs = series.t.map((t) => t - newest);
    for (const c of this.charts) {
      const data = [xs, ...c.def.series.map((s) => s.pick(series))] as uPlot.AlignedData;
      c.plot.setData(data);
      setText(this.nowEls.get(c.def.key)!, latest ? c.def.now(latest) : "");
    }
    const names = new Map(m.roster.map((p) => [p.id, p.displayName]));
    const drawn = this.hub.fps();
    reconcile(
      this.rows,
      (latest?.participants ?? []).filter((r) => names.has(r.participantId) && r.participantId !== m.selfId),
      (r) => String(r.participantId),
      (r) => h("tr", { testid: `stats-row-${r.participantId}` }, ...Array.from({ length: 7 }, () => h("td"))),
      (el, r) => {
        const cells = [
          names.get(r.participantId) ?? "?",
          r.width > 0 ? `${r.height}p` : "–",
          String(Math.round(r.fps)),
          String(Math.round(drawn[r.participantId] ?? 0)),
          String(Math.round(r.bitrateKbps)),
          formatPercent(r.loss),
          `${Math.round(r.jitterMs)} ms`,
        ];
        cells.forEach((text, i) => setText(el.children[i] as HTMLElement, text));
      },
    );
    const out = latest?.screenOut ?? null;
    show(this.screenOut, out !== null);
    setText(this.screenOut, out ? `Your presentation: ${screenOutWords(out)}` : "");
    const screens = (latest?.participants ?? []).flatMap((r) => (r.screen && names.has(r.participantId) && r.participantId !== m.selfId ? [{ id: r.participantId, screen: r.screen }] : []));
    show(this.screensIn, screens.length > 0);
    reconcile(
      this.screenRows,
      screens,
      (r) => String(r.id),
      (r) => h("tr", { testid: `stats-screen-row-${r.id}` }, ...Array.from({ length: 6 }, () => h("td"))),
      (el, r) => [names.get(r.id) ?? "?", ...screenInCells(r.screen)].forEach((text, i) => setText(el.children[i] as HTMLElement, text)),
    );
  }

  /** Destroys the charts (panel closed or meeting over). */
  close(): void {
    for (const c of this.charts) c.plot.destroy();
    this.charts = [];
    this.prevMeeting = null;
  }

  /** Keeps each chart as wide as its column. */
  private fit(): void {
    for (const c of this.charts) {
      const width = this.chartWidth(c.def.key);
      if (width !== c.plot.width) c.plot.setSize({ width, height: CHART_HEIGHT });
    }
  }

  private chartWidth(key: string): number {
    return Math.max(160, Math.floor(this.hosts.get(key)?.clientWidth ?? 300));
  }

  private openCharts(): void {
    this.charts = CHARTS.map((def) => {
      const opts: uPlot.Options = {
        width: this.chartWidth(def.key),
        height: CHART_HEIGHT,
        legend: { show: false },
        cursor: { show: false },
        padding: [6, 16, 0, 0],
        scales: {
          // Seconds relative to the newest sample: -60 … 0.
          x: { time: false, range: () => [-HISTORY_WINDOW_MS / 1000, 0] },
          y: { range: (_u, _min, max) => [0, Math.max(def.minTop, Math.ceil((max || 0) * 1.2))] },
        },
        axes: [
          {
            stroke: "#5f6368",
            grid: { stroke: "#eceff1", width: 1 },
            ticks: { show: false },
            size: 22,
            font: "10px sans-serif",
            incrs: [15, 20, 30],
            space: 40,
            values: (_u, splits) => splits.map((v) => relativeSecondsLabel(v)),
          },
          { stroke: "#5f6368", grid: { stroke: "#eceff1", width: 1 }, ticks: { show: false }, size: 36, font: "10px sans-serif", space: 24 },
        ],
        series: [{}, ...def.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, fill: `${s.color}14`, spanGaps: false, points: { show: false } }))],
      };
      const empty = [[], ...def.series.map(() => [])] as unknown as uPlot.AlignedData;
      return { def, plot: new uPlot(opts, empty, this.hosts.get(def.key)!) };
    });
  }
}

/** "-30s" for a tick 30 s before the newest sample, "now" for the newest. */
function relativeSecondsLabel(tick: number): string {
  const d = Math.round(tick);
  return d === 0 ? "now" : `${d}s`;
}

/** A legend's colour swatch. Coloured through the CSSOM: the content security policy refuses
 * inline `style` attributes. */
function swatch(color: string): HTMLElement {
  const el = h("i");
  el.style.background = color;
  return el;
}
