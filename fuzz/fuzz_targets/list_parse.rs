//! Any string that parses as a Tcl list formats back to a list with the same
//! elements; quoting any string as one element gives it back. Nothing
//! panics on arbitrary text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tclcomm_wire::{Framer, Message, Outcome, list, script};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(elements) = list::parse_list(text) {
        let formatted = list::format_list(&elements);
        assert_eq!(
            list::parse_list(&formatted).as_ref(),
            Ok(&elements),
            "{formatted:?}"
        );
    }
    let one = list::format_list([text]);
    assert_eq!(list::parse_list(&one), Ok(vec![text.to_owned()]), "{one:?}");
    let _ = script::info_complete(text);
    let _ = script::concat(text.split(' '));
    // Only the messages we send must round-trip. An unknown instruction is
    // kept to be ignored, never sent, and may encode bare (as `[list [list
    // ...]]` does): empty it is `{}`, the empty word; led by a Unicode space
    // such as U+0085 the framer skips that as Tcl's `\s`, as tcllib does.
    let sent = |m: &Message| !matches!(m, Message::Unknown { .. });
    if let Some(message) = Message::decode(text).ok().filter(sent) {
        // What decodes encodes to exactly one framed word, and one more
        // round trip changes nothing.
        let wire = message.encode();
        let mut framer = Framer::default();
        framer.feed(&wire);
        let word = framer
            .next_word()
            .expect("own message frames")
            .expect("one word");
        assert_eq!(framer.next_word(), Ok(None));
        let again = Message::decode(&word).expect("own message decodes");
        assert_eq!(again.encode(), wire);
    }
    let _ = Outcome::decode(text);
});
