//! `vault serve`: the container credential broker, in the foreground until SIGINT/SIGTERM.
//!
//! The HTTP side is `server::broker`. Here: the addresses it may bind, and the worker threads
//! that mint, one per profile, each owning its own vault handle and minter (never on the
//! async runtime). A worker renews its profile's credentials ahead of expiry and asks for
//! the next MFA code ahead of time as `exec --server` does; MFA prompts of different
//! profiles take turns on the terminal.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use secrecy::SecretString;
use vault_sts::mfa::CodeUnavailable;
use vault_sts::plan::{Plan, StepKind};

use crate::cli::ServeArgs;
use crate::context::Context;
use crate::error::{CommandError, CommandResult, escaped};
use crate::prepare::{self, Prepared, Request};
use crate::server::broker::{Broker, Slot, Start};
use crate::server::{self, Published, RenewReply};
use crate::supervise::{self, AskAhead};

/// The addresses the SDKs' container providers accept over plain HTTP besides loopback
/// (botocore and aws-sdk-rust alike): the ECS and EKS link-local endpoints.
const CONTAINER_ADDRESSES: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 23)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)),
];

enum Event {
    Start(Start),
    // Only Unix watches signals; Windows ends on the console's Ctrl+C.
    #[cfg_attr(not(unix), allow(dead_code))]
    Stop(i32),
}

pub fn run(ctx: &Context, args: ServeArgs) -> CommandResult<ExitCode> {
    for addr in &args.listen {
        check_address(*addr, args.expose_to_network)?;
    }
    let vault = ctx.open_vault_as_found()?;
    let dir = vault.dir().to_owned();
    let clients = vault.container_clients()?;
    drop(vault);
    let listeners = args
        .listen
        .iter()
        .map(|addr| bind(*addr))
        .collect::<CommandResult<Vec<_>>>()?;

    let (events, inbox) = mpsc::channel::<Event>();
    let starter = Mutex::new(events.clone());
    let broker = Arc::new(Broker::new(
        &dir,
        min_left(ctx),
        Box::new(move |start| {
            let _ = starter
                .lock()
                .expect("not poisoned")
                .send(Event::Start(start));
        }),
    ));
    watch_signals(events);
    server::spawn_all(listeners, broker.clone())
        .map_err(|e| CommandError::user(format!("cannot start the broker: {e}")))?;
    let profiles: BTreeSet<String> = clients.iter().map(|c| c.profile.clone()).collect();
    let shown: Vec<String> = args.listen.iter().map(|a| format!("http://{a}/")).collect();
    eprintln!(
        "vault: serving container credentials on {} ({} clients, {} profiles); Ctrl+C stops",
        shown.join(", "),
        clients.len(),
        profiles.len()
    );
    if clients.is_empty() {
        eprintln!("vault: no clients yet: vault container add NAME PROFILE (takes effect at once)");
    }
    let ask_ahead = ctx.settings.mfa_ask_ahead;
    std::thread::scope(|scope| {
        let start_worker = |start: Start| {
            let name = format!("vault-{}", start.slot.profile);
            let _ = std::thread::Builder::new()
                .name(name)
                .spawn_scoped(scope, move || worker(ctx, start, ask_ahead));
        };
        if !args.lazy {
            // Now, one at a time, so MFA prompts come here in order rather than at a
            // container's first request.
            for profile in &profiles {
                let slot = broker.slot(profile);
                while let Ok(Event::Start(start)) = inbox.try_recv() {
                    start_worker(start);
                }
                if let Err(message) = first_mint(&slot) {
                    eprintln!(
                        "vault: warning: profile {:?} cannot be served yet: {}",
                        escaped(profile),
                        escaped(&message)
                    );
                }
            }
        }
        loop {
            match inbox.recv() {
                Ok(Event::Start(start)) => start_worker(start),
                Ok(Event::Stop(signal)) => {
                    eprintln!("vault: stopping the broker (signal {signal})");
                    broker.flush_audit();
                    // Workers may be waiting on a prompt or STS: nothing of theirs needs
                    // finishing (every file write is atomic), so the process just ends.
                    std::process::exit(0);
                }
                Err(_) => return Ok(ExitCode::SUCCESS),
            }
        }
    })
}

