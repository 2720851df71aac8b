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

/// RFC 9110 `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

/// RFC 9110 `token`: one or more `tchar`.
pub(crate) fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().fold(true, |ok, &b| ok & TCHAR[b as usize])
}

/// Every byte is visible ASCII (`!` to `~`): a request target that needs no UTF-8 check.
pub(crate) fn is_visible_ascii(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(true, |ok, &b| ok & (b.wrapping_sub(b'!') <= b'~' - b'!'))
}

/// The digits of a number past its leading zeros (what counts against a digit limit).
pub(crate) fn without_leading_zeros(digits: &[u8]) -> &[u8] {
    let first = digits
        .iter()
        .position(|&d| d != b'0')
        .unwrap_or(digits.len());
    &digits[first..]
}

/// Eight bytes per step (SWAR): a chunk of eight bytes as one little-endian word, so the
/// first byte is the lowest.
pub(crate) fn word(chunk: &[u8]) -> u64 {
    let mut le = [0u8; 8];
    le.copy_from_slice(chunk);
    u64::from_le_bytes(le)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` below `limit` (at most 0x80). The lowest flagged
/// byte is exact; a byte above it may be flagged falsely (the borrow runs on), so a nonzero
/// mask answers "some byte", and its lowest bit "which first".
pub(crate) fn bytes_below(word: u64, limit: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGHS
}

/// The high bit of each byte of `word` equal to `byte`, as exact as [`bytes_below`].
pub(crate) fn bytes_equal(word: u64, byte: u8) -> u64 {
    bytes_below(word ^ (ONES * u64::from(byte)), 1)
}

/// The first `byte` in `bytes`, eight bytes per step. Bytes past the last whole word are
/// looked at as the word of the last eight bytes, overlapping the one before: its bytes
/// already looked at are not `byte`, so its lowest flag (always exact) is the first.
pub(crate) fn find_byte(bytes: &[u8], byte: u8) -> Option<usize> {
    if bytes.len() < 8 {
        return bytes.iter().position(|&b| b == byte);
    }
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut words {
        let found = bytes_equal(word(chunk), byte);
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    if words.remainder().is_empty() {
        return None;
    }
    let last = bytes.len() - 8;
    let found = bytes_equal(word(&bytes[last..]), byte);
    (found != 0).then(|| last + found.trailing_zeros() as usize / 8)
}

/// `a == b` without a `memcmp` call for the short strings a router compares on every request
/// (paths, methods): the lengths, then two overlapping loads that together cover every byte.
#[inline]
pub(crate) fn eq_bytes(a: &[u8], b: &[u8]) -> bool {
    fn at<const N: usize>(bytes: &[u8], start: usize) -> [u8; N] {
        let mut word = [0; N];
        word.copy_from_slice(&bytes[start..start + N]);
        word
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1 => a[0] == b[0],
        2..=3 => at::<2>(a, 0) == at::<2>(b, 0) && at::<2>(a, n - 2) == at::<2>(b, n - 2),
        4..=7 => at::<4>(a, 0) == at::<4>(b, 0) && at::<4>(a, n - 4) == at::<4>(b, n - 4),
        8..=16 => at::<8>(a, 0) == at::<8>(b, 0) && at::<8>(a, n - 8) == at::<8>(b, n - 8),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::{eq_bytes, find_byte, is_token, REG_NAME};

    #[test]
    fn classes() {
        assert!(is_token(b"X-a.b_c~1!"));
        assert!(!is_token(b"") && !is_token(b"a b") && !is_token(b"a:b"));
        let reg = |b: u8| REG_NAME[b as usize];
        assert!(reg(b'(') && reg(b'%') && !reg(b'/') && !reg(b'@'));
    }

    #[test]
    fn find_byte_agrees_with_a_byte_loop() {
        let samples: [&[u8]; 9] = [
            b"",
            b"?",
            b"/plaintext",
            b"/plaintext?a=b",
            b"/abcdefg?",
            b"/abcdefgh?x?y",
            b"/a?b?c",
            b"/\x3e\x3f\x40?\x01\x00??",
            b"/very/long/path/without/any/query/at/all/0123456789",
        ];
        for sample in samples {
            for start in 0..sample.len().max(1) {
                let bytes = &sample[start.min(sample.len())..];
                for byte in [b'?', 0, 1, 0x3f, 0x40, b'/'] {
                    assert_eq!(
                        find_byte(bytes, byte),
                        bytes.iter().position(|&b| b == byte),
                        "{byte} in {bytes:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn eq_bytes_agrees_with_slice_equality() {
        let text = b"/plaintext/json?x=1&y=22/echo0123456789";
        for len in 0..text.len() {
            for start in 0..text.len() - len {
                let a = &text[start..start + len];
                let copy = a.to_vec();
                assert!(eq_bytes(a, &copy), "{a:?}");
                for flip in 0..len {
                    let mut b = a.to_vec();
                    b[flip] ^= 0x20;
                    assert!(!eq_bytes(a, &b), "{a:?} vs {b:?}");
                }
                assert!(!eq_bytes(a, &text[start..start + len + 1]));
            }
        }
    }
}
