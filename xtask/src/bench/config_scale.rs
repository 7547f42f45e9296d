//! Scenario 5: warm exec with a 5,000-profile config against a 10-profile one.

use super::*;

impl<'a> Bench<'a> {
    pub(super) fn config_scale(&self, report: &mut Report) -> Result {
        let large = self.file.home().join(".aws/config-5000");
        let text = config(self.file, &self.role_arn, LARGE_CONFIG);
        fs::write(&large, &text).map_err(|e| format!("{}: {e}", large.display()))?;
        let contenders = vec![
            Contender::new("warm exec, 10-profile config", || {
                self.vault(self.file, &["exec", "lab", "--", "true"])
            }),
            Contender::new("warm exec, 5,000-profile config", || {
                let mut cmd = self.vault(self.file, &["exec", "lab", "--", "true"]);
                cmd.env("AWS_CONFIG_FILE", &large);
                cmd
            }),
        ];
        let series = self.interleave(&contenders)?;
        let ratio = series[1].time().median / series[0].time().median;
        let sts: usize = series.iter().flat_map(|s| s.sts.iter().map(Vec::len)).sum();
        let mut md = format!(
            "The same `lab` profile, last in a config of {SMALL_CONFIG} profiles and in one of \
             {LARGE_CONFIG} ({} KiB); cache warm (STS requests during these runs: {sts}).\n\n",
            text.len() / 1024
        );
        md.push_str(&time_table(&series, Some(&series[0])));
        let verdict = Verdict::pass_if(ratio <= 2.0 && sts == 0);
        report.rows.push(Row::new(
            5,
            "warm exec, 5,000 vs 10 profiles",
            ms(series[1].time().median),
            ms(series[0].time().median),
            Some(ratio),
            "≤ 2×".into(),
            verdict,
        ));
        report.bars.push(Bar {
            label: "config 5,000 / 10 profiles (≤ 2×)".into(),
            ratio,
            target: Some((Dir::AtMost, 2.0)),
            verdict,
        });
        report.section(5, "Config scale", md);
        report.json["config_scale"] = json!({
            "large_config_bytes": text.len(),
            "series": series.iter().map(Series::json).collect::<Vec<_>>(),
        });
        Ok(())
    }
}
