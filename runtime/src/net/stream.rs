//! `TcpStream`: a connected socket whose ops own their buffers.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Shutdown, SocketAddr};

use super::recv_stream::RecvStream;
use crate::buf::{IoBuf, IoBufMut};
use crate::driver::{CompletionHook, Op, SharedFd};
use crate::ops::{self, SendMsg};
use crate::sys::{
    self,
    addr::{self, socket_addr, tcp_socket},
};

/// A TCP connection owned by one reactor (`!Send`).
///
/// Cloning shares the socket (like an `Rc`): both clones may have ops in flight, and the
/// socket closes when the last clone and the last op on it are gone.
///
/// Every op takes `&self` and returns a `'static` future that owns its buffer and keeps the
/// socket open until the kernel is done with it, so a `recv` and a `send` can be in flight at
/// once, and dropping an op early never frees memory the kernel may still write.
///
/// ```no_run
/// use ringhop_runtime::net::TcpStream;
/// # ringhop_runtime::Runtime::builder().reactors(1).build().unwrap().block_on_local(|| async {
/// let stream = TcpStream::connect("127.0.0.1:7000".parse().unwrap()).await?;
/// let (res, _) = stream.send_all(b"ping".to_vec()).await;
/// res?;
/// let (n, buf) = stream.recv(Vec::with_capacity(64)).await;
/// println!("got {:?}", &buf[..n?]);
/// # Ok::<(), std::io::Error>(()) });
/// ```
#[derive(Clone)]
pub struct TcpStream {
    fd: SharedFd,
}

impl TcpStream {
    pub(crate) fn from_fd(fd: SharedFd) -> TcpStream {
        TcpStream { fd }
    }

    /// Opens a connection to `addr` (with `TCP_NODELAY`).
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let fd = SharedFd::new(tcp_socket(&addr)?);
        ops::connect(&fd, addr::to_raw(addr)).await?;
        let stream = TcpStream { fd };
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Receives into `buf` (from its start, up to its capacity) and returns the byte count
    /// with the buffer. What arrived is `&buf[..n]`: a `Vec`'s length grows to cover it but
    /// never shrinks, so a reused buffer may hold an earlier, longer message's bytes past
    /// `n` (as with tokio-uring). `Ok(0)` means the peer closed its side (for a non-empty
    /// buffer).
    pub fn recv<B: IoBufMut>(
        &self,
        buf: B,
    ) -> impl Future<Output = (io::Result<usize>, B)> + 'static {
        ops::recv(&self.fd, buf)
    }

    /// Starts a multishot receive into the reactor's receive buffers (under io_uring its
    /// provided-buffer ring, Linux 5.19+; errors on kernels without buffer rings). Idle
    /// connections pin no receive buffer.
    pub fn recv_multishot(&self) -> io::Result<RecvStream> {
        RecvStream::new(self.fd.clone())
    }

    /// Sends from `buf` once; returns how many bytes the kernel took, with the buffer.
    pub fn send<B: IoBuf>(&self, buf: B) -> impl Future<Output = (io::Result<usize>, B)> + 'static {
        ops::send(&self.fd, buf, 0)
    }

    /// Sends all of `buf`, retrying partial sends.
    pub fn send_all<B: IoBuf>(
        &self,
        buf: B,
    ) -> impl Future<Output = (io::Result<()>, B)> + 'static {
        let fd = self.fd.clone();
        async move {
            let mut buf = buf;
            let mut sent = 0;
            while sent < buf.bytes_init() {
                let (result, back) = ops::send(&fd, buf, sent).await;
                buf = back;
                match result {
                    Ok(0) => {
                        let err = io::Error::new(io::ErrorKind::WriteZero, "socket took no bytes");
                        return (Err(err), buf);
                    }
                    Ok(n) => sent += n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => return (Err(err), buf),
                }
            }
            (Ok(()), buf)
        }
    }

    /// Sends the buffers with one `sendmsg` (gather write; a single buffer goes out as a plain
    /// `send`); returns the bytes sent, which can be fewer than the total, with the buffers. One call passes at most 1024 buffers (the
    /// kernel's `UIO_MAXIOV`; more would fail with `EMSGSIZE`): send the rest as you would
    /// after any partial send.
    pub fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> Writev<B> {
        Writev(ops::writev(&self.fd, bufs))
    }

    /// Shuts down the read, write, or both halves.
    pub fn shutdown(&self, how: Shutdown) -> impl Future<Output = io::Result<()>> + 'static {
        ops::shutdown(&self.fd, how)
    }

    /// Closes the socket and reports the result. If ops still hold the socket, it is closed
    /// when the last of them completes instead, and this returns `Ok(())`.
    pub async fn close(self) -> io::Result<()> {
        match self.fd.try_unwrap() {
            Ok(fd) => ops::close(fd).await,
            Err(_still_shared) => Ok(()),
        }
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        socket_addr(self.fd.raw(), true)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket_addr(self.fd.raw(), false)
    }

    /// Sets `SO_LINGER`. `Some(Duration::ZERO)` makes the close abortive: unsent data is
    /// dropped and the peer gets a reset (RST) instead of a FIN, so it cannot mistake a
    /// connection cut short for a complete one. `None` is the default graceful close.
    pub fn set_linger(&self, linger: Option<std::time::Duration>) -> io::Result<()> {
        sys::set_linger(self.fd.raw(), linger)
    }

    /// Bytes of this connection's output the peer has acknowledged so far (`TCP_INFO`'s
    /// `tcpi_bytes_acked`): how fast a peer really takes data, whatever the socket buffers
    /// absorbed. One `getsockopt`.
    pub fn bytes_acked(&self) -> io::Result<u64> {
        sys::tcp_bytes_acked(self.fd.raw())
    }

    /// Sets `TCP_NODELAY` (on by default for connected and accepted streams).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        sys::set_int_option(
            self.fd.raw(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            i32::from(nodelay),
        )
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("fd", &self.fd.raw())
            .finish()
    }
}

/// The future of [`TcpStream::writev`]: the bytes sent (possibly fewer than given) and the
/// buffers back.
#[must_use = "futures do nothing unless polled"]
pub struct Writev<B: IoBuf>(Op<SendMsg<B>>);

impl<B: IoBuf> Writev<B> {
    /// Until the next poll, the send's completion calls `hook` inline, as it is reaped,
    /// instead of waking the task that polled last: poll the send from the hook (it is
    /// ready) and go on from there — the next send can be queued before any task runs.
    /// Under the epoll driver a send completes only when polled, and this does nothing.
    pub fn on_completion(&self, hook: std::rc::Rc<dyn CompletionHook>) {
        self.0.set_hook(hook);
    }
}

impl<B: IoBuf> Future for Writev<B> {
    type Output = (io::Result<usize>, Vec<B>);

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl<B: IoBuf> fmt::Debug for Writev<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Writev")
    }
}
