//! The run's plots, as PNG and SVG: `latency-raw`, `latency-quantiles` and
//! `rate`.
//!
//! Every plot has time (s since the test started) on x, the fault windows
//! ([`crate::faults`]) shaded and labelled, and a red marker on the time axis
//! at each anomaly's time and at the ops it involves.
//!
//! Decisions:
//! - Colours mean outcomes (`ok` blue, `fail` red, `info` orange) and marker
//!   shapes mean functions, the same on every plot.
//! - `latency-raw` draws at most [`RAW_POINT_BUDGET`] `ok` ops, evenly
//!   spaced in the history; every `fail`, `info` and anomalous op is drawn,
//!   so a 1M-op run still gives small files without hiding what matters.
//! - Quantiles and rates are computed over every op, in about
//!   [`BUCKETS`] time buckets, by completion time.
//! - Text uses DejaVu Sans, embedded (the `dejavu` crate; Bitstream Vera
//!   licence), so no system font is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Once;

use checker::history::OpType;
use image::ImageEncoder;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::faults::FaultWindow;
use crate::ops::ClientOp;
use crate::summary::Anomaly;

/// The most `ok` ops `latency-raw` draws.
pub const RAW_POINT_BUDGET: usize = 10_000;
/// About how many time buckets quantile and rate plots use.
pub const BUCKETS: usize = 100;
const SIZE: (u32, u32) = (1200, 480);
const FONT: &str = "sans-serif";

/// A plot could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PlotError {
    /// The file being written.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// The three plots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plot {
    /// Every completed op's latency.
    LatencyRaw,
    /// Latency quantiles per time bucket and function.
    LatencyQuantiles,
    /// Throughput per time bucket, function and outcome.
    Rate,
}

impl Plot {
    /// All of them, in report order.
    pub const ALL: [Plot; 3] = [Plot::LatencyRaw, Plot::LatencyQuantiles, Plot::Rate];

    /// The file stem: `latency-raw`, `latency-quantiles`, `rate`.
    pub fn name(self) -> &'static str {
        match self {
            Plot::LatencyRaw => "latency-raw",
            Plot::LatencyQuantiles => "latency-quantiles",
            Plot::Rate => "rate",
        }
    }
}

/// What the plots are drawn from.
#[derive(Clone, Copy, Debug)]
pub struct PlotInput<'a> {
    /// The client ops.
    pub ops: &'a [ClientOp],
    /// The fault windows.
    pub windows: &'a [FaultWindow],
    /// The anomalies (their `time` and `ops`).
    pub anomalies: &'a [Anomaly],
    /// The end of the history, ns.
    pub end_ns: u64,
}

/// The files one plot was written to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlotFiles {
    /// Which plot.
    pub plot: Plot,
    /// `<name>.png`.
    pub png: PathBuf,
    /// `<name>.svg`.
    pub svg: PathBuf,
}

/// Writes every plot into `dir` as PNG and SVG.
pub fn write_plots(dir: &Path, input: &PlotInput) -> Result<Vec<PlotFiles>, PlotError> {
    register_fonts();
    let prepared = Prepared::new(input);
    let mut files = Vec::new();
    for plot in Plot::ALL {
        let png = dir.join(format!("{}.png", plot.name()));
        let svg = dir.join(format!("{}.svg", plot.name()));
        let fail = |path: &Path| {
            let path = path.to_path_buf();
            move |message: String| PlotError { path, message }
        };
        // Both drawn into memory and written here: plotters' own file
        // writers drop their buffers' last flush, and with it a full disk's
        // error (a plot cut short, and no word of it).
        let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
        draw(
            BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area(),
            plot,
            &prepared,
        )
        .map_err(fail(&png))?;
        let mut encoded = Vec::new();
        image::codecs::png::PngEncoder::new(&mut encoded)
            .write_image(&rgb, SIZE.0, SIZE.1, image::ColorType::Rgb8)
            .map_err(|e| fail(&png)(e.to_string()))?;
        std::fs::write(&png, encoded).map_err(|e| fail(&png)(e.to_string()))?;
        let mut text = String::new();
        draw(
            SVGBackend::with_string(&mut text, SIZE).into_drawing_area(),
            plot,
            &prepared,
        )
        .map_err(fail(&svg))?;
        std::fs::write(&svg, text).map_err(|e| fail(&svg)(e.to_string()))?;
        files.push(PlotFiles { plot, png, svg });
    }
    Ok(files)
}

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are DejaVu's own TTFs; registering cannot fail on them.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// The data every plot shares, computed once.
struct Prepared<'a> {
    input: &'a PlotInput<'a>,
    end_s: f64,
    functions: Vec<String>,
    anomalous: BTreeSet<u64>,
    anomaly_times: Vec<(f64, String)>,
    bucket_s: f64,
}

