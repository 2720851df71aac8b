//! Handlers and the router.
//!
//! A handler is any `async` function of `(&mut Request, &mut Response)`; it runs on the
//! connection's reactor, so it may be `!Send`. Routes are a statically typed chain, so
//! dispatch is a few string compares and no boxed future.

use std::future::Future;
use std::io;

use crate::request::Request;
use crate::response::Response;
use crate::status::Status;

/// Answers requests.
///
/// Implemented for every `async` closure or function taking `(&mut Request, &mut Response)`
/// and returning `io::Result<()>`:
///
/// ```
/// use ringhop_http::{Request, Response};
/// let hello = async |_req: &mut Request<'_>, res: &mut Response<'_>| {
///     res.header("Content-Type", "text/plain").body(b"Hello, World!");
///     Ok(())
/// };
/// # fn is_handler(_: impl ringhop_http::Handler) {}
/// # is_handler(hello);
/// ```
pub trait Handler {
    /// Handles one request. An error (or a panic) before the response started is answered
    /// with 500, after it with closing the connection.
    fn call(
        &self,
        req: &mut Request<'_>,
        res: &mut Response<'_>,
    ) -> impl Future<Output = io::Result<()>>;
}

impl<F> Handler for F
where
    F: AsyncFn(&mut Request<'_>, &mut Response<'_>) -> io::Result<()>,
{
    fn call(
        &self,
        req: &mut Request<'_>,
        res: &mut Response<'_>,
    ) -> impl Future<Output = io::Result<()>> {
        self(req, res)
    }
}

/// The default fallback: 404 with a short body.
#[derive(Clone, Copy, Debug, Default)]
pub struct NotFound;

impl Handler for NotFound {
    async fn call(&self, _req: &mut Request<'_>, res: &mut Response<'_>) -> io::Result<()> {
        res.status(Status::NOT_FOUND)
            .header("Content-Type", "text/plain")
            .body(b"Not Found");
        Ok(())
    }
}

/// Methods allowed on a path (for `405` + `Allow`), collected without allocating.
#[derive(Default)]
pub struct Allow {
    methods: [&'static str; 8],
    len: usize,
}

impl Allow {
    fn add(&mut self, method: &'static str) {
        if self.len < self.methods.len() && !self.methods[..self.len].contains(&method) {
            self.methods[self.len] = method;
            self.len += 1;
        }
    }

    /// A route's method, and `HEAD` after `GET` (a `GET` route answers it).
    fn add_route(&mut self, method: &'static str) {
        self.add(method);
        if method == "GET" {
            self.add("HEAD");
        }
    }

    /// `GET, HEAD, POST`: the field's value, written into `value`.
    fn write<'v>(&self, value: &'v mut [u8; 128]) -> &'v [u8] {
        let mut len = 0;
        for (i, method) in self.methods[..self.len].iter().enumerate() {
            let sep: &[u8] = if i == 0 { b"" } else { b", " };
            for part in [sep, method.as_bytes()] {
                let end = (len + part.len()).min(value.len());
                value[len..end].copy_from_slice(&part[..end - len]);
                len = end;
            }
        }
        &value[..len]
    }
}

/// A chain of routes (built by [`Router`]).
pub trait Routes {
    /// Index of the route for `method` and `path`.
    fn find(&self, method: &str, path: &str) -> Option<usize>;
    /// Collects the methods allowed on `path` (asked only when `find` found nothing, so
    /// the common case pays for one comparison per route and no more).
    fn allowed(&self, path: &str, allow: &mut Allow);
    /// Collects the methods of every route (for `OPTIONS *`, which asks about the server).
    fn methods(&self, _allow: &mut Allow) {}
    /// Whether some route takes `method` (a method outside RFC 9110's that no route takes
    /// is answered `501 Not Implemented` rather than `405`).
    fn uses_method(&self, _method: &str) -> bool {
        false
    }
    /// Calls route number `index`.
    fn call_at(
        &self,
        index: usize,
        req: &mut Request<'_>,
        res: &mut Response<'_>,
    ) -> impl Future<Output = io::Result<()>>;
}

/// The end of a route chain.
#[derive(Clone, Copy, Debug, Default)]
pub struct End;

impl Routes for End {
    fn find(&self, _: &str, _: &str) -> Option<usize> {
        None
    }
    fn allowed(&self, _: &str, _: &mut Allow) {}
    async fn call_at(&self, _: usize, _: &mut Request<'_>, _: &mut Response<'_>) -> io::Result<()> {
        Ok(())
    }
}

/// One route and the rest of the chain.
#[derive(Clone, Debug)]
pub struct Route<H, N> {
    method: &'static str,
    path: &'static str,
    handler: H,
    next: N,
}

impl<H: Handler, N: Routes> Routes for Route<H, N> {
    fn find(&self, method: &str, path: &str) -> Option<usize> {
        // Without `memcmp` calls: this runs for every request, against each route in turn.
        let eq = |a: &str, b: &str| crate::chars::eq_bytes(a.as_bytes(), b.as_bytes());
        if eq(path, self.path)
            && (eq(method, self.method) || (method == "HEAD" && self.method == "GET"))
        {
            return Some(0);
        }
        self.next.find(method, path).map(|i| i + 1)
    }

