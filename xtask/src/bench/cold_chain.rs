//! Scenario 2: the cold role + MFA chain from an empty cache, against awsume and the floor:
//! wall time, STS requests per run (from moto's recording) and MFA prompts.

use super::*;

/// What a cold role + MFA chain must cost, fixed here rather than read from vault's own
/// `--explain` (which would make vault its own judge): one MFA session, one role session.
const COLD_CHAIN: [&str; 2] = ["GetSessionToken", "AssumeRole"];

impl<'a> Bench<'a> {
    /// Role + MFA from an empty cache, interleaved with awsume from an empty cache and the
    /// floor. Leaves the cache warm.
    pub(super) fn cold_chain(&self, report: &mut Report) -> Result {
        let explain = self.ok(self.file, &["exec", "--explain", "lab"], &[])?;
        let plan = COLD_CHAIN;
        let mut contenders = vec![
            self.floor(),
            Contender::new("vault exec lab -- true, empty cache", || {
                self.vault(self.file, &["exec", "lab", "--", "true"])
            })
            .before(|| self.ok(self.file, &["clear"], &[]).map(|_| ()))
            .prompts(self.file),
        ];
        if let Some(awsume) = self.awsume() {
            contenders.push(
                Contender::new("awsume lab, empty cache", move || {
                    awsume.command(&format!("lab --mfa-token {MFA_CODE}"))
                })
                .before(move || awsume.clear_cache()),
            );
        }
        let series = self.interleave(&contenders)?;
        let (floor, vault) = (&series[0], &series[1]);
        let awsume = series.get(2);

        let exact = vault.sts.iter().all(|calls| *calls == plan);
        let one_prompt = vault.prompts.iter().all(|p| *p == 1);
        let per_run: Vec<usize> = vault.sts.iter().map(Vec::len).collect();

        let mut md = String::new();
        let _ = writeln!(
            md,
            "Profile `lab`: role `{}` assumed from the MFA session of the stored key `base` \
             (`mfa_process` supplies the code). `vault clear` before each vault run; awsume's \
             `~/.awsume/cache` removed before each awsume run.\n",
            self.role_arn
        );
        md.push_str("The plan (`vault exec --explain lab`, before the runs):\n\n```\n");
        md.push_str(explain.trim_end());
        md.push_str("\n```\n\n");
        md.push_str(&time_table(&series, Some(floor)));
        let _ = writeln!(
            md,
            "\nSTS requests per cold vault run (moto's recording): {} (the target: exactly {}, \
             {}); MFA prompts per run: {}.\n",
            summarize_counts(&per_run),
            plan.len(),
            plan.join(" → "),
            summarize_counts(&vault.prompts),
        );
        if let Some(awsume) = awsume {
            let per: Vec<usize> = awsume.sts.iter().map(Vec::len).collect();
            let _ = writeln!(
                md,
                "awsume's STS requests per cold run: {}.\n",
                summarize_counts(&per)
            );
        }
        md.push_str(&self.awsume_note());

        report.rows.push(Row::new(
            2,
            "cold chain: STS requests per run",
            summarize_counts(&per_run),
            format!("target: {} calls", plan.len()),
            None,
            format!("= {} ({})", plan.len(), plan.join(" + ")),
            Verdict::pass_if(exact),
        ));
        report.rows.push(Row::new(
            2,
            "cold chain: MFA prompts per run",
            summarize_counts(&vault.prompts),
            String::new(),
            None,
            "= 1".into(),
            Verdict::pass_if(one_prompt),
        ));
        report.rows.push(Row::new(
            2,
            "cold chain: wall time vs floor",
            ms(vault.time().median),
            ms(floor.time().median),
            Some(vault.time().median / floor.time().median),
            "(no target)".into(),
            Verdict::Info,
        ));
        if let Some(awsume) = awsume {
            report.rows.push(Row::new(
                2,
                "cold chain: wall time vs awsume",
                ms(vault.time().median),
                ms(awsume.time().median),
                Some(vault.time().median / awsume.time().median),
                "(no target)".into(),
                Verdict::Info,
            ));
        }
        report.section(2, "Cold chain (role + MFA from an empty cache)", md);
        report.json["cold_chain"] = json!({
            "plan": plan,
            "series": series.iter().map(Series::json).collect::<Vec<_>>(),
            "exactly_one_request_per_step": exact,
        });
        Ok(())
    }
}
