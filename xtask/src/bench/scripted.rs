//! Scenario 7: scripts and CI, which pass the passphrase in `AWS_VAULT_FILE_PASSPHRASE` and
//! never run `vault unlock`: the first command of a session (scrypt), warm commands after
//! it (the key kept sealed under the passphrase), and 32 parallel cold exports (scrypt
//! single-flight: counted from `--debug`, summed peak RSS).

use super::*;

/// The `--debug` line each scrypt run prints.
const SCRYPT_LINE: &str = "opening the vault key with scrypt";

impl<'a> Bench<'a> {
    pub(super) fn scripted(&self, report: &mut Report, scripted: &TestEnv) -> Result {
        // The first command of a session: scrypt once (shown, not part of the warm figure).
        self.ok(scripted, &["lock"], &[])?;
        let first = measure(&|| self.vault(scripted, &["exec", "lab", "--", "true"]))?;
        let contenders = [
            self.floor(),
            Contender::new(
                "vault exec lab -- true (passphrase from the environment, no unlock)",
                || self.vault(scripted, &["exec", "lab", "--", "true"]),
            ),
        ];
        let series = self.interleave(&contenders)?;
        let (floor, warm) = (&series[0], &series[1]);
        let ratio = warm.time().median / floor.time().median;
        let rss = warm.rss_mib();

        // 32 at once on a locked vault (the sessions are cached: only the key is needed).
        self.ok(scripted, &["lock"], &[])?;
        let children: Vec<Child> = (0..32)
            .map(|_| {
                self.vault(scripted, &["--debug", "export", "--format", "json", "lab"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(|e| format!("vault export: {e}"))
            })
            .collect::<Result<_>>()?;
        let (mut scrypts, mut summed_kib, mut ids, mut failed) = (0, 0u64, Vec::new(), 0);
        for mut child in children {
            use std::io::Read;
            let (mut out, mut err) = (String::new(), String::new());
            let mut stdout = child.stdout.take().expect("piped");
            let mut stderr = child.stderr.take().expect("piped");
            // Small outputs: they fit the pipes, so reaping first cannot block.
            let (status, kib) = wait_rusage(child)?;
            let _ = stdout.read_to_string(&mut out);
            let _ = stderr.read_to_string(&mut err);
            scrypts += err.matches(SCRYPT_LINE).count();
            summed_kib += kib;
            failed += usize::from(!status.success());
            let id = serde_json::from_str::<Value>(&out)
                .ok()
                .and_then(|j| j["AccessKeyId"].as_str().map(str::to_owned));
            ids.push(id);
        }
        let same = ids.iter().all(|id| id.is_some() && *id == ids[0]);
        let summed_mib = summed_kib as f64 / 1024.0;

        let mut md = String::from(
            "A passphrase vault used the way scripts and CI use it: `AWS_VAULT_FILE_PASSPHRASE` \
             set, `vault unlock` never run. The first command of a session runs scrypt and keeps \
             the vault key in the session keyring sealed under the passphrase; later commands \
             with the same passphrase unseal it (docs/backends.md).\n\n",
        );
        let _ = writeln!(
            md,
            "First command of the session (scrypt): {} ms, peak RSS {:.1} MiB (excluded from \
             the warm figure).\n",
            ms(first.ms),
            first.rss_kib as f64 / 1024.0
        );
        md.push_str(&time_table(&series, Some(floor)));
        let _ = writeln!(
            md,
            "\n32 parallel `vault export --format json lab` on a locked vault: scrypt ran \
             {scrypts} time(s); summed peak RSS {summed_mib:.0} MiB; {failed} failed; all the \
             same credentials: {same}."
        );
        let rows = [
            (
                "warm exec (passphrase from the environment) vs floor",
                ms(warm.time().median),
                ms(floor.time().median),
                Some(ratio),
                "≤ 3×",
                ratio <= 3.0,
            ),
            (
                "peak RSS, warm exec (passphrase from the environment)",
                format!("{:.1} MiB", rss.median),
                String::new(),
                None,
                "< 15 MiB",
                rss.median < 15.0,
            ),
            (
                "32 parallel cold exports: scrypt runs",
                scrypts.to_string(),
                String::new(),
                None,
                "= 1",
                scrypts == 1 && failed == 0 && same,
            ),
            (
                "32 parallel cold exports: summed peak RSS",
                format!("{summed_mib:.0} MiB"),
                String::new(),
                None,
                "< 1 GiB",
                summed_mib < 1024.0,
            ),
        ];
        for (measure, value, comparison, ratio, target, ok) in rows {
            report.rows.push(Row::new(
                7,
                measure,
                value,
                comparison,
                ratio,
                target.into(),
                Verdict::pass_if(ok),
            ));
        }
        report.bars.push(Bar {
            label: "warm exec, passphrase from the environment / floor (≤ 3×)".into(),
            ratio,
            target: Some((Dir::AtMost, 3.0)),
            verdict: Verdict::pass_if(ratio <= 3.0),
        });
        report.section(7, "Scripts: a passphrase from the environment", md);
        report.json["scripted"] = json!({
            "first_ms": first.ms,
            "first_rss_kib": first.rss_kib,
            "series": series.iter().map(Series::json).collect::<Vec<_>>(),
            "parallel_scrypt_runs": scrypts,
            "parallel_summed_rss_mib": summed_mib,
            "parallel_failed": failed,
            "parallel_same_credentials": same,
        });
        Ok(())
    }
}
