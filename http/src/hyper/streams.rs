//! Counting a connection's open HTTP/2 streams, for the idle rule "no open stream for N
//! seconds → GOAWAY". A byte-based idle timer would never fire on HTTP/2, whose pings are
//! traffic. A stream is open from its request until its response body is done (hyper drops
//! the body then) or the service fails.

use std::cell::Cell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::Service;
use hyper::{Request, Response};

use super::body::FromIncoming;
use crate::config::{Config, MinDataRate};

/// The number of open streams, shared by the service wrapper and the connection's driver.
#[derive(Clone, Debug, Default)]
pub(crate) struct OpenStreams(Rc<Cell<usize>>);

impl OpenStreams {
    pub(crate) fn get(&self) -> usize {
        self.0.get()
    }

    fn open(&self) -> StreamGuard {
        self.0.set(self.0.get() + 1);
        StreamGuard(self.0.clone())
    }
}

/// One open stream; closed when dropped.
struct StreamGuard(Rc<Cell<usize>>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// A service whose calls count as open streams until their response body is done, and
/// whose requests get the body type `R` (under the request body rate when `R` enforces it).
pub(crate) struct Counted<S, R> {
    inner: S,
    open: OpenStreams,
    rate: Option<MinDataRate>,
    body: PhantomData<fn() -> R>,
}

impl<S, R> Counted<S, R> {
    pub(crate) fn new(inner: S, open: OpenStreams, rate: Option<MinDataRate>) -> Self {
        Counted {
            inner,
            open,
            rate,
            body: PhantomData,
        }
    }
}

impl<S, R, B: Body> Service<Request<Incoming>> for Counted<S, R>
where
    S: Service<Request<R>, Response = Response<B>>,
    R: FromIncoming,
{
    type Response = Response<Tracked<B>>;
    type Error = S::Error;
    type Future = CountedCall<S::Future>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        crate::stats::request_served();
        let rate = self.rate;
        CountedCall {
            head: req.method() == hyper::Method::HEAD,
            guard: Some(self.open.open()),
            inner: self
                .inner
                .call(req.map(|body| R::from_incoming(body, rate))),
        }
    }
}

/// The future of a counted call: hands its stream guard to the response body.
pub(crate) struct CountedCall<F> {
    inner: F,
    guard: Option<StreamGuard>,
    /// A HEAD request: the response goes without its body (see `poll`).
    head: bool,
}

impl<F, B: Body, E> Future for CountedCall<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<Tracked<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of `inner`, which is never moved out; `guard` is not
        // pinned (taking it out moves nothing pinned).
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: `inner` lives in the pinned `CountedCall` and is never moved.
        let inner = unsafe { Pin::new_unchecked(&mut this.inner) };
        let mut response = std::task::ready!(inner.poll(cx))?;
        let guard = this.guard.take();
        if this.head {
            // RFC 9110 §9.3.2: no content in an answer to HEAD. hyper's HTTP/1 drops a body
            // a service gives anyway; its HTTP/2 sent it as DATA after the HEADERS, which
            // clients reject as a protocol error. The body's length, when known, still goes
            // in Content-Length, as it would for GET (hyper would otherwise put 0 there).
            if let Some(length) = response.body().size_hint().exact() {
                response
                    .headers_mut()
                    .entry(hyper::header::CONTENT_LENGTH)
                    .or_insert_with(|| length.into());
            }
            return Poll::Ready(Ok(response.map(|_| Tracked {
                inner: None,
                _guard: guard,
            })));
        }
        Poll::Ready(Ok(response.map(|body| Tracked {
            inner: Some(body),
            _guard: guard,
        })))
    }
}

/// The body of a response the servers send: the service's, or none (an answer to HEAD over
/// HTTP/2, a request refused before the service); over HTTP/2 it keeps its stream counted
/// as open until it is dropped.
pub(crate) struct Tracked<B> {
    inner: Option<B>,
    _guard: Option<StreamGuard>,
}

