//! Strict hexadecimal bytes for the text clients send (percent escapes in
//! paths, MAC addresses): exactly two hex digits. `u8::from_str_radix`
//! alone would also take one digit or a leading `+` (`%+1`).

/// The byte two hex digits spell; `None` for anything else.
pub(crate) fn byte(s: &str) -> Option<u8> {
    match s.as_bytes() {
        [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
        _ => None,
    }
}

fn digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::byte;

    #[test]
    fn two_hex_digits_make_a_byte() {
        assert_eq!(byte("00"), Some(0));
        assert_eq!(byte("7f"), Some(0x7f));
        assert_eq!(byte("Ff"), Some(0xff));
    }

    #[test]
    fn signs_single_digits_and_other_text_are_refused() {
        for bad in ["+1", "-1", "1", "", "123", "g0", " 1", "0x"] {
            assert_eq!(byte(bad), None, "{bad:?}");
        }
    }
}
