//! `vault shell-init SHELL`: a small function named `vault` that turns `vault use PROFILE` into
//! `eval` of what `vault export` prints, so credentials land in the current shell without a
//! nested subshell; `vault use --unset` removes every variable it set. Everything else goes
//! to the binary unchanged. Nothing is written anywhere: the credentials exist only in the
//! shell's variables.

use std::io::Write;

use crate::cli::{ShellInitArgs, UseArgs, UseShell};
use crate::error::{CommandError, CommandResult, Kind};

const POSIX: &str = r#"# vault shell-init: `vault use PROFILE` sets its credentials in this shell,
# `vault use --unset` removes them; every other command goes to the vault binary.
vault() {
    if [ "$1" = use ]; then
        shift
        if [ -n "${__VAULT_USE_VARS-}" ]; then
            eval "unset $__VAULT_USE_VARS __VAULT_USE_VARS"
        fi
        if [ "$1" = --unset ]; then
            return 0
        fi
        local __vault_use
        __vault_use="$(command vault export --format export-env --for-use "$@")" || return
        eval "$__vault_use"
        unset __vault_use
        return 0
    fi
    command vault "$@"
}
"#;

const FISH: &str = r#"# vault shell-init: `vault use PROFILE` sets its credentials in this shell,
# `vault use --unset` removes them; every other command goes to the vault binary.
function vault --wraps vault
    if test "$argv[1]" = use
        set -e argv[1]
        if set -q __VAULT_USE_VARS
            for name in (string split ' ' -- $__VAULT_USE_VARS)
                set -e $name
            end
            set -e __VAULT_USE_VARS
        end
        if test "$argv[1]" = --unset
            return 0
        end
        set -l __vault_use (command vault export --format fish --for-use $argv); or return
        string join \n -- $__vault_use | source
        return 0
    end
    command vault $argv
end
"#;

const POWERSHELL: &str = r#"# vault shell-init: `vault use PROFILE` sets its credentials in this shell,
# `vault use --unset` removes them; every other command goes to the vault binary.
function vault {
    $bin = Get-Command vault -CommandType Application | Select-Object -First 1
    if ($args.Count -gt 0 -and $args[0] -eq 'use') {
        $rest = @($args | Select-Object -Skip 1)
        if ($env:__VAULT_USE_VARS) {
            foreach ($name in $env:__VAULT_USE_VARS.Split(' ')) {
                Remove-Item "Env:$name" -ErrorAction SilentlyContinue
            }
            Remove-Item Env:__VAULT_USE_VARS
        }
        if ($rest.Count -gt 0 -and $rest[0] -eq '--unset') { return }
        $out = & $bin export --format powershell --for-use @rest
        if ($LASTEXITCODE -ne 0) { return }
        Invoke-Expression ($out -join "`n")
        return
    }
    & $bin @args
}
"#;

pub fn shell_init(args: ShellInitArgs) -> CommandResult {
    let text = match args.shell {
        UseShell::Bash | UseShell::Zsh => POSIX,
        UseShell::Fish => FISH,
        UseShell::Powershell => POWERSHELL,
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| CommandError::output("the shell function", e))
}

/// Reached only without the function: a program cannot change its shell's variables.
pub fn use_without_function(_: UseArgs) -> CommandResult {
    Err(CommandError::new(
        Kind::Usage,
        "vault use sets variables in your shell, which only a shell function can do, and it is not loaded",
    )
    .hint("bash: eval \"$(vault shell-init bash)\" in ~/.bashrc; zsh: the same with zsh in ~/.zshrc; fish: vault shell-init fish | source in ~/.config/fish/config.fish")
    .hint("or, without the function: eval \"$(vault export --format export-env PROFILE)\""))
}
