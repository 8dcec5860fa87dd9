//! The list and string helpers the dispatcher needs, from the wire codec
//! (Tcl 8.6 byte-exact), plus the errorCode Tcl gives each list error.

pub(crate) use tclcomm_wire::script::concat;

/// Formats `elements` as one Tcl list, exactly as Tcl's `list` does.
pub(crate) fn format_list<S: AsRef<str>>(elements: &[S]) -> String {
    tclcomm_wire::list::format_list(elements.iter().map(AsRef::as_ref))
}

/// A string that is not a well-formed list: Tcl's message and errorCode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListError {
    pub(crate) message: String,
    pub(crate) errorcode: &'static str,
}

/// Parses a Tcl list into its elements.
pub(crate) fn parse_list(s: &str) -> Result<Vec<String>, ListError> {
    tclcomm_wire::list::parse_list(s).map_err(|e| {
        let errorcode = match e.message.as_str() {
            "unmatched open brace in list" => "TCL VALUE LIST BRACE",
            "unmatched open quote in list" => "TCL VALUE LIST QUOTE",
            _ => "TCL VALUE LIST JUNK",
        };
        ListError {
            message: e.message,
            errorcode,
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn list_errors_carry_tcl_errorcodes() {
        assert_eq!(
            parse_list("{a").unwrap_err().errorcode,
            "TCL VALUE LIST BRACE"
        );
        assert_eq!(
            parse_list("\"a").unwrap_err().errorcode,
            "TCL VALUE LIST QUOTE"
        );
        let e = parse_list("{a}b c").unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.errorcode),
            (
                "list element in braces followed by \"b\" instead of space",
                "TCL VALUE LIST JUNK"
            )
        );
        assert_eq!(
            parse_list("\"a\"bc").unwrap_err().errorcode,
            "TCL VALUE LIST JUNK"
        );
    }

    #[test]
    fn helpers_match_tcl() {
        assert_eq!(format_list(&["#a", "#a", "a b", ""]), "{#a} #a {a b} {}");
        assert_eq!(
            parse_list(" a {b c} \"d e\" f\\ g \\x41").unwrap(),
            ["a", "b c", "d e", "f g", "A"]
        );
        assert_eq!(concat([" a ", "b ", " c\\ ", "", "  "]), "a b c\\ ");
    }
}
