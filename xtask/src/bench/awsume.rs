//! The contender awsume, in its own venv, pointed at the same moto and key.

use super::*;

/// awsume in its own venv, with its own HOME holding the same profiles and the key in a
/// credentials file, pointed at moto with `AWS_ENDPOINT_URL_STS`.
pub(super) struct Awsume<'a> {
    pub(super) env: &'a TestEnv,
    pub(super) bin: PathBuf,
    pub(super) home: PathBuf,
    pub(super) endpoint: String,
}

impl<'a> Awsume<'a> {
    /// Sets awsume up and runs it once cold (`--mfa-token`), which must work.
    pub(super) fn prepare(
        venv: &Path,
        env: &'a TestEnv,
        moto: &Moto,
        role_arn: &str,
        key_id: &str,
        secret: &str,
    ) -> std::result::Result<Awsume<'a>, String> {
        let home = env.dir.path().join("awsume-home");
        let aws = home.join(".aws");
        fs::create_dir_all(&aws).map_err(|e| format!("{}: {e}", aws.display()))?;
        fs::write(aws.join("config"), config(env, role_arn, SMALL_CONFIG))
            .map_err(|e| e.to_string())?;
        fs::write(
            aws.join("credentials"),
            format!("[base]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"),
        )
        .map_err(|e| e.to_string())?;
        let awsume = Awsume {
            env,
            bin: venv.join("bin"),
            home,
            endpoint: moto.endpoint.clone(),
        };
        let out = awsume
            .command(&format!("lab --mfa-token {MFA_CODE}"))
            .output()
            .map_err(|e| format!("cannot run awsume: {e}"))?;
        if out.status.success() {
            Ok(awsume)
        } else {
            Err(format!(
                "`awsume lab --mfa-token {MFA_CODE}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// `bash -c '. awsume ARGS'`: awsume as users run it (sourced into a shell).
    pub(super) fn command(&self, args: &str) -> Command {
        let mut cmd = self.env.command("bash");
        let path = self
            .env
            .get("PATH")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        cmd.arg("-c")
            .arg(format!(
                ". {} {args} >/dev/null && true",
                self.bin.join("awsume").display()
            ))
            .env("PATH", format!("{}:{path}", self.bin.display()))
            .env("HOME", &self.home)
            .env("AWS_CONFIG_FILE", self.home.join(".aws/config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.home.join(".aws/credentials"),
            )
            .env("AWS_ENDPOINT_URL_STS", &self.endpoint)
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_VAULT_BACKEND")
            .env_remove("AWS_VAULT_FILE_DIR")
            // With XDG_DATA_HOME set, awsume moves ~/.awsume on its second run and then
            // cannot find its own config.
            .env_remove("XDG_DATA_HOME");
        cmd
    }

    pub(super) fn clear_cache(&self) -> Result {
        let cache = self.home.join(".awsume/cache");
        match fs::remove_dir_all(&cache) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{}: {e}", cache.display())),
        }
    }
}
