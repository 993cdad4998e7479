//! `wasi:http/outgoing-handler`: a strategy's outbound HTTP, denied by default. Linked for
//! every strategy; a request reaches the network only if the strategy's operator listed its
//! origin (`allow.rs`), and its host resolves to the public internet or was listed as the IP
//! literal it is (`addresses.rs`). The host connects and caps (`send.rs`): requests per call,
//! time per request within the call's wall-clock cap, both bodies. Each refusal reaches the
//! guest as the `error-code` that names it (`HTTP-request-denied`, `destination-IP-prohibited`,
//! `connection-limit-reached`…) and is counted per strategy in `/metrics`.
//!
//! Time a guest spends waiting on the network is parked, not charged to its CPU budget: it
//! waits in `wasi:io`'s blocking functions, which `host/io.rs` meters.

pub mod addresses;
pub mod allow;
pub mod send;

use crate::sandbox::limits::Limits;
use crate::sandbox::metrics::{HttpOutcome, StrategyMetrics};
use allow::AllowList;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The server's side of outbound HTTP, the same for every strategy.
pub struct Network {
    /// `[outbound] allow_private_networks`: private addresses allowed for every listed origin.
    pub allow_private: bool,
    tls: Arc<rustls::ClientConfig>,
    /// Name lookups at once (each holds a blocking thread while the resolver answers): a
    /// strategy whose DNS is slow cannot take the threads the store reads on.
    lookups: tokio::sync::Semaphore,
}

/// See [`Network::lookups`].
const MAX_LOOKUPS: usize = 16;

impl Network {
    pub fn new(allow_private: bool) -> Self {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
        // The provider named, not the process default: nothing else may pick it for us.
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Network { allow_private, tls: Arc::new(tls), lookups: tokio::sync::Semaphore::new(MAX_LOOKUPS) }
    }
}

/// One call's outbound HTTP: what its strategy may reach, and what it has used.
pub struct Outbound {
    pub(crate) allow: Arc<AllowList>,
    pub(crate) network: Arc<Network>,
    pub(crate) limits: Arc<Limits>,
    pub(crate) metrics: Arc<StrategyMetrics>,
    pub(crate) requests: u32,
    /// The call's wall-clock deadline (kept current by `HostState::http`).
    pub(crate) deadline: Instant,
}

type Sent = Result<(http::Response<WasiBody>, send::Driver), Error>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _default: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let metrics = self.metrics.clone();
        if self.requests >= self.limits.max_http_requests {
            metrics.http(HttpOutcome::TooMany);
            return Box::new(async { Err(Error::ConnectionLimitReached) });
        }
        self.requests += 1;
        let (allow, network, limits, deadline) =
            (self.allow.clone(), self.network.clone(), self.limits.clone(), self.deadline);
        Box::new(async move {
            let rules = send::Rules {
                allow: &allow,
                allow_private: network.allow_private,
                timeout: Duration::from_millis(limits.http_timeout_ms),
                deadline,
                max_response_bytes: limits.max_http_response_bytes as u64,
                max_request_bytes: limits.max_http_request_bytes as u64,
                tls: &network.tls,
                metrics: metrics.clone(),
                lookups: &network.lookups,
            };
            let sent = send::send(rules, request, options).await;
            match &sent {
                Ok(_) => metrics.http(HttpOutcome::Answered),
                Err(e) => send::outcome_of(e).into_iter().for_each(|o| metrics.http(o)),
            }
            sent
        })
    }
}
