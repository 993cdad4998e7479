//! Per-strategy metrics, exported by `GET /metrics` through `prometheus-client`: one family per
//! metric, labelled by strategy (and outcome). A strategy's handles are taken from the families
//! once, when its name is first registered, and kept across hot swaps: a call only increments
//! atomics it already holds.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Rejected,
    BadRequest,
    Conflict,
    NotFound,
    Internal,
    Cpu,
    Wall,
    Memory,
    Stack,
    HostLimit,
    ReturnTooLarge,
    InputTooLarge,
    Busy,
    Trap,
}

const OUTCOMES: [(Outcome, &str); 15] = [
    (Outcome::Ok, "ok"),
    (Outcome::Rejected, "rejected"),
    (Outcome::BadRequest, "bad_request"),
    (Outcome::Conflict, "conflict"),
    (Outcome::NotFound, "not_found"),
    (Outcome::Internal, "internal"),
    (Outcome::Cpu, "limit_cpu"),
    (Outcome::Wall, "limit_wall_clock"),
    (Outcome::Memory, "limit_memory"),
    (Outcome::Stack, "limit_stack"),
    (Outcome::HostLimit, "limit_host_calls"),
    (Outcome::ReturnTooLarge, "limit_return_size"),
    (Outcome::InputTooLarge, "limit_input_size"),
    (Outcome::Busy, "limit_concurrency"),
    (Outcome::Trap, "trap"),
];

/// Call duration buckets (seconds).
const LATENCY: [f64; 12] =
    [0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1];
/// Share of the CPU budget a call used.
const BUDGET: [f64; 7] = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0];

/// What became of a strategy's outbound HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpOutcome {
    /// A response came (whatever its status).
    Answered,
    /// The origin is not in the strategy's `outbound` list.
    Denied,
    /// The host resolved to addresses that are not the public internet (not listed as such).
    Private,
    /// The call had made `limits.max_http_requests` already.
    TooMany,
    /// Connecting or the response took longer than `limits.http_timeout_ms` or the call's
    /// wall-clock cap.
    Timeout,
    /// The response body passed `limits.max_http_response_bytes`.
    ResponseTooLarge,
    /// The request body passed `limits.max_http_request_bytes`.
    RequestTooLarge,
    /// DNS, connection, TLS, protocol.
    Failed,
}

