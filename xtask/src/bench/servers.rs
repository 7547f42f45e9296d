//! Scenario 4: the `--server` and `--imds` endpoints under wrk against nginx serving the same
//! JSON.

use super::*;

impl<'a> Bench<'a> {
    pub(super) fn servers(&self, report: &mut Report) -> Result {
        let seconds = self.opts.wrk_seconds;
        let rounds = self.opts.wrk_rounds;
        let sts_before = self.sts_len();

        // The ECS-style endpoint: its answer is also what nginx will return.
        let ecs = self.served("--server")?;
        let token = ecs
            .env
            .get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            .ok_or("the --server child has no AWS_CONTAINER_AUTHORIZATION_TOKEN")?
            .clone();
        let body = match http_request(ecs.port, "GET", "/", &[("Authorization", &token)], b"") {
            Some((200, body)) => body,
            other => return Err(format!("the --server endpoint answered {other:?}")),
        };
        let ecs_target = (
            format!("http://127.0.0.1:{}/", ecs.port),
            format!("Authorization: {token}"),
        );

        // The IMDSv2 endpoint, with a token fetched first.
        let imds = self.served("--imds")?;
        let token = match http_request(
            imds.port,
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
            b"",
        ) {
            Some((200, token)) => token,
            other => return Err(format!("the --imds token request answered {other:?}")),
        };
        let role = match http_request(
            imds.port,
            "GET",
            "/latest/meta-data/iam/security-credentials/",
            &[("X-aws-ec2-metadata-token", &token)],
            b"",
        ) {
            Some((200, role)) => role.trim().to_owned(),
            other => return Err(format!("the --imds role listing answered {other:?}")),
        };
        let imds_target = (
            format!(
                "http://127.0.0.1:{}/latest/meta-data/iam/security-credentials/{role}",
                imds.port
            ),
            format!("X-aws-ec2-metadata-token: {token}"),
        );

        // nginx returning the same JSON.
        let nginx = Nginx::start(self.file, &body)?;
        let nginx_target = (
            format!("http://127.0.0.1:{}/", nginx.port),
            "Authorization: x".to_owned(),
        );

        // All three stay up; a 2 s warm-up each, then `rounds` rounds of one wrk run per
        // server, the order rotating.
        let targets = [&nginx_target, &ecs_target, &imds_target];
        for (url, header) in targets {
            wrk(url, header, 2)?;
        }
        let mut results: [Vec<WrkResult>; 3] = Default::default();
        for round in 0..rounds {
            for k in 0..targets.len() {
                let i = (round + k) % targets.len();
                let (url, header) = targets[i];
                results[i].push(wrk(url, header, seconds)?);
            }
        }
        let pss = [nginx.pss_kib()?, pss_kib(ecs.pid())?, pss_kib(imds.pid())?];
        drop(nginx);
        drop(imds);
        drop(ecs);
        let sts = self.sts_len() - sts_before;

        let mut md = format!(
            "`wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{seconds}s --latency`, {rounds} round(s) \
             per server (order rotating) after a 2 s warm-up each, against `vault exec --server \
             lab -- sleep` (with the child's `Authorization` token), `vault exec --imds lab -- \
             sleep` (IMDSv2 token from a PUT first; `GET …/security-credentials/{role}`), and \
             nginx (`nginx-light`, `worker_processes auto`: one worker per core, `return 200` with the --server answer's {} bytes \
             of JSON as a fixed string, keep-alive) on 127.0.0.1. wrk shares the 2 cores with \
             the server. Figures are medians over the rounds, with min–max. Memory is PSS \
             (`/proc/PID/smaps_rollup`) after all rounds: shared pages counted once, split \
             between the processes sharing them (for nginx, master + workers summed). STS \
             requests during this case: {sts}.\n\n",
            body.len()
        );
        let names = ["nginx (floor)", "vault --server", "vault --imds"];
        let summary: Vec<WrkSummary> = results.iter().map(|r| WrkSummary::of(r)).collect();
        let rows: Vec<(&str, &WrkSummary, u64)> =
            (0..3).map(|i| (names[i], &summary[i], pss[i])).collect();
        wrk_table(&mut md, &rows);
        for (i, kind) in [(1, "--server"), (2, "--imds")] {
            versus_nginx(report, 4, (kind, kind), &summary[i], &summary[0]);
            report.rows.push(Row::new(
                4,
                &format!("{kind}: PSS of vault"),
                format!("{:.1} MiB", pss[i] as f64 / MIB),
                format!("nginx {:.1} MiB", pss[0] as f64 / MIB),
                None,
                "< 20 MiB".into(),
                Verdict::pass_if((pss[i] as f64) < 20.0 * MIB),
            ));
        }
        report.section(4, "Servers", md);
        let runs = |i: usize| -> Value {
            json!({
                "pss_kib": pss[i],
                "runs": results[i].iter().map(WrkResult::json).collect::<Vec<_>>(),
            })
        };
        report.json["servers"] = json!({
            "wrk": {"threads": WRK_THREADS, "connections": WRK_CONNECTIONS, "seconds": seconds, "rounds": rounds},
            "body_bytes": body.len(),
            "nginx": runs(0),
            "ecs": runs(1),
            "imds": runs(2),
            "sts_requests": sts,
        });
        Ok(())
    }

    /// `vault exec KIND lab` on the passphrase vault.
    fn served(&self, kind: &str) -> Result<ServedVault> {
        ServedVault::start(self.file, &self.bin, kind, "lab", &format!("served{kind}"))
    }
}

/// `vault exec --server|--imds PROFILE -- sh -c 'env > FILE; exec sleep 600'`, running, with
/// its child's environment and the endpoint's port; stopped by its PID (the child too) when
/// dropped. The bench's servers and the stress scenario's.
pub(crate) struct ServedVault {
    process: Stopped,
    pub(crate) env: std::collections::BTreeMap<String, String>,
    pub(crate) port: u16,
}

impl ServedVault {
    /// Runs `bin` in `env` with `kind` (`--server` or `--imds`); `name` is its dir in the
    /// temp dir.
    pub(crate) fn start(
        env: &TestEnv,
        bin: &Path,
        kind: &str,
        profile: &str,
        name: &str,
    ) -> Result<ServedVault> {
        let dir = env.dir.path().join(name);
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let env_file = dir.join("env");
        let script = format!(
            "echo $$ > {d}/pid; env > {d}/env.tmp && mv {d}/env.tmp {d}/env; exec sleep 600",
            d = dir.display()
        );
        let child = env
            .command(bin)
            .args(["exec", kind, profile, "--", "sh", "-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start vault exec {kind}: {e}"))?;
        let mut process = Stopped {
            child,
            extra: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !env_file.exists() {
            if Instant::now() > deadline {
                return Err(format!(
                    "vault exec {kind}: the child did not start in 30 s"
                ));
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                return Err(format!("vault exec {kind} exited early ({status})"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(pid) = fs::read_to_string(dir.join("pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            process.extra.push(pid);
        }
        let env = parse_env(&fs::read_to_string(&env_file).map_err(|e| e.to_string())?);
        let url = env
            .get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .or_else(|| env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT"))
            .ok_or(format!("vault exec {kind}: the child has no endpoint"))?;
        let port = url
            .strip_prefix("http://127.0.0.1:")
            .and_then(|rest| rest.split('/').next())
            .and_then(|port| port.parse().ok())
            .ok_or(format!("endpoint {url:?} is not http://127.0.0.1:PORT/"))?;
        Ok(ServedVault { process, env, port })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }
}
