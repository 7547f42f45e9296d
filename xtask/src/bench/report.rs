//! The report: rows with verdicts, sections, the chart (SVG) and the files in `target/bench/`.

use super::*;

/// The section of docs/performance.md that the bench writes.
const DOCS_BEGIN: &str = "<!-- figures: written by `cargo xtask bench`, not by hand -->";
const DOCS_END: &str = "<!-- end of figures -->";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Pass,
    Miss,
    Info,
}

impl Verdict {
    pub(super) fn pass_if(ok: bool) -> Verdict {
        if ok { Verdict::Pass } else { Verdict::Miss }
    }

    pub(super) fn text(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Miss => "**MISS**",
            Verdict::Info => "—",
        }
    }
}

pub(super) struct Row {
    pub(super) case: u8,
    pub(super) measure: String,
    pub(super) value: String,
    pub(super) comparison: String,
    pub(super) ratio: Option<f64>,
    pub(super) target: String,
    pub(super) verdict: Verdict,
}

impl Row {
    pub(super) fn new(
        case: u8,
        measure: &str,
        value: String,
        comparison: String,
        ratio: Option<f64>,
        target: String,
        verdict: Verdict,
    ) -> Row {
        Row {
            case,
            measure: measure.to_owned(),
            value,
            comparison,
            ratio,
            target,
            verdict,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Dir {
    AtMost,
    AtLeast,
}

/// One bar of the chart. Its colour is the verdict of the summary row it belongs to, so the
/// chart cannot show "met" where the row (which may check more than the ratio) says missed.
pub(super) struct Bar {
    pub(super) label: String,
    pub(super) ratio: f64,
    /// Where the target mark goes.
    pub(super) target: Option<(Dir, f64)>,
    pub(super) verdict: Verdict,
}

#[derive(Default)]
pub(super) struct Report {
    pub(super) sections: Vec<(u8, String, String)>,
    pub(super) rows: Vec<Row>,
    pub(super) bars: Vec<Bar>,
    pub(super) json: Value,
}

impl Report {
    pub(super) fn section(&mut self, case: u8, title: &str, body: String) {
        self.sections.push((case, title.to_owned(), body));
    }

    /// The summary: one row per measure, with its verdict.
    fn summary_table(&self) -> String {
        let mut md =
            String::from("| case | measure | vault | comparison | ratio | target | result |\n");
        md.push_str("|---|---|---:|---:|---:|---|---|\n");
        for r in &self.rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.case,
                r.measure,
                r.value,
                r.comparison,
                r.ratio.map(|x| format!("{x:.2}×")).unwrap_or_default(),
                r.target,
                r.verdict.text()
            );
        }
        md
    }

    /// Replaces the marked section of `docs` (docs/performance.md) with this run's figures,
    /// the commit measured and whether its tree was clean: the figures there are never typed.
    fn update_docs(&self, docs: &Path, meta: &Value, misses: &[&Row]) -> Result {
        let text = fs::read_to_string(docs).map_err(|e| format!("{}: {e}", docs.display()))?;
        let (Some(begin), Some(end)) = (text.find(DOCS_BEGIN), text.find(DOCS_END)) else {
            return Err(format!(
                "{} has no section marked {DOCS_BEGIN} … {DOCS_END}",
                docs.display()
            ));
        };
        let mut section = format!("{DOCS_BEGIN}\n\n");
        let _ = writeln!(
            section,
            "Measured on {} at commit {} ({}): {}, {} cores, load average {} at the start and \
             {} at the end; {} runs after {} warm-up runs per figure; {} s in all.\n",
            meta["date"].as_str().unwrap_or("?"),
            meta["commit"].as_str().unwrap_or("?"),
            if meta["tree_clean"].as_bool() == Some(true) {
                "clean tree"
            } else {
                "**uncommitted changes in the tree**"
            },
            meta["cpu"].as_str().unwrap_or("?"),
            meta["cores"],
            meta["load_average_start"].as_str().unwrap_or("?"),
            meta["load_average_end"].as_str().unwrap_or("?"),
            meta["runs"],
            meta["warmup"],
            meta["bench_seconds"],
        );
        if misses.is_empty() {
            section.push_str("**Every target is met.**\n\n");
        } else {
            let _ = writeln!(section, "**{} target(s) missed.**\n", misses.len());
        }
        section.push_str(&self.summary_table());
        section
            .push_str("\nMedians, min and max of every contender: `target/bench/report.md`.\n\n");
        let updated = format!("{}{section}{}", &text[..begin], &text[end..]);
        fs::write(docs, updated).map_err(|e| format!("{}: {e}", docs.display()))
    }

    pub(super) fn write(mut self, dir: &Path, docs: &Path, meta: &Value) -> Result {
        self.sections.sort_by_key(|s| s.0);
        self.rows.sort_by_key(|r| r.case);
        let misses: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| r.verdict == Verdict::Miss)
            .collect();

        let mut md = String::from("# vault benchmarks\n\n");
        let _ = writeln!(
            md,
            "Generated by `cargo xtask bench` on {}: vault {} ({}), {}, {} cores, load average \
             {} at the start and {} at the end; {} measured runs after {} warm-up runs per \
             figure, contenders interleaved. Ratios are medians over medians; min and max show \
             the spread. See docs/performance.md for what each figure means.\n",
            meta["date"].as_str().unwrap_or("?"),
            meta["vault_revision"].as_str().unwrap_or("?"),
            meta["vault_binary"].as_str().unwrap_or("?"),
            meta["cpu"].as_str().unwrap_or("?"),
            meta["cores"],
            meta["load_average_start"].as_str().unwrap_or("?"),
            meta["load_average_end"].as_str().unwrap_or("?"),
            meta["runs"],
            meta["warmup"],
        );
        if misses.is_empty() {
            md.push_str("**Every target is met.**\n\n");
        } else {
            let _ = writeln!(
                md,
                "**{} target(s) missed:** {}. docs/performance.md says why and what would \
                 close each.\n",
                misses.len(),
                misses
                    .iter()
                    .map(|r| format!("{} (case {})", r.measure, r.case))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        md.push_str("## Summary\n\n");
        md.push_str(&self.summary_table());
        md.push_str("\n![ratios against their targets](chart.svg)\n\n");
        for (case, title, body) in &self.sections {
            let _ = writeln!(md, "## {case}. {title}\n\n{body}");
        }

        let mut json = std::mem::take(&mut self.json);
        json["meta"] = meta.clone();
        json["summary"] = Value::Array(
            self.rows
                .iter()
                .map(|r| {
                    json!({
                        "case": r.case, "measure": r.measure, "value": r.value,
                        "comparison": r.comparison, "ratio": r.ratio, "target": r.target,
                        "result": match r.verdict {
                            Verdict::Pass => "pass", Verdict::Miss => "miss", Verdict::Info => "info"
                        },
                    })
                })
                .collect(),
        );

        let write = |name: &str, text: &str| -> Result {
            let path = dir.join(name);
            fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
        };
        write("report.md", &md)?;
        write(
            "report.json",
            &serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?,
        )?;
        write("chart.svg", &chart(&self.bars))?;
        self.update_docs(docs, meta, &misses)?;

        println!("\n=== vault benchmarks ===");
        for r in &self.rows {
            let ratio = r.ratio.map(|x| format!("{x:.2}×")).unwrap_or_default();
            println!(
                "{:<6} case {}  {:<44} {:>22} vs {:<20} {:>8}  target {}",
                match r.verdict {
                    Verdict::Pass => "PASS",
                    Verdict::Miss => "MISS",
                    Verdict::Info => "",
                },
                r.case,
                r.measure,
                r.value,
                r.comparison,
                ratio,
                r.target
            );
        }
        println!(
            "\n{} target(s) missed. Report: {}",
            misses.len(),
            dir.join("report.md").display()
        );
        println!(
            "(also {} and {})",
            dir.join("report.json").display(),
            dir.join("chart.svg").display()
        );
        Ok(())
    }
}

/// Horizontal bars on a log scale (0.1× to 1000×), one per ratio, with the target marked:
/// coloured by the row's verdict: green met, red missed, grey for comparisons only.
pub(super) fn chart(bars: &[Bar]) -> String {
    let (left, width, row, top) = (320.0, 440.0, 30.0, 56.0);
    let (lo, hi) = (-1.0_f64, 3.0_f64);
    let x = |v: f64| left + (v.max(1e-3).log10().clamp(lo, hi) - lo) / (hi - lo) * width;
    let height = top + row * bars.len() as f64 + 40.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">vault against its \
         comparisons: ratios, log scale</text>\n\
         <text x=\"10\" y=\"38\" fill=\"#444\">black mark = target; green: met, red: \
         missed, grey: comparison only</text>\n",
        w = left + width + 90.0
    );
    for (tick, label) in [
        (0.1, "0.1"),
        (1.0, "1"),
        (10.0, "10"),
        (100.0, "100"),
        (1000.0, "1000"),
    ] {
        let tx = x(tick);
        let _ = writeln!(
            svg,
            "<line x1=\"{tx}\" y1=\"{}\" x2=\"{tx}\" y2=\"{}\" stroke=\"#ddd\"/>\
             <text x=\"{tx}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">{label}×</text>",
            top - 6.0,
            height - 30.0,
            height - 14.0,
        );
    }
    for (i, bar) in bars.iter().enumerate() {
        let y = top + row * i as f64;
        let color = match bar.verdict {
            Verdict::Pass => "#3a9e4f",
            Verdict::Miss => "#d0443e",
            Verdict::Info => "#999",
        };
        let target = bar
            .target
            .map(|(dir, t)| {
                format!(
                    " (target {}{t}×)",
                    match dir {
                        Dir::AtMost => "≤",
                        Dir::AtLeast => "≥",
                    }
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{left}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" fill=\"{color}\">\
             <title>{:.2}×{target}</title></rect>\
             <text x=\"{}\" y=\"{}\" font-weight=\"bold\">{:.2}×</text>",
            left - 8.0,
            y + 15.0,
            xml_escape(&bar.label),
            y + 3.0,
            (x(bar.ratio) - left).max(1.0),
            row - 8.0,
            bar.ratio,
            left + width + 10.0,
            y + 15.0,
            bar.ratio
        );
        if let Some((_, t)) = bar.target {
            let tx = x(t);
            let _ = writeln!(
                svg,
                "<line x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{}\" stroke=\"black\" \
                 stroke-width=\"3\"/>",
                y,
                y + row - 2.0,
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

pub(super) fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A markdown table of wall times; `base` gives the ratio column.
pub(super) fn time_table(series: &[Series], base: Option<&Series>) -> String {
    let mut md = String::from("| command | median | min | max | runs | ratio |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|\n");
    for s in series {
        let t = s.time();
        let ratio = base
            .map(|b| format!("{:.2}×", t.median / b.time().median))
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {ratio} |",
            s.name,
            ms(t.median),
            ms(t.min),
            ms(t.max),
            s.ms.len()
        );
    }
    md
}

pub(super) fn ms(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0} ms")
    } else if value >= 1.0 {
        format!("{value:.2} ms")
    } else {
        format!("{:.0} µs", value * 1e3)
    }
}

/// `2` when every value is 2, else `min–max`.
pub(super) fn summarize_counts(values: &[usize]) -> String {
    let min = values.iter().min().copied().unwrap_or(0);
    let max = values.iter().max().copied().unwrap_or(0);
    if min == max {
        format!("{min}")
    } else {
        format!("{min}–{max}")
    }
}

pub(crate) fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub(super) fn machine_meta(root: &Path, bin: &Path, opts: &Options) -> Value {
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    // Clean means the whole tree, docs/performance.md included: a run on a dirty tree says so.
    let tree_clean = git(&["status", "--porcelain"]).is_empty();
    let mut revision = commit.clone();
    if !git(&["status", "--porcelain", "--", "crates"]).is_empty() {
        revision.push_str(" + uncommitted changes in crates/");
    }
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let size = fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    json!({
        "date": date,
        "vault_revision": revision,
        "commit": commit,
        "tree_clean": tree_clean,
        "vault_binary": format!("release build, {:.1} MiB", size as f64 / MIB / MIB),
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "load_average_start": load_average(),
        "runs": opts.runs,
        "warmup": opts.warmup,
    })
}
