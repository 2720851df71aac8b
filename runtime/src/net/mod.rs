//! TCP on the reactor's ring: [`TcpListener`] and [`TcpStream`].

mod addr;
mod fd;
mod listener;
mod ops;
mod recv_stream;
mod stream;

pub use listener::{Incoming, TcpListener};
pub use recv_stream::{RecvChunk, RecvStream};
pub use stream::TcpStream;
