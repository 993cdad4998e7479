//! Sending one outbound request for a strategy, the host's way: the origin checked against
//! its allow list, the name resolved here and every address it resolves to checked (no
//! private address unless listed as that IP literal or allowed by the operator), the
//! connection made to a checked address (never resolved again), TLS with the web's roots,
//! HTTP/1.1 with no redirect followed, the time and both bodies capped.

use super::addresses::pick;
use super::allow::{AllowList, target};
use crate::sandbox::metrics::{HttpOutcome, StrategyMetrics};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use std::future::{Future, poll_fn};
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// Everything one request is checked and capped by.
pub struct Rules<'a> {
    pub allow: &'a AllowList,
    /// `[outbound] allow_private_networks`.
    pub allow_private: bool,
    /// Connecting and the response headers, and the gap between two body chunks.
    pub timeout: Duration,
    /// The call's wall-clock deadline: nothing of the request outlives it.
    pub deadline: Instant,
    pub max_response_bytes: u64,
    pub max_request_bytes: u64,
    pub tls: &'a Arc<rustls::ClientConfig>,
    /// Counts a body cut at its cap.
    pub metrics: Arc<StrategyMetrics>,
    /// Name lookups run on blocking threads (getaddrinfo): this many at once, server-wide.
    pub lookups: &'a tokio::sync::Semaphore,
}

/// The connection's driver, run by wasmtime-wasi-http alongside the response.
pub type Driver = Box<dyn Future<Output = Result<(), Error>> + Send>;

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

