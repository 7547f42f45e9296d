//! Scenario 5: the ECS-style `--server` endpoint while a neighbour holds idle connections
//! (half of them with a half-sent request head) and opens new ones as the server closes
//! them. The connection cap and the header timeout must keep the child served: the
//! legitimate client's latency, throughput and errors are compared with the same wrk run on
//! a server nobody else talks to, with the server's CPU and peak memory.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use vault_harness::{TestEnv, http_request};

use super::{Ctx, Rng, Row, Section, role_config};
use crate::Result;
use crate::bench::{ServedVault, Stopped, WrkResult, vm_hwm_kib, wrk};

/// Holds `count` connections to 127.0.0.1:`port` (odd ones with half a request head),
/// reopening those the server closes (at most 500 a second), until `DIR/stop` exists. It raises its own
/// RLIMIT_NOFILE, so the server's limit is what counts. `DIR/stats`: "open reopened".
const HOLDER: &str = r#"
import resource, socket, sys, time, os
port, count, run = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 256), hard))
def connect(i):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        if i % 2:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
        s.setblocking(False)
        return s
    except OSError:
        return None
def note(name, text):
    open(os.path.join(run, name + ".tmp"), "w").write(text)
    os.replace(os.path.join(run, name + ".tmp"), os.path.join(run, name))
socks = [connect(i) for i in range(count)]
reopened = 0
note("held", str(sum(s is not None for s in socks)))
while not os.path.exists(os.path.join(run, "stop")):
    budget = 100  # reopened per round at most: pressure, not a fork bomb
    for i, s in enumerate(socks):
        if budget == 0:
            break
        if s is not None:
            try:
                s.recv(1, socket.MSG_PEEK)
            except BlockingIOError:
                continue
            except OSError:
                pass
            s.close()
        socks[i] = connect(i)
        reopened += 1
        budget -= 1
    note("stats", "%d %d" % (sum(s is not None for s in socks), reopened))
    time.sleep(0.2)
"#;

/// `vault exec --server role -- sh -c '…; exec sleep 600'`, its port and token.
struct Served {
    vault: ServedVault,
    target: Target,
}

impl Served {
    fn start(ctx: &Ctx<'_>, env: &TestEnv, name: &str) -> Result<Served> {
        let vault = ServedVault::start(env, &ctx.bin, "--server", "role", name)?;
        let token = vault
            .env
            .get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            .ok_or("the child has no AWS_CONTAINER_AUTHORIZATION_TOKEN")?
            .clone();
        let target = Target {
            port: vault.port,
            token,
            pid: vault.pid(),
        };
        Ok(Served { vault, target })
    }
}

/// A container endpoint under test: where, with which token, and the serving process.
pub(super) struct Target {
    pub(super) port: u16,
    pub(super) token: String,
    pub(super) pid: u32,
}

impl Target {
    /// One legitimate request: answered 200 with credentials?
    pub(super) fn answers(&self) -> bool {
        matches!(
            http_request(self.port, "GET", "/", &[("Authorization", &self.token)], b""),
            Some((200, body)) if body.contains("AccessKeyId")
        )
    }
}

pub(super) fn wait_until(
    limit: Duration,
    mut ready: impl FnMut() -> bool,
) -> std::result::Result<(), ()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(())
}

fn read_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// utime + stime of a process, in seconds.
pub(super) fn cpu_seconds(pid: u32, ticks_per_second: f64) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // Fields after the command name, which may hold spaces: state is field 3.
    let rest = stat.rsplit_once(") ").ok_or("odd /proc/PID/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> f64 { fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0.0) };
    Ok((ticks(11) + ticks(12)) / ticks_per_second)
}

/// wrk's `Socket errors: connect C, read R, write W, timeout T` line, as
/// (read, all the others); non-2xx answers are `errors` minus both.
pub(super) fn socket_errors(raw: &str) -> (u64, u64) {
    let Some(line) = raw
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
    else {
        return (0, 0);
    };
    let (mut read, mut other) = (0, 0);
    for part in line.split(',') {
        let mut words = part.split_whitespace();
        let (kind, n) = (
            words.next(),
            words.next().and_then(|n| n.parse::<u64>().ok()),
        );
        match (kind, n) {
            (Some("read"), Some(n)) => read += n,
            (_, Some(n)) => other += n,
            _ => {}
        }
    }
    (read, other)
}

