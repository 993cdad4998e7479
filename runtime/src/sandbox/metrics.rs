//! Per-strategy counters, exported in Prometheus text format by `GET /metrics`. Kept per
//! strategy name, so they survive a hot swap.

use std::fmt::Write as _;
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

struct Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    count: AtomicU64,
    /// In millionths of the unit, to keep an integer.
    sum_micro: AtomicU64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micro: AtomicU64::new(0),
        }
    }
}

impl<const N: usize> Histogram<N> {
    /// One increment on the hot path: buckets hold their own counts, made cumulative (as
    /// Prometheus wants) when rendered.
    fn observe(&self, bounds: &[f64; N], value: f64) {
        if let Some(i) = bounds.iter().position(|bound| value <= *bound) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micro.fetch_add((value * 1e6) as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, strategy: &str, bounds: &[f64; N]) {
        let mut cumulative = 0;
        for (bucket, bound) in self.buckets.iter().zip(bounds) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{strategy=\"{strategy}\",le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{strategy=\"{strategy}\",le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{strategy=\"{strategy}\"}} {}", self.sum_micro.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{{strategy=\"{strategy}\"}} {count}");
    }
}

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

#[derive(Default)]
pub struct StrategyMetrics {
    http: [AtomicU64; HTTP_OUTCOMES.len()],
    outcomes: [AtomicU64; OUTCOMES.len()],
    latency: Histogram<12>,
    budget: Histogram<7>,
    dropped_log_lines: AtomicU64,
    forced_deletes: AtomicU64,
    /// Calls running now, every registration of the name together (a gauge).
    in_flight: AtomicU64,
}

impl StrategyMetrics {
    pub fn record(&self, outcome: Outcome, elapsed: Option<Duration>, budget_used: Option<f64>) {
        let i = OUTCOMES.iter().position(|(o, _)| *o == outcome).expect("every outcome is listed");
        self.outcomes[i].fetch_add(1, Relaxed);
        if let Some(d) = elapsed {
            self.latency.observe(&LATENCY, d.as_secs_f64());
        }
        if let Some(used) = budget_used {
            self.budget.observe(&BUDGET, used);
        }
    }

    pub fn http(&self, outcome: HttpOutcome) {
        let i = HTTP_OUTCOMES.iter().position(|(o, _)| *o == outcome).expect("every outcome is listed");
        self.http[i].fetch_add(1, Relaxed);
    }

    pub fn http_count(&self, outcome: HttpOutcome) -> u64 {
        let i = HTTP_OUTCOMES.iter().position(|(o, _)| *o == outcome).expect("listed");
        self.http[i].load(Relaxed)
    }

    pub fn dropped_log_lines(&self, n: u32) {
        self.dropped_log_lines.fetch_add(n as u64, Relaxed);
    }

    pub fn call_started(&self) {
        self.in_flight.fetch_add(1, Relaxed);
    }

    pub fn call_ended(&self) {
        self.in_flight.fetch_sub(1, Relaxed);
    }

    /// A user was deleted although this strategy failed to delete their credentials.
    pub fn forced_delete(&self) {
        self.forced_deletes.fetch_add(1, Relaxed);
    }

    pub fn count(&self, outcome: Outcome) -> u64 {
        let i = OUTCOMES.iter().position(|(o, _)| *o == outcome).expect("listed");
        self.outcomes[i].load(Relaxed)
    }

    /// `{outcome: count}` for the strategy info action.
    pub fn counters(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (i, (_, label)) in OUTCOMES.iter().enumerate() {
            map.insert(label.to_string(), self.outcomes[i].load(Relaxed).into());
        }
        map.insert("calls".into(), self.latency.count.load(Relaxed).into());
        map.insert("forcedDeletes".into(), self.forced_deletes.load(Relaxed).into());
        let http: serde_json::Map<String, serde_json::Value> = HTTP_OUTCOMES
            .iter()
            .enumerate()
            .map(|(i, (_, l))| (l.to_string(), self.http[i].load(Relaxed).into()))
            .collect();
        map.insert("http".into(), serde_json::Value::Object(http));
        serde_json::Value::Object(map)
    }
}

/// Where one per-strategy counter lives.
type Counter = fn(&StrategyMetrics) -> &AtomicU64;

/// The Prometheus exposition of every strategy's metrics.
pub fn render(all: &[(String, std::sync::Arc<StrategyMetrics>)]) -> String {
    let mut out = String::new();
    out.push_str("# HELP sandgate_strategy_calls_total Strategy calls by outcome (ok, rejected, errors, each limit hit, trap).\n");
    out.push_str("# TYPE sandgate_strategy_calls_total counter\n");
    for (name, m) in all {
        for (i, (_, label)) in OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                out,
                "sandgate_strategy_calls_total{{strategy=\"{name}\",outcome=\"{label}\"}} {}",
                m.outcomes[i].load(Relaxed)
            );
        }
    }
    out.push_str(
        "# HELP sandgate_strategy_call_duration_seconds Wall time of one sandboxed call (fresh instance included).\n",
    );
    out.push_str("# TYPE sandgate_strategy_call_duration_seconds histogram\n");
    for (name, m) in all {
        m.latency.render(&mut out, "sandgate_strategy_call_duration_seconds", name, &LATENCY);
    }
    out.push_str(
        "# HELP sandgate_strategy_cpu_budget_used_ratio Share of the CPU budget (limits.cpu_ms) a call used.\n",
    );
    out.push_str("# TYPE sandgate_strategy_cpu_budget_used_ratio histogram\n");
    for (name, m) in all {
        m.budget.render(&mut out, "sandgate_strategy_cpu_budget_used_ratio", name, &BUDGET);
    }
    out.push_str("# HELP sandgate_strategy_calls_in_flight Calls running in the sandbox now.\n");
    out.push_str("# TYPE sandgate_strategy_calls_in_flight gauge\n");
    for (name, m) in all {
        let _ = writeln!(out, "sandgate_strategy_calls_in_flight{{strategy=\"{name}\"}} {}", m.in_flight.load(Relaxed));
    }
    out.push_str("# HELP sandgate_strategy_http_requests_total Strategies' outbound HTTP requests by outcome (answered, refused, each cap hit).\n");
    out.push_str("# TYPE sandgate_strategy_http_requests_total counter\n");
    for (name, m) in all {
        for (i, (_, label)) in HTTP_OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                out,
                "sandgate_strategy_http_requests_total{{strategy=\"{name}\",outcome=\"{label}\"}} {}",
                m.http[i].load(Relaxed)
            );
        }
    }
    let per_strategy: [(&str, &str, Counter); 2] = [
        (
            "sandgate_strategy_log_lines_dropped_total",
            "Log lines dropped by the per-call cap.",
            |m: &StrategyMetrics| &m.dropped_log_lines,
        ),
        (
            "sandgate_strategy_forced_deletes_total",
            "Users deleted although the strategy failed to delete their credentials.",
            |m: &StrategyMetrics| &m.forced_deletes,
        ),
    ];
    for (metric, help, counter) in per_strategy {
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} counter");
        for (name, m) in all {
            let _ = writeln!(out, "{metric}{{strategy=\"{name}\"}} {}", counter(m).load(Relaxed));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_render_cumulative() {
        let m = std::sync::Arc::new(StrategyMetrics::default());
        for secs in [0.000_01, 0.000_3, 0.000_3, 0.2] {
            m.record(Outcome::Ok, Some(Duration::from_secs_f64(secs)), Some(0.5));
        }
        m.record(Outcome::Cpu, None, None);
        let text = render(&[("s".to_string(), m.clone())]);
        let line = |le: &str| format!("sandgate_strategy_call_duration_seconds_bucket{{strategy=\"s\",le=\"{le}\"}}");
        assert!(text.contains(&format!("{} 1\n", line("0.000025"))), "{text}");
        assert!(text.contains(&format!("{} 3\n", line("0.0005"))), "{text}");
        assert!(text.contains(&format!("{} 3\n", line("0.1"))), "0.2 s is above every bound");
        assert!(text.contains(&format!("{} 4\n", line("+Inf"))));
        assert!(text.contains("sandgate_strategy_calls_total{strategy=\"s\",outcome=\"limit_cpu\"} 1"));
        assert_eq!(m.count(Outcome::Ok), 4);
    }
}
