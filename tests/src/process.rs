//! Processes the tests start: a guard that stops its child by PID (SIGTERM, then SIGKILL)
//! when dropped, the one `kill` every test uses, starting children without a controlling
//! terminal, free ports, and polling for readiness. Tests never leave a process behind and
//! never signal anything by name.

use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

#[cfg(unix)]
pub use nix::sys::signal::Signal;

/// Starts the child in a new session so `/dev/tty` is unavailable, like CI and like a process
/// run by an SDK; a test that wants a terminal uses its own. `setsid` also makes the child
/// its own process group, so no `process_group` here: on a group leader setsid fails (EPERM)
/// and the child would keep the developer's terminal (and stop on SIGTTIN reading it).
#[cfg(unix)]
pub(crate) fn detach_from_terminal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec; it only calls setsid(2),
    // which is async-signal-safe, allocates nothing and touches no memory of the parent.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
}

#[cfg(not(unix))]
pub(crate) fn detach_from_terminal(_: &mut Command) {}

/// A child process stopped (SIGTERM, then SIGKILL) by its PID when dropped.
#[derive(Debug)]
pub struct Guard {
    name: &'static str,
    child: Child,
}

impl Guard {
    /// Takes charge of `child`; `name` is for the message when it has to be killed.
    pub fn new(name: &'static str, child: Child) -> Guard {
        Guard { name, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        stop_pid(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "{} (pid {}) ignored SIGTERM; killing",
            self.name,
            self.child.id()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(unix)]
fn stop_pid(pid: u32) {
    kill(pid, Signal::SIGTERM);
}

#[cfg(not(unix))]
fn stop_pid(_: u32) {}

/// Sends `signal` to `pid`, a process the test started (or its child, which noted its own
/// PID). An already gone process is not an error: stopping is best effort.
#[cfg(unix)]
pub fn kill(pid: u32, signal: Signal) {
    let Ok(pid) = i32::try_from(pid) else { return };
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
}

/// A free TCP port on 127.0.0.1 (the OS picks it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Polls `ready` until it holds, panicking after `limit`.
#[track_caller]
pub fn wait_for(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}