pub(super) struct Measured {
    pub(super) wrk: WrkResult,
    pub(super) cpu_percent: f64,
    pub(super) hwm_kib: u64,
    pub(super) answered_after: bool,
}

/// A 1 s warm-up, then one wrk run, with the server's CPU over it and its peak RSS.
pub(super) fn measure(served: &Target, seconds: u64, ticks: f64) -> Result<Measured> {
    let url = format!("http://127.0.0.1:{}/", served.port);
    let header = format!("Authorization: {}", served.token);
    wrk(&url, &header, 1)?;
    let (cpu0, t0) = (cpu_seconds(served.pid, ticks)?, Instant::now());
    let result = wrk(&url, &header, seconds)?;
    let cpu = cpu_seconds(served.pid, ticks)? - cpu0;
    Ok(Measured {
        cpu_percent: 100.0 * cpu / t0.elapsed().as_secs_f64(),
        hwm_kib: vm_hwm_kib(served.pid)?,
        answered_after: served.answers(),
        wrk: result,
    })
}

/// The table of a run alone and one with `idle` connections held.
pub(super) fn measured_table(md: &mut String, idle: usize, alone: &Measured, held: &Measured) {
    md.push_str("| run | requests/s | p50 | p99 | requests | errors | CPU | peak RSS |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (name, m) in [("alone", alone), (&*format!("{idle} idle held"), held)] {
        let _ = writeln!(
            md,
            "| {name} | {:.0} | {:.2} ms | {:.2} ms | {} | {} | {:.0} % | {:.1} MiB |",
            m.wrk.rps,
            m.wrk.p50_ms,
            m.wrk.p99_ms,
            m.wrk.requests,
            m.wrk.errors,
            m.cpu_percent,
            m.hwm_kib as f64 / 1024.0
        );
    }
}

/// Starts the neighbour holding `count` connections to `port`; the directory it reports
/// in. Stop it by writing `DIR/stop`, then dropping it.
pub(super) fn hold(env: &TestEnv, port: u16, count: usize, dir: &Path) -> Result<Stopped> {
    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let holder = env
        .command("python3")
        .args(["-c", HOLDER, &port.to_string(), &count.to_string()])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start python3: {e}"))?;
    Ok(Stopped {
        child: holder,
        extra: Vec::new(),
    })
}

/// Clock ticks per second (`getconf CLK_TCK`).
pub(super) fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