impl<'a> Prepared<'a> {
    fn new(input: &'a PlotInput<'a>) -> Prepared<'a> {
        let functions: BTreeSet<String> = input.ops.iter().map(|op| op.f.clone()).collect();
        let anomalous = input
            .anomalies
            .iter()
            .flat_map(|a| a.ops.iter().copied())
            .collect();
        let anomaly_times = input
            .anomalies
            .iter()
            .filter_map(|a| a.time.map(|t| (secs(t), a.kind.clone())))
            .collect();
        let end_s = secs(input.end_ns).max(0.001);
        Prepared {
            input,
            end_s,
            functions: functions.into_iter().collect(),
            anomalous,
            anomaly_times,
            bucket_s: nice_bucket(end_s / BUCKETS as f64),
        }
    }

    fn shape_of(&self, f: &str) -> usize {
        self.functions.iter().position(|g| g == f).unwrap_or(0)
    }

    fn is_anomalous(&self, op: &ClientOp) -> bool {
        self.anomalous.contains(&op.index)
            || op
                .complete_index
                .is_some_and(|i| self.anomalous.contains(&i))
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The smallest 1/2/5 × 10^k at least `raw` seconds.
fn nice_bucket(raw: f64) -> f64 {
    let raw = raw.max(1e-3);
    let base = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * base)
        .find(|&b| b >= raw)
        .unwrap_or(10.0 * base)
}

fn outcome_colour(outcome: OpType) -> RGBColor {
    match outcome {
        OpType::Ok => RGBColor(31, 119, 180),
        OpType::Fail => RGBColor(214, 39, 40),
        _ => RGBColor(255, 127, 14),
    }
}

fn fault_colour(fault: &str) -> RGBColor {
    match fault {
        "partition" => RGBColor(230, 170, 0),
        "kill" | "crash" => RGBColor(200, 60, 60),
        "pause" => RGBColor(90, 90, 220),
        "clock" => RGBColor(40, 160, 80),
        _ => RGBColor(160, 80, 200),
    }
}

const ANOMALY: RGBColor = RGBColor(200, 0, 40);

/// Runs `$body` with `$make(at, size, style)` building a marker of the
/// function's shape (disc, triangle, cross, ring). A macro because the
/// shapes are distinct types and legends need `'static`-free concrete ones.
macro_rules! with_marker {
    ($shape:expr, $make:ident => $body:expr) => {
        match $shape % 4 {
            0 => {
                fn $make<C>(at: C, size: i32, style: ShapeStyle) -> Circle<C, i32> {
                    Circle::new(at, size, style)
                }
                $body
            }
            1 => {
                fn $make<C>(at: C, size: i32, style: ShapeStyle) -> TriangleMarker<C, i32> {
                    TriangleMarker::new(at, size + 1, style)
                }
                $body
            }
            2 => {
                fn $make<C>(at: C, size: i32, style: ShapeStyle) -> Cross<C, i32> {
                    Cross::new(at, size + 1, style.stroke_width(2))
                }
                $body
            }
            _ => {
                fn $make<C>(at: C, size: i32, style: ShapeStyle) -> Circle<C, i32> {
                    let ring = ShapeStyle {
                        filled: false,
                        stroke_width: 2,
                        ..style
                    };
                    Circle::new(at, size + 1, ring)
                }
                $body
            }
        }
    };
}

