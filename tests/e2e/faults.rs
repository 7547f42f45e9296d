//! STS that fails the way networks and services do: 500, 503, throttling, a connection reset,
//! an answer cut off halfway, and an endpoint that never answers. A small fault-injecting
//! proxy on 127.0.0.1 sits in front of moto (no such tool is packaged here): it plays the
//! next fault from its script for each request, forwards the rest to moto, and counts every
//! attempt it saw, so the tests show the SDK's standard retries at work.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vault_harness::World;
use vault_harness::terminal::{Shell, Terminal};

const PASSPHRASE: &str = "faults test passphrase";

#[derive(Clone, Copy, Debug)]
enum Fault {
    Status(u16),
    Throttling,
    /// Close the connection without a word.
    Reset,
    /// Headers and a Content-Length, then half the body and close.
    Truncated,
    /// Read the request, then say nothing (until the test ends).
    Silent,
}

struct Proxy {
    port: u16,
    seen: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: u16, script: Vec<Fault>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (s, st) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for client in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (seen, script, stop) = (s.clone(), script.clone(), st.clone());
                std::thread::spawn(move || serve(client, upstream, &seen, &script, &stop));
            }
        });
        Proxy {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn attempts(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One request per connection (the answer says `Connection: close`).
fn serve(
    mut client: TcpStream,
    upstream: u16,
    seen: &AtomicUsize,
    script: &Mutex<VecDeque<Fault>>,
    stop: &AtomicBool,
) {
    let Some(request) = read_request(&client) else {
        return;
    };
    seen.fetch_add(1, Ordering::SeqCst);
    let fault = script.lock().unwrap().pop_front();
    let answer = |client: &mut TcpStream, status: u16, body: &str| {
        let _ = write!(
            client,
            "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    };
    match fault {
        Some(Fault::Status(status)) => answer(&mut client, status, ""),
        Some(Fault::Throttling) => answer(
            &mut client,
            400,
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>\
             <Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>",
        ),
        Some(Fault::Reset) => {}
        Some(Fault::Truncated) => {
            let _ = client.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<GetSessionTokenResponse>",
            );
        }
        Some(Fault::Silent) => {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        None => {
            let mut moto = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
            moto.write_all(&request).unwrap();
            let mut response = Vec::new();
            let _ = moto.read_to_end(&mut response);
            let _ = client.write_all(&response);
        }
    }
}

/// The request's bytes, with `Connection: close` so upstream ends its answer with EOF.
fn read_request(client: &TcpStream) -> Option<Vec<u8>> {
    let mut reader = BufReader::new(client.try_clone().ok()?);
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        if lower.starts_with("connection:") {
            continue;
        }
        head.extend_from_slice(line.as_bytes());
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    head.extend_from_slice(&body);
    Some(head)
}

fn world() -> World {
    World::new(PASSPHRASE, "[profile base]\nregion = us-east-1\n")
}

/// `vault export --format json base` with STS reached through `proxy`.
fn export(w: &World, proxy: &Proxy, extra: &[(&str, &str)]) -> vault_harness::Run {
    let endpoint = format!("http://127.0.0.1:{}", proxy.port);
    let mut vars = vec![("AWS_ENDPOINT_URL", endpoint.as_str())];
    vars.extend_from_slice(extra);
    w.env
        .run_with(&vars, &["export", "--format", "json", "base"])
}

fn moto_port(w: &World) -> u16 {
    w.moto
        .endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("moto's endpoint has a port")
}

#[test]
fn transient_faults_are_retried_and_the_session_is_minted() {
    let w = world();
    for script in [
        vec![Fault::Status(500)],
        vec![Fault::Status(503), Fault::Throttling],
        vec![Fault::Reset],
        vec![Fault::Truncated],
    ] {
        w.env.run(&["clear"]).success();
        let faults = script.len();
        let proxy = Proxy::start(moto_port(&w), script.clone());
        let run = export(&w, &proxy, &[]);
        run.success();
        assert!(run.stdout.contains("SessionToken"), "{script:?}");
        assert_eq!(proxy.attempts(), faults + 1, "{script:?}");
    }
    assert_eq!(w.moto.count("GetSessionToken"), 4);
    let transcript = w.env.transcript();
    assert!(!transcript.contains(&w.secret) && !transcript.contains(&w.key_id));
}

#[test]
fn persistent_faults_end_after_the_documented_attempts_with_a_message_naming_sts() {
    let w = world();
    let proxy = Proxy::start(moto_port(&w), vec![Fault::Status(503); 10]);
    export(&w, &proxy, &[])
        .failure(1)
        .stderr_has("STS")
        .stderr_has("GetSessionToken");
    // The standard retry mode: 3 attempts in all.
    assert_eq!(proxy.attempts(), 3);
    let proxy = Proxy::start(moto_port(&w), vec![Fault::Throttling; 10]);
    export(&w, &proxy, &[("AWS_MAX_ATTEMPTS", "2")])
        .failure(1)
        .stderr_has("Throttling");
    assert_eq!(proxy.attempts(), 2);
    assert_eq!(w.moto.count("GetSessionToken"), 0);
}

#[test]
fn an_endpoint_that_never_answers_ends_within_the_bound() {
    let w = world();
    let proxy = Proxy::start(moto_port(&w), vec![Fault::Silent; 10]);
    let start = Instant::now();
    let run = export(&w, &proxy, &[("AWS_VAULT_STS_TIMEOUT", "3s")]);
    run.failure(1)
        .stderr_has("cannot reach STS")
        .stderr_has("GetSessionToken");
    // stderr is a pipe here, read by a program: no status line while it waits.
    assert!(!run.stderr.contains("waiting for"), "{}", run.stderr);
    let took = start.elapsed();
    // Not a timing assertion on speed: only that the documented bound holds at all.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    w.env
        .run_with(&[("AWS_VAULT_STS_TIMEOUT", "soon")], &["export", "base"])
        .failure(2)
        .stderr_has("AWS_VAULT_STS_TIMEOUT");
}

#[test]
fn a_slow_call_says_on_the_terminal_what_it_waits_for() {
    let mut w = world();
    w.env.put_vault_on_path();
    let Some(term) = Terminal::start(&w.env, Shell::Bash) else {
        return;
    };
    let proxy = Proxy::start(moto_port(&w), vec![Fault::Silent; 10]);
    term.line(&format!(
        "AWS_ENDPOINT_URL=http://127.0.0.1:{} AWS_VAULT_STS_TIMEOUT=4s vault export --format json base >/dev/null; echo done-$?",
        proxy.port
    ));
    // After a second: one line naming the call and where it went.
    let screen = term.wait_for("waiting for STS GetSessionToken");
    assert!(
        screen.contains(&format!("127.0.0.1:{}", proxy.port)),
        "{screen}"
    );
    let screen = term.wait_for("done-1");
    assert_eq!(screen.matches("waiting for").count(), 1, "{screen}");
}
