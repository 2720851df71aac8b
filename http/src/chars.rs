//! Byte classes of RFC 9110 and RFC 3986 as lookup tables built at compile time, so the
//! checks that run on every request are a table load per byte, without early exit (the
//! loops vectorize).

/// Letters, digits and the bytes of `extra`.
const fn alphanumeric_and(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

/// RFC 9110 `tchar`: what a token (a field name, a method) is made of.
const TCHAR: [bool; 256] = alphanumeric_and(b"!#$%&'*+-.^_`|~");

/// RFC 3986 `reg-name` bytes: unreserved, sub-delims, and `%` of pct-encoded.
pub(crate) const REG_NAME: [bool; 256] = alphanumeric_and(b"-._~%!$&'()*+,;=");

/// RFC 9110 `token`: one or more `tchar`.
pub(crate) fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().fold(true, |ok, &b| ok & TCHAR[b as usize])
}

#[cfg(test)]
mod tests {
    use super::{is_token, REG_NAME};

    #[test]
    fn classes() {
        assert!(is_token(b"X-a.b_c~1!"));
        assert!(!is_token(b"") && !is_token(b"a b") && !is_token(b"a:b"));
        let reg = |b: u8| REG_NAME[b as usize];
        assert!(reg(b'(') && reg(b'%') && !reg(b'/') && !reg(b'@'));
    }
}
