//! A small SVG time-series chart: panels stacked over one shared time axis, with the phases
//! of the impairment schedule shaded behind them. Written by hand (no plotting crate) because
//! the lab needs only lines, steps, axes and a legend.

use std::collections::BTreeMap;
use std::fmt::Write;

/// One line on a panel: `(t_s, value)` points in time order. A NaN value breaks the line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// One stacked plot with its own y axis.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Panel {
    pub title: String,
    pub series: Vec<Series>,
    /// Fixed y range; when `None` it is taken from the data (starting at zero).
    pub y_range: Option<(f64, f64)>,
    /// Draw as steps (the value holds until the next point), e.g. for the quality level.
    pub step: bool,
    /// Labels for integer y values instead of numbers (e.g. 0 → "144p").
    pub y_labels: Vec<(f64, String)>,
}

/// A span of the run shaded in every panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub start_s: f64,
    pub end_s: f64,
    pub label: String,
}

/// The whole figure.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chart {
    pub title: String,
    pub panels: Vec<Panel>,
    pub phases: Vec<Phase>,
    /// Right end of the time axis, seconds.
    pub x_max: f64,
}

const WIDTH: f64 = 960.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 56.0;
const PANEL_H: f64 = 120.0;
const GAP: f64 = 34.0;
const BOTTOM: f64 = 44.0;
const PALETTE: [&str; 10] =
    ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
/// Phases alternate: the first (a clean baseline in every scenario) green, the next red, …
const PHASE_FILLS: [&str; 2] = ["#edf6e9", "#fde4e4"];

