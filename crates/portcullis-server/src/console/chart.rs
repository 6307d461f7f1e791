//! Bar charts as inline SVG, drawn on the server with maud (no script, no library): counts
//! per time bucket, stacked by outcome, with axis labels, a legend naming each layer and
//! the same numbers as a table. The SVG scales with its `viewBox` to the width of its box
//! (`svg.chart { width: 100% }` in console.css), so it reads on a phone and on a desktop.
//!
//! Colours are presentation attributes (`fill="#…"`), not `style`, which the console's
//! Content-Security-Policy (`style-src 'self'`) would refuse. Each colour has at least 3:1
//! contrast against the white page (WCAG's rule for graphics), and the legend and the
//! table name every layer, so no number depends on telling colours apart.

use maud::{Markup, html};

/// The drawing's size in its own units; it is scaled to the box's width.
const W: f64 = 400.0;
const H: f64 = 180.0;
/// Room for the axes' labels around the plot.
const LEFT: f64 = 44.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 34.0;
const PLOT_W: f64 = W - LEFT - RIGHT;
const PLOT_H: f64 = H - TOP - BOTTOM;

/// The colour of what passed (`allowed`, `issued`, `active`).
pub const PASSED: &str = "#2b6cb0";
/// The colours of refusals, in rank order (the most frequent code first).
pub const REFUSALS: [&str; 7] = [
    "#d55e00", "#6a3d9a", "#00796b", "#c2185b", "#8c6d00", "#5d4037", "#1b1f24",
];
/// The colour of the refusals past the palette, drawn as one layer.
pub const OTHER: &str = "#6b7280";

