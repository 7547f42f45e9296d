//! Scenario 6: peak memory of warm exec and of `vault unlock`.

use super::*;

impl<'a> Bench<'a> {
    pub(super) fn memory(&self, report: &mut Report, warm: &[Series]) -> Result {
        let unlock = Contender::new("vault unlock (scrypt)", || {
            let mut cmd = self.vault(self.file, &["unlock", "--for", "1h"]);
            cmd.env("AWS_VAULT_FILE_PASSPHRASE", PASSPHRASE);
            cmd
        });
        // scrypt costs ~0.5 s and 256 MiB each: one warm-up and the minimum of 10 runs. An
        // unlocked vault would not derive the key again, so each run starts locked (the last
        // one leaves it unlocked).
        let mut unlocks = Series::named(unlock.name);
        for round in 0..=10 {
            self.ok(self.file, &["lock"], &[])?;
            let sample = measure(&*unlock.make)?;
            if round > 0 {
                unlocks.ms.push(sample.ms);
                unlocks.rss_kib.push(sample.rss_kib);
            }
        }
        let floor = &warm[0];
        let mut md = String::from(
            "Peak RSS (`ru_maxrss` from wait4: the larger of vault and the program it execs \
             into) of the warm runs of case 1, and of `vault unlock`, whose scrypt (N = 2^18, \
             r = 8) needs 256 MiB by design, once per unlock.\n\n",
        );
        md.push_str("| process | median | min | max | runs |\n|---|---:|---:|---:|---:|\n");
        let mut all: Vec<&Series> = warm.iter().collect();
        all.push(&unlocks);
        for s in &all {
            let r = s.rss_mib();
            let _ = writeln!(
                md,
                "| {} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {} |",
                s.name,
                r.median,
                r.min,
                r.max,
                s.rss_kib.len()
            );
        }
        let t = unlocks.time();
        let _ = writeln!(
            md,
            "\n`vault unlock` wall time: median {}, min {}, max {}.",
            ms(t.median),
            ms(t.min),
            ms(t.max)
        );
        for (i, label) in [(1, "passphrase, unlocked"), (2, "OS keyring")] {
            let r = warm[i].rss_mib();
            report.rows.push(Row::new(
                6,
                &format!("peak RSS, warm exec ({label})"),
                format!("{:.1} MiB (max {:.1})", r.median, r.max),
                format!("floor {:.1} MiB", floor.rss_mib().median),
                Some(r.median / floor.rss_mib().median),
                "< 15 MiB".into(),
                Verdict::pass_if(r.max < 15.0),
            ));
        }
        let r = unlocks.rss_mib();
        report.rows.push(Row::new(
            6,
            "peak RSS, vault unlock",
            format!("{:.1} MiB (max {:.1})", r.median, r.max),
            "scrypt: 256 MiB".into(),
            Some(r.median / 256.0),
            "256 MiB once (< 384 MiB)".into(),
            Verdict::pass_if(r.max >= 256.0 && r.max < 384.0),
        ));
        report.section(6, "Memory", md);
        report.json["memory"] = json!({
            "warm_exec_rss_kib": warm.iter().map(|s| json!({"name": s.name, "rss_kib": s.rss_kib})).collect::<Vec<_>>(),
            "unlock": unlocks.json(),
        });
        Ok(())
    }
}
