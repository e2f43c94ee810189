//! JSON strings written and scanned by hand. `next_stop` finds the next byte a string must
//! escape, eight bytes at a time: the direct reader of input messages uses it to find where a
//! string ends, and [`push_str`] to escape one. [`push_str`] writes what serde_json writes, for
//! every JSON leadguard writes itself: the CloudEvents envelope of outputs and generated streams.

/// Flags (in each byte's high bit) the bytes of `word` that are `"`, `\\` or a control
/// character. Bytes above the lowest flagged one may be flagged wrongly; the lowest one is
/// always right, and no such byte goes unflagged.
fn stops(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    zero_byte(word ^ (ONES * b'"' as u64)) | zero_byte(word ^ (ONES * b'\\' as u64)) | below_space
}

/// The position of the first byte of `bytes[from..]` that a JSON string must escape (or that
/// ends one: `"`), eight bytes at a time.
pub(crate) fn next_stop(bytes: &[u8], mut from: usize) -> Option<usize> {
    while let Some(chunk) = bytes.get(from..from + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        match stops(word) {
            0 => from += 8,
            found => return Some(from + (found.trailing_zeros() / 8) as usize),
        }
    }
    bytes[from..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| from + i)
}

/// Where JSON text is appended: the byte buffers the writers send, or the strings kept as
/// outputs' `data` (written as a string from the start: checking a finished buffer's UTF-8
/// was 1.7% of the core's work).
pub trait JsonOut {
    fn text(&mut self, s: &str);
    /// Appends `c`, which is ASCII.
    fn ascii(&mut self, c: u8);
}

impl JsonOut for Vec<u8> {
    #[inline(always)]
    fn text(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes())
    }
    #[inline(always)]
    fn ascii(&mut self, c: u8) {
        self.push(c)
    }
}

impl JsonOut for String {
    #[inline(always)]
    fn text(&mut self, s: &str) {
        self.push_str(s)
    }
    #[inline(always)]
    fn ascii(&mut self, c: u8) {
        debug_assert!(c.is_ascii());
        self.push(char::from(c))
    }
}

/// Appends `s` escaped, without quotes, as serde_json does: short escapes for `"`, `\\`,
/// backspace, form feed, newline, carriage return and tab; `\u00XX` for other control
/// characters; everything else as it is.
fn push_escaped(out: &mut impl JsonOut, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    // Every stop is an ASCII byte, so the text between stops is whole characters.
    while let Some(i) = next_stop(bytes, start) {
        out.text(&s[start..i]);
        let b = bytes[i];
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            _ => "",
        };
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.text("\\u00");
            out.ascii(HEX[usize::from(b >> 4)]);
            out.ascii(HEX[usize::from(b & 0xf)]);
        } else {
            out.text(short);
        }
        start = i + 1;
    }
    out.text(&s[start..]);
}

/// Appends `s` as a JSON string (quoted and escaped as serde_json does).
pub fn push_str(out: &mut impl JsonOut, s: &str) {
    out.ascii(b'"');
    push_escaped(out, s);
    out.ascii(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stops_at_the_first_quote_backslash_or_control_character() {
        let first = |bytes: [u8; 8]| match stops(u64::from_le_bytes(bytes)) {
            0 => None,
            found => Some(found.trailing_zeros() / 8),
        };
        for at in 0..8 {
            for stop in [b'"', b'\\', 0x00, 0x1f] {
                // Around it: bytes next to the stops in value, and UTF-8 continuation bytes.
                for other in [b' ', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xa2, 0xe5, 0xff] {
                    let mut bytes = [other; 8];
                    bytes[at] = stop;
                    if at < 7 {
                        bytes[7] = stop;
                    }
                    assert_eq!(first(bytes), Some(at as u32), "{bytes:?}");
                }
            }
        }
        for other in [b' ', b'a', 0x7f, 0x80, 0xe5, 0xff] {
            assert_eq!(first([other; 8]), None);
        }
    }

    /// Strings that hit every escape, at every offset of the eight-byte scan.
    fn text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("\"".to_string()),
            Just("\\".to_string()),
            (0u8..0x20).prop_map(|b| char::from(b).to_string()),
            "[a-z ]{0,9}",
            "[\u{80}-\u{10ffff}]{0,3}",
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn stops_agrees_with_a_byte_by_byte_search(bytes in any::<[u8; 8]>()) {
            let expected = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            let found = match stops(u64::from_le_bytes(bytes)) {
                0 => None,
                found => Some((found.trailing_zeros() / 8) as usize),
            };
            prop_assert_eq!(found, expected);
        }

        /// Whole words, the tail, and any starting point.
        #[test]
        fn next_stop_agrees_with_a_byte_by_byte_search(
            bytes in proptest::collection::vec(prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20, any::<u8>(), any::<u8>(), any::<u8>()], 0..40),
            from in 0usize..40,
        ) {
            let from = from.min(bytes.len());
            let expected = bytes[from..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .map(|i| from + i);
            prop_assert_eq!(next_stop(&bytes, from), expected);
        }

        #[test]
        fn escapes_strings_as_serde_json_does(s in text()) {
            let expected = serde_json::to_string(&s).unwrap();
            let mut bytes = Vec::new();
            push_str(&mut bytes, &s);
            prop_assert_eq!(&String::from_utf8(bytes).unwrap(), &expected);
            let mut text = String::new();
            push_str(&mut text, &s);
            prop_assert_eq!(text, expected);
        }
    }
}
