//! `tclcomm completions SHELL` and `tclcomm man`: shell completions and
//! manual pages generated from the clap definitions, so they never drift
//! from `--help`.

use std::io::Write;
use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::{Cli, Failure, Outcome};

/// Arguments of `tclcomm completions`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Install, for example:
  bash: tclcomm completions bash > ~/.local/share/bash-completion/completions/tclcomm
  zsh:  tclcomm completions zsh > ~/.zfunc/_tclcomm   (with fpath+=~/.zfunc before compinit)
  fish: tclcomm completions fish > ~/.config/fish/completions/tclcomm.fish")]
pub(crate) struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    shell: Shell,
}

/// Arguments of `tclcomm man`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Read it with: tclcomm man | man -l -
Install with: tclcomm man --dir ~/.local/share/man/man1")]
pub(crate) struct ManArgs {
    /// Write tclcomm.1 and one tclcomm-SUBCOMMAND.1 per subcommand into
    /// this directory (created if missing) instead of printing tclcomm.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Runs `tclcomm completions`.
pub(crate) fn completions(args: CompletionsArgs) -> Outcome {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "tclcomm", &mut out);
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Outcome {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::local(format!("tclcomm: cannot write to standard output: {e}")))
}

/// Runs `tclcomm man`.
pub(crate) fn man(args: ManArgs) -> Outcome {
    let cmd = Cli::command();
    let Some(dir) = args.dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut out)
            .map_err(|e| Failure::local(format!("tclcomm: cannot render the man page: {e}")))?;
        return write_stdout(&out);
    };
    let unwritable = |e: std::io::Error| {
        Failure::local(format!(
            "tclcomm: cannot write man pages to {}: {e}\n\
             Choose a directory you can write, e.g. ~/.local/share/man/man1.",
            dir.display()
        ))
    };
    std::fs::create_dir_all(&dir).map_err(unwritable)?;
    clap_mangen::generate_to(cmd, &dir).map_err(unwritable)?;
    println!("{}", dir.display());
    Ok(())
}
