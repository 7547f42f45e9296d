//! The load generator wrk: one run against a URL, and its output read into numbers.

use super::*;

#[derive(Debug, Clone)]
pub(crate) struct WrkResult {
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) requests: u64,
    /// Non-2xx answers plus socket errors.
    pub(crate) errors: u64,
    pub(crate) raw: String,
}

impl WrkResult {
    pub(super) fn json(&self) -> Value {
        json!({
            "requests_per_second": self.rps,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "requests": self.requests,
            "errors": self.errors,
            "wrk_output": self.raw,
        })
    }
}

/// One server's wrk rounds: medians, min and max; requests and errors summed.
pub(super) struct WrkSummary {
    pub(crate) rps: Stats,
    pub(super) p50: Stats,
    pub(super) p99: Stats,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
}

impl WrkSummary {
    pub(super) fn of(runs: &[WrkResult]) -> WrkSummary {
        let stat = |f: fn(&WrkResult) -> f64| Stats::of(&runs.iter().map(f).collect::<Vec<_>>());
        WrkSummary {
            rps: stat(|r| r.rps),
            p50: stat(|r| r.p50_ms),
            p99: stat(|r| r.p99_ms),
            requests: runs.iter().map(|r| r.requests).sum(),
            errors: runs.iter().map(|r| r.errors).sum(),
        }
    }
}

/// The two figures every server case reports against nginx, as rows and bars: requests/s
/// (≥ 0.5×, and no errors) and p99 latency (≤ 2×). `what` names the row, `short` the bar.
pub(super) fn versus_nginx(
    report: &mut Report,
    scenario: u8,
    (what, short): (&str, &str),
    w: &WrkSummary,
    nginx: &WrkSummary,
) {
    let rps_ratio = w.rps.median / nginx.rps.median;
    let p99_ratio = w.p99.median / nginx.p99.median;
    let rps_verdict = Verdict::pass_if(rps_ratio >= 0.5 && w.errors == 0);
    let p99_verdict = Verdict::pass_if(p99_ratio <= 2.0);
    report.rows.push(Row::new(
        scenario,
        &format!("{what}: requests/s vs nginx"),
        format!("{:.0}/s", w.rps.median),
        format!("{:.0}/s", nginx.rps.median),
        Some(rps_ratio),
        "≥ 0.5×".into(),
        rps_verdict,
    ));
    report.rows.push(Row::new(
        scenario,
        &format!("{what}: p99 latency vs nginx"),
        ms(w.p99.median),
        ms(nginx.p99.median),
        Some(p99_ratio),
        "≤ 2×".into(),
        p99_verdict,
    ));
    report.bars.push(Bar {
        label: format!("{short} req/s / nginx (≥ 0.5×)"),
        ratio: rps_ratio,
        target: Some((Dir::AtLeast, 0.5)),
        verdict: rps_verdict,
    });
    report.bars.push(Bar {
        label: format!("{short} p99 / nginx (≤ 2×)"),
        ratio: p99_ratio,
        target: Some((Dir::AtMost, 2.0)),
        verdict: p99_verdict,
    });
}

/// The servers' table: its head, then one line per server.
pub(super) fn wrk_table(md: &mut String, servers: &[(&str, &WrkSummary, u64)]) {
    md.push_str(
        "| server | requests/s | min–max | p50 | p99 | min–max | requests | errors | PSS |\n",
    );
    md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (name, w, pss_kib) in servers {
        let _ = writeln!(
            md,
            "| {name} | {:.0} | {:.0}–{:.0} | {} | {} | {}–{} | {} | {} | {:.1} MiB |",
            w.rps.median,
            w.rps.min,
            w.rps.max,
            ms(w.p50.median),
            ms(w.p99.median),
            ms(w.p99.min),
            ms(w.p99.max),
            w.requests,
            w.errors,
            *pss_kib as f64 / MIB
        );
    }
}

pub(crate) fn wrk(url: &str, header: &str, seconds: u64) -> Result<WrkResult> {
    run_wrk(url, &["-H", header], seconds)
}

/// wrk with a Lua script that writes each request (e.g. a different token each time).
pub(crate) fn wrk_script(url: &str, script: &Path, seconds: u64) -> Result<WrkResult> {
    let script = script.to_string_lossy();
    run_wrk(url, &["-s", &script], seconds)
}

fn run_wrk(url: &str, extra: &[&str], seconds: u64) -> Result<WrkResult> {
    let out = Command::new("wrk")
        .arg(format!("-t{WRK_THREADS}"))
        .arg(format!("-c{WRK_CONNECTIONS}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run wrk (apt-get install wrk): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "wrk failed ({}): {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse_wrk(&text).ok_or(format!("cannot read wrk's output:\n{text}"))
}

pub(super) fn parse_wrk(text: &str) -> Option<WrkResult> {
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    };
    let rps = field("Requests/sec:")?.parse().ok()?;
    let p50_ms = duration_ms(field("50%")?)?;
    let p99_ms = duration_ms(field("99%")?)?;
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let non_2xx: u64 = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let socket: u64 = field("Socket errors:")
        .map(|v| {
            v.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Some(WrkResult {
        rps,
        p50_ms,
        p99_ms,
        requests,
        errors: non_2xx + socket,
        raw: text.to_owned(),
    })
}

/// wrk's durations: `812.00us`, `1.23ms`, `2.00s`, `1.00m`.
pub(super) fn duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        _ => return None,
    };
    Some(number * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let text = "Running 10s test @ http://127.0.0.1:8080/\n  2 threads and 32 connections\n  \
            Thread Stats   Avg      Stdev     Max   +/- Stdev\n    \
            Latency   250.00us  300.00us  12.00ms   90.00%\n  \
            Latency Distribution\n     50%  180.00us\n     75%  300.00us\n     \
            90%  500.00us\n     99%    2.60ms\n  \
            1371234 requests in 10.00s, 800.00MB read\n  \
            Socket errors: connect 0, read 2, write 0, timeout 1\n  \
            Non-2xx or 3xx responses: 4\nRequests/sec: 137123.40\nTransfer/sec:     80.00MB\n";
        let r = parse_wrk(text).unwrap();
        assert_eq!(r.rps, 137123.40);
        assert!((r.p50_ms - 0.18).abs() < 1e-9);
        assert!((r.p99_ms - 2.6).abs() < 1e-9);
        assert_eq!(r.requests, 1371234);
        assert_eq!(r.errors, 7);
        assert_eq!(duration_ms("1.50s"), Some(1500.0));
        assert_eq!(duration_ms("1.00m"), Some(60000.0));
        assert_eq!(duration_ms("12"), None);
    }
}
