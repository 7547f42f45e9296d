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

pub(crate) fn wrk(url: &str, header: &str, seconds: u64) -> Result<WrkResult> {
    let out = Command::new("wrk")
        .arg(format!("-t{WRK_THREADS}"))
        .arg(format!("-c{WRK_CONNECTIONS}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .args(["-H", header])
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
