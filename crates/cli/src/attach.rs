//! `tclcomm attach`.

use crate::{Failure, Outcome};

/// Arguments of `tclcomm attach`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `tclcomm attach`.
pub(crate) fn run(_args: Args) -> Outcome {
    Err(Failure::local("not yet"))
}
