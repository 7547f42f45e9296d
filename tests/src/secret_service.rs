//! gnome-keyring's Secret Service on a private D-Bus session bus in the test's temp dir: the
//! real OS keyring backend, without ever reaching the developer's own keyring.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use crate::env::TestEnv;
use crate::process::{Guard, wait_for};

/// A private D-Bus session bus with gnome-keyring's Secret Service, unlocked.
#[derive(Debug)]
pub struct SecretService {
    pub address: String,
    // Dropped in this order: keyring first, then the bus.
    _keyring: Guard,
    _bus: Guard,
}

impl SecretService {
    /// Starts both in `env`'s temp dir and points `env` at the bus.
    pub fn start(env: &mut TestEnv) -> SecretService {
        Self::start_with(env, true)
    }

    /// A Secret Service whose login collection was never unlocked (no password given): it
    /// answers on the bus but refuses to store anything, as on many headless machines.
    pub fn start_locked(env: &mut TestEnv) -> SecretService {
        Self::start_with(env, false)
    }

    fn start_with(env: &mut TestEnv, unlocked: bool) -> SecretService {
        let socket = env.dir.path().join("run/bus");
        let address = format!("unix:path={}", socket.display());
        let mut bus = env.command("dbus-daemon");
        bus.args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .arg(format!("--address={address}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut bus = bus
            .spawn()
            .expect("dbus-daemon starts (apt-get install dbus)");
        let mut line = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("unix:"), "dbus-daemon said {line:?}");
        let bus = Guard::new("dbus-daemon", bus);
        env.set("DBUS_SESSION_BUS_ADDRESS", &address);

        let mut keyring = env.command("gnome-keyring-daemon");
        keyring
            .args(["--foreground", "--components=secrets"])
            .args(unlocked.then_some("--unlock"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut keyring = keyring
            .spawn()
            .expect("gnome-keyring-daemon starts (apt-get install gnome-keyring)");
        {
            // The login keyring's password, on stdin, then EOF.
            let mut stdin = keyring.stdin.take().unwrap();
            if unlocked {
                stdin.write_all(b"vault-test-keyring").unwrap();
            }
        }
        let keyring = Guard::new("gnome-keyring-daemon", keyring);
        wait_for(
            Duration::from_secs(10),
            "org.freedesktop.secrets on the bus",
            || Self::answers(env),
        );
        SecretService {
            address,
            _keyring: keyring,
            _bus: bus,
        }
    }

    /// Whether a Secret Service owns its name on the session bus `env` points at now.
    pub fn answers(env: &TestEnv) -> bool {
        env.command("dbus-send")
            .args([
                "--session",
                "--dest=org.freedesktop.DBus",
                "--type=method_call",
                "--print-reply",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ])
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
            .unwrap_or(false)
    }
}
