//! The lab's report figure: time-series panels stacked over one shared time axis, with the
//! phases of the impairment schedule shaded behind them, drawn with `plotters` into an SVG.
//!
//! Scenarios describe what to draw with the plain model below ([`Chart`], [`Panel`],
//! [`Series`], [`Phase`]); [`render`] is the only code that knows plotters. Series of the same
//! name get the same colour in every panel, so a bot is one colour throughout the figure.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor;

use super::LabError;

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

const WIDTH: u32 = 960;
const PANEL_HEIGHT: u32 = 170;
const TITLE_HEIGHT: u32 = 40;
const FONT: &str = "sans-serif";
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];
/// Phases alternate: the first (a clean baseline in every scenario) green, the next red, …
const PHASE_FILLS: [RGBColor; 2] = [RGBColor(0xed, 0xf6, 0xe9), RGBColor(0xfd, 0xe4, 0xe4)];

fn plot_error(e: impl std::fmt::Display) -> LabError {
    LabError::Plot(e.to_string())
}

/// Renders the chart as a standalone SVG document.
pub fn render(chart: &Chart) -> Result<String, LabError> {
    // One colour per series name, in order of first appearance; series without a single finite
    // point draw nothing and take no colour.
    let mut colours: BTreeMap<&str, RGBColor> = BTreeMap::new();
    let visible = |s: &&Series| s.points.iter().any(|(t, v)| t.is_finite() && v.is_finite());
    for s in chart.panels.iter().flat_map(|p| &p.series).filter(visible) {
        let next = PALETTE[colours.len() % PALETTE.len()];
        colours.entry(s.name.as_str()).or_insert(next);
    }
    let panels = chart.panels.len().max(1) as u32;
    let height = TITLE_HEIGHT + panels * PANEL_HEIGHT;
    let x_max = if chart.x_max > 0.0 { chart.x_max } else { 1.0 };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let root = root.titled(&chart.title, (FONT, 20).into_font().style(FontStyle::Bold)).map_err(plot_error)?;
        let areas = root.split_evenly((panels as usize, 1));
        for (i, (area, panel)) in areas.iter().zip(&chart.panels).enumerate() {
            let last = i + 1 == chart.panels.len();
            draw_panel(area, panel, chart, i == 0, last, x_max, &colours)?;
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    panel: &Panel,
    chart: &Chart,
    first: bool,
    last: bool,
    x_max: f64,
    colours: &BTreeMap<&str, RGBColor>,
) -> Result<(), LabError> {
    let (y0, y1) = panel.y_range.unwrap_or_else(|| {
        let max = panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        (0.0, if max > 0.0 { max * 1.1 } else { 1.0 })
    });
    let y1 = if y1 > y0 { y1 } else { y0 + 1.0 };
    let mut ctx = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 15).into_font().style(FontStyle::Bold))
        .margin_left(8)
        .margin_right(16)
        .x_label_area_size(if last { 36 } else { 18 })
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..x_max, y0..y1)
        .map_err(plot_error)?;

    // Phases first, so the grid and the lines are drawn over them.
    ctx.draw_series(chart.phases.iter().enumerate().map(|(k, ph)| {
        Rectangle::new(
            [(ph.start_s.clamp(0.0, x_max), y0), (ph.end_s.clamp(0.0, x_max), y1)],
            PHASE_FILLS[k % 2].filled(),
        )
    }))
    .map_err(plot_error)?;
    if first {
        let style = (FONT, 12)
            .into_font()
            .color(&RGBColor(0x55, 0x55, 0x55))
            .pos(text_anchor::Pos::new(text_anchor::HPos::Left, text_anchor::VPos::Top));
        ctx.draw_series(
            chart
                .phases
                .iter()
                .map(|ph| Text::new(ph.label.clone(), (ph.start_s.clamp(0.0, x_max), y1), style.clone())),
        )
        .map_err(plot_error)?;
    }

    let y_label = |v: &f64| match panel.y_labels.iter().find(|(at, _)| (at - v).abs() < 1e-6) {
        Some((_, label)) => label.clone(),
        None if panel.y_labels.is_empty() => format_number(*v),
        None => String::new(),
    };
    let x_label = |v: &f64| if last { format_number(*v) } else { String::new() };
    let mut mesh = ctx.configure_mesh();
    mesh.light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .axis_style(RGBColor(0x99, 0x99, 0x99))
        .label_style((FONT, 12))
        .x_labels(12)
        // Labelled panels (the quality ladder) put a tick on every integer of their range.
        .y_labels(if panel.y_labels.is_empty() { 5 } else { ((y1 - y0).round() as usize + 1).clamp(2, 12) })
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label);
    if last {
        mesh.x_desc("time (s)");
    }
    mesh.draw().map_err(plot_error)?;

    for s in &panel.series {
        let colour = colours.get(s.name.as_str()).copied().unwrap_or(PALETTE[0]);
        let mut labelled = false;
        for segment in segments(&s.points, panel.step) {
            let line = ctx.draw_series(LineSeries::new(segment, colour.stroke_width(2))).map_err(plot_error)?;
            if !labelled {
                labelled = true;
                line.label(s.name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(3)));
            }
        }
    }
    if panel.series.iter().any(|s| s.points.iter().any(|(t, v)| t.is_finite() && v.is_finite())) {
        ctx.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(0xbb, 0xbb, 0xbb))
            .label_font((FONT, 12))
            .draw()
            .map_err(plot_error)?;
    }
    Ok(())
}

/// The runs of finite points of a series (a NaN or infinity ends one), as steps when asked:
/// each value then holds until the next point's time.
pub fn segments(points: &[(f64, f64)], step: bool) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for &(t, v) in points {
        if !(t.is_finite() && v.is_finite()) {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if step {
            if let Some(&(_, prev)) = current.last() {
                current.push((t, prev));
            }
        }
        current.push((t, v));
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn format_number(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_break_at_nan_and_hold_values_as_steps() {
        let points = [(0.0, 3.0), (12.0, 2.0), (13.0, f64::NAN), (20.0, 1.0), (25.0, 3.0)];
        assert_eq!(segments(&points, false), vec![vec![(0.0, 3.0), (12.0, 2.0)], vec![(20.0, 1.0), (25.0, 3.0)]]);
        assert_eq!(
            segments(&points, true),
            vec![vec![(0.0, 3.0), (12.0, 3.0), (12.0, 2.0)], vec![(20.0, 1.0), (25.0, 1.0), (25.0, 3.0)]]
        );
        assert!(segments(&[(1.0, f64::NAN)], false).is_empty());
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
                        Series { name: "receiver".into(), points: vec![(0.0, 1.0), (5.0, 2.0)] },
                        Series { name: "silent".into(), points: vec![(0.0, f64::NAN)] },
                    ],
                    ..Default::default()
                },
            ],
        };
        let svg = render(&chart).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("loss &lt;step&gt;"), "the title is escaped");
        for text in ["quality", "loss %", "480p", "144p", "loss=15%", "time (s)", "sender", "receiver"] {
            assert!(svg.contains(text), "{text} is in the figure");
        }
        assert!(!svg.contains("silent"), "a series with no finite point has no legend entry");
        // The sender is the first colour in both panels (and its legend entries), the receiver
        // the second.
        let hex = |c: RGBColor| format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
        let sender = svg.matches(&hex(PALETTE[0])).count();
        assert!(sender >= 4, "sender lines in both panels and legends: {sender}");
        assert!(svg.contains(&hex(PALETTE[1])));
        assert!(svg.contains(&hex(PHASE_FILLS[0])), "the phase is shaded");
    }
}
