//! The terminal rig itself: each shell starts in a private tmux server, runs a command whose
//! output differs from what was typed, and is gone, server and all, when the terminal drops.

use vault_harness::TestEnv;
use vault_harness::terminal::{Shell, Terminal, tmux_running};

#[test]
fn bash_zsh_fish_terminals_echo_and_complete_nothing_unexpected() {
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let env = TestEnv::new();
        let Some(terminal) = Terminal::start(&env, shell) else {
            continue;
        };
        // The arithmetic is the shell's: `hello-2` on the screen is output, not the typed line.
        let command = match shell {
            Shell::Fish => "echo hello-(math 1+1)",
            Shell::Bash | Shell::Zsh => "echo hello-$((1+1))",
        };
        terminal.line(command);
        let screen = terminal.wait_for("hello-2");
        assert!(
            screen.contains(command),
            "{shell:?}: no typed line in:\n{screen}"
        );

        // `run` returns just the output, and the shell is back at its prompt.
        let output = terminal.run(command);
        assert_eq!(output, "hello-2", "{shell:?}");
        assert_eq!(terminal.screen().lines().last(), Some("$"), "{shell:?}");

        // The pane has the test's environment, not the runner's.
        let home = terminal.run("echo $HOME");
        assert_eq!(home, env.home().display().to_string(), "{shell:?}");

        let pid = terminal.server_pid();
        assert!(tmux_running(pid), "{shell:?}: no tmux server at pid {pid}");
        drop(terminal);
        assert!(
            !tmux_running(pid),
            "{shell:?}: the tmux server (pid {pid}) outlived its Terminal"
        );
    }
}
