//! Scenario 10: the container broker (`vault serve`). SIGKILL at random points while
//! clients of three profiles fetch and every request renews (so a mint, a cache write or an
//! audit line is in flight), then a new broker must serve every client on its first request,
//! with the registry, the session cache and the audit log intact and no temp file left. Then
//! one client's neighbour holds idle connections while another client is measured under wrk,
//! against the same wrk run on a broker nobody else talks to.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use vault_harness::{TestEnv, free_port, http_request, parse_env};

use super::servers::{
    Target, hold, measure, measured_table, socket_errors, ticks_per_second, wait_until,
};
use super::{Ctx, Rng, Row, Section, temp_files};
use crate::Result;
use crate::bench::Stopped;

const PROFILES: [&str; 3] = ["svc-a", "svc-b", "svc-c"];

/// `vault serve` on a port of its own, answering /health.
struct Broker {
    process: Stopped,
    port: u16,
}

impl Broker {
    fn start(ctx: &Ctx<'_>, env: &TestEnv, vars: &[(&str, &str)]) -> Result<Broker> {
        let port = free_port();
        let mut cmd = ctx.vault(
            env,
            &["serve", "--lazy", "--listen", &format!("127.0.0.1:{port}")],
        );
        for (n, v) in vars {
            cmd.env(n, v);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start vault serve: {e}"))?;
        let broker = Broker {
            process: Stopped {
                child,
                extra: Vec::new(),
            },
            port,
        };
        wait_until(Duration::from_secs(30), || {
            matches!(
                http_request(port, "GET", "/health", &[], b""),
                Some((200, _))
            )
        })
        .map_err(|()| "vault serve did not answer /health in 30 s".to_owned())?;
        Ok(broker)
    }

    fn answers(&self, token: &str) -> bool {
        matches!(
            http_request(self.port, "GET", "/", &[("Authorization", token)], b""),
            Some((200, body)) if body.contains("AccessKeyId")
        )
    }
}

pub(super) fn run(ctx: &Ctx<'_>, rng: &mut Rng) -> Result<Section> {
    let env = ctx.file_env(true);
    let (key, role_arn) = ctx.moto_identity("stress-broker");
    let mut config = String::from("[profile base]\nregion = us-east-1\n\n");
    for p in PROFILES {
        let _ = write!(
            config,
            "[profile {p}]\nsource_profile = base\nrole_arn = {role_arn}\nregion = us-east-1\n\n"
        );
    }
    env.write_config(&config);
    let _unlocked = ctx.seed(&env, &key)?;
    let mut tokens = Vec::new();
    for i in 0..6 {
        let name = format!("c{i}");
        ctx.ok(&env, &["container", "add", &name, PROFILES[i % 3]], &[])?;
        let vars = parse_env(&ctx.ok(&env, &["container", "env", &name], &[])?);
        let file = &vars["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"];
        tokens.push(fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?);
    }
    let registry_path = env.vault_dir().join("containers.json");
    let registry = fs::read(&registry_path).map_err(|e| e.to_string())?;

    // SIGKILL rounds.
    let rounds = if ctx.opts.quick { 5 } else { 30 };
    let (mut killed, mut not_served, mut registry_changed, mut sessions_damaged) = (0, 0, 0, 0);
    let mut restart_ms = Vec::new();
    for _ in 0..rounds {
        let broker = Broker::start(ctx, &env, &[("AWS_MIN_TTL", "2h")])?;
        let port = broker.port;
        let delay = Duration::from_millis(50 + rng.below(400));
        std::thread::scope(|s| {
            for t in &tokens {
                s.spawn(move || {
                    let until = Instant::now() + Duration::from_millis(600);
                    while Instant::now() < until {
                        let _ = http_request(port, "GET", "/", &[("Authorization", t)], b"");
                    }
                });
            }
            std::thread::sleep(delay);
            // SIGKILL by PID; Stopped's drop then finds it gone.
            crate::bench::measure::kill_now(&broker.process);
            killed += 1;
        });
        drop(broker);
        if fs::read(&registry_path).map_err(|e| e.to_string())? != registry {
            registry_changed += 1;
        }
        let list = ctx.run(&env, &["list"], &[]);
        if !list.status.success() || list.stderr.contains("damaged") {
            sessions_damaged += 1;
        }
        let t = Instant::now();
        let again = Broker::start(ctx, &env, &[])?;
        not_served += tokens.iter().filter(|t| !again.answers(t)).count();
        restart_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let temps = temp_files(&[env.vault_dir(), env.vault_dir().join("containers")]);
    let log = fs::read_to_string(env.vault_dir().join("containers.log")).unwrap_or_default();
    let torn = log
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_err())
        .count();
    let leaked = tokens.iter().filter(|t| log.contains(t.as_str())).count();

    // The flood: client 1's neighbour holds idle connections; client 0 is measured.
    let idle = ctx.opts.idle;
    let seconds = ctx.opts.wrk_seconds;
    let ticks = ticks_per_second();
    let alone = Broker::start(ctx, &env, &[])?;
    let quiet = measure(&target(&alone, &tokens[0]), seconds, ticks)?;
    drop(alone);
    let busy = Broker::start(ctx, &env, &[])?;
    let run_dir: PathBuf = env.dir.path().join("broker-holder");
    let holder = hold(&env, busy.port, idle, &run_dir)?;
    let held = wait_until(Duration::from_secs(60), || run_dir.join("held").exists());
    let busy_target = target(&busy, &tokens[0]);
    let answered_while_held = busy_target.answers();
    let loaded = measure(&busy_target, seconds, ticks)?;
    let _ = fs::write(run_dir.join("stop"), "");
    drop(holder);
    let answered_after = busy_target.answers();
    drop(busy);
    held.map_err(|()| "the holder did not connect within 60 s".to_owned())?;
    let held_read = socket_errors(&loaded.wrk.raw).0.min(loaded.wrk.errors);

    let mut s = Section::new(10, "");
    restart_ms.sort_by(f64::total_cmp);
    let median_restart = restart_ms.get(restart_ms.len() / 2).copied().unwrap_or(0.0);
    let _ = writeln!(
        s.md,
        "`vault serve --lazy` with 6 clients on 3 role profiles (moto). {rounds} rounds: the \
         six clients fetch in a loop with `AWS_MIN_TTL=2h` (every request renews: mints, cache \
         writes and audit lines in flight), SIGKILL after 50–450 ms, then a new broker must \
         answer each client's first request. Then the flood: `wrk -t2 -c32 -d{seconds}s` with \
         client 0's token, alone and while a neighbour holds {idle} connections (half with half \
         a request head, reopening those closed), as in scenario 5; wrk read errors there are \
         keep-alive connections the cap closed (expected, counted apart).\n"
    );
    measured_table(&mut s.md, idle, &quiet, &loaded);
    s.rows = vec![
        Row::info(10, "brokers SIGKILLed during renewals", killed.to_string()),
        Row::zero(
            10,
            "clients not served by the next broker's first request",
            not_served,
        ),
        Row::info(
            10,
            "restart to all six served (median)",
            format!("{median_restart:.0} ms"),
        ),
        Row::zero(10, "registry changed by a kill", registry_changed),
        Row::zero(10, "session cache damaged by a kill", sessions_damaged),
        Row::zero(10, "temp files left in the vault directory", temps),
        Row::zero(10, "audit lines torn or unreadable", torn),
        Row::zero(10, "tokens in the audit log", leaked),
        Row::info(
            10,
            &format!("requests/s with {idle} idle held (alone; ratio)"),
            format!(
                "{:.0}/s ({:.0}/s; {:.2}×)",
                loaded.wrk.rps,
                quiet.wrk.rps,
                loaded.wrk.rps / quiet.wrk.rps.max(1.0)
            ),
        ),
        Row::zero(10, "wrk errors, alone", quiet.wrk.errors as usize),
        Row::zero(
            10,
            "wrk errors, held: non-2xx, connect, write, timeout",
            (loaded.wrk.errors - held_read) as usize,
        ),
        Row::zero(
            10,
            "legitimate requests refused (while held, after wrk, after the neighbour)",
            [answered_while_held, loaded.answered_after, answered_after]
                .iter()
                .filter(|ok| !**ok)
                .count(),
        ),
        Row::check(
            10,
            "broker peak RSS, held",
            format!("{:.1} MiB", loaded.hwm_kib as f64 / 1024.0),
            "< 64 MiB",
            loaded.hwm_kib < 64 * 1024,
        ),
    ];
    s.json = json!({
        "rounds": rounds, "killed": killed, "not_served": not_served,
        "registry_changed": registry_changed, "sessions_damaged": sessions_damaged,
        "temp_files": temps, "torn_audit_lines": torn, "restart_ms": restart_ms,
        "flood": {"idle": idle, "alone_rps": quiet.wrk.rps, "held_rps": loaded.wrk.rps,
                  "held_errors": loaded.wrk.errors, "held_read_errors": held_read},
    });
    Ok(s)
}

fn target(broker: &Broker, token: &str) -> Target {
    Target {
        port: broker.port,
        token: token.to_owned(),
        pid: broker.process.pid(),
    }
}
