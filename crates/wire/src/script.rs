//! Tcl script helpers that comm relies on: `concat` (how fragments become one
//! script) and `info complete` (whether a received word is a whole script).

/// Joins fragments as Tcl's `concat` does: each is trimmed of leading and
/// trailing whitespace, empty ones are dropped, and the rest are joined with
/// single spaces.
pub fn concat<I, S>(fragments: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let _ = fragments.into_iter();
    todo!("concat")
}

/// Whether `script` is complete by Tcl's `info complete` rules (no unclosed
/// brace, bracket or quote, and no trailing backslash-newline continuation).
pub fn info_complete(script: &str) -> bool {
    let _ = script;
    todo!("info complete")
}
