//! TCP on the reactor's driver: [`TcpListener`] and [`TcpStream`].

mod listener;
mod recv_stream;
mod stream;

pub use listener::{Incoming, TcpListener};
pub use recv_stream::{RecvChunk, RecvConsumer, RecvStream};
pub use stream::{TcpStream, Writev};
