//! `switchboard-loadgen chart`: renders the load generator's results to SVG with `plotters` for
//! docs/benchmarks.md: the delivery-latency distribution (from the `--csv` file) and the RSS per
//! idle connection, hub next to floor (from the JSON report).

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

/// Renders `hub-latency.svg` and `hub-rss.svg` into `out_dir` from the latency CSV
/// (`connections,latency_ms`) and the JSON report of a run.
pub fn render(csv: &Path, report: &Path, out_dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out_dir).map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(csv).map_err(|e| format!("{}: {e}", csv.display()))?;
    let mut by_count: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let mut parts = line.split(',');
        if let (Some(n), Some(ms)) = (parts.next(), parts.next())
            && let (Ok(n), Ok(ms)) = (n.parse::<u64>(), ms.parse::<f64>())
        {
            by_count.entry(n).or_default().push(ms);
        }
    }
    latency_chart(&by_count, &out_dir.join("hub-latency.svg"))?;
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(report).map_err(|e| format!("{}: {e}", report.display()))?,
    )
    .map_err(|e| e.to_string())?;
    rss_chart(&report, &out_dir.join("hub-rss.svg"))
}

const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

fn latency_chart(by_count: &BTreeMap<u64, Vec<f64>>, path: &Path) -> Result<(), String> {
    let max = by_count.values().flatten().copied().fold(1.0f64, f64::max);
    // Log scale: the median sits near a millisecond, the tail tens of milliseconds away.
    let min = by_count
        .values()
        .flatten()
        .copied()
        .fold(max, f64::min)
        .max(0.01);
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Hub delivery latency (REST send → frame at the client)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((min * 0.9..max * 1.1).log_scale(), 0f64..100f64)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("latency (ms, log scale)")
        .y_desc("percentile")
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (count, samples)) in by_count.iter().enumerate() {
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        let len = sorted.len().max(1) as f64;
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(
                sorted
                    .iter()
                    .enumerate()
                    .map(|(k, ms)| (*ms, (k + 1) as f64 * 100.0 / len)),
                colour.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(format!("{count} connections"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

fn rss_chart(report: &serde_json::Value, path: &Path) -> Result<(), String> {
    let levels = report["levels"].as_array().cloned().unwrap_or_default();
    let point = |level: &serde_json::Value, key: &str| {
        Some((level["connections"].as_f64()?, level[key].as_f64()?))
    };
    let hub: Vec<(f64, f64)> = levels
        .iter()
        .filter_map(|l| point(l, "hub_rss_per_connection_kib"))
        .collect();
    let floor: Vec<(f64, f64)> = levels
        .iter()
        .filter_map(|l| point(l, "floor_rss_per_connection_kib"))
        .collect();
    let max_x = hub.iter().chain(&floor).map(|p| p.0).fold(1.0, f64::max);
    let max_y = hub.iter().chain(&floor).map(|p| p.1).fold(1.0, f64::max);
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption("RSS per idle WebSocket connection", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..max_x * 1.1, 0f64..max_y * 1.2)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("idle connections")
        .y_desc("KiB per connection")
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (label, points)) in [
        ("switchboard-hub", hub),
        ("bare tokio-tungstenite (floor)", floor),
    ]
    .into_iter()
    .enumerate()
    {
        let colour = COLOURS[i];
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)).point_size(4))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
