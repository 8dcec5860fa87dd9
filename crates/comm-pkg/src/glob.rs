//! Tcl's `string match` (glob) for method lookup.

/// Whether `s` matches the glob `pattern` (`*`, `?`, `[...]` with ranges,
/// `\x`), as Tcl's `string match` does (case-sensitive).
pub(crate) fn matches(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    m(&p, &s)
}

fn m(p: &[char], s: &[char]) -> bool {
    let Some((&c, rest)) = p.split_first() else {
        return s.is_empty();
    };
    match c {
        '*' => {
            let rest = {
                let mut r = rest;
                while r.first() == Some(&'*') {
                    r = &r[1..];
                }
                r
            };
            if rest.is_empty() {
                return true;
            }
            (0..=s.len()).any(|k| m(rest, &s[k..]))
        }
        '?' => !s.is_empty() && m(rest, &s[1..]),
        '[' => {
            let Some((&ch, srest)) = s.split_first() else {
                return false;
            };
            let mut k = 0;
            let mut hit = false;
            while k < rest.len() && rest[k] != ']' {
                let lo = if rest[k] == '\\' && k + 1 < rest.len() {
                    k += 1;
                    rest[k]
                } else {
                    rest[k]
                };
                if k + 2 < rest.len() && rest[k + 1] == '-' && rest[k + 2] != ']' {
                    let hi = rest[k + 2];
                    let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                    hit |= a <= ch && ch <= b;
                    k += 3;
                } else {
                    hit |= lo == ch;
                    k += 1;
                }
            }
            if k >= rest.len() {
                // Unterminated set: Tcl fails the match.
                return false;
            }
            hit && m(&rest[k + 1..], srest)
        }
        '\\' => match rest.split_first() {
            Some((&e, r2)) => s.first() == Some(&e) && m(r2, &s[1..]),
            None => s.first() == Some(&'\\') && s.len() == 1,
        },
        _ => s.first() == Some(&c) && m(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn tcl_string_match() {
        assert!(matches("se*", "send"));
        assert!(matches("se*", "self"));
        assert!(matches("s?lf*", "self"));
        assert!(matches("[a-c]bort*", "abort"));
        assert!(!matches("x*", "abort"));
        assert!(matches("*", "abort"));
        assert!(matches("\\*", "*"));
    }
}
