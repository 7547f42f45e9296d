//! One test's world, the setup most end-to-end tests share: moto as STS/IAM, IAM user
//! `alice` with an access key, a `file` vault opened by a passphrase from the environment, a
//! config file, and (with [`World::new`]) alice's key stored as profile `base`. One place
//! builds it, so every module's tests stand on the same ground.

use std::path::PathBuf;

use crate::env::{Run, TestEnv};
use crate::moto::{Moto, StsCall};

/// See the module doc. moto is declared first so it stops before the temp dir goes.
#[derive(Debug)]
pub struct World {
    pub moto: Moto,
    pub env: TestEnv,
    /// alice's long-lived key pair, as IAM (moto) issued it.
    pub key_id: String,
    pub secret: String,
    /// The `file` vault's passphrase.
    pub passphrase: String,
}

impl World {
    /// The whole world: [`World::without_stored_key`], then alice's key stored as `base`.
    pub fn new(passphrase: &str, config: &str) -> World {
        let world = World::without_stored_key(passphrase, config);
        world.store_key("base");
        world
    }

    /// moto with alice and her key, the `file` vault's passphrase in the environment, and
    /// `config` (`@DIR@` is the temp dir); nothing stored, so no vault dir exists yet.
    pub fn without_stored_key(passphrase: &str, config: &str) -> World {
        let mut env = TestEnv::new();
        env.use_file_vault(passphrase);
        let moto = Moto::start(&env);
        env.use_moto(&moto);
        let (key_id, secret) = moto.create_access_key(&env, "alice");
        let world = World {
            moto,
            env,
            key_id,
            secret,
            passphrase: passphrase.to_owned(),
        };
        world.write_config(config);
        world
    }

    /// A file in the test's temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.env.dir.path().join(name)
    }

    /// Replaces the config file; `@DIR@` is the test's temp dir.
    pub fn write_config(&self, config: &str) {
        let dir = self.env.dir.path().display().to_string();
        self.env.write_config(&config.replace("@DIR@", &dir));
    }

    /// Stores alice's key pair under `profile`.
    #[track_caller]
    pub fn store_key(&self, profile: &str) {
        self.env.store_key(profile, &self.key_id, &self.secret);
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.env.run(args)
    }

    /// `vault export --format json PROFILE`, which must succeed: its JSON.
    #[track_caller]
    pub fn export_json(&self, profile: &str) -> serde_json::Value {
        let run = self.run(&["export", "--format", "json", profile]);
        run.success();
        serde_json::from_str(&run.stdout).expect("export prints JSON")
    }

    /// `vault ARGS` fails with exit `code`, names each of `expected` on stderr, and prints
    /// nothing on stdout.
    #[track_caller]
    pub fn assert_refused(&self, args: &[&str], code: i32, expected: &[&str]) {
        let run = self.run(args);
        assert_eq!(run.code(), code, "{args:?}: {run:?}");
        for needle in expected {
            assert!(
                run.stderr.contains(needle),
                "{args:?}: stderr lacks {needle:?}:\n{}",
                run.stderr
            );
        }
        assert!(run.stdout.is_empty(), "{args:?} printed {:?}", run.stdout);
    }

    /// The STS calls that mint credentials (the children's GetCallerIdentity left out).
    pub fn minted(&self) -> Vec<StsCall> {
        self.moto
            .sts_calls()
            .into_iter()
            .filter(|c| c.action != "GetCallerIdentity")
            .collect()
    }

    /// The actions of [`World::minted`], in order.
    pub fn minted_actions(&self) -> Vec<String> {
        self.minted().into_iter().map(|c| c.action).collect()
    }

    /// The stored key, the passphrase and every `extra` secret never appeared in anything
    /// printed so far. A failure shows only a secret's first four characters.
    #[track_caller]
    pub fn assert_no_secrets(&self, extra: &[&str]) {
        let transcript = self.env.transcript();
        for secret in [self.key_id.as_str(), self.secret.as_str(), &self.passphrase]
            .into_iter()
            .chain(extra.iter().copied())
        {
            assert!(!secret.is_empty());
            assert!(
                !transcript.contains(secret),
                "output shows a secret: {}…",
                &secret[..4.min(secret.len())]
            );
        }
    }
}
