//! The ops ringhop performs, each defined once for both drivers: the io_uring SQE and the
//! readiness-mode syscall with the direction it waits for (see `driver::op` for how they
//! run). `net/` builds on these and never sees a driver. (The reactor's own eventfd read is
//! the driver's business: `driver/uring` keeps it in flight, `driver/epoll` registers the
//! eventfd.)

mod accept;
mod recv_multi;
mod socket;

pub(crate) use accept::{accept, Accept, AcceptMulti};
pub(crate) use recv_multi::RecvMulti;
pub(crate) use socket::{close, connect, recv, send, shutdown, writev, SendMsg};
