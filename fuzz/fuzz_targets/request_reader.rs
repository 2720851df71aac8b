//! Arbitrary bytes from a peer through the HTTP connection loop: no panic, no hang, and the
//! answer parses as a sequence of HTTP/1.1 responses (no interim response inside a head, no
//! body cut short by a clean close).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let served = ringhop_http::fuzzing::serve(data);
    if let Err(problem) = ringhop_http::fuzzing::check_responses(&served) {
        panic!("{problem}");
    }
});