pub(super) fn run(ctx: &Ctx<'_>, _rng: &mut Rng) -> Result<Section> {
    let idle = ctx.opts.idle;
    let seconds = ctx.opts.wrk_seconds;
    let env = ctx.file_env(true);
    let (key, role_arn) = ctx.moto_identity("stress-server");
    env.write_config(&role_config(&role_arn));
    let _unlocked = ctx.seed(&env, &key)?;
    let ticks = ticks_per_second();

    // The comparison first: a server nobody else talks to.
    let alone = Served::start(ctx, &env, "alone")?;
    let quiet = measure(&alone.target, seconds, ticks)?;
    drop(alone);

    let served = Served::start(ctx, &env, "held")?;
    let run_dir: PathBuf = env.dir.path().join("holder");
    let holder = hold(&env, served.vault.port, idle, &run_dir)?;
    let held = wait_until(Duration::from_secs(60), || run_dir.join("held").exists())
        .map(|()| read_number(&run_dir.join("held")).unwrap_or(0));
    let answered_while_held = served.target.answers();
    let loaded = measure(&served.target, seconds, ticks)?;
    let stats = fs::read_to_string(run_dir.join("stats")).unwrap_or_default();
    let mut stats = stats
        .split_whitespace()
        .map(|v| v.parse::<u64>().unwrap_or(0));
    let (open_at_end, reopened) = (stats.next().unwrap_or(0), stats.next().unwrap_or(0));
    let _ = fs::write(run_dir.join("stop"), "");
    drop(holder);
    let answered_after_holder = served.target.answers();
    drop(served);
    let held = held.map_err(|()| "the holder did not connect within 60 s".to_owned())?;

    // The one error the design allows: the cap closes the connection idle the longest, and a
    // neighbour opening ~100 connections in a burst makes a keep-alive connection of the
    // client (idle for a few ms between two requests) the oldest. wrk then reads EOF; SDKs
    // retry such a GET on a new connection.
    let held_read = socket_errors(&loaded.wrk.raw).0.min(loaded.wrk.errors);
    let mut s = Section::new(5, "");
    let _ = writeln!(
        s.md,
        "`vault exec --server role -- sleep` (a moto role); `wrk -t2 -c32 -d{seconds}s \
         --latency` with the child's `Authorization` token against its ECS endpoint, after a \
         1 s warm-up: once on a server nobody else talks to, once on a second server while a \
         Python neighbour (its own RLIMIT_NOFILE raised) holds {idle} connections, half of \
         them with half a request head, and reopens those the server closes (at most 500 a \
         second). CPU is utime + stime of the vault process over the wrk run \
         (`/proc/PID/stat`), per cent of one core; peak RSS is `VmHWM` after the run. The \
         neighbour connected {held} at once; at the end it had {open_at_end} open and had \
         reopened {reopened}.\n\n\
         Expected under the neighbour, and counted apart: wrk *read* errors. At the cap of 128 \
         connections the server closes the one idle the longest; when the neighbour opens about \
         100 in a burst, a keep-alive connection of wrk that has been idle for a few \
         milliseconds between two requests is older than all of them and is closed, and wrk \
         reads EOF on its next request (an SDK retries that GET on a new connection). \
         Non-2xx answers, connect, write and timeout errors must be 0, and so must every error \
         of the run alone.\n"
    );
    measured_table(&mut s.md, idle, &quiet, &loaded);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    s.rows = vec![
        Row::info(
            5,
            &format!("requests/s with {idle} idle held (alone; ratio)"),
            format!(
                "{:.0}/s ({:.0}/s; {:.2}×)",
                loaded.wrk.rps,
                quiet.wrk.rps,
                ratio(loaded.wrk.rps, quiet.wrk.rps)
            ),
        ),
        Row::info(
            5,
            "p50 / p99 latency, held (alone)",
            format!(
                "{:.2} / {:.2} ms ({:.2} / {:.2} ms)",
                loaded.wrk.p50_ms, loaded.wrk.p99_ms, quiet.wrk.p50_ms, quiet.wrk.p99_ms
            ),
        ),
        Row::info(
            5,
            "p99 ratio held / alone",
            format!("{:.2}×", ratio(loaded.wrk.p99_ms, quiet.wrk.p99_ms)),
        ),
        Row::info(
            5,
            "server CPU, held (alone)",
            format!("{:.0} % ({:.0} %)", loaded.cpu_percent, quiet.cpu_percent),
        ),
        Row::check(
            5,
            "server peak RSS, held (alone)",
            format!(
                "{:.1} MiB ({:.1} MiB)",
                loaded.hwm_kib as f64 / 1024.0,
                quiet.hwm_kib as f64 / 1024.0
            ),
            "< 64 MiB",
            loaded.hwm_kib < 64 * 1024,
        ),
        Row::zero(
            5,
            "wrk errors, alone (non-2xx + socket)",
            quiet.wrk.errors as usize,
        ),
        Row::zero(
            5,
            "wrk errors, held: non-2xx, connect, write, timeout",
            (loaded.wrk.errors - held_read) as usize,
        ),
        Row::info(
            5,
            "wrk read errors, held (keep-alive connections closed by the cap; expected)",
            format!("{held_read} of {} requests", loaded.wrk.requests),
        ),
        Row::zero(
            5,
            "legitimate requests refused (while held, after wrk, after the neighbour)",
            [
                answered_while_held,
                loaded.answered_after,
                quiet.answered_after,
                answered_after_holder,
            ]
            .iter()
            .filter(|ok| !**ok)
            .count(),
        ),
        Row::info(
            5,
            "neighbour: connected at once / reopened",
            format!("{held} / {reopened}"),
        ),
    ];
    let m = |m: &Measured| {
        json!({
            "requests_per_second": m.wrk.rps, "p50_ms": m.wrk.p50_ms, "p99_ms": m.wrk.p99_ms,
            "requests": m.wrk.requests, "errors": m.wrk.errors, "cpu_percent": m.cpu_percent,
            "vm_hwm_kib": m.hwm_kib, "wrk_output": m.wrk.raw,
        })
    };
    s.json = json!({
        "idle": idle, "wrk_seconds": seconds, "alone": m(&quiet), "held": m(&loaded),
        "holder": {"connected": held, "open_at_end": open_at_end, "reopened": reopened},
        "answered_while_held": answered_while_held, "answered_after_holder": answered_after_holder,
    });
    Ok(s)
}
