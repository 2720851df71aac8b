//! Arbitrary bytes from a peer through the HTTP connection loop: no panic, no hang, and every
//! answer starts with a status line.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let output = ringhop_http::fuzzing::serve_bytes(data);
    assert!(
        output.is_empty() || output.starts_with(b"HTTP/1."),
        "output does not start with a status line"
    );
});
