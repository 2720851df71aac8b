//! TCP on the reactor's ring: [`TcpListener`] and [`TcpStream`].

mod addr;
mod fd;
mod listener;
mod ops;
mod stream;

pub use listener::{Incoming, TcpListener};
pub use stream::TcpStream;
