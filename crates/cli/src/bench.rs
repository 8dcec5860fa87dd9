//! `tclcomm bench`.

use crate::{Failure, Outcome};

/// Arguments of `tclcomm bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `tclcomm bench`.
pub(crate) fn run(_args: Args) -> Outcome {
    Err(Failure::local("not yet"))
}
