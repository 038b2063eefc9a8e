//! `bootflow completions SHELL`: prints a completion script for the shell on stdout.

use clap_complete::Shell;

/// Writes the completion script of `cmd` for `shell` to `out`.
pub fn write(shell: Shell, cmd: &mut clap::Command, out: &mut dyn std::io::Write) {
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, cmd, name, out);
}

/// Runs `bootflow completions` on the CLI definition `cmd`.
pub fn run(shell: Shell, cmd: &mut clap::Command) -> anyhow::Result<()> {
    write(shell, cmd, &mut std::io::stdout().lock());
    Ok(())
}
