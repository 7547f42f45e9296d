//! `vault exec --server` / `--imds`: vault stays as the child's parent, serving and renewing
//! credentials until the child exits.
//!
//! The main thread owns the vault and the minter and waits for events: a handler asking for
//! renewal, the renewal timer, a signal to forward, the child's exit. Signals sent to vault
//! with kill(2) (`kill`, systemd, CI runners) are forwarded; signals the terminal sends to the
//! whole foreground group (Ctrl-C) already reach the child and are not sent twice, so tools
//! that treat a second Ctrl-C as "abort now" (Terraform) behave.

use std::ffi::OsString;
use std::process::{ExitCode, ExitStatus};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use vault_sts::mfa::CodeUnavailable;
use vault_sts::plan::{Plan, StepKind};

use crate::error::{CommandError, CommandResult};
use crate::mfa::{AheadCodes, OneCode};
use crate::prepare::Prepared;
use crate::process;
use crate::server::{self, Protocol, Published, RenewReply, Shared, Supply};

enum Event {
    Renew(RenewReply),
    /// A code asked for ahead of time, or why there is none.
    MfaCode(Result<SecretString, CodeUnavailable>),
    Child(std::io::Result<ExitStatus>),
    // Only Unix forwards signals to the child.
    #[cfg_attr(not(unix), allow(dead_code))]
    Signal(i32),
}

pub struct Options {
    pub kind: Protocol,
    pub lazy: bool,
    pub profile: String,
    pub program: OsString,
    pub args: Vec<OsString>,
    /// How long before the MFA session ends a long job asks for the next code, so the job
    /// never meets expired credentials while a prompt waits in a terminal nobody watches
    /// (aws-vault #779). `None`: never.
    pub ask_ahead: Option<Duration>,
}

