//! The pieces of Tcl's list and string handling the built-in commands need:
//! list quoting (`list`), list parsing (`{*}`, `return -options`) and
//! `concat`.
//!
//! These follow Tcl 8.6 (TclScanElement/TclConvertElement, TclFindElement,
//! Tcl_ConcatObj). They stay local until `tclcomm_wire::list` is filled in;
//! then this module should shrink to re-exports.

use super::parse::backslash;

/// Tcl's list-element whitespace (TclIsSpaceProc).
pub(crate) fn is_list_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Appends `element` to `out`, quoted as Tcl's `list` quotes it. `first`
/// says whether it is the first element (a leading `#` is quoted only there).
pub(crate) fn quote_element(element: &str, first: bool, out: &mut String) {
    let b = element.as_bytes();
    if b.is_empty() {
        out.push_str("{}");
        return;
    }
    let quote_hash = first && b[0] == b'#';
    let mut forbid_no_quote = false;
    let mut require_escape = false;
    let mut prefer_escape = false;
    let mut prefer_brace = false;
    let mut nesting: i64 = 0;
    if b[0] == b'{' || b[0] == b'"' {
        forbid_no_quote = true;
        prefer_brace = true;
    }
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => nesting += 1,
            b'}' => {
                nesting -= 1;
                if nesting < 0 {
                    require_escape = true;
                }
            }
            b']' | b'"' => {
                forbid_no_quote = true;
                prefer_escape = true;
            }
            b'[' | b'$' | b';' | b' ' | 0x0c | b'\n' | b'\r' | b'\t' | 0x0b => {
                forbid_no_quote = true;
                prefer_brace = true;
            }
            b'\\' => {
                match b.get(i + 1) {
                    None => require_escape = true,
                    Some(b'\n') => {
                        require_escape = true;
                        i += 1;
                    }
                    Some(b'{' | b'}' | b'\\') => i += 1,
                    Some(_) => {}
                }
                forbid_no_quote = true;
                prefer_brace = true;
            }
            _ => {}
        }
        i += 1;
    }
    if nesting != 0 {
        require_escape = true;
    }
    if require_escape || (prefer_escape && !prefer_brace) {
        if quote_hash {
            out.push('\\');
        }
        for c in element.chars() {
            match c {
                ']' | '[' | '$' | ';' | ' ' | '\\' | '"' | '{' | '}' => {
                    out.push('\\');
                    out.push(c);
                }
                '\x0c' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\x0b' => out.push_str("\\v"),
                _ => out.push(c),
            }
        }
    } else if forbid_no_quote || quote_hash {
        out.push('{');
        out.push_str(element);
        out.push('}');
    } else {
        out.push_str(element);
    }
}

/// Formats `elements` as one Tcl list, exactly as Tcl's `list` does.
pub(crate) fn format_list<S: AsRef<str>>(elements: &[S]) -> String {
    let mut out = String::new();
    for (i, e) in elements.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        quote_element(e.as_ref(), i == 0, &mut out);
    }
    out
}

/// A string that is not a well-formed list: Tcl's message and errorCode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListError {
    pub(crate) message: String,
    pub(crate) errorcode: &'static str,
}

/// Up to 20 non-space characters from `rest`, as Tcl quotes them in its
/// "followed by ... instead of space" messages.
fn junk(rest: &str) -> String {
    rest.chars()
        .take_while(|c| !c.is_ascii() || !is_list_space(*c as u8))
        .take(20)
        .collect()
}

