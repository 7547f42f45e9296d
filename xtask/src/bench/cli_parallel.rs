//! Scenario 8: 16 AWS CLI processes at once, each getting credentials through
//! `credential_process = vault export --format json lab` (the passphrase in the environment,
//! as scripts run it), against the same 16 calls with the same role's keys in the environment.
//! Both make one GetCallerIdentity each to moto; the difference is vault's share.

use super::*;

/// AWS CLI processes per burst.
const CLI_PARALLEL: usize = 16;
/// Bursts per contender: each is ~16 CLI starts on 2 cores, so the minimum the bench allows.
const CLI_ROUNDS: usize = 10;

impl<'a> Bench<'a> {
    pub(super) fn cli_parallel(
        &self,
        report: &mut Report,
        scripted: &TestEnv,
        aws: &Path,
    ) -> Result {
        let config = format!(
            "{}\n[profile cp]\ncredential_process = {} export --format json lab\nregion = us-east-1\n",
            config(scripted, &self.role_arn, SMALL_CONFIG),
            self.bin.display()
        );
        scripted.write_config(&config);
        // The static contender gets the role's own session keys, so both sign as the role.
        let exported = self.ok(scripted, &["export", "--format", "env", "lab"], &[])?;
        let keys = parse_env(&exported);
        let key = |name: &str| -> Result<String> {
            keys.get(name)
                .cloned()
                .ok_or_else(|| format!("vault export printed no {name}"))
        };
        let statics = [
            ("AWS_ACCESS_KEY_ID", key("AWS_ACCESS_KEY_ID")?),
            ("AWS_SECRET_ACCESS_KEY", key("AWS_SECRET_ACCESS_KEY")?),
            ("AWS_SESSION_TOKEN", key("AWS_SESSION_TOKEN")?),
        ];
        let cli = |via_vault: bool| {
            let mut cmd = scripted.command(aws);
            cmd.args(["sts", "get-caller-identity", "--output", "text"]);
            if via_vault {
                cmd.env("AWS_PROFILE", "cp");
            } else {
                cmd.env("AWS_DEFAULT_REGION", "us-east-1");
                for (name, value) in &statics {
                    cmd.env(name, value);
                }
            }
            cmd
        };
        let burst = |via_vault: bool| -> Result<f64> {
            let start = Instant::now();
            let children: Vec<Child> = (0..CLI_PARALLEL)
                .map(|_| {
                    cli(via_vault)
                        .stdin(Stdio::null())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .map_err(|e| format!("cannot start the AWS CLI: {e}"))
                })
                .collect::<Result<_>>()?;
            for child in children {
                let out = child.wait_with_output().map_err(|e| format!("aws: {e}"))?;
                let text = String::from_utf8_lossy(&out.stdout);
                if !out.status.success() || !text.contains(":assumed-role/") {
                    return Err(format!(
                        "aws sts get-caller-identity failed ({}): {}{}",
                        out.status,
                        text.trim(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
            }
            Ok(start.elapsed().as_secs_f64() * 1e3)
        };
        let mut through = Series::named(&format!(
            "{CLI_PARALLEL} × aws sts get-caller-identity, credential_process = vault export"
        ));
        let mut fixed = Series::named(&format!(
            "{CLI_PARALLEL} × aws sts get-caller-identity, static keys in the environment"
        ));
        let sts_before = self.sts_len();
        for round in 0..1 + CLI_ROUNDS {
            // The order alternates, so neither always runs on a cooler machine.
            for via_vault in [round % 2 == 0, round % 2 == 1] {
                let ms = burst(via_vault)?;
                if round >= 1 {
                    let series = if via_vault { &mut through } else { &mut fixed };
                    series.ms.push(ms);
                }
            }
        }
        let calls = self.moto.sts_actions()[sts_before..].to_vec();
        let minted = calls.iter().filter(|c| *c != "GetCallerIdentity").count();
        let ratio = through.time().median / fixed.time().median;
        let mut md = format!(
            "{CLI_PARALLEL} `aws sts get-caller-identity` (AWS CLI {}) started at once, {CLI_ROUNDS} \
             bursts each after one warm-up burst, the order alternating. One contender's profile \
             is `credential_process = vault export --format json lab` with \
             `AWS_VAULT_FILE_PASSPHRASE` set and no `vault unlock` (the vault key kept sealed, the \
             role session cached); the other has the same role session's keys in \
             `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`. The AWS CLI \
             runs credential_process on every start (it does not cache it).\n\n",
            aws_cli_version(aws)
        );
        md.push_str(&time_table(&[through.clone(), fixed.clone()], Some(&fixed)));
        let _ = writeln!(
            md,
            "\nSTS requests other than the CLI's own GetCallerIdentity during the bursts: {minted} \
             (the role session comes from vault's cache)."
        );
        let pass = ratio <= 1.2 && minted == 0;
        report.rows.push(Row::new(
            8,
            &format!("{CLI_PARALLEL} parallel AWS CLI via credential_process vs static keys"),
            ms(through.time().median),
            ms(fixed.time().median),
            Some(ratio),
            "≤ 1.2×".into(),
            Verdict::pass_if(pass),
        ));
        report.bars.push(Bar {
            label: format!("{CLI_PARALLEL} AWS CLI, credential_process / static keys (≤ 1.2×)"),
            ratio,
            target: Some((Dir::AtMost, 1.2)),
            verdict: Verdict::pass_if(pass),
        });
        report.section(8, "Parallel AWS CLI through credential_process", md);
        report.json["cli_parallel"] = json!({
            "processes": CLI_PARALLEL,
            "credential_process": through.json(),
            "static_keys": fixed.json(),
            "sts_requests_besides_get_caller_identity": minted,
        });
        Ok(())
    }
}

fn aws_cli_version(aws: &Path) -> String {
    Command::new(aws)
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.split_whitespace()
                .next()
                .and_then(|w| w.strip_prefix("aws-cli/"))
                .unwrap_or("unknown")
                .to_owned()
        })
        .unwrap_or_else(|| "unknown".into())
}