    fn allowed(&self, path: &str, allow: &mut Allow) {
        if path == self.path {
            allow.add_route(self.method);
        }
        self.next.allowed(path, allow);
    }

    fn methods(&self, allow: &mut Allow) {
        self.next.methods(allow);
        allow.add_route(self.method);
    }

    fn uses_method(&self, method: &str) -> bool {
        method == self.method || self.next.uses_method(method)
    }

    async fn call_at(
        &self,
        index: usize,
        req: &mut Request<'_>,
        res: &mut Response<'_>,
    ) -> io::Result<()> {
        if index == 0 {
            self.handler.call(req, res).await
        } else {
            self.next.call_at(index - 1, req, res).await
        }
    }
}

/// Routes by method and exact path, with a fallback for other paths (404 by default) and
/// `405 Method Not Allowed` (with `Allow`) for known paths — `501 Not Implemented` when
/// the method is neither one of RFC 9110's nor any route's. `GET` routes answer `HEAD` too.
/// `OPTIONS *` gets `200` with `Allow` listing every route's method and `OPTIONS` (unless a
/// route is registered for method `OPTIONS` and path `*`).
///
/// ```
/// use ringhop_http::{Request, Response, Router};
/// let router = Router::new()
///     .get("/", async |_: &mut Request<'_>, res: &mut Response<'_>| {
///         res.body(b"hi");
///         Ok(())
///     })
///     .post("/echo", async |req: &mut Request<'_>, res: &mut Response<'_>| {
///         let mut body = Vec::new();
///         req.body().read_to_end(&mut body).await?;
///         res.body(&body);
///         Ok(())
///     });
/// # fn is_handler(_: impl ringhop_http::Handler) {}
/// # is_handler(router);
/// ```
#[derive(Clone, Debug)]
pub struct Router<R, F> {
    routes: R,
    fallback: F,
}

impl Router<End, NotFound> {
    /// An empty router: every request gets 404.
    pub fn new() -> Self {
        Router {
            routes: End,
            fallback: NotFound,
        }
    }
}

impl Default for Router<End, NotFound> {
    fn default() -> Self {
        Router::new()
    }
}

impl<R: Routes, F: Handler> Router<R, F> {
    /// Adds a route for `method` (upper case, e.g. `"PUT"`) and exact `path`.
    pub fn route<H: Handler>(
        self,
        method: &'static str,
        path: &'static str,
        handler: H,
    ) -> Router<Route<H, R>, F> {
        Router {
            routes: Route {
                method,
                path,
                handler,
                next: self.routes,
            },
            fallback: self.fallback,
        }
    }

    /// Adds a `GET` (and `HEAD`) route.
    pub fn get<H: Handler>(self, path: &'static str, handler: H) -> Router<Route<H, R>, F> {
        self.route("GET", path, handler)
    }

    /// Adds a `POST` route.
    pub fn post<H: Handler>(self, path: &'static str, handler: H) -> Router<Route<H, R>, F> {
        self.route("POST", path, handler)
    }

    /// Replaces the handler for paths no route knows.
    pub fn fallback<G: Handler>(self, fallback: G) -> Router<R, G> {
        Router {
            routes: self.routes,
            fallback,
        }
    }
}

impl<R: Routes, F: Handler> Handler for Router<R, F> {
    async fn call(&self, req: &mut Request<'_>, res: &mut Response<'_>) -> io::Result<()> {
        let path = req.path();
        if let Some(index) = self.routes.find(req.method(), path) {
            return self.routes.call_at(index, req, res).await;
        }
        let mut allow = Allow::default();
        // `OPTIONS *` (the parser admits `*` for OPTIONS alone) asks about the server as a
        // whole (RFC 9110 §9.3.7): what every route accepts, unless a route takes `*`.
        if path == "*" {
            self.routes.methods(&mut allow);
            allow.add("OPTIONS");
            res.header("Allow", allow.write(&mut [0; 128])).body(b"");
            return Ok(());
        }
        self.routes.allowed(path, &mut allow);
        match allow.len {
            0 => self.fallback.call(req, res).await,
            // A method this server does not know at all (RFC 9110 §9.1). Paths no route
            // knows stay the fallback's, which may well take any method.
            _ if !req.has_standard_method() && !self.routes.uses_method(req.method()) => {
                res.status(Status::NOT_IMPLEMENTED)
                    .header("Content-Type", "text/plain")
                    .body(b"Not Implemented");
                Ok(())
            }
            _ => {
                // Not held across the fallback's await: the handler's future stays smaller.
                let mut value = [0u8; 128];
                res.status(Status::METHOD_NOT_ALLOWED)
                    .header("Allow", allow.write(&mut value))
                    .header("Content-Type", "text/plain")
                    .body(b"Method Not Allowed");
                Ok(())
            }
        }
    }
}