type DrawResult = Result<(), String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, plot: Plot, data: &Prepared) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    match plot {
        Plot::LatencyRaw => draw_latency_raw(&root, data)?,
        Plot::LatencyQuantiles => draw_quantiles(&root, data)?,
        Plot::Rate => draw_rate(&root, data)?,
    }
    root.present().map_err(err)
}

fn latency_range(data: &Prepared) -> Range<f64> {
    let (mut lo, mut hi) = (f64::MAX, 0f64);
    for ms in data
        .input
        .ops
        .iter()
        .filter_map(|op| op.latency_ns())
        .map(|ns| ns as f64 / 1e6)
    {
        lo = lo.min(ms);
        hi = hi.max(ms);
    }
    if hi <= 0.0 {
        return 0.01..10.0;
    }
    (lo.max(1e-3) / 1.5)..(hi * 1.5)
}

/// The completed ops the `latency-raw` plot draws, and its stride: every
/// fail, info and anomalous op, and one `ok` op in `stride` so that at most
/// [`RAW_POINT_BUDGET`] of them are drawn.
fn raw_points<'a>(data: &Prepared<'a>) -> (Vec<&'a ClientOp>, usize) {
    let ops = data.input.ops;
    let completed: Vec<&ClientOp> = ops.iter().filter(|op| op.complete_ns.is_some()).collect();
    let ok_count = completed
        .iter()
        .filter(|op| op.outcome == OpType::Ok)
        .count();
    let stride = ok_count.div_ceil(RAW_POINT_BUDGET).max(1);
    let mut ok_seen = 0usize;
    let shown: Vec<&ClientOp> = completed
        .into_iter()
        .filter(|op| {
            if op.outcome != OpType::Ok || data.is_anomalous(op) {
                return true;
            }
            ok_seen += 1;
            (ok_seen - 1) % stride == 0
        })
        .collect();
    (shown, stride)
}

fn draw_latency_raw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &Prepared,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (shown, stride) = raw_points(data);
    let caption = if stride > 1 {
        format!("latency, every op (1 in {stride} ok ops drawn; all fail/info/anomalous)")
    } else {
        "latency, every op".to_string()
    };
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 18))
        .margin(12)
        .margin_top(14)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..data.end_s, latency_range(data).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("latency (ms, log)")
        .label_style((FONT, 13))
        .light_line_style(RGBColor(244, 244, 244))
        .draw()
        .map_err(err)?;
    let area = chart.plotting_area().get_pixel_range();
    shade_faults(root, &area, data)?;
    for outcome in [OpType::Ok, OpType::Info, OpType::Fail] {
        for (shape, f) in data.functions.iter().enumerate() {
            let colour = outcome_colour(outcome);
            let style = colour.mix(0.6).filled();
            let points = shown
                .iter()
                .filter(|op| op.outcome == outcome && &op.f == f);
            let points: Vec<(f64, f64)> = points
                .map(|op| {
                    (
                        secs(op.invoke_ns),
                        op.latency_ns().unwrap_or(0).max(1) as f64 / 1e6,
                    )
                })
                .collect();
            if points.is_empty() {
                continue;
            }
            let label = format!("{f} {outcome}");
            with_marker!(shape, mk => chart
                .draw_series(points.into_iter().map(|p| mk(p, 2, style)))
                .map_err(err)?
                .label(label)
                .legend(move |p| mk(p, 4, colour.filled())));
        }
    }
    let anomalous: Vec<(usize, (f64, f64))> = shown
        .iter()
        .filter(|op| data.is_anomalous(op))
        .map(|op| {
            let ms = op.latency_ns().unwrap_or(0).max(1) as f64 / 1e6;
            (data.shape_of(&op.f), (secs(op.invoke_ns), ms))
        })
        .collect();
    if !anomalous.is_empty() {
        let ring = ANOMALY.stroke_width(2);
        chart
            .draw_series(anomalous.into_iter().map(|(_, p)| Circle::new(p, 6, ring)))
            .map_err(err)?
            .label("op of an anomaly")
            .legend(move |p| Circle::new(p, 5, ring));
    }
    chart_legend(&mut chart)?;
    mark_anomalies(root, &area, data)
}

