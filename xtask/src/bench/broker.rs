//! Scenario 9: `vault serve` with 100 registered clients on 10 profiles, under wrk fetching
//! with every client's token in turn, against nginx serving the same bytes to the same
//! script; and the broker's memory with those clients.

use super::*;

const CLIENTS: usize = 100;
const PROFILES: usize = 10;

impl<'a> Bench<'a> {
    pub(super) fn broker(&self, report: &mut Report, key_id: &str, secret: &str) -> Result {
        let seconds = self.opts.wrk_seconds;
        let rounds = self.opts.wrk_rounds;

        // A vault of its own: the key, ten role profiles, a hundred clients.
        let mut env = TestEnv::new();
        env.use_moto(self.moto);
        env.set("AWS_VAULT_BACKEND", "file");
        env.set("AWS_VAULT_FILE_PASSPHRASE", PASSPHRASE);
        let mut config = String::from("[profile base]\nregion = us-east-1\n\n");
        for p in 0..PROFILES {
            let _ = write!(
                config,
                "[profile svc-{p}]\nsource_profile = base\nrole_arn = arn:aws:iam::123456789012:role/svc-{p}\n\n"
            );
        }
        env.write_config(&config);
        self.ok(
            &env,
            &["add", "--env", "base", "--no-add-config"],
            &[
                ("AWS_ACCESS_KEY_ID", key_id),
                ("AWS_SECRET_ACCESS_KEY", secret),
            ],
        )?;
        let mut tokens = Vec::with_capacity(CLIENTS);
        for c in 0..CLIENTS {
            let name = format!("c{c}");
            let profile = format!("svc-{}", c % PROFILES);
            self.ok(&env, &["container", "add", &name, &profile], &[])?;
            let vars = parse_env(&self.ok(&env, &["container", "env", &name], &[])?);
            let file = vars
                .get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
                .ok_or("container env printed no token file")?;
            tokens.push(fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?);
        }

        // The broker, every profile minted at start (not lazy).
        let sts_before = self.sts_len();
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let child = self
            .vault(&env, &["serve", "--listen", &listen])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start vault serve: {e}"))?;
        let broker = Stopped {
            child,
            extra: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !matches!(
            http_request(port, "GET", "/health", &[], b""),
            Some((200, _))
        ) {
            if Instant::now() > deadline {
                return Err("vault serve did not answer /health in 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut body = String::new();
        for token in &tokens {
            match http_request(port, "GET", "/", &[("Authorization", token)], b"") {
                Some((200, answer)) => body = answer,
                other => return Err(format!("the broker answered {other:?}")),
            }
        }
        let minted = self.sts_len() - sts_before;

        // One script for both: each request the next client's token (nginx ignores it).
        let script = env.dir.path().join("tokens.lua");
        let mut lua = String::from("local tokens = {\n");
        for t in &tokens {
            let _ = writeln!(lua, "  \"{t}\",");
        }
        lua.push_str(
            "}\nlocal i = 0\nrequest = function()\n  i = i % #tokens + 1\n  \
             return wrk.format(\"GET\", \"/\", { [\"Authorization\"] = tokens[i] })\nend\n",
        );
        fs::write(&script, lua).map_err(|e| format!("{}: {e}", script.display()))?;

        let nginx = Nginx::start(&env, &body)?;
        let targets = [
            format!("http://127.0.0.1:{}/", nginx.port),
            format!("http://127.0.0.1:{port}/"),
        ];
        for url in &targets {
            wrk_script(url, &script, 2)?;
        }
        let mut results: [Vec<WrkResult>; 2] = Default::default();
        for round in 0..rounds {
            for k in 0..2 {
                let i = (round + k) % 2;
                results[i].push(wrk_script(&targets[i], &script, seconds)?);
            }
        }
        let pss = [nginx.pss_kib()?, pss_kib(broker.pid())?];
        drop(nginx);
        drop(broker);
        let _ = fs::remove_file(&script);
        let sts_during = self.sts_len() - sts_before - minted;

        let summary: Vec<WrkSummary> = results.iter().map(|r| WrkSummary::of(r)).collect();
        let (n, b) = (&summary[0], &summary[1]);
        let mut md = format!(
            "`vault serve` with {CLIENTS} registered clients on {PROFILES} role profiles (every \
             profile minted at start: {minted} STS requests), under `wrk -t{WRK_THREADS} \
             -c{WRK_CONNECTIONS} -d{seconds}s --latency` with a Lua script that sends the next \
             client's token on each request, so every request is a registry lookup over 100 \
             digests; nginx (`nginx-light`, one worker per core) answers the same script with \
             the broker's {} bytes as a fixed string. {rounds} round(s) per server, order \
             rotating, after a 2 s warm-up each; medians with min–max. PSS \
             (`/proc/PID/smaps_rollup`) after all rounds. STS requests while under load: \
             {sts_during}.\n\n",
            body.len()
        );
        wrk_table(
            &mut md,
            &[("nginx (floor)", n, pss[0]), ("vault serve", b, pss[1])],
        );
        versus_nginx(report, 9, ("broker, 100 clients", "broker"), b, n);
        report.rows.push(Row::new(
            9,
            "broker, 100 clients: PSS of vault serve",
            format!("{:.1} MiB", pss[1] as f64 / MIB),
            format!("nginx {:.1} MiB", pss[0] as f64 / MIB),
            None,
            "< 15 MiB".into(),
            Verdict::pass_if((pss[1] as f64) < 15.0 * MIB),
        ));
        report.section(9, "The container broker", md);
        let runs = |i: usize| -> Value {
            json!({
                "pss_kib": pss[i],
                "runs": results[i].iter().map(WrkResult::json).collect::<Vec<_>>(),
            })
        };
        report.json["broker"] = json!({
            "clients": CLIENTS,
            "profiles": PROFILES,
            "wrk": {"threads": WRK_THREADS, "connections": WRK_CONNECTIONS, "seconds": seconds, "rounds": rounds},
            "body_bytes": body.len(),
            "sts_at_start": minted,
            "sts_under_load": sts_during,
            "nginx": runs(0),
            "broker": runs(1),
        });
        Ok(())
    }
}