/// A "nice" tick step (1, 2 or 5 × 10^k) giving about `target` ticks over `span`.
pub fn nice_step(span: f64, target: usize) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Renders the chart as a standalone SVG document.
pub fn render(chart: &Chart) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let n = chart.panels.len().max(1) as f64;
    let height = TOP + n * PANEL_H + (n - 1.0) * GAP + BOTTOM;
    let x_max = if chart.x_max > 0.0 { chart.x_max } else { 1.0 };
    let sx = |t: f64| LEFT + (t.clamp(0.0, x_max) / x_max) * plot_w;

    // One colour per series name, the same in every panel.
    let mut colours: BTreeMap<&str, &str> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    // Series without a single finite point draw nothing and get no legend entry.
    let visible = |s: &&Series| s.points.iter().any(|(t, v)| t.is_finite() && v.is_finite());
    for s in chart.panels.iter().flat_map(|p| &p.series).filter(visible) {
        if !colours.contains_key(s.name.as_str()) {
            colours.insert(&s.name, PALETTE[order.len() % PALETTE.len()]);
            order.push(&s.name);
        }
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ =
        writeln!(out, r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"#, escape(&chart.title));

    for (i, panel) in chart.panels.iter().enumerate() {
        let top = TOP + i as f64 * (PANEL_H + GAP);
        let bottom = top + PANEL_H;
        let (y0, y1) = panel.y_range.unwrap_or_else(|| {
            let max = panel
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .filter(|v| v.is_finite())
                .fold(0.0f64, f64::max);
            (0.0, if max > 0.0 { max * 1.1 } else { 1.0 })
        });
        let span = if y1 > y0 { y1 - y0 } else { 1.0 };
        let sy = |v: f64| bottom - ((v.clamp(y0, y0 + span) - y0) / span) * PANEL_H;

        for (k, ph) in chart.phases.iter().enumerate() {
            let (a, b) = (sx(ph.start_s), sx(ph.end_s));
            let _ = writeln!(
                out,
                r#"<rect x="{a:.1}" y="{top:.1}" width="{:.1}" height="{PANEL_H}" fill="{}"/>"#,
                (b - a).max(0.0),
                PHASE_FILLS[k % PHASE_FILLS.len()]
            );
            if i == 0 {
                let _ = writeln!(
                    out,
                    r##"<text x="{:.1}" y="{:.1}" fill="#555">{}</text>"##,
                    a + 3.0,
                    top + 12.0,
                    escape(&ph.label)
                );
            }
        }
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{top:.1}" width="{plot_w}" height="{PANEL_H}" fill="none" stroke="#999"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="{:.1}" font-weight="bold">{}</text>"#,
            top - 6.0,
            escape(&panel.title)
        );

        // Y ticks: the given labels, or nice numbers.
        let ticks: Vec<(f64, String)> = if panel.y_labels.is_empty() {
            let step = nice_step(span, 4);
            let mut v = (y0 / step).ceil() * step;
            let mut t = Vec::new();
            while v <= y0 + span + step * 1e-9 {
                t.push((v, fmt_num(v)));
                v += step;
            }
            t
        } else {
            panel.y_labels.clone()
        };
        for (v, label) in ticks {
            let y = sy(v);
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + plot_w,
                LEFT - 5.0,
                y + 4.0,
                escape(&label)
            );
        }

        for s in &panel.series {
            let colour = colours.get(s.name.as_str()).copied().unwrap_or(PALETTE[0]);
            let mut d = String::new();
            let mut pen_down = false;
            for &(t, v) in &s.points {
                if !(v.is_finite() && t.is_finite()) {
                    pen_down = false;
                    continue;
                }
                let (x, y) = (sx(t), sy(v));
                if !pen_down {
                    let _ = write!(d, "M{x:.1},{y:.1}");
                    pen_down = true;
                } else if panel.step {
                    let _ = write!(d, " H{x:.1} V{y:.1}");
                } else {
                    let _ = write!(d, " L{x:.1},{y:.1}");
                }
            }
            if !d.is_empty() {
                let _ = writeln!(out, r#"<path d="{d}" fill="none" stroke="{colour}" stroke-width="1.6"/>"#);
            }
        }

        // X ticks under every panel, labelled under the last one.
        let step = nice_step(x_max, 10);
        let mut t = 0.0;
        while t <= x_max + 1e-9 {
            let x = sx(t);
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{bottom:.1}" x2="{x:.1}" y2="{:.1}" stroke="#999"/>"##,
                bottom + 4.0
            );
            if i + 1 == chart.panels.len() {
                let _ = writeln!(
                    out,
                    r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                    bottom + 16.0,
                    fmt_num(t)
                );
            }
            t += step;
        }
        if i + 1 == chart.panels.len() {
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time (s)</text>"#,
                LEFT + plot_w / 2.0,
                bottom + 32.0
            );
        }
    }

    // Legend, right of the panels.
    for (k, name) in order.iter().enumerate() {
        let y = TOP + 10.0 + k as f64 * 15.0;
        let x = LEFT + plot_w + 8.0;
        let colour = colours.get(name).copied().unwrap_or(PALETTE[0]);
        let _ = writeln!(
            out,
            r#"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            y - 4.0,
            x + 18.0,
            y - 4.0,
            x + 22.0,
            y,
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(60.0, 10), 10.0);
        assert_eq!(nice_step(35.0, 10), 5.0);
        assert_eq!(nice_step(0.3, 4), 0.1);
        assert_eq!(nice_step(0.0, 4), 1.0);
        assert_eq!(nice_step(900.0, 4), 500.0);
    }

    #[test]
    fn renders_panels_series_phases_and_escapes_text() {
        let chart = Chart {
            title: "loss <step>".into(),
            x_max: 30.0,
            phases: vec![Phase { start_s: 10.0, end_s: 20.0, label: "loss=15%".into() }],
            panels: vec![
                Panel {
                    title: "quality".into(),
                    step: true,
                    y_range: Some((0.0, 3.0)),
                    y_labels: vec![(0.0, "144p".into()), (3.0, "480p".into())],
                    series: vec![Series { name: "sender".into(), points: vec![(0.0, 3.0), (12.0, 2.0), (25.0, 3.0)] }],
                },
                Panel {
                    title: "loss %".into(),
                    series: vec![
                        Series { name: "sender".into(), points: vec![(0.0, 0.0), (11.0, f64::NAN), (12.0, 15.0)] },
                        Series { name: "receiver".into(), points: vec![(0.0, 1.0)] },
                    ],
                    ..Default::default()
                },
            ],
        };
        let svg = render(&chart);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("loss &lt;step&gt;"));
        assert!(svg.contains("480p") && svg.contains("loss=15%") && svg.contains("time (s)"));
        // Step drawing uses horizontal then vertical moves; the NaN breaks the second line.
        assert!(svg.contains(" H"));
        assert_eq!(svg.matches("<path").count(), 3);
        // The sender has the same colour in both panels, the receiver another.
        assert_eq!(svg.matches(PALETTE[0]).count(), 3, "two paths and the legend");
        assert!(svg.contains(PALETTE[1]));
    }
}
