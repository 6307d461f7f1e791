//! Requests answered without reading their body: keep the connection when the rest of the
//! body is small, and say `Connection: close` when it is not.
//!
//! Many answers never look at the body: a gateway check (`GET /gateway/v1/check` with a
//! body nobody asked for), a `413` from the body limit (decided on `Content-Length`
//! alone), a `401` before a form is parsed. On HTTP/1.1 the unread bytes are still on the
//! wire in front of the client's next request, so hyper reads what it has already
//! buffered and, if that is not the whole body, closes the connection after the response —
//! without telling the client, which then sends its next request into a closed socket.
//!
//! This layer wraps every request body that is not empty. When the response is ready and
//! the body has not been read to its end:
//!
//! - if at most [`DRAIN_LIMIT`] bytes remain (by `Content-Length`, or up to that many of a
//!   chunked body) and the client did not ask `Expect: 100-continue`, it reads and discards
//!   them, for at most [`DRAIN_TIME`], before answering: the connection stays usable, and a
//!   client's small stray body costs it nothing;
//! - otherwise (also after a `408`: that body came too slowly already), or if draining
//!   fails or takes longer, the response carries `Connection: close`, so the client knows
//!   to open a new connection; hyper closes this one after the response (it never reads a
//!   large unread body).
//!
//! HTTP/2 needs neither: a stream's unread body is reset on its own, and the connection
//! header is forbidden there.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Version, header};
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::{Body as _, Frame, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// The most unread body bytes read and discarded to keep a connection open.
pub const DRAIN_LIMIT: u64 = 64 * 1024;

/// How long draining may take before the connection is given up instead.
pub const DRAIN_TIME: Duration = Duration::from_secs(1);

/// The middleware (see the module documentation).
pub async fn close_or_drain(request: Request, next: Next) -> Response {
    let http1 = matches!(request.version(), Version::HTTP_11 | Version::HTTP_10);
    if !http1 || request.body().is_end_stream() {
        return next.run(request).await;
    }
    let expects_continue = request
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (parts, body) = request.into_parts();
    let shared = Arc::new(Mutex::new(Shared {
        body: Some(body),
        read_to_end: false,
    }));
    let request = Request::from_parts(parts, Body::new(Tracked(shared.clone())));
    let mut response = next.run(request).await;

    // The handler is done with the body (or still streams its response and will find it
    // gone): take it back.
    let rest = {
        let mut s = shared.lock().expect("not poisoned");
        if s.read_to_end { None } else { s.body.take() }
    };
    let Some(rest) = rest else {
        return response;
    };
    // A request that timed out (408) came too slowly to wait for any more of it.
    let drained = !expects_continue
        && response.status() != axum::http::StatusCode::REQUEST_TIMEOUT
        && rest.size_hint().lower() <= DRAIN_LIMIT
        && tokio::time::timeout(DRAIN_TIME, drain(rest, DRAIN_LIMIT))
            .await
            .unwrap_or(false);
    if !drained {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads `body` to its end, discarding it; `false` if it is longer than `limit` or fails.
async fn drain(mut body: Body, limit: u64) -> bool {
    let mut read = 0u64;
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => return true,
            Some(Err(_)) => return false,
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    read += data.len() as u64;
                    if read > limit {
                        return false;
                    }
                }
            }
        }
    }
}

struct Shared {
    /// `None` once taken back by the middleware.
    body: Option<Body>,
    read_to_end: bool,
}

/// The body handed to the handler: the request's, noting when it was read to its end.
struct Tracked(Arc<Mutex<Shared>>);

impl hyper::body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut s = self.0.lock().expect("not poisoned");
        let Some(body) = s.body.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => s.read_to_end = true,
            Poll::Ready(Some(Ok(_))) if s.body.as_ref().is_some_and(|b| b.is_end_stream()) => {
                s.read_to_end = true
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let s = self.0.lock().expect("not poisoned");
        s.body.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let s = self.0.lock().expect("not poisoned");
        s.body.as_ref().map(|b| b.size_hint()).unwrap_or_default()
    }
}
