//! Addresses for test servers: shared by the test crates (included with `#[path]`).

use std::net::SocketAddr;

/// A free port on 127.0.0.1, from a plain socket closed at once (never a listener left
/// beside the server's: with SO_REUSEPORT, clients routed to it would be reset).
pub fn free_local_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}