/// A bar's rectangle: `(x, y, height, fill)`.
type Rect = (f64, f64, f64, &'static str);

/// One stacked layer: its name in the legend and the table, its colour, and its count in
/// each bucket.
#[derive(Debug, Clone)]
pub struct Layer {
    pub label: String,
    pub colour: &'static str,
    pub values: Vec<u64>,
}

impl Layer {
    pub fn total(&self) -> u128 {
        self.values.iter().map(|&v| u128::from(v)).sum()
    }
}

/// Counts in buckets of `step` seconds from `from`, stacked in `layers` (the first at the
/// bottom). Every layer has one value per bucket.
#[derive(Debug)]
pub struct Bars {
    /// Unique on the page: the ids of the title and description derive from it.
    pub id: &'static str,
    /// What the chart shows, for its `<title>` and the table's caption.
    pub title: String,
    pub from: i64,
    pub step: i64,
    pub buckets: usize,
    pub layers: Vec<Layer>,
}

impl Bars {
    /// Each bucket's count across layers (in `u128`: layers of `u64` counts cannot
    /// overflow it).
    fn totals(&self) -> Vec<u128> {
        (0..self.buckets)
            .map(|i| {
                self.layers
                    .iter()
                    .map(|l| u128::from(l.values.get(i).copied().unwrap_or(0)))
                    .sum()
            })
            .collect()
    }

    pub fn total(&self) -> u128 {
        self.layers.iter().map(Layer::total).sum()
    }

    fn start(&self, i: usize) -> i64 {
        self.from.saturating_add(self.step.saturating_mul(i as i64))
    }
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `n` (1 for 0): the
/// top of the axis.
pub fn nice_max(n: u128) -> u128 {
    let mut p: u128 = 1;
    loop {
        for m in [1, 2, 5] {
            if let Some(v) = p.checked_mul(m)
                && v >= n
            {
                return v;
            }
        }
        match p.checked_mul(10) {
            Some(next) => p = next,
            None => return u128::MAX,
        }
    }
}

/// A count in a few characters for an axis: `950`, `1.5k`, `12M`, `50E`.
pub fn compact(n: u128) -> String {
    const UNITS: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    let mut unit = 0;
    let mut scaled = n as f64;
    while scaled >= 1000.0 && unit + 1 < UNITS.len() {
        scaled /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        n.to_string()
    } else if scaled < 10.0 && scaled.fract() != 0.0 {
        format!("{scaled:.1}{}", UNITS[unit])
    } else {
        format!("{}{}", scaled.round(), UNITS[unit])
    }
}

/// A count with thousands separators: `1,234,567`.
pub fn thousands(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A coordinate as SVG text, to a tenth of a unit.
fn n(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

/// Unix seconds as text in UTC, with `format`; the number itself if out of range.
fn utc(unix: i64, format: &[time::format_description::FormatItem<'_>]) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// A bucket's start for the x axis: the time of day over up to two days, else the date.
fn axis_time(unix: i64, span: i64) -> String {
    if span <= 2 * 86_400 {
        utc(unix, time::macros::format_description!("[hour]:[minute]"))
    } else {
        utc(
            unix,
            time::macros::format_description!("[month repr:short] [day]"),
        )
    }
}

/// A bucket's start in full, for the table and the bars' tooltips.
pub fn bucket_time(unix: i64) -> String {
    utc(
        unix,
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]"),
    )
}

/// How long a bucket is, after "one bar per": `minute`, `15 minutes`, `hour`, `day`.
pub fn step_words(step: i64) -> String {
    let (n, unit) = if step % 86_400 == 0 {
        (step / 86_400, "day")
    } else if step % 3600 == 0 {
        (step / 3600, "hour")
    } else {
        (step / 60, "minute")
    };
    if n == 1 {
        unit.to_owned()
    } else {
        format!("{n} {unit}s")
    }
}

/// The chart: an `<svg role="img">` with a title and a description (the totals), the
/// y axis (0, half and the top, with grid lines), the x axis (three or four times, UTC),
/// the stacked bars (each bucket with its counts as a tooltip), and the legend beneath.
/// With nothing counted it draws the empty axes and says so.
pub fn chart(b: &Bars) -> Markup {
    let totals = b.totals();
    let max = totals.iter().copied().max().unwrap_or(0);
    let top = nice_max(max);
    let slots = b.buckets.max(1) as f64;
    let slot = PLOT_W / slots;
    let bar = if slot > 3.0 { slot * 0.8 } else { slot };
    let base = TOP + PLOT_H;
    let span = b.step.saturating_mul(b.buckets as i64);
    let title_id = format!("{}-title", b.id);
    let desc_id = format!("{}-desc", b.id);
    let described = b
        .layers
        .iter()
        .map(|l| format!("{} {}", thousands(l.total()), l.label))
        .collect::<Vec<_>>()
        .join(", ");
    // Half way only when it is a whole number: 0, 5, 10 but 0, 5 (not 2 for 2.5).
    let ticks = if top >= 2 && top.is_multiple_of(2) {
        vec![0u128, top / 2, top]
    } else {
        vec![0, top]
    };
    // Three or four x labels: the first bucket, the last, and one or two between.
    let mut at: Vec<usize> = if b.buckets <= 1 {
        vec![0]
    } else {
        let last = b.buckets - 1;
        vec![0, last / 3, 2 * last / 3, last]
    };
    at.dedup();
    // Each bucket with any count: its tooltip and its rectangles, stacked from the axis
    // up in the layers' order.
    let drawn: Vec<(String, Vec<Rect>)> = totals
        .iter()
        .enumerate()
        .filter(|(_, t)| **t > 0)
        .map(|(i, _)| {
            let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
            let mut below = 0u128;
            let mut rects = Vec::new();
            for l in &b.layers {
                let v = u128::from(l.values.get(i).copied().unwrap_or(0));
                if v == 0 {
                    continue;
                }
                let y0 = base - (below as f64 / top as f64) * PLOT_H;
                below += v;
                let y1 = base - (below as f64 / top as f64) * PLOT_H;
                rects.push((x, y1, y0 - y1, l.colour));
            }
            let tip = format!("{} UTC: {}", bucket_time(b.start(i)), bucket_summary(b, i));
            (tip, rects)
        })
        .collect();
    html! {
        figure.chart {
            svg.chart viewBox={"0 0 " (n(W)) " " (n(H))} role="img"
                aria-labelledby={(title_id) " " (desc_id)} xmlns="http://www.w3.org/2000/svg" {
                title id=(title_id) { (b.title) }
                desc id=(desc_id) {
                    @if max == 0 { "Nothing counted from " } @else { (described) " from " }
                    (bucket_time(b.from)) " to " (bucket_time(b.start(b.buckets))) " UTC, one bar per " (step_words(b.step)) "."
                }
                g.axis font-size="11" fill="#57606a" {
                    @for t in ticks {
                        @let y = base - (t as f64 / top as f64) * PLOT_H;
                        line x1=(n(LEFT)) x2=(n(W - RIGHT)) y1=(n(y)) y2=(n(y)) stroke="#d0d7de" stroke-width="1" {}
                        text x=(n(LEFT - 4.0)) y=(n(y + 4.0)) text-anchor="end" { (compact(t)) }
                    }
                    @for &i in &at {
                        @let x = LEFT + (i as f64 + 0.5) * slot;
                        @let anchor = if at.len() > 1 && i == 0 { "start" } else if at.len() > 1 && i + 1 == b.buckets { "end" } else { "middle" };
                        @let x = match anchor { "start" => LEFT, "end" => W - RIGHT, _ => x };
                        text x=(n(x)) y=(n(base + 14.0)) text-anchor=(anchor) { (axis_time(b.start(i), span)) }
                    }
                    text x=(n(LEFT + PLOT_W / 2.0)) y=(n(H - 3.0)) text-anchor="middle" { "UTC, one bar per " (step_words(b.step)) }
                    text x="10" y=(n(TOP + PLOT_H / 2.0)) text-anchor="middle" transform={"rotate(-90 10 " (n(TOP + PLOT_H / 2.0)) ")"} { "requests" }
                }
                @if max == 0 {
                    text.none x=(n(LEFT + PLOT_W / 2.0)) y=(n(TOP + PLOT_H / 2.0)) text-anchor="middle" font-size="13" fill="#57606a" { "No requests counted in this range" }
                } @else {
                    g.bars {
                        @for (tip, rects) in &drawn {
                            g {
                                title { (tip) }
                                @for (x, y, h, fill) in rects {
                                    rect.b x=(n(*x)) y=(n(*y)) width=(n(bar)) height=(n(*h)) fill=(fill) {}
                                }
                            }
                        }
                    }
                }
                line x1=(n(LEFT)) x2=(n(W - RIGHT)) y1=(n(base)) y2=(n(base)) stroke="#57606a" stroke-width="1" {}
            }
            (legend(&b.layers))
        }
    }
}

/// A bucket's counts by layer, for its tooltip: `3 allowed, 1 403003`.
fn bucket_summary(b: &Bars, i: usize) -> String {
    b.layers
        .iter()
        .filter_map(|l| {
            let v = l.values.get(i).copied().unwrap_or(0);
            (v > 0).then(|| format!("{} {}", thousands(u128::from(v)), l.label))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The legend: each layer's colour and name, with its total.
pub fn legend(layers: &[Layer]) -> Markup {
    html! {
        ul.legend {
            @for l in layers {
                li {
                    svg.swatch viewBox="0 0 10 10" aria-hidden="true" { rect width="10" height="10" fill=(l.colour) {} }
                    " " code { (l.label) } " " span.muted { (thousands(l.total())) }
                }
            }
        }
    }
}

/// The chart's numbers as a table in a `<details>`: one row per bucket with any count
/// (the others are left out, and the caption says so), one column per layer, and the
/// totals in the footer.
pub fn table(b: &Bars) -> Markup {
    let totals = b.totals();
    html! {
        details.table {
            summary { "Show as a table" }
            p.muted.small { "One row per " (step_words(b.step)) " with any request, starting at the time shown (UTC)." }
            div.scroll {
                table id={(b.id) "-table"} {
                    caption.sr { (b.title) ", one row per " (step_words(b.step)) " with any request (UTC)" }
                    thead { tr {
                        th scope="col" { "Starting" }
                        @for l in &b.layers { th.n scope="col" { (l.label) } }
                        th.n scope="col" { "Total" }
                    } }
                    tbody {
                        @for (i, &total) in totals.iter().enumerate() {
                            @if total > 0 {
                                tr {
                                    th scope="row" { (bucket_time(b.start(i))) }
                                    @for l in &b.layers { td.n { (thousands(u128::from(l.values.get(i).copied().unwrap_or(0)))) } }
                                    td.n { (thousands(total)) }
                                }
                            }
                        }
                    }
                    tfoot { tr {
                        th scope="row" { "Total" }
                        @for l in &b.layers { td.n { (thousands(l.total())) } }
                        td.n { (thousands(b.total())) }
                    } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(layers: Vec<(&str, Vec<u64>)>) -> Bars {
        let buckets = layers.first().map_or(0, |l| l.1.len());
        Bars {
            id: "t",
            title: "Gateway checks".into(),
            from: 1_767_225_600,
            step: 60,
            buckets,
            layers: layers
                .into_iter()
                .enumerate()
                .map(|(i, (label, values))| Layer {
                    label: label.into(),
                    colour: if i == 0 { PASSED } else { REFUSALS[i - 1] },
                    values,
                })
                .collect(),
        }
    }

    /// Each bar's rectangles: `(x, y, width, height, fill)`.
    fn rects(svg: &str) -> Vec<(f64, f64, f64, f64, String)> {
        let attr = |tag: &str, name: &str| -> String {
            let start = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
            tag[start..][..tag[start..].find('"').unwrap()].to_owned()
        };
        svg.split("<rect class=\"b\"")
            .skip(1)
            .map(|t| {
                let tag = &t[..t.find('>').unwrap()];
                let f = |name| attr(tag, name).parse::<f64>().unwrap();
                (f("x"), f("y"), f("width"), f("height"), attr(tag, "fill"))
            })
            .collect()
    }

    #[test]
    fn bar_heights_are_proportional_to_the_counts_and_stack() {
        let b = bars(vec![("allowed", vec![10, 5, 0]), ("403003", vec![0, 5, 2])]);
        let svg = chart(&b).into_string();
        let r = rects(&svg);
        assert_eq!(r.len(), 4, "{svg}");
        // The axis's top is 10: 10 fills the plot; 5 is half of it.
        assert!((r[0].3 - PLOT_H).abs() < 0.11, "{r:?}");
        assert!((r[1].3 * 2.0 - PLOT_H).abs() < 0.21, "{r:?}");
        // The second bucket's two fives stack to the full height, 403003 on top.
        assert!((r[1].3 - r[2].3).abs() < 0.11, "{r:?}");
        assert!((r[2].1 + r[2].3 - r[1].1).abs() < 0.11, "stacked: {r:?}");
        assert_eq!(r[2].4, REFUSALS[0]);
        assert!((r[3].3 * 5.0 - PLOT_H).abs() < 0.6, "{r:?}");
        // Every bar stands on the axis or on the layer below.
        assert!((r[0].1 + r[0].3 - (TOP + PLOT_H)).abs() < 0.11);
        // The buckets are in order, left to right, inside the plot.
        assert!(r[0].0 < r[1].0 && r[1].0 < r[3].0);
        assert!(
            r.iter()
                .all(|r| r.0 >= LEFT && r.0 + r.2 <= W - RIGHT + 0.01)
        );
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("<title id=\"t-title\">Gateway checks</title>"));
        assert!(
            svg.contains("15 allowed, 7 403003"),
            "the description: {svg}"
        );
        assert!(
            svg.contains(">10</text>") && svg.contains(">5</text>"),
            "ticks: {svg}"
        );
        let legend = legend(&b.layers).into_string();
        assert!(legend.contains("403003") && legend.contains(REFUSALS[0]));
    }

    #[test]
    fn nothing_counted_draws_the_axes_and_says_so() {
        for b in [
            bars(vec![("allowed", vec![0, 0, 0])]),
            bars(vec![]),
            Bars {
                buckets: 0,
                ..bars(vec![("allowed", vec![])])
            },
        ] {
            let svg = chart(&b).into_string();
            assert!(rects(&svg).is_empty(), "{svg}");
            assert!(svg.contains("No requests counted in this range"), "{svg}");
            assert!(svg.contains("Nothing counted from"), "{svg}");
            let t = table(&b).into_string();
            assert!(!t.contains("<tbody><tr>"), "no rows: {t}");
        }
    }

    #[test]
    fn a_single_bucket_is_one_bar_inside_the_plot() {
        let b = bars(vec![("allowed", vec![3])]);
        let svg = chart(&b).into_string();
        let r = rects(&svg);
        assert_eq!(r.len(), 1);
        let (x, y, w, h, _) = r[0].clone();
        assert!(x >= LEFT && x + w <= W - RIGHT && w > 0.0, "{r:?}");
        assert!(y >= TOP && h > 0.0 && y + h <= TOP + PLOT_H + 0.01, "{r:?}");
        // One x label, not four of the same time.
        assert_eq!(svg.matches("text-anchor=\"middle\">").count(), 2, "{svg}");
    }

    #[test]
    fn huge_counts_neither_overflow_nor_leave_the_plot() {
        let b = bars(vec![
            ("allowed", vec![u64::MAX, 1]),
            ("403003", vec![u64::MAX, u64::MAX]),
        ]);
        let svg = chart(&b).into_string();
        let r = rects(&svg);
        assert_eq!(r.len(), 4);
        for (_, y, _, h, _) in &r {
            assert!(h.is_finite() && *h >= 0.0 && *y >= TOP - 0.01, "{r:?}");
        }
        assert!(svg.contains(">50E</text>"), "the top tick: {svg}");
        let t = table(&b).into_string();
        let sum = 3 * u128::from(u64::MAX) + 1;
        assert!(t.contains(&thousands(sum)), "{t}");
    }

    #[test]
    fn axis_numbers_and_steps_read_well() {
        assert_eq!(nice_max(0), 1);
        assert_eq!(nice_max(1), 1);
        assert_eq!(nice_max(3), 5);
        assert_eq!(nice_max(11), 20);
        assert_eq!(nice_max(1000), 1000);
        assert_eq!(nice_max(u128::MAX), u128::MAX);
        assert_eq!(compact(950), "950");
        assert_eq!(compact(1500), "1.5k");
        assert_eq!(compact(20_000), "20k");
        assert_eq!(compact(5_000_000), "5M");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(step_words(60), "minute");
        assert_eq!(step_words(900), "15 minutes");
        assert_eq!(step_words(3600), "hour");
        assert_eq!(step_words(86_400), "day");
        assert_eq!(step_words(7200), "2 hours");
    }

    /// WCAG's contrast ratio of `hex` against white.
    fn contrast(hex: &str) -> f64 {
        let c = |i: usize| {
            let v = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
            if v <= 0.039_28 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        let l = 0.2126 * c(1) + 0.7152 * c(3) + 0.0722 * c(5);
        1.05 / (l + 0.05)
    }

    #[test]
    fn every_colour_stands_out_from_the_page_and_from_the_others() {
        let all: Vec<&str> = [PASSED, OTHER].into_iter().chain(REFUSALS).collect();
        for c in &all {
            assert!(contrast(c) >= 3.0, "{c}: {:.2}", contrast(c));
        }
        let mut seen = all.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), all.len(), "distinct colours");
    }
}