/// Parses a Tcl list into its elements (TclFindElement + TclCopyAndCollapse).
pub(crate) fn parse_list(s: &str) -> Result<Vec<String>, ListError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && is_list_space(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            return Ok(out);
        }
        match b[i] {
            b'{' => {
                let start = i + 1;
                let mut level = 1;
                let mut j = start;
                loop {
                    let Some(&c) = b.get(j) else {
                        return Err(ListError {
                            message: "unmatched open brace in list".into(),
                            errorcode: "TCL VALUE LIST BRACE",
                        });
                    };
                    match c {
                        b'{' => level += 1,
                        b'}' => {
                            level -= 1;
                            if level == 0 {
                                break;
                            }
                        }
                        b'\\' => j += 1,
                        _ => {}
                    }
                    j += 1;
                }
                out.push(s[start..j].to_owned());
                i = j + 1;
                if i < b.len() && !is_list_space(b[i]) {
                    return Err(ListError {
                        message: format!(
                            "list element in braces followed by \"{}\" instead of space",
                            junk(&s[i..])
                        ),
                        errorcode: "TCL VALUE LIST JUNK",
                    });
                }
            }
            b'"' => {
                let start = i + 1;
                let mut j = start;
                loop {
                    match b.get(j) {
                        None => {
                            return Err(ListError {
                                message: "unmatched open quote in list".into(),
                                errorcode: "TCL VALUE LIST QUOTE",
                            });
                        }
                        Some(b'"') => break,
                        Some(b'\\') => j += 2,
                        Some(_) => j += 1,
                    }
                }
                out.push(collapse(&s[start..j]));
                i = j + 1;
                if i < b.len() && !is_list_space(b[i]) {
                    return Err(ListError {
                        message: format!(
                            "list element in quotes followed by \"{}\" instead of space",
                            junk(&s[i..])
                        ),
                        errorcode: "TCL VALUE LIST JUNK",
                    });
                }
            }
            _ => {
                let start = i;
                while i < b.len() && !is_list_space(b[i]) {
                    // A backslash protects the next character, even a space.
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                let end = i.min(b.len());
                out.push(collapse(&s[start..end]));
            }
        }
    }
}

/// Backslash substitution of a quoted or bare list element.
fn collapse(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(k) = rest.find('\\') {
        out.push_str(&rest[..k]);
        let (piece, used) = backslash(&rest[k..]);
        out.push_str(&piece);
        rest = &rest[k + used..];
    }
    out.push_str(rest);
    out
}

/// Joins `parts` as Tcl's `concat` does: each is trimmed of surrounding
/// whitespace (but a trailing whitespace character escaped by a backslash is
/// kept), empty ones are dropped, the rest joined with single spaces.
pub(crate) fn concat<S: AsRef<str>>(parts: &[S]) -> String {
    const TRIM: &[char] = &[' ', '\x0c', '\x0b', '\r', '\t', '\n'];
    let mut out = String::new();
    for p in parts {
        let p = p.as_ref().trim_start_matches(TRIM);
        let mut t = p.trim_end_matches(TRIM);
        if t.len() < p.len() && t.ends_with('\\') {
            // Give back the one whitespace character the backslash escapes.
            let keep = p[t.len()..].chars().next().map_or(0, char::len_utf8);
            t = &p[..t.len() + keep];
        }
        if t.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(t);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quoting_matches_appendix_a() {
        let cases: &[(&str, &str)] = &[
            ("a b", "{a b}"),
            ("a{b", "a\\{b"),
            ("{a}", "{{a}}"),
            ("a\\", "a\\\\"),
            ("a\\b", "{a\\b}"),
            ("a\\\nb", "a\\\\\\nb"),
            ("a\nb", "{a\nb}"),
            ("$x", "{$x}"),
            ("a\"b", "a\\\"b"),
            ("\"", "{\"}"),
            ("a\\{", "{a\\{}"),
            ("}{", "\\}\\{"),
            ("{\\}", "\\{\\\\\\}"),
            ("", "{}"),
            ("a\0b", "a\0b"),
        ];
        for (input, want) in cases {
            assert_eq!(format_list(&[*input]), *want, "element {input:?}");
        }
        assert_eq!(format_list(&["#a", "#a"]), "{#a} #a");
        assert_eq!(format_list(&["#a{", "x"]), "\\#a\\{ x");
    }

    #[test]
    fn parse_list_forms_and_errors() {
        assert_eq!(
            parse_list(" a {b c} \"d e\" f\\ g {} \\x41\n").unwrap(),
            ["a", "b c", "d e", "f g", "", "A"]
        );
        assert_eq!(parse_list("{a\\\nb}").unwrap(), ["a\\\nb"]);
        assert_eq!(
            parse_list("{a").unwrap_err().message,
            "unmatched open brace in list"
        );
        assert_eq!(
            parse_list("\"a").unwrap_err().message,
            "unmatched open quote in list"
        );
        assert_eq!(
            parse_list("{a}b c").unwrap_err().message,
            "list element in braces followed by \"b\" instead of space"
        );
        assert_eq!(
            parse_list("\"a\"bc").unwrap_err().errorcode,
            "TCL VALUE LIST JUNK"
        );
        assert_eq!(parse_list("a\\").unwrap(), ["a\\"]);
    }

    #[test]
    fn concat_trims_like_tcl() {
        assert_eq!(concat(&[" a ", "b ", " c\\ ", "", "  "]), "a b c\\ ");
        assert_eq!(concat::<&str>(&[]), "");
    }
}
