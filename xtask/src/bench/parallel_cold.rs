//! Scenario 3: 32 concurrent cold `vault export`: STS requests and MFA prompts (single flight).

use super::*;

impl<'a> Bench<'a> {
    pub(super) fn parallel_cold(&self, report: &mut Report) -> Result {
        let args = ["export", "--format", "json", "lab"];
        let mut cold = Series::named(&format!("{PARALLEL} × vault export, empty cache"));
        let mut warm = Series::named(&format!("{PARALLEL} × vault export, warm cache"));
        let mut distinct_keys = Vec::new();
        let (mut gst, mut ar) = (Vec::new(), Vec::new());
        for round in 0..self.opts.warmup + self.opts.runs {
            for is_cold in [round % 2 == 0, round % 2 == 1] {
                if is_cold {
                    self.ok(self.file, &["clear"], &[])?;
                }
                let sts_before = self.sts_len();
                let prompts_before = mfa_prompts(self.file);
                let start = Instant::now();
                let children: Vec<Child> = (0..PARALLEL)
                    .map(|_| {
                        self.vault(self.file, &args)
                            .stdout(Stdio::piped())
                            .stderr(Stdio::piped())
                            .spawn()
                            .map_err(|e| format!("cannot start vault: {e}"))
                    })
                    .collect::<Result<_>>()?;
                let mut keys = Vec::new();
                for child in children {
                    let out = child
                        .wait_with_output()
                        .map_err(|e| format!("vault export: {e}"))?;
                    if !out.status.success() {
                        return Err(format!(
                            "vault export failed ({}): {}",
                            out.status,
                            String::from_utf8_lossy(&out.stderr).trim()
                        ));
                    }
                    let json: Value = serde_json::from_slice(&out.stdout)
                        .map_err(|e| format!("vault export printed no JSON: {e}"))?;
                    keys.push(json["AccessKeyId"].as_str().unwrap_or_default().to_owned());
                }
                let elapsed = start.elapsed().as_secs_f64() * 1e3;
                let calls: Vec<String> = self.moto.sts_actions()[sts_before..].to_vec();
                let prompts = mfa_prompts(self.file) - prompts_before;
                if round < self.opts.warmup {
                    continue;
                }
                keys.sort();
                keys.dedup();
                let series = if is_cold { &mut cold } else { &mut warm };
                series.ms.push(elapsed);
                series.prompts.push(prompts);
                if is_cold {
                    distinct_keys.push(keys.len());
                    gst.push(calls.iter().filter(|c| *c == "GetSessionToken").count());
                    ar.push(calls.iter().filter(|c| *c == "AssumeRole").count());
                }
                series.sts.push(calls);
            }
        }
        let all_one = |v: &[usize]| v.iter().all(|n| *n == 1);
        let pass = all_one(&gst)
            && all_one(&ar)
            && all_one(&cold.prompts)
            && cold.sts.iter().all(|c| c.len() == 2)
            && all_one(&distinct_keys);
        let warm_sts: usize = warm.sts.iter().map(Vec::len).sum();
        let mut md = format!(
            "{PARALLEL} `vault export --format json lab` started at once, {} rounds after {} \
             warm-up rounds; before each cold round `vault clear` empties the cache. A warm round \
             (same {PARALLEL} processes, cache full) follows each cold one as the comparison.\n\n",
            self.opts.runs, self.opts.warmup
        );
        md.push_str(&time_table(&[cold.clone(), warm.clone()], Some(&warm)));
        let _ = writeln!(
            md,
            "\nPer cold round: GetSessionToken {}, AssumeRole {}, all STS requests {}, MFA prompts \
             {}, distinct credentials handed out {}. Warm rounds: {warm_sts} STS requests, {} \
             prompts.",
            summarize_counts(&gst),
            summarize_counts(&ar),
            summarize_counts(&cold.sts.iter().map(Vec::len).collect::<Vec<_>>()),
            summarize_counts(&cold.prompts),
            summarize_counts(&distinct_keys),
            warm.prompts.iter().sum::<usize>(),
        );
        report.rows.push(Row::new(
            3,
            &format!("{PARALLEL} parallel cold exports: STS + prompts"),
            format!(
                "GST {}, AR {}, prompts {}",
                summarize_counts(&gst),
                summarize_counts(&ar),
                summarize_counts(&cold.prompts)
            ),
            String::new(),
            None,
            "1 GST + 1 AR, 1 prompt".into(),
            Verdict::pass_if(pass),
        ));
        report.rows.push(Row::new(
            3,
            &format!("{PARALLEL} parallel: cold burst vs warm burst"),
            ms(cold.time().median),
            ms(warm.time().median),
            Some(cold.time().median / warm.time().median),
            "(no target)".into(),
            Verdict::Info,
        ));
        report.section(3, "Parallel cold", md);
        report.json["parallel_cold"] = json!({
            "processes": PARALLEL,
            "cold": cold.json(),
            "warm": warm.json(),
            "get_session_token_per_round": gst,
            "assume_role_per_round": ar,
            "distinct_credentials_per_round": distinct_keys,
        });
        Ok(())
    }
}