/// Draws the legend of `chart`.
fn chart_legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 12))
        .draw()
        .map_err(err)
}

fn x_pixel(area: &(Range<i32>, Range<i32>), end_s: f64, t: f64) -> i32 {
    let (x, _) = area;
    x.start + ((t / end_s).clamp(0.0, 1.0) * f64::from(x.end - x.start)) as i32
}

/// Shades each fault window over the plotting area and labels it above.
fn shade_faults<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &(Range<i32>, Range<i32>),
    data: &Prepared,
) -> DrawResult {
    let (_, y) = area;
    for (i, window) in data.input.windows.iter().enumerate() {
        let colour = fault_colour(&window.fault);
        let x0 = x_pixel(area, data.end_s, secs(window.start_ns));
        let end = window.end_ns.map_or(data.end_s, secs);
        let x1 = x_pixel(area, data.end_s, end).max(x0 + 2);
        root.draw(&Rectangle::new(
            [(x0, y.start), (x1, y.end)],
            colour.mix(0.16).filled(),
        ))
        .map_err(err)?;
        root.draw(&PathElement::new(
            vec![(x0, y.start), (x0, y.end)],
            colour.mix(0.8),
        ))
        .map_err(err)?;
        // Inside the top of the plot; two alternating rows keep neighbours readable.
        let row = y.start + 3 + 14 * (i as i32 % 2);
        let text = Text::new(
            window.label.clone(),
            (x0 + 3, row),
            (FONT, 12).into_font().color(&colour),
        );
        root.draw(&text).map_err(err)?;
    }
    Ok(())
}

/// A red tick and triangle on the time axis at each anomaly's time.
fn mark_anomalies<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &(Range<i32>, Range<i32>),
    data: &Prepared,
) -> DrawResult {
    let (_, y) = area;
    let mut drawn: BTreeMap<i32, ()> = BTreeMap::new();
    let mut labelled: BTreeSet<String> = BTreeSet::new();
    for (t, kind) in &data.anomaly_times {
        let x = x_pixel(area, data.end_s, *t);
        if drawn.insert(x, ()).is_none() {
            root.draw(&PathElement::new(
                vec![(x, y.start), (x, y.end)],
                ANOMALY.mix(0.5),
            ))
            .map_err(err)?;
            let triangle = vec![(x, y.end - 9), (x - 6, y.end + 1), (x + 6, y.end + 1)];
            root.draw(&Polygon::new(triangle, ANOMALY.filled()))
                .map_err(err)?;
        }
        if labelled.insert(kind.clone()) {
            let style = (FONT, 12).into_font().color(&ANOMALY);
            root.draw(&Text::new(format!("▲ {kind}"), (x + 6, y.end - 22), style))
                .map_err(err)?;
        }
    }
    Ok(())
}

