//! The command-line definition itself: every command documents itself with an example, its
//! `--help` succeeds, and the completion scripts know every command.

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use crate::Cli;

fn subcommand_names() -> Vec<String> {
    let names: Vec<String> =
        Cli::command().get_subcommands().map(|c| c.get_name().to_string()).filter(|n| n != "help").collect();
    assert!(names.len() >= 4, "expected the commands, got {names:?}");
    names
}

#[test]
fn definition_is_consistent() {
    Cli::command().debug_assert();
}

/// `args` ask for help: clap answers with the help text and exit status 0.
fn help_of(args: &[&str]) -> String {
    match Cli::try_parse_from(args) {
        Ok(_) => panic!("{args:?} parsed instead of printing help"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::DisplayHelp, "{args:?}: {e}");
            assert_eq!(e.exit_code(), 0, "{args:?}");
            e.render().to_string()
        }
    }
}

#[test]
fn top_level_help_lists_every_command_and_an_example() {
    let help = help_of(&["bootflow", "--help"]);
    for name in subcommand_names() {
        assert!(help.contains(&name), "{name} missing from:\n{help}");
    }
    assert!(help.contains("Example"), "{help}");
}

#[test]
fn every_command_has_a_description_and_an_example() {
    for name in subcommand_names() {
        let help = help_of(&["bootflow", &name, "--help"]);
        assert!(help.contains("Example:"), "`bootflow {name} --help` shows no example:\n{help}");
        let cmd = Cli::command();
        let sub = cmd.find_subcommand(&name).expect("listed subcommand exists");
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        assert!(about.len() > 20, "`{name}` has no description: {about:?}");
        // `-h` gives the short form: the description without the example.
        let short = help_of(&["bootflow", &name, "-h"]);
        assert!(short.contains(&about), "{short}");
    }
}

#[test]
fn bash_completions_offer_every_command() {
    let mut script = Vec::new();
    crate::cmd_completions::write(clap_complete::Shell::Bash, &mut Cli::command(), &mut script);
    let script = String::from_utf8(script).expect("UTF-8 script");
    for name in subcommand_names() {
        assert!(script.contains(&name), "{name} missing from the bash completions");
    }
    assert!(script.contains("complete -F") && script.contains("bootflow"), "not a bash completion script");
}