pub fn run(prepared: Prepared, options: Options) -> CommandResult<ExitCode> {
    if matches!(prepared.plan.final_step().kind, StepKind::StoredKey) {
        return Err(CommandError::user(
            "credential servers hand out temporary credentials, and --no-session asks for the long-lived key",
        )
        .hint("drop --no-session"));
    }
    let plan = renewing_plan(&prepared.plan);
    let minter = prepared.minter();
    let mut ahead = AskAhead::new(&prepared, &plan, options.ask_ahead);
    let region = prepared.aws.settings().region.clone();

    let (events, inbox) = mpsc::channel::<Event>();
    let (renew_tx, renew_rx) = mpsc::channel::<RenewReply>();
    // Handlers talk to us through `renew_tx`; forward into the one inbox.
    {
        let events = events.clone();
        std::thread::spawn(move || {
            for reply in renew_rx {
                if events.send(Event::Renew(reply)).is_err() {
                    break;
                }
            }
        });
    }

    let (listener, shared) = listen(&prepared.plan, options.kind, &region, renew_tx)?;

    let mint = |shared: &Shared| -> CommandResult<Arc<Published>> {
        let minted = minter
            .credentials(&plan)
            .map_err(|e| crate::error::mint_error(e, &plan))?;
        for warning in &minted.warnings {
            eprintln!("vault: warning: {}", crate::error::escaped(warning));
        }
        let published = Published::render(&minted.credentials, minted.account_id.as_deref())
            .ok_or_else(|| CommandError::user("the credentials have no session token or expiry"))?;
        let published = Arc::new(published);
        shared.supply.publish(published.clone());
        Ok(published)
    };

    if !options.lazy {
        // Up front, so an MFA prompt comes now, on the terminal, not in the middle of a build.
        mint(&shared).map_err(|e| {
            e.hint(format!(
                "`vault exec --explain {}` shows every step; --lazy waits for the first request",
                options.profile
            ))
        })?;
    }
    server::spawn(listener, shared.clone())
        .map_err(|e| CommandError::user(format!("cannot start the credential server: {e}")))?;

    let mut cmd = child_command(&options, &region, &shared);
    // Watch signals before the child exists, so none is lost in between; they are forwarded
    // once its PID is known.
    forward_signals(events.clone());
    let mut child = cmd
        .spawn()
        .map_err(|e| process::spawn_error(e, &options.program.to_string_lossy()))?;
    let pid = child.id();
    // Held until vault returns; on Windows its drop (or vault's death) ends the child.
    let _tie = process::tie(&child).unwrap_or_else(|e| {
        eprintln!("vault: warning: the child will not end with vault: {e}");
        process::Tie::none()
    });
    {
        let events = events.clone();
        std::thread::spawn(move || {
            let _ = events.send(Event::Child(child.wait()));
        });
    }
    let ask_events = events.clone();
    drop(events);

    let mut next_renewal = next_renewal_after(&shared.supply);
    ahead.schedule(&minter, &plan);
    loop {
        match inbox.recv_timeout(until_first(next_renewal, ahead.at)) {
            Ok(Event::Child(status)) => {
                let status = status
                    .map_err(|e| CommandError::user(format!("waiting for the child: {e}")))?;
                return Ok(exit_code(status));
            }
            Ok(Event::Signal(signal)) => send_signal(pid, signal),
            Ok(Event::Renew(reply)) => {
                let result = match shared.supply.fresh() {
                    Some(p) => Ok(p),
                    None => mint(&shared)
                        .inspect_err(|e| report(&options.profile, e))
                        .map_err(|e| e.message),
                };
                let _ = reply.send(result);
                next_renewal = next_renewal_after(&shared.supply);
                // A renewal may have begun a new MFA session: the next question moves with it.
                ahead.schedule(&minter, &plan);
            }
            Ok(Event::MfaCode(code)) => {
                ahead.answered(&prepared, &plan, code, &options.profile);
                ahead.schedule(&minter, &plan);
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = Utc::now();
                if ahead.at.is_some_and(|at| at <= now) {
                    ahead.ask(&ask_events, Event::MfaCode, &options.profile);
                }
                if next_renewal.is_none_or(|at| at <= now) {
                    if let Err(e) = mint(&shared) {
                        report(&options.profile, &e);
                    }
                    next_renewal = next_renewal_after(&shared.supply);
                    ahead.schedule(&minter, &plan);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(ExitCode::from(1)),
        }
    }
}

/// The listener on 127.0.0.1 and the state its handlers share, before anything is minted.
fn listen(
    plan: &Plan,
    kind: Protocol,
    region: &str,
    renew_tx: mpsc::Sender<RenewReply>,
) -> CommandResult<(std::net::TcpListener, Arc<Shared>)> {
    let listener = server::bind()
        .map_err(|e| CommandError::user(format!("cannot listen on 127.0.0.1: {e}")))?;
    let port = listener.local_addr().map_err(CommandError::user)?.port();
    let mut imds_key = [0u8; 32];
    getrandom::fill(&mut imds_key)
        .map_err(|e| CommandError::user(format!("no randomness: {e}")))?;
    let shared = Arc::new(Shared {
        kind,
        port,
        ecs_token: server::random_token(32),
        imds_key,
        supply: Supply::new(renew_tx, min_left(plan)),
        role_name: role_name(plan),
        region: region.to_owned(),
    });
    Ok((listener, shared))
}

/// The child: our environment without stale credentials, pointed at our endpoint.
fn child_command(options: &Options, region: &str, shared: &Shared) -> std::process::Command {
    let mut cmd = process::tied_child(&options.program, &options.args);
    cmd.env_remove("AWS_EC2_METADATA_DISABLED");
    cmd.env("AWS_VAULT", &options.profile);
    cmd.env("AWS_REGION", region);
    cmd.env("AWS_DEFAULT_REGION", region);
    match options.kind {
        Protocol::Ecs => {
            cmd.env(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                format!("http://127.0.0.1:{}/", shared.port),
            );
            cmd.env("AWS_CONTAINER_AUTHORIZATION_TOKEN", &shared.ecs_token);
        }
        Protocol::Imds { .. } => {
            cmd.env(
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                format!("http://127.0.0.1:{}/", shared.port),
            );
        }
    }
    cmd
}

/// How long to wait for the first of a renewal and a question ahead of time (an hour when
/// neither is due).
pub(crate) fn until_first(
    renewal: Option<DateTime<Utc>>,
    question: Option<DateTime<Utc>>,
) -> Duration {
    let wake = match (renewal, question) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    wake.map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
        .unwrap_or(Duration::from_secs(3600))
}

/// After a question went unanswered (or the code was refused), the next try.
const ASK_AGAIN_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Asking for the next MFA code before the MFA session ends.
pub(crate) struct AskAhead {
    /// `None`: off, or the plan asks for no code.
    ahead: Option<(chrono::TimeDelta, AheadCodes, String)>,
    /// The MFA step and when its cached session ends.
    session: Option<(usize, DateTime<Utc>)>,
    /// When to ask next.
    pub(crate) at: Option<DateTime<Utc>>,
    /// A question is out (one at a time).
    asking: bool,
    /// Not again before this (after a failure).
    not_before: Option<DateTime<Utc>>,
}

impl AskAhead {
    /// `ahead`: `AWS_VAULT_MFA_ASK_AHEAD` (`None`: off).
    pub(crate) fn new(prepared: &Prepared, plan: &Plan, ahead: Option<Duration>) -> AskAhead {
        let ahead = ahead.and_then(|d| chrono::TimeDelta::from_std(d).ok());
        let ahead = match (&plan.mfa_serial, ahead) {
            (Some(serial), Some(ahead)) if !ahead.is_zero() => {
                Some((ahead, prepared.mfa.ahead(), serial.value.clone()))
            }
            _ => None,
        };
        AskAhead {
            ahead,
            session: None,
            at: None,
            asking: false,
            not_before: None,
        }
    }

    /// When to ask, from the MFA session now cached.
    pub(crate) fn schedule(&mut self, minter: &vault_sts::mint::Minter<'_>, plan: &Plan) {
        let Some((ahead, ..)) = &self.ahead else {
            return;
        };
        if self.asking {
            return;
        }
        self.session = minter.mfa_session(plan).ok().flatten();
        let now = Utc::now();
        self.at = self.session.and_then(|(_, ends)| {
            // Not right after a code was typed, nor after the session is over (then the
            // next renewal asks, as it always did).
            let at = (ends - *ahead).max(now + chrono::TimeDelta::seconds(5));
            let at = self.not_before.map_or(at, |nb| at.max(nb));
            (at < ends).then_some(at)
        });
    }

    /// Puts the question on another thread; the answer comes back on `events`, wrapped.
    pub(crate) fn ask<E: Send + 'static>(
        &mut self,
        events: &mpsc::Sender<E>,
        wrap: fn(Result<SecretString, CodeUnavailable>) -> E,
        profile: &str,
    ) {
        let (Some((_, codes, serial)), Some((_, ends))) = (&self.ahead, self.session) else {
            return;
        };
        self.asking = true;
        self.at = None;
        let why = format!(
            "the MFA session of `vault exec` {profile} ends at {}",
            ends.with_timezone(&chrono::Local).format("%H:%M")
        );
        eprintln!(
            "vault: asking for the next MFA code of {} ahead of time ({why})",
            crate::error::escaped(profile)
        );
        let (codes, serial, events) = (codes.clone(), serial.clone(), events.clone());
        std::thread::spawn(move || {
            let _ = events.send(wrap(codes.ask(&serial, &why)));
        });
    }

    /// Mints the MFA session again with the code, or notes when to try again.
    pub(crate) fn answered(
        &mut self,
        prepared: &Prepared,
        plan: &Plan,
        code: Result<SecretString, CodeUnavailable>,
        profile: &str,
    ) {
        self.asking = false;
        let profile = crate::error::escaped(profile);
        let renewed = code.map_err(|e| e.to_string()).and_then(|code| {
            let (index, ends) = self.session.ok_or("no MFA session to renew")?;
            let one = OneCode(std::cell::RefCell::new(Some(code)));
            prepared
                .minter_with(&one)
                .renew_early(plan, index, ends)
                .map_err(|e| e.to_string())
        });
        match renewed {
            Ok(_) => {
                self.not_before = None;
                eprintln!("vault: renewed the MFA session of {profile} ahead of time");
            }
            Err(e) => {
                self.not_before = Some(Utc::now() + ASK_AGAIN_AFTER);
                eprintln!(
                    "vault: could not renew the MFA session of {profile} ahead of time ({});                      asking again in 10 minutes",
                    crate::error::escaped(&e)
                );
            }
        }
    }
}

/// The plan with a minimum TTL that forces a fresh mint once a session is inside the renewal
/// window (the vault's cached session is reused while it is outside it).
pub(crate) fn renewing_plan(plan: &Plan) -> Plan {
    let mut plan = plan.clone();
    if plan.min_ttl.value < server::RENEW_AHEAD {
        plan.min_ttl.value = server::RENEW_AHEAD;
    }
    plan
}

/// What a server hands out has at least this long left: 15 minutes, or the plan's minimum
/// TTL (`AWS_MIN_TTL`) when that is longer.
pub(crate) fn min_left(plan: &Plan) -> chrono::Duration {
    chrono::Duration::from_std(plan.min_ttl.value)
        .unwrap_or(chrono::Duration::MAX)
        .max(server::MIN_HANDED_OUT)
}

fn next_renewal(supply: &Supply) -> Option<chrono::DateTime<Utc>> {
    let ahead = chrono::Duration::from_std(server::RENEW_AHEAD)
        .expect("minutes fit")
        .max(supply.min_left + chrono::Duration::minutes(5));
    supply.published().map(|p| p.expires - ahead)
}

/// Not sooner than a minute from now, so a short session or an unreachable STS cannot spin.
/// Nothing published yet (`--lazy`, or every mint failed): no timer; requests ask.
pub(crate) fn next_renewal_after(supply: &Supply) -> Option<chrono::DateTime<Utc>> {
    let floor = Utc::now() + chrono::Duration::seconds(60);
    next_renewal(supply).map(|at| at.max(floor))
}

/// A renewal failed while the child runs: the message and what to do, not fatal.
pub(crate) fn report(profile: &str, error: &CommandError) {
    let profile = crate::error::escaped(profile);
    eprintln!(
        "vault: cannot renew the credentials of {profile:?}: {}",
        crate::error::escaped(&error.message)
    );
    for hint in &error.hints {
        eprintln!("hint: {}", crate::error::escaped(hint));
    }
}

/// The name the metadata service gives the "instance role": the assumed role's name, else
/// the profile's.
fn role_name(plan: &Plan) -> String {
    match &plan.final_step().kind {
        StepKind::AssumeRole { role, .. } => role.name().to_owned(),
        _ => plan.profile.clone(),
    }
}

fn exit_code(status: ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return ExitCode::from((128 + signal).clamp(0, 255) as u8);
        }
    }
    ExitCode::from(1)
}