/// Per bucket, the latencies (ms) of the ops of `f` that completed in it.
fn bucket_latencies(data: &Prepared, f: &str) -> Vec<Vec<f64>> {
    let n = (data.end_s / data.bucket_s).ceil() as usize + 1;
    let mut buckets = vec![Vec::new(); n];
    for op in data.input.ops.iter().filter(|op| op.f == f) {
        if let (Some(done), Some(lat)) = (op.complete_ns, op.latency_ns()) {
            let b = ((secs(done) / data.bucket_s) as usize).min(n - 1);
            buckets[b].push(lat as f64 / 1e6);
        }
    }
    buckets
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

const QUANTILES: [(&str, f64, RGBColor); 4] = [
    ("p50", 0.50, RGBColor(31, 119, 180)),
    ("p95", 0.95, RGBColor(44, 160, 44)),
    ("p99", 0.99, RGBColor(255, 127, 14)),
    ("max", 1.00, RGBColor(214, 39, 40)),
];

fn draw_quantiles<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, data: &Prepared) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let caption = format!("latency quantiles per {} s, by function", data.bucket_s);
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 18))
        .margin(12)
        .margin_top(14)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..data.end_s, latency_range(data).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("latency (ms, log)")
        .label_style((FONT, 13))
        .light_line_style(RGBColor(244, 244, 244))
        .draw()
        .map_err(err)?;
    let area = chart.plotting_area().get_pixel_range();
    shade_faults(root, &area, data)?;
    for (shape, f) in data.functions.iter().enumerate() {
        let mut buckets = bucket_latencies(data, f);
        for bucket in &mut buckets {
            bucket.sort_by(f64::total_cmp);
        }
        for (name, q, colour) in QUANTILES {
            let points: Vec<(f64, f64)> = buckets
                .iter()
                .enumerate()
                .filter(|(_, b)| !b.is_empty())
                .map(|(i, b)| ((i as f64 + 0.5) * data.bucket_s, quantile(b, q)))
                .collect();
            let line = colour.stroke_width(if name == "p50" { 2 } else { 1 });
            chart
                .draw_series(LineSeries::new(points.clone(), line))
                .map_err(err)?;
            let label = format!("{f} {name}");
            with_marker!(shape, mk => chart
                .draw_series(points.into_iter().map(|p| mk(p, 3, colour.filled())))
                .map_err(err)?
                .label(label)
                .legend(move |p| mk(p, 4, colour.filled())));
        }
    }
    chart_legend(&mut chart)?;
    mark_anomalies(root, &area, data)
}

fn draw_rate<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, data: &Prepared) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let n = (data.end_s / data.bucket_s).ceil() as usize + 1;
    let mut series: BTreeMap<(usize, u8), Vec<f64>> = BTreeMap::new();
    for op in data.input.ops {
        let (Some(done), shape) = (op.complete_ns, data.shape_of(&op.f)) else {
            continue;
        };
        let rank = match op.outcome {
            OpType::Ok => 0,
            OpType::Fail => 1,
            _ => 2,
        };
        let b = ((secs(done) / data.bucket_s) as usize).min(n - 1);
        series.entry((shape, rank)).or_insert_with(|| vec![0.0; n])[b] += 1.0 / data.bucket_s;
    }
    let top = series.values().flatten().fold(1f64, |a, &b| a.max(b)) * 1.15;
    let caption = format!(
        "throughput per {} s, by function and outcome",
        data.bucket_s
    );
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 18))
        .margin(12)
        .margin_top(14)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..data.end_s, 0f64..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("completions / s")
        .label_style((FONT, 13))
        .light_line_style(RGBColor(244, 244, 244))
        .draw()
        .map_err(err)?;
    let area = chart.plotting_area().get_pixel_range();
    shade_faults(root, &area, data)?;
    for ((shape, rank), counts) in series {
        let outcome = [OpType::Ok, OpType::Fail, OpType::Info][rank as usize];
        let colour = outcome_colour(outcome);
        let points: Vec<(f64, f64)> = counts
            .iter()
            .enumerate()
            .map(|(i, &c)| ((i as f64 + 0.5) * data.bucket_s, c))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(1)))
            .map_err(err)?;
        let f = data.functions[shape].clone();
        let label = format!("{f} {outcome}");
        with_marker!(shape, mk => chart
            .draw_series(points.into_iter().map(|p| mk(p, 2, colour.filled())))
            .map_err(err)?
            .label(label)
            .legend(move |p| mk(p, 4, colour.filled())));
    }
    chart_legend(&mut chart)?;
    mark_anomalies(root, &area, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_round_numbers() {
        assert_eq!(nice_bucket(0.13), 0.2);
        assert_eq!(nice_bucket(0.3), 0.5);
        assert_eq!(nice_bucket(0.7), 1.0);
        assert_eq!(nice_bucket(3.0), 5.0);
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&sorted, 0.5), 2.0);
        assert_eq!(quantile(&sorted, 0.99), 4.0);
        assert_eq!(quantile(&sorted, 1.0), 4.0);
    }
}
