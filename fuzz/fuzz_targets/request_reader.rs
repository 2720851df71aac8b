//! Arbitrary bytes from a peer through the HTTP connection loop: no panic, no hang, and the
//! answer parses as a sequence of HTTP/1.1 responses (no interim response inside a head, no
//! body cut short by a clean close). The input's first two bytes say where the rest is cut
//! into the pieces it arrives in (the connection runs on each before the next comes): at
//! their value, and at half its length.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (cut, stream) = match data {
        [high, low, rest @ ..] => (usize::from(u16::from_be_bytes([*high, *low])), rest),
        _ => (0, data),
    };
    let mut cuts = [cut, stream.len() / 2];
    cuts.sort_unstable();
    let served = ringhop_http::fuzzing::serve_in_pieces(stream, &cuts);
    if let Err(problem) = ringhop_http::fuzzing::check_responses(&served) {
        panic!("{problem}");
    }
});
