//! Containers without Docker: network namespaces the test makes, joined by a bridge, the
//! same topology the documented Docker/Podman network has (docs/containers.md): a bridge
//! whose address on the host's side is 169.254.170.2/24, and one veth pair per container
//! with the container's end as `eth0` at 169.254.170.10, .11, ….
//!
//! Here the "host" is a namespace of its own too, so nothing of the machine's real network
//! changes and no packet leaves the test's namespaces: the broker, moto and the bridge live
//! in the host namespace; each client runs in its container namespace. Needs root (CI runs
//! as root); elsewhere [`Topology::build`] says why it cannot and the test skips.

use std::ffi::OsStr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The broker's address on the bridge: what `vault serve --listen` binds and the SDKs accept.
pub const GATEWAY: &str = "169.254.170.2";

/// The host namespace and the containers' namespaces, deleted (with every veth and the
/// bridge in them) when dropped.
#[derive(Debug)]
pub struct Topology {
    pub host: String,
    pub containers: Vec<String>,
}

/// `ip`, wherever the distribution put it (root's PATH has sbin; a test's may not).
pub fn ip_program() -> &'static str {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("ip")
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new(ip_program())
        .args(args)
        .env_clear()
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

impl Topology {
    /// A host namespace with the bridge and `containers` container namespaces on it, or why
    /// it cannot be made here (not root, no `ip`, no namespaces).
    pub fn build(containers: usize) -> Result<Topology, String> {
        if !is_root() {
            return Err("network namespaces need root".into());
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!(
            "vt{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut topology = Topology {
            host: format!("{prefix}-host"),
            containers: Vec::new(),
        };
        ip(&["netns", "add", &topology.host])?;
        let host = topology.host.clone();
        let h = |args: &[&str]| {
            let mut all = vec!["-n", host.as_str()];
            all.extend_from_slice(args);
            ip(&all)
        };
        h(&["link", "set", "lo", "up"])?;
        h(&["link", "add", "br0", "type", "bridge"])?;
        h(&["addr", "add", &format!("{GATEWAY}/24"), "dev", "br0"])?;
        h(&["link", "set", "br0", "up"])?;
        for i in 0..containers {
            let name = format!("{prefix}-c{i}");
            ip(&["netns", "add", &name])?;
            topology.containers.push(name.clone());
            let veth = format!("veth{i}");
            h(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &name,
            ])?;
            h(&["link", "set", &veth, "master", "br0", "up"])?;
            let c = |args: &[&str]| {
                let mut all = vec!["-n", name.as_str()];
                all.extend_from_slice(args);
                ip(&all)
            };
            c(&["link", "set", "lo", "up"])?;
            c(&[
                "addr",
                "add",
                &format!("{}/24", container_address(i)),
                "dev",
                "eth0",
            ])?;
            c(&["link", "set", "eth0", "up"])?;
        }
        Ok(topology)
    }

    /// `program` run inside namespace `netns` (`ip netns exec` execs it: the PID is the
    /// program's own), with no environment: the caller gives what it needs.
    pub fn command(&self, netns: &str, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(ip_program());
        cmd.args(["netns", "exec", netns]).arg(program).env_clear();
        cmd
    }
}

#[cfg(unix)]
fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Namespaces are Linux's: elsewhere the tests skip.
#[cfg(not(unix))]
fn is_root() -> bool {
    false
}

/// Container `i`'s address on the bridge.
pub fn container_address(i: usize) -> String {
    format!("169.254.170.{}", 10 + i)
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.containers.iter().chain([&self.host]) {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}