/// Waits for the first credentials of `slot`'s profile.
fn first_mint(slot: &Slot) -> Result<Arc<Published>, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    slot.supply
        .renew
        .lock()
        .expect("not poisoned")
        .send(tx)
        .map_err(|_| "its worker did not start".to_owned())?;
    rx.blocking_recv()
        .map_err(|_| "its worker stopped".to_owned())?
}

/// Loopback and the container endpoints' addresses; anything else (a wildcard, a LAN
/// address) only with `--expose-to-network`, whose name says what it risks.
fn check_address(addr: SocketAddr, exposed: bool) -> CommandResult {
    let ip = addr.ip();
    if ip.is_loopback() || CONTAINER_ADDRESSES.contains(&ip) || exposed {
        return Ok(());
    }
    let what = match ip.is_unspecified() {
        true => "every address of this machine",
        false => "an address other hosts may reach",
    };
    Err(CommandError::new(crate::error::Kind::Usage, format!(
        "refusing to listen on {addr}: that is {what}, and every host that reaches it could try tokens"
    ))
    .hint(
        "listen on 127.0.0.1 for local processes, or on a container network's gateway \
         169.254.170.2 (docs/containers.md); --expose-to-network allows it anyway",
    ))
}

fn bind(addr: SocketAddr) -> CommandResult<TcpListener> {
    let listener = TcpListener::bind(addr).map_err(|e| {
        let error = CommandError::user(format!("cannot listen on {addr}: {e}"));
        match e.kind() {
            std::io::ErrorKind::AddrNotAvailable => error.hint(format!(
                "no interface of this machine has {}: create the container network first \
                 (docker network create --subnet 169.254.170.0/24 --gateway 169.254.170.2 vault; \
                 docs/containers.md)",
                addr.ip()
            )),
            std::io::ErrorKind::AddrInUse => {
                error.hint("another vault serve (or another program) is listening there")
            }
            _ => error,
        }
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| CommandError::user(format!("cannot listen on {addr}: {e}")))?;
    Ok(listener)
}

/// What the broker hands out has at least this long left: 15 minutes, or `AWS_MIN_TTL`.
fn min_left(ctx: &Context) -> chrono::Duration {
    chrono::Duration::from_std(ctx.settings.ttls.min_ttl.value)
        .unwrap_or(chrono::Duration::MAX)
        .max(server::MIN_HANDED_OUT)
}

enum WorkerEvent {
    Renew(RenewReply),
    MfaCode(Result<SecretString, CodeUnavailable>),
}

/// A profile's prepared plan: made at its first request, made again after it failed (the
/// config may have been fixed meanwhile).
struct Ready {
    prepared: Prepared,
    plan: Plan,
    ahead: AskAhead,
}

fn prepare_profile(
    ctx: &Context,
    slot: &Slot,
    ask_ahead: Option<Duration>,
) -> CommandResult<Ready> {
    let prepared = prepare::prepare(ctx, &Request::profile(slot.profile.clone()))?;
    if matches!(prepared.plan.final_step().kind, StepKind::StoredKey) {
        return Err(CommandError::user(
            "the broker hands out temporary credentials, and this profile's plan ends at the long-lived key",
        ));
    }
    let plan = supervise::renewing_plan(&prepared.plan);
    *slot.role_arn.write().expect("not poisoned") = match &plan.final_step().kind {
        StepKind::AssumeRole { role, .. } => Some(role.arn.value.clone()),
        StepKind::SsoRole {
            account_id,
            role_name,
            ..
        } => Some(format!(
            "arn:aws:iam::{}:role/{}",
            account_id.value, role_name.value
        )),
        _ => None,
    };
    let ahead = AskAhead::new(&prepared, &plan, ask_ahead);
    Ok(Ready {
        prepared,
        plan,
        ahead,
    })
}

fn worker(ctx: &Context, start: Start, ask_ahead: Option<Duration>) {
    let Start { slot, renew } = start;
    let (events, inbox) = mpsc::channel::<WorkerEvent>();
    {
        let events = events.clone();
        std::thread::spawn(move || {
            for reply in renew {
                if events.send(WorkerEvent::Renew(reply)).is_err() {
                    break;
                }
            }
        });
    }
    let profile = slot.profile.clone();
    let mut ready: Option<Ready> = None;
    let mut next_renewal: Option<chrono::DateTime<Utc>> = None;
    let mint = |ready: &mut Option<Ready>| -> CommandResult<Arc<Published>> {
        if ready.is_none() {
            *ready = Some(prepare_profile(ctx, &slot, ask_ahead)?);
        }
        let r = ready.as_mut().expect("prepared above");
        let minted = r.prepared.minter().credentials(&r.plan);
        // The next call is a renewal most of an hour away: the SDK's runtime, HTTP client
        // and TLS roots are not kept for it (with 10 profiles, most of the broker's memory).
        r.prepared.aws.idle();
        let minted = minted.map_err(|e| crate::error::mint_error(e, &r.plan))?;
        for warning in &minted.warnings {
            eprintln!("vault: warning: {}", escaped(warning));
        }
        let published = Published::render(&minted.credentials, minted.account_id.as_deref())
            .ok_or_else(|| CommandError::user("the credentials have no session token or expiry"))?;
        let published = Arc::new(published);
        slot.supply.publish(published.clone());
        Ok(published)
    };
    let reschedule = |ready: &mut Option<Ready>| {
        if let Some(r) = ready {
            r.ahead.schedule(&r.prepared.minter(), &r.plan);
        }
    };
    loop {
        let ahead_at = ready.as_ref().and_then(|r| r.ahead.at);
        match inbox.recv_timeout(supervise::until_first(next_renewal, ahead_at)) {
            Ok(WorkerEvent::Renew(reply)) => {
                let result = match slot.supply.fresh() {
                    Some(p) => Ok(p),
                    None => mint(&mut ready)
                        .inspect_err(|e| supervise::report(&profile, e))
                        .map_err(|e| e.message),
                };
                let _ = reply.send(result);
                next_renewal = supervise::next_renewal_after(&slot.supply);
                reschedule(&mut ready);
            }
            Ok(WorkerEvent::MfaCode(code)) => {
                if let Some(r) = &mut ready {
                    r.ahead.answered(&r.prepared, &r.plan, code, &profile);
                }
                reschedule(&mut ready);
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = Utc::now();
                if let Some(r) = &mut ready
                    && r.ahead.at.is_some_and(|at| at <= now)
                {
                    r.ahead.ask(&events, WorkerEvent::MfaCode, &profile);
                }
                if next_renewal.is_some_and(|at| at <= now) {
                    if let Err(e) = mint(&mut ready) {
                        supervise::report(&profile, &e);
                    }
                    next_renewal = supervise::next_renewal_after(&slot.supply);
                    reschedule(&mut ready);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(unix)]
fn watch_signals(events: mpsc::Sender<Event>) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot watch signals: {e}");
            return;
        }
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let _ = events.send(Event::Stop(signal));
        }
    });
}

/// Ctrl+C ends the process with the console's default handler.
#[cfg(not(unix))]
fn watch_signals(_events: mpsc::Sender<Event>) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_and_the_container_endpoints_bind_without_the_flag() {
        for ok in [
            "127.0.0.1:9911",
            "[::1]:9911",
            "169.254.170.2:9911",
            "169.254.170.23:80",
            "[fd00:ec2::23]:80",
        ] {
            assert!(check_address(ok.parse().unwrap(), false).is_ok(), "{ok}");
        }
        for refused in [
            "0.0.0.0:9911",
            "[::]:9911",
            "192.168.1.5:9911",
            "169.254.170.3:1",
        ] {
            assert!(
                check_address(refused.parse().unwrap(), false).is_err(),
                "{refused}"
            );
            assert!(
                check_address(refused.parse().unwrap(), true).is_ok(),
                "{refused}"
            );
        }
    }
}