impl<B: Body> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        // SAFETY: structural pinning of `inner`, which is never moved out.
        match unsafe { self.map_unchecked_mut(|this| &mut this.inner) }.as_pin_mut() {
            Some(body) => body.poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// An HTTP/1 service that counts its requests (for the servers' counters), gives them the
/// body type `R`, notes a `101` answer (the connection is upgraded), and answers (and
/// closes) what hyper does not check itself (see [`refusal`]): the service never sees such
/// a request.
pub(crate) struct CountRequests<S, R> {
    inner: S,
    rate: Option<MinDataRate>,
    limits: RequestLimits,
    upgraded: Rc<Cell<bool>>,
    known_host: KnownHost,
    body: PhantomData<fn() -> R>,
}

/// The limits of [`Config`] that hyper's HTTP/1 has no setting for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestLimits {
    pub(crate) max_request_line: usize,
    pub(crate) max_body: u64,
}

impl RequestLimits {
    pub(crate) fn new(config: &Config) -> Self {
        RequestLimits {
            max_request_line: config.max_request_line,
            max_body: config.max_body,
        }
    }
}

impl<S, R> CountRequests<S, R> {
    pub(crate) fn new(
        inner: S,
        rate: Option<MinDataRate>,
        limits: RequestLimits,
        upgraded: Rc<Cell<bool>>,
    ) -> Self {
        CountRequests {
            inner,
            rate,
            limits,
            upgraded,
            known_host: KnownHost::new(),
            body: PhantomData,
        }
    }
}

/// The longest Host value [`KnownHost`] remembers (longer ones are checked every time).
const KNOWN_HOST_MAX: usize = 64;

/// The connection's last Host value that was found valid: clients repeat the same Host on
/// every request, and an identical one is not checked again (as the native server does).
/// A copy, not the `HeaderValue`: that would keep hyper's read buffer from being reused.
struct KnownHost {
    bytes: Cell<[u8; KNOWN_HOST_MAX]>,
    len: Cell<Option<u8>>,
}

impl KnownHost {
    fn new() -> Self {
        KnownHost {
            bytes: Cell::new([0; KNOWN_HOST_MAX]),
            len: Cell::new(None),
        }
    }

    fn is_valid(&self, host: &[u8]) -> bool {
        let known = self.bytes.get();
        if self
            .len
            .get()
            .is_some_and(|len| known[..usize::from(len)] == *host)
        {
            return true;
        }
        if !crate::parse::is_valid_authority(host) {
            return false;
        }
        if host.len() <= KNOWN_HOST_MAX {
            let mut bytes = [0; KNOWN_HOST_MAX];
            bytes[..host.len()].copy_from_slice(host);
            self.bytes.set(bytes);
            self.len.set(Some(host.len() as u8));
        }
        true
    }
}

/// What a request gets instead of the service, for the rules hyper leaves to applications:
/// RFC 9112 §3.2's exactly one valid `Host` in HTTP/1.1 (HTTP/1.0 may have none), else
/// `400`; a transfer coding other than `chunked`, which hyper would hand over still
/// encoded, `501` (RFC 9112 §6.1); and the limits hyper has no setting for, as the native
/// server answers them: a request line over `max_request_line` `414`, a `Content-Length`
/// over `max_body` `413`. One pass over the fields (comparing standard names is an enum
/// comparison) instead of hashed lookups.
fn refusal<B>(
    req: &Request<B>,
    known_host: &KnownHost,
    limits: &RequestLimits,
) -> Option<hyper::StatusCode> {
    // `method SP target SP HTTP/1.x CRLF`, measured as the native server does (to the LF).
    let uri = req.uri();
    let target = uri.scheme_str().map_or(0, |scheme| scheme.len() + 3)
        + uri
            .authority()
            .map_or(0, |authority| authority.as_str().len())
        + uri.path_and_query().map_or(0, |path| path.as_str().len());
    if req.method().as_str().len() + 1 + target + 10 > limits.max_request_line {
        return Some(hyper::StatusCode::URI_TOO_LONG);
    }
    let mut hosts = 0;
    let mut host = None;
    let mut other_coding = false;
    for (name, value) in req.headers() {
        if name == hyper::header::HOST {
            hosts += 1;
            host = Some(value);
        } else if name == hyper::header::TRANSFER_ENCODING {
            other_coding |= crate::parse::tokens(value.as_bytes())
                .any(|coding| !coding.eq_ignore_ascii_case(b"chunked"));
        } else if name == hyper::header::CONTENT_LENGTH {
            // hyper checked it already (it frames the body by it).
            let length = crate::parse::parse_content_length(value.as_bytes());
            if length.is_ok_and(|length| length > limits.max_body) {
                return Some(hyper::StatusCode::PAYLOAD_TOO_LARGE);
            }
        }
    }
    let host_ok = match (hosts, host) {
        (0, _) => req.version() < hyper::Version::HTTP_11,
        (1, Some(host)) => known_host.is_valid(host.as_bytes()),
        _ => false,
    };
    if !host_ok {
        return Some(hyper::StatusCode::BAD_REQUEST);
    }
    other_coding.then_some(hyper::StatusCode::NOT_IMPLEMENTED)
}

