//! `tclcomm serve`.

use crate::{Failure, Outcome};

/// Arguments of `tclcomm serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `tclcomm serve`.
pub(crate) fn run(_args: Args) -> Outcome {
    Err(Failure::local("not yet"))
}
