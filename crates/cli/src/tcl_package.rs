//! `tclcomm tcl-package`.

use std::path::Path;

use crate::{Failure, Outcome};

/// Runs `tclcomm tcl-package`.
pub(crate) fn run(_dir: &Path) -> Outcome {
    Err(Failure::local("not yet"))
}