/// Which counter a refusal or failure goes to; `None` for a body cut at its cap, counted where
/// it was cut (the guest may have ended its call, and this task with it, by then).
pub fn outcome_of(e: &Error) -> Option<HttpOutcome> {
    Some(match e {
        Error::HttpRequestDenied => HttpOutcome::Denied,
        Error::DestinationIpProhibited => HttpOutcome::Private,
        Error::ConnectionLimitReached => HttpOutcome::TooMany,
        Error::ConnectionTimeout | Error::ConnectionReadTimeout | Error::HttpResponseTimeout | Error::DnsTimeout => {
            HttpOutcome::Timeout
        }
        Error::HttpResponseBodySize(_) | Error::HttpRequestBodySize(_) => return None,
        _ => HttpOutcome::Failed,
    })
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// `guest` (what the strategy asked, if anything) within `host` (the cap).
fn within(guest: Option<Duration>, host: Duration) -> Duration {
    guest.map_or(host, |g| g.min(host)).max(Duration::from_millis(1))
}

pub async fn send(
    rules: Rules<'_>,
    mut req: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<(http::Response<WasiBody>, Driver), Error> {
    let https = req.uri().scheme() == Some(&http::uri::Scheme::HTTPS);
    let authority = req.uri().authority().ok_or(Error::HttpRequestUriInvalid)?.as_str().to_string();
    let target = target(https, &authority).map_err(|_| Error::HttpRequestUriInvalid)?;
    if !rules.allow.admits(&target) {
        return Err(Error::HttpRequestDenied);
    }
    // Every step ends by a time counted from now (connecting, then the response's head, within
    // `http_timeout_ms` or what the guest asked, if less) and by the call's deadline.
    let now = tokio::time::Instant::now();
    let call_ends = tokio::time::Instant::from_std(rules.deadline);
    let by = |guest: Option<Duration>| (now + within(guest, rules.timeout)).min(call_ends);
    let connected_by = by(options.and_then(|o| o.connect_timeout));
    let answered_by = by(options.and_then(|o| o.first_byte_timeout));
    let between = within(options.and_then(|o| o.between_bytes_timeout), rules.timeout);
    // Resolved here (an IP literal resolves to itself), every address judged.
    let lookup = async {
        let _slot = rules.lookups.acquire().await;
        tokio::net::lookup_host((target.host.as_str(), target.port)).await
    };
    let resolved: Vec<SocketAddr> = match tokio::time::timeout_at(connected_by, lookup).await {
        Err(_) => return Err(Error::DnsTimeout),
        Ok(Err(e)) => return Err(Error::DnsError { rcode: Some(e.to_string()), info_code: None }),
        Ok(Ok(addrs)) => addrs.collect(),
    };
    if resolved.is_empty() {
        return Err(Error::DestinationNotFound);
    }
    let explicit = rules.allow_private || rules.allow.lists_ip_literal(&target);
    let addr = pick(&resolved, explicit).ok_or(Error::DestinationIpProhibited)?;
    let tcp = match tokio::time::timeout_at(connected_by, tokio::net::TcpStream::connect(addr)).await {
        Err(_) => return Err(Error::ConnectionTimeout),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Err(Error::ConnectionRefused),
        Ok(Err(e)) => return Err(Error::Connect(e)),
        Ok(Ok(tcp)) => tcp,
    };
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Stream> = if https {
        let name = match target.host.parse::<IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::from(ip),
            Err(_) => rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|_| Error::HttpRequestUriInvalid)?,
        };
        let tls = tokio_rustls::TlsConnector::from(rules.tls.clone());
        let tls = tokio::time::timeout_at(connected_by, tls.connect(name, tcp))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Tls)?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    if content_length(req.headers()).is_some_and(|n| n > rules.max_request_bytes) {
        rules.metrics.http(HttpOutcome::RequestTooLarge);
        return Err(Error::HttpRequestBodySize(content_length(req.headers())));
    }
    // Origin form (`/path?query`): the Host header carries the authority.
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    *req.uri_mut() = http::Uri::builder().path_and_query(path).build().map_err(|_| Error::HttpRequestUriInvalid)?;
    let sent_too_much = Arc::new(AtomicU64::new(0));
    let req = {
        let (limit, tripped, metrics) = (rules.max_request_bytes, sent_too_much.clone(), rules.metrics.clone());
        req.map(move |inner| CappedRequest { inner, sent: 0, limit, tripped, metrics })
    };
    let (mut sender, conn) = tokio::time::timeout_at(
        connected_by,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    let max_response = rules.max_response_bytes;
    let metrics = rules.metrics.clone();
    let response = async move {
        let res = tokio::time::timeout_at(answered_by, sender.send_request(req))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(Error::from)?;
        if let Some(n) = content_length(res.headers()).filter(|n| *n > max_response) {
            metrics.http(HttpOutcome::ResponseTooLarge);
            return Err(Error::HttpResponseBodySize(Some(n)));
        }
        let mut idle = tokio::time::interval(between);
        idle.reset();
        let call_ends = Box::pin(tokio::time::sleep_until(call_ends));
        Ok(res.map(|incoming| CappedResponse { incoming, idle, call_ends, received: 0, limit: max_response, metrics }))
    };
    // The connection is driven while the response is awaited, then handed over.
    let mut response = pin!(response);
    let mut conn = Some(conn);
    let outcome = poll_fn(|cx| match response.as_mut().poll(cx) {
        Poll::Ready(r) => Poll::Ready(r),
        Poll::Pending => {
            let Some(driving) = conn.as_mut() else { return Poll::Pending };
            let ended = ready!(Pin::new(driving).poll(cx));
            conn = None;
            match ended {
                Ok(()) => response.as_mut().poll(cx),
                Err(e) => Poll::Ready(Err(Error::from(e))),
            }
        }
    })
    .await;
    let res = match outcome {
        Ok(res) => res,
        // The body cap fails the send; hyper's error does not always say why.
        Err(_) if sent_too_much.load(Ordering::Relaxed) > 0 => {
            return Err(Error::HttpRequestBodySize(Some(sent_too_much.load(Ordering::Relaxed))));
        }
        Err(e) => return Err(e),
    };
    let driver: Driver = Box::new(async move {
        match conn {
            Some(conn) => conn.await.map_err(|e| if e.is_timeout() { Error::HttpResponseTimeout } else { e.into() }),
            None => Ok(()),
        }
    });
    Ok((res.map(|body| body.boxed_unsync()), driver))
}

/// The guest's request body, failing past `limit` bytes.
struct CappedRequest {
    inner: WasiBody,
    sent: u64,
    limit: u64,
    /// The byte count that passed the cap, once it did.
    tripped: Arc<AtomicU64>,
    metrics: Arc<StrategyMetrics>,
}

impl Body for CappedRequest {
    type Data = Bytes;
    type Error = Error;
    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref)) {
            this.sent += data.map_or(0, |d| d.len() as u64);
            if this.sent > this.limit {
                this.tripped.store(this.sent, Ordering::Relaxed);
                this.metrics.http(HttpOutcome::RequestTooLarge);
                return Poll::Ready(Some(Err(Error::HttpRequestBodySize(Some(this.sent)))));
            }
        }
        Poll::Ready(frame)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response body, failing past `limit` bytes, after `idle` without a chunk, or at the
/// call's deadline.
struct CappedResponse {
    incoming: hyper::body::Incoming,
    idle: tokio::time::Interval,
    call_ends: Pin<Box<tokio::time::Sleep>>,
    received: u64,
    limit: u64,
    metrics: Arc<StrategyMetrics>,
}

impl Body for CappedResponse {
    type Data = Bytes;
    type Error = Error;
    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => {
                Poll::Ready(Some(Err(if e.is_timeout() { Error::HttpResponseTimeout } else { Error::from(e) })))
            }
            Poll::Ready(Some(Ok(frame))) => {
                this.idle.reset();
                this.received += frame.data_ref().map_or(0, |d| d.len() as u64);
                if this.received > this.limit {
                    this.metrics.http(HttpOutcome::ResponseTooLarge);
                    return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(this.received)))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                if this.call_ends.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(Error::HttpResponseTimeout)));
                }
                ready!(this.idle.poll_tick(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }
    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}