#[cfg(unix)]
const FORWARDED: &[i32] = &[
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
    signal_hook::consts::SIGQUIT,
    signal_hook::consts::SIGUSR1,
    signal_hook::consts::SIGUSR2,
    signal_hook::consts::SIGWINCH,
];

#[cfg(unix)]
fn forward_signals(events: mpsc::Sender<Event>) {
    use signal_hook::iterator::SignalsInfo;
    use signal_hook::iterator::exfiltrator::WithOrigin;
    use signal_hook::low_level::siginfo::Cause;

    let mut signals = match SignalsInfo::<WithOrigin>::new(FORWARDED) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot watch signals: {e}");
            return;
        }
    };
    std::thread::spawn(move || {
        for info in signals.forever() {
            // Sent by a process: forward. Sent by the kernel for the terminal: the child,
            // in the same foreground group, has it already.
            if matches!(info.cause, Cause::Sent(_))
                && events.send(Event::Signal(info.signal)).is_err()
            {
                break;
            }
        }
    });
}

#[cfg(not(unix))]
fn forward_signals(_events: mpsc::Sender<Event>) {
    // Windows delivers console Ctrl+C to every process attached to the console: the child
    // has it; vault keeps serving until the child ends.
    crate::process::leave_interrupts_to_the_child();
}

#[cfg(unix)]
fn send_signal(pid: u32, signal: i32) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    if let Ok(signal) = Signal::try_from(signal) {
        let _ = kill(Pid::from_raw(pid as i32), signal);
    }
}

#[cfg(not(unix))]
fn send_signal(_pid: u32, _signal: i32) {}