impl<S, R, B> Service<Request<Incoming>> for CountRequests<S, R>
where
    S: Service<Request<R>, Response = Response<B>>,
    R: FromIncoming,
{
    type Response = Response<Tracked<B>>;
    type Error = S::Error;
    type Future = WatchUpgrade<S::Future>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        crate::stats::request_served();
        if let Some(status) = refusal(&req, &self.known_host, &self.limits) {
            crate::stats::count(crate::stats::Event::Rejected);
            return WatchUpgrade::Refused(status);
        }
        let rate = self.rate;
        WatchUpgrade::Called {
            inner: self
                .inner
                .call(req.map(|body| R::from_incoming(body, rate))),
            upgraded: self.upgraded.clone(),
        }
    }
}

/// The future of an HTTP/1 call: notes a `101` response (the connection's driver counts the
/// upgrade once hyper has handed the connection over); or the answer to a refused request.
pub(crate) enum WatchUpgrade<F> {
    Called { inner: F, upgraded: Rc<Cell<bool>> },
    Refused(hyper::StatusCode),
}

impl<F, B, E> Future for WatchUpgrade<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<Tracked<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of `inner`, which is never moved out (the variant is
        // never changed once pinned).
        let this = unsafe { self.get_unchecked_mut() };
        let (inner, upgraded) = match this {
            WatchUpgrade::Called { inner, upgraded } => (inner, upgraded),
            WatchUpgrade::Refused(status) => {
                let mut response = Response::new(Tracked {
                    inner: None,
                    _guard: None,
                });
                *response.status_mut() = *status;
                response.headers_mut().insert(
                    hyper::header::CONNECTION,
                    hyper::header::HeaderValue::from_static("close"),
                );
                return Poll::Ready(Ok(response));
            }
        };
        // SAFETY: `inner` lives in the pinned `WatchUpgrade` and is never moved.
        let inner = unsafe { Pin::new_unchecked(inner) };
        let response = std::task::ready!(inner.poll(cx))?;
        if response.status() == hyper::StatusCode::SWITCHING_PROTOCOLS {
            upgraded.set(true);
        }
        Poll::Ready(Ok(response.map(|body| Tracked {
            inner: Some(body),
            _guard: None,
        })))
    }
}

/// Inserts a value into a request's extensions (see `HyperServer::request_extension`).
pub(crate) type InsertExtension = Rc<dyn Fn(&mut hyper::http::Extensions)>;

/// A service whose requests get an extension inserted first, when one is configured.
pub(crate) struct WithExtension<S> {
    inner: S,
    insert: Option<InsertExtension>,
}

impl<S> WithExtension<S> {
    pub(crate) fn new(inner: S, insert: Option<InsertExtension>) -> Self {
        WithExtension { inner, insert }
    }
}

impl<S, R> Service<Request<R>> for WithExtension<S>
where
    S: Service<Request<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut req: Request<R>) -> S::Future {
        if let Some(insert) = &self.insert {
            insert(req.extensions_mut());
        }
        self.inner.call(req)
    }
}
