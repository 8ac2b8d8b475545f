//! `lockstep completions bash|zsh|fish`: a shell completion script on
//! stdout, generated from the same clap definitions that parse the
//! arguments (so it never lags behind a new flag).
//!
//! ```sh
//! lockstep completions bash > ~/.local/share/bash-completion/completions/lockstep
//! lockstep completions zsh > ~/.zfunc/_lockstep
//! lockstep completions fish > ~/.config/fish/completions/lockstep.fish
//! ```

use super::Outcome;

/// `lockstep completions`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The shell.
    #[arg(value_enum)]
    shell: Shell,
}

/// Shells with completions.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub(crate) fn run(args: Args, mut command: clap::Command) -> Outcome {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut command, "lockstep", &mut std::io::stdout());
    Ok(std::process::ExitCode::SUCCESS)
}
