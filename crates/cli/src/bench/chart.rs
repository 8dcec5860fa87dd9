//! The bench chart: hand-written SVG, one group of horizontal bars per
//! workload, each bar's length its speed relative to the fastest of its
//! group on a log scale (so rows of different units share one picture, and
//! a row where one column is thousands of times faster still shows all).

use std::fmt::Write as _;

/// One workload's bars: (column name, speed if measured, cell text).
pub(crate) struct Row {
    /// The workload.
    pub(crate) label: String,
    /// One bar per column.
    pub(crate) bars: Vec<(String, Option<f64>, String)>,
}

const COLORS: [&str; 8] = [
    "#888888", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// How many powers of ten a bar's length spans.
const DECADES: f64 = 4.0;

/// The SVG text.
pub(crate) fn svg(rows: &[Row]) -> String {
    let bar_h = 14.0;
    let gap = 18.0;
    let left = 190.0;
    let width = 760.0;
    let bar_w = 380.0;
    let n_bars = rows.first().map_or(0, |r| r.bars.len());
    let legend_h = 20.0 * n_bars as f64 + 10.0;
    let height = 40.0 + legend_h + rows.len() as f64 * (n_bars as f64 * bar_h + gap);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="20" font-size="14" font-weight="bold">tclcomm bench: speed relative to the fastest in each row (log scale, 10× per quarter)</text>"#
    );
    if let Some(first) = rows.first() {
        for (i, (name, _, _)) in first.bars.iter().enumerate() {
            let y = 35.0 + 20.0 * i as f64;
            let _ = writeln!(
                s,
                r#"<rect x="10" y="{y}" width="12" height="12" fill="{}"/><text x="28" y="{}">{}</text>"#,
                COLORS[i % COLORS.len()],
                y + 10.0,
                escape(name)
            );
        }
    }
    let mut y = 40.0 + legend_h;
    for row in rows {
        let best = row.bars.iter().filter_map(|b| b.1).fold(0.0_f64, f64::max);
        let _ = writeln!(
            s,
            r#"<text x="10" y="{}" font-weight="bold">{}</text>"#,
            y + bar_h * n_bars as f64 / 2.0 + 4.0,
            escape(&row.label)
        );
        for (i, (_, speed, text)) in row.bars.iter().enumerate() {
            let by = y + i as f64 * bar_h;
            // Log scale over DECADES powers of ten, so that a row where the
            // TCP floor streams at millions per second still shows the others.
            let w = match speed {
                Some(v) if best > 0.0 && *v > 0.0 => {
                    ((1.0 + (v / best).log10() / DECADES).clamp(0.0, 1.0) * bar_w).max(1.0)
                }
                _ => 0.0,
            };
            let _ = writeln!(
                s,
                r#"<rect x="{left}" y="{by}" width="{w:.1}" height="{}" fill="{}"/><text x="{:.1}" y="{}">{}</text>"#,
                bar_h - 2.0,
                COLORS[i % COLORS.len()],
                left + w + 4.0,
                by + bar_h - 4.0,
                escape(text)
            );
        }
        y += n_bars as f64 * bar_h + gap;
    }
    s.push_str("</svg>\n");
    s
}
