//! The contender nginx: a tuned server returning the same JSON as vault's endpoints, the
//! floor a server reaches on this machine.

use super::*;

/// nginx with one worker per core (`worker_processes auto`, as a tuned server runs) on 127.0.0.1, returning `body` as a fixed string; everything it
/// writes stays in a temp dir.
pub(super) struct Nginx {
    pub(super) process: Stopped,
    pub(super) port: u16,
}

impl Nginx {
    pub(super) fn start(env: &TestEnv, body: &str) -> Result<Nginx> {
        let dir = env.dir.path().join("nginx");
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let escaped = body.replace('\\', "\\\\").replace('\'', "\\'");
        let port = free_port();
        let d = dir.display();
        // As root, workers drop to nobody; elsewhere the directive is ignored.
        let conf = format!(
            "worker_processes auto;\n\
             user nobody nogroup;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
             \x20 access_log off;\n\
             \x20 keepalive_requests 1000000;\n\
             \x20 client_body_temp_path {d}/body;\n\
             \x20 proxy_temp_path {d}/proxy;\n\
             \x20 fastcgi_temp_path {d}/fastcgi;\n\
             \x20 uwsgi_temp_path {d}/uwsgi;\n\
             \x20 scgi_temp_path {d}/scgi;\n\
             \x20 server {{\n\
             \x20   listen 127.0.0.1:{port};\n\
             \x20   location / {{\n\
             \x20     default_type application/json;\n\
             \x20     return 200 '{escaped}';\n\
             \x20   }}\n\
             \x20 }}\n\
             }}\n"
        );
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf).map_err(|e| format!("{}: {e}", conf_path.display()))?;
        let child = env
            .command("nginx")
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.join("error.log"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start nginx (apt-get install nginx-light): {e}"))?;
        let mut process = Stopped {
            child,
            extra: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some((200, answer)) = http_request(port, "GET", "/", &[], b"") {
                if answer != body {
                    return Err("nginx answered something else than the JSON".into());
                }
                break;
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                let log = fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                return Err(format!("nginx exited ({status}): {}", log.trim()));
            }
            if Instant::now() > deadline {
                return Err("nginx did not answer within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        process.extra = worker_pids(process.pid());
        Ok(Nginx { process, port })
    }

    /// PSS of the master and its workers together, KiB.
    pub(super) fn pss_kib(&self) -> Result<u64> {
        std::iter::once(self.process.pid())
            .chain(worker_pids(self.process.pid()))
            .map(pss_kib)
            .sum()
    }
}

/// The PIDs whose parent is `parent` (nginx's workers).
pub(super) fn worker_pids(parent: u32) -> Vec<u32> {
    let text =
        fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).unwrap_or_default();
    text.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}
