//! Measurement: contenders (a command and its hooks), interleaved series of samples, their
//! statistics, wall time and peak RSS of one run, and stopping what the bench started.

use super::*;
use vault_harness::{Signal, kill};

pub(super) type Make<'a> = Box<dyn Fn() -> Command + 'a>;
pub(super) type Hook<'a> = Box<dyn Fn() -> Result + 'a>;

/// One thing to time: how to make its command, what to do (untimed) before each run, and
/// whose `mfa-count` to watch.
pub(super) struct Contender<'a> {
    pub(super) name: &'a str,
    pub(super) make: Make<'a>,
    pub(super) before: Option<Hook<'a>>,
    pub(super) prompts: Option<&'a TestEnv>,
}

impl<'a> Contender<'a> {
    pub(super) fn new(name: &'a str, make: impl Fn() -> Command + 'a) -> Self {
        Contender {
            name,
            make: Box::new(make),
            before: None,
            prompts: None,
        }
    }

    pub(super) fn before(mut self, hook: impl Fn() -> Result + 'a) -> Self {
        self.before = Some(Box::new(hook));
        self
    }

    pub(super) fn prompts(mut self, env: &'a TestEnv) -> Self {
        self.prompts = Some(env);
        self
    }
}

/// The measured runs of one contender.
#[derive(Debug, Clone, Default)]
pub(super) struct Series {
    pub(super) name: String,
    pub(super) ms: Vec<f64>,
    pub(super) rss_kib: Vec<u64>,
    /// The STS actions each run made.
    pub(super) sts: Vec<Vec<String>>,
    pub(super) prompts: Vec<usize>,
}

impl Series {
    pub(super) fn named(name: &str) -> Series {
        Series {
            name: name.to_owned(),
            ..Series::default()
        }
    }

    pub(super) fn time(&self) -> Stats {
        Stats::of(&self.ms)
    }

    pub(super) fn rss_mib(&self) -> Stats {
        let mib: Vec<f64> = self.rss_kib.iter().map(|k| *k as f64 / MIB).collect();
        Stats::of(&mib)
    }

    pub(super) fn json(&self) -> Value {
        let t = self.time();
        json!({
            "name": self.name,
            "median_ms": t.median, "min_ms": t.min, "max_ms": t.max,
            "ms": self.ms,
            "maxrss_kib": self.rss_kib,
            "sts_requests": self.sts,
            "mfa_prompts": self.prompts,
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Stats {
    pub(super) median: f64,
    pub(super) min: f64,
    pub(super) max: f64,
}

impl Stats {
    pub(super) fn of(values: &[f64]) -> Stats {
        if values.is_empty() {
            return Stats {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Stats {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }
}

pub(super) struct Sample {
    pub(super) ms: f64,
    pub(super) rss_kib: u64,
}

/// Runs a command to completion (no input, output discarded): wall time from spawn to reap,
/// and peak RSS. A failure is an error carrying the command's stderr (from a second run).
pub(super) fn measure(make: &dyn Fn() -> Command) -> Result<Sample> {
    let mut cmd = make();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", display(&cmd)))?;
    let (status, rss_kib) = wait_rusage(child)?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    if !status.success() {
        let again = make()
            .output()
            .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
            .unwrap_or_default();
        return Err(format!(
            "`{}` failed ({status}); again: {again}",
            display(&cmd)
        ));
    }
    Ok(Sample { ms, rss_kib })
}

/// Reaps `child` with wait4(2): its exit status and `ru_maxrss` (KiB). Linux keeps the
/// maximum across exec, so for `vault exec` it covers vault and the program it became.
// wait4(2) has no safe wrapper in std; see the SAFETY comments inside.
#[allow(unsafe_code)]
pub(crate) fn wait_rusage(child: Child) -> Result<(ExitStatus, u64)> {
    use std::os::unix::process::ExitStatusExt;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain integers; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waits for our own child, not yet reaped, writing into two locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4({pid}): {err}"));
        }
    }
    // Already reaped: dropping a Child neither waits nor kills.
    drop(child);
    Ok((
        ExitStatus::from_raw(status),
        u64::try_from(usage.ru_maxrss).unwrap_or(0),
    ))
}

/// The proportional set size of a live process, KiB: shared pages (libc, the binary's text)
/// count by the share each process holds, so servers with one process and servers with
/// several (nginx's master and workers) are compared without double-counting.
pub(super) fn pss_kib(pid: u32) -> Result<u64> {
    proc_kib(&format!("/proc/{pid}/smaps_rollup"), "Pss")
}

/// A process's peak resident memory (VmHWM), in KiB: what `cargo xtask stress` reports
/// for the server under load.
pub(crate) fn vm_hwm_kib(pid: u32) -> Result<u64> {
    proc_kib(&format!("/proc/{pid}/status"), "VmHWM")
}

/// The `FIELD:   N kB` line of a file under /proc, in KiB.
fn proc_kib(path: &str, field: &str) -> Result<u64> {
    let text = fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or(format!("no {field} in {path}"))
}

/// A process stopped by its PID on drop: SIGTERM, then SIGKILL after 5 s; `extra` PIDs (its
/// own children, noted by them) get SIGKILL if still there.
pub(crate) struct Stopped {
    pub(crate) child: Child,
    pub(crate) extra: Vec<u32>,
}

impl Stopped {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// SIGKILL to `process` by its PID, now (its drop then finds it gone and reaps it).
pub(crate) fn kill_now(process: &Stopped) {
    kill(process.pid(), Signal::SIGKILL);
}

impl Drop for Stopped {
    fn drop(&mut self) {
        kill(self.child.id(), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut exited = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for pid in &self.extra {
            if Path::new(&format!("/proc/{pid}")).exists() {
                kill(*pid, Signal::SIGKILL);
            }
        }
    }
}

/// `vault lock` when the bench or a stress scenario ends, however it ends: the kept key
/// leaves the kernel.
pub(crate) struct LockOnDrop<'a> {
    pub(crate) env: &'a TestEnv,
    pub(crate) bin: &'a Path,
}

impl Drop for LockOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.env.command(self.bin).arg("lock").output();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        let odd = Stats::of(&[3.0, 1.0, 2.0]);
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        assert_eq!(Stats::of(&[4.0, 1.0, 2.0, 3.0]).median, 2.5);
        assert!(Stats::of(&[]).median.is_nan());
    }
}
