//! Scenario 1: warm `vault exec lab -- true` (each backend, the kept key and not) against the
//! floor and awsume.

use super::*;

impl<'a> Bench<'a> {
    pub(super) fn warm_exec(&self, report: &mut Report) -> Result<Vec<Series>> {
        // The keyring vault's first run mints (and asks for a code) once.
        self.ok(self.keyring, &["exec", "lab", "--", "true"], &[])?;
        let mut contenders = vec![
            self.floor(),
            Contender::new("vault exec lab -- true (passphrase, unlocked)", || {
                self.vault(self.file, &["exec", "lab", "--", "true"])
            }),
            Contender::new("vault exec lab -- true (OS keyring: gnome-keyring)", || {
                self.vault(self.keyring, &["exec", "lab", "--", "true"])
            }),
            // `vault lock` (untimed) before each run: the kept key is gone, as after the idle
            // timeout, so the run reads the key over D-Bus and keeps it again.
            Contender::new(
                "vault exec lab -- true (OS keyring, first command after the idle timeout)",
                || self.vault(self.keyring, &["exec", "lab", "--", "true"]),
            )
            .before(|| self.ok(self.keyring, &["lock"], &[]).map(drop)),
        ];
        // The same run with the glibc build (`cargo install`'s), for comparison: the
        // dynamic loader and glibc's start-up are what the static build saves.
        let host = self.host_bin.as_ref().map(|bin| {
            Contender::new(
                "vault exec lab -- true (passphrase, unlocked; glibc build, cargo install)",
                move || {
                    let mut cmd = self.file.command(bin);
                    cmd.args(["exec", "lab", "--", "true"]);
                    cmd
                },
            )
        });
        // awsume caches the MFA session but assumes the role on every run (one AssumeRole to
        // moto each time); this is awsume as users run it, sourced.
        let awsume_index = self.awsume().map(|awsume| {
            contenders.push(Contender::new(
                "awsume lab (sourced, MFA session cached)",
                move || awsume.command("lab"),
            ));
            contenders.len() - 1
        });
        contenders.extend(host);
        let series = self.interleave(&contenders)?;
        let floor = &series[0];
        let warm_sts: usize = series[1..4]
            .iter()
            .flat_map(|s| s.sts.iter().map(Vec::len))
            .sum();

        let mut md = String::new();
        md.push_str(
            "A cached role session (and MFA session): no STS request, no prompt. The passphrase \
             vault was opened once with `vault unlock`; the OS-keyring vault's key is in a \
             private gnome-keyring reached over D-Bus, and kept in the kernel keyring after the \
             first read, like an unlocked passphrase vault. The row \"first command after the idle \
             timeout\" runs `vault lock` (untimed) before each run, so each reads the key over \
             D-Bus (a connection and a `plain` Secret Service session) and keeps it again.\n\n",
        );
        md.push_str(&time_table(&series, Some(floor)));
        let _ = writeln!(
            md,
            "\nSTS requests made by the warm vault runs: {warm_sts} (target 0)."
        );
        if let Some(awsume) = awsume_index.map(|i| &series[i]) {
            let per: Vec<usize> = awsume.sts.iter().map(Vec::len).collect();
            let _ = writeln!(
                md,
                "awsume's STS requests per warm run: {} (it caches the MFA session, not the \
                 role's).",
                summarize_counts(&per)
            );
        }
        md.push_str(&self.awsume_note());

        // After unlock: ≤ 3× at first, ≤ 1.5× since #11.
        let targets = [(1, 1.5, "passphrase, unlocked"), (2, 5.0, "OS keyring")];
        for (i, target, label) in targets {
            let ratio = series[i].time().median / floor.time().median;
            let verdict = Verdict::pass_if(ratio <= target);
            report.rows.push(Row::new(
                1,
                &format!("warm exec ({label}) vs floor"),
                ms(series[i].time().median),
                ms(floor.time().median),
                Some(ratio),
                format!("≤ {target}×"),
                verdict,
            ));
            report.bars.push(Bar {
                label: format!("warm exec, {label} / floor (≤ {target}×)"),
                ratio,
                target: Some((Dir::AtMost, target)),
                verdict,
            });
        }
        if let (Some(_), Some(host)) = (&self.host_bin, series.last()) {
            let ratio = host.time().median / floor.time().median;
            report.rows.push(Row::new(
                1,
                "warm exec (passphrase, unlocked), glibc build (`cargo install`) vs floor",
                ms(host.time().median),
                ms(floor.time().median),
                Some(ratio),
                "(comparison)".into(),
                Verdict::Info,
            ));
        }
        let first = series[3].time().median / floor.time().median;
        let verdict = Verdict::pass_if(first <= 3.0);
        report.rows.push(Row::new(
            1,
            "OS keyring, first command after the idle timeout vs floor",
            ms(series[3].time().median),
            ms(floor.time().median),
            Some(first),
            "≤ 3×".into(),
            verdict,
        ));
        report.bars.push(Bar {
            label: "OS keyring, first command after the idle timeout / floor (≤ 3×)".into(),
            ratio: first,
            target: Some((Dir::AtMost, 3.0)),
            verdict,
        });
        if let Some(awsume) = awsume_index.map(|i| &series[i]) {
            let ratio = awsume.time().median / floor.time().median;
            report.rows.push(Row::new(
                1,
                "awsume (warm) vs floor",
                ms(awsume.time().median),
                ms(floor.time().median),
                Some(ratio),
                "(comparison)".into(),
                Verdict::Info,
            ));
            report.bars.push(Bar {
                label: "awsume, warm / floor (comparison)".into(),
                ratio,
                target: None,
                verdict: Verdict::Info,
            });
            let vs = awsume.time().median / series[1].time().median;
            report.rows.push(Row::new(
                1,
                "awsume vs vault (passphrase, unlocked)",
                ms(awsume.time().median),
                ms(series[1].time().median),
                Some(vs),
                "(comparison)".into(),
                Verdict::Info,
            ));
        }
        report.rows.push(Row::new(
            2,
            "warm exec: STS requests",
            warm_sts.to_string(),
            String::new(),
            None,
            "= 0".into(),
            Verdict::pass_if(warm_sts == 0),
        ));
        report.section(1, "Warm exec", md);
        report.json["warm_exec"] = json!({
            "series": series.iter().map(Series::json).collect::<Vec<_>>(),
            "warm_sts_requests": warm_sts,
        });
        Ok(series)
    }
}