const HTTP_OUTCOMES: [(HttpOutcome, &str); 8] = [
    (HttpOutcome::Answered, "answered"),
    (HttpOutcome::Denied, "denied"),
    (HttpOutcome::Private, "private_address"),
    (HttpOutcome::TooMany, "limit_requests"),
    (HttpOutcome::Timeout, "limit_time"),
    (HttpOutcome::ResponseTooLarge, "limit_response_size"),
    (HttpOutcome::RequestTooLarge, "limit_request_size"),
    (HttpOutcome::Failed, "failed"),
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Of {
    strategy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OfOutcome {
    strategy: String,
    outcome: String,
}

type Histograms = Family<Of, Histogram, fn() -> Histogram>;

/// Every strategy's metrics, one family per metric.
#[derive(Clone)]
pub struct Families {
    calls: Family<OfOutcome, Counter>,
    latency: Histograms,
    budget: Histograms,
    in_flight: Family<Of, Gauge>,
    http: Family<OfOutcome, Counter>,
    dropped_log_lines: Family<Of, Counter>,
    forced_deletes: Family<Of, Counter>,
}

impl Default for Families {
    fn default() -> Self {
        Families {
            calls: Family::default(),
            latency: Family::new_with_constructor(|| Histogram::new(LATENCY)),
            budget: Family::new_with_constructor(|| Histogram::new(BUDGET)),
            in_flight: Family::default(),
            http: Family::default(),
            dropped_log_lines: Family::default(),
            forced_deletes: Family::default(),
        }
    }
}

impl Families {
    /// Adds the families to `registry` (prefixed `sandgate`; counters get `_total`).
    pub fn register(&self, registry: &mut Registry) {
        let families = self.clone();
        registry.register(
            "strategy_calls",
            "Strategy calls by outcome (ok, rejected, errors, each limit hit, trap)",
            families.calls,
        );
        registry.register(
            "strategy_call_duration_seconds",
            "Wall time of one sandboxed call (fresh instance included)",
            families.latency,
        );
        registry.register(
            "strategy_cpu_budget_used_ratio",
            "Share of the CPU budget (limits.cpu_ms) a call used",
            families.budget,
        );
        registry.register("strategy_calls_in_flight", "Calls running in the sandbox now", families.in_flight);
        registry.register(
            "strategy_http_requests",
            "Strategies' outbound HTTP requests by outcome (answered, refused, each cap hit)",
            families.http,
        );
        registry.register(
            "strategy_log_lines_dropped",
            "Log lines dropped by the per-call cap",
            families.dropped_log_lines,
        );
        registry.register(
            "strategy_forced_deletes",
            "Users deleted although the strategy failed to delete their credentials",
            families.forced_deletes,
        );
    }

    /// The handles of strategy `name`, created in every family (so each shows, at zero).
    pub fn of(&self, name: &str) -> StrategyMetrics {
        let of = Of { strategy: name.to_string() };
        let with = |family: &Family<OfOutcome, Counter>, outcome: &str| {
            family.get_or_create(&OfOutcome { strategy: name.to_string(), outcome: outcome.to_string() }).clone()
        };
        StrategyMetrics {
            outcomes: std::array::from_fn(|i| with(&self.calls, OUTCOMES[i].1)),
            http: std::array::from_fn(|i| with(&self.http, HTTP_OUTCOMES[i].1)),
            latency: self.latency.get_or_create(&of).clone(),
            budget: self.budget.get_or_create(&of).clone(),
            in_flight: self.in_flight.get_or_create(&of).clone(),
            dropped_log_lines: self.dropped_log_lines.get_or_create(&of).clone(),
            forced_deletes: self.forced_deletes.get_or_create(&of).clone(),
            timed_calls: AtomicU64::new(0),
        }
    }
}

/// One strategy's handles into the families.
pub struct StrategyMetrics {
    outcomes: [Counter; OUTCOMES.len()],
    http: [Counter; HTTP_OUTCOMES.len()],
    latency: Histogram,
    budget: Histogram,
    in_flight: Gauge,
    dropped_log_lines: Counter,
    forced_deletes: Counter,
    /// Calls timed (the histogram's count, which it does not expose), for the info action.
    timed_calls: AtomicU64,
}

impl StrategyMetrics {
    pub fn record(&self, outcome: Outcome, elapsed: Option<Duration>, budget_used: Option<f64>) {
        let i = OUTCOMES.iter().position(|(o, _)| *o == outcome).expect("every outcome is listed");
        self.outcomes[i].inc();
        if let Some(d) = elapsed {
            self.latency.observe(d.as_secs_f64());
            self.timed_calls.fetch_add(1, Relaxed);
        }
        if let Some(used) = budget_used {
            self.budget.observe(used);
        }
    }

    pub fn http(&self, outcome: HttpOutcome) {
        let i = HTTP_OUTCOMES.iter().position(|(o, _)| *o == outcome).expect("every outcome is listed");
        self.http[i].inc();
    }

    pub fn http_count(&self, outcome: HttpOutcome) -> u64 {
        let i = HTTP_OUTCOMES.iter().position(|(o, _)| *o == outcome).expect("listed");
        self.http[i].get()
    }

    pub fn dropped_log_lines(&self, n: u32) {
        self.dropped_log_lines.inc_by(n as u64);
    }

    pub fn call_started(&self) {
        self.in_flight.inc();
    }

    pub fn call_ended(&self) {
        self.in_flight.dec();
    }

    /// A user was deleted although this strategy failed to delete their credentials.
    pub fn forced_delete(&self) {
        self.forced_deletes.inc();
    }

    pub fn count(&self, outcome: Outcome) -> u64 {
        let i = OUTCOMES.iter().position(|(o, _)| *o == outcome).expect("listed");
        self.outcomes[i].get()
    }

    /// `{outcome: count}` for the strategy info action.
    pub fn counters(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (i, (_, label)) in OUTCOMES.iter().enumerate() {
            map.insert(label.to_string(), self.outcomes[i].get().into());
        }
        map.insert("calls".into(), self.timed_calls.load(Relaxed).into());
        map.insert("forcedDeletes".into(), self.forced_deletes.get().into());
        let http: serde_json::Map<String, serde_json::Value> =
            HTTP_OUTCOMES.iter().enumerate().map(|(i, (_, l))| (l.to_string(), self.http[i].get().into())).collect();
        map.insert("http".into(), serde_json::Value::Object(http));
        serde_json::Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_render_cumulative() {
        let families = Families::default();
        let mut registry = Registry::with_prefix("sandgate");
        families.register(&mut registry);
        let m = families.of("s");
        for secs in [0.000_01, 0.000_3, 0.000_3, 0.2] {
            m.record(Outcome::Ok, Some(Duration::from_secs_f64(secs)), Some(0.5));
        }
        m.record(Outcome::Cpu, None, None);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let line = |le: &str| format!("sandgate_strategy_call_duration_seconds_bucket{{le=\"{le}\",strategy=\"s\"}}");
        assert!(text.contains(&format!("{} 1\n", line("0.000025"))), "{text}");
        assert!(text.contains(&format!("{} 3\n", line("0.0005"))), "{text}");
        assert!(text.contains(&format!("{} 3\n", line("0.1"))), "0.2 s is above every bound: {text}");
        assert!(text.contains(&format!("{} 4\n", line("+Inf"))), "{text}");
        assert!(text.contains("sandgate_strategy_calls_total{strategy=\"s\",outcome=\"limit_cpu\"} 1"), "{text}");
        assert_eq!(m.count(Outcome::Ok), 4);
        assert_eq!(m.counters()["calls"], 4);
    }
}
