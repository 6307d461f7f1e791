//! Prometheus metrics, served at `/metrics` in OpenMetrics or in the Prometheus text
//! format, whichever the scraper asks for ([`Exposition::negotiate`]). The registry is a
//! value owned by the server (no global recorder), so several servers in one test process
//! keep separate counts.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route pattern (`/admin/v1/apps/{client_id}`), never the raw path.
    pub route: String,
    /// The method's name; `other` for an extension method (a fixed set of values).
    pub method: &'static str,
    /// `2xx`, `4xx`, …
    pub outcome: &'static str,
}

/// `method` as a label value without allocating: the standard methods by name, any
/// extension method as `other` (a client must not be able to mint label values).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method as M;
    match *method {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::PATCH => "PATCH",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        M::CONNECT => "CONNECT",
        M::TRACE => "TRACE",
        _ => "other",
    }
}

fn outcome_label(status: axum::http::StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrantLabels {
    pub grant: String,
    pub outcome: String,
}

/// A gateway decision: `allow` or `deny`, and the catalogue code (`none` when allowed).
/// Static strings, so counting allocates nothing on the hot path.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub outcome: &'static str,
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// `queue_full` (the failed-authentication queue was full) or `store_error`.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `hit` or `miss`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
    pub commit: &'static str,
}

type HistogramFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    latency: HistogramFamily,
    pub grants: Family<GrantLabels, Counter>,
    pub view_apps: Gauge,
    pub view_orgs: Gauge,
    /// 1 while the store answers, 0 while this node serves from its last view.
    pub store_up: Gauge,
    decisions: Family<DecisionLabels, Counter>,
    decision_latency: Histogram,
    token_cache: Family<CacheLabels, Counter>,
    audit_dropped: Family<DropLabels, Counter>,
    usage_flush_failures: Counter,
    usage_folded: Counter,
}

fn latency_histogram() -> Histogram {
    // 50 µs … ~1.6 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl Metrics {
    pub fn new() -> Self {
        // The root holds the unprefixed standard series (`process_*`); everything of
        // Portcullis's own is `portcullis_*`.
        let mut root = Registry::default();
        root.register_collector(Box::new(crate::process_metrics::ProcessCollector));
        let registry = root.sub_registry_with_prefix("portcullis");
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                commit: env!("PORTCULLIS_BUILD_COMMIT"),
            })
            .set(1);
        registry.register(
            "build_info",
            "Always 1: the version and the commit this server was built from",
            build_info,
        );
        let requests = Family::<HttpLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let grants = Family::<GrantLabels, Counter>::default();
        let view_apps = Gauge::default();
        let view_orgs = Gauge::default();
        let store_up = Gauge::default();
        store_up.set(1);
        registry.register(
            "store_up",
            "1 while the store answers; 0 while this node serves decisions from its last view",
            store_up.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route and outcome",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and outcome",
            latency.clone(),
        );
        registry.register(
            "token_grants",
            "Token requests by grant and outcome",
            grants.clone(),
        );
        registry.register(
            "view_apps",
            "Applications in the in-memory view",
            view_apps.clone(),
        );
        registry.register(
            "view_orgs",
            "Organizations in the in-memory view",
            view_orgs.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        // 1 µs … ~1 s: the decision itself, without HTTP.
        let decision_latency = Histogram::new(exponential_buckets(0.000_001, 2.0, 20));
        let token_cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "gateway_decisions",
            "Gateway decisions by outcome and catalogue code",
            decisions.clone(),
        );
        registry.register(
            "gateway_decision_duration_seconds",
            "Time to take one gateway decision (limits, decision, quota), without HTTP",
            decision_latency.clone(),
        );
        registry.register(
            "gateway_token_cache",
            "Verified-token cache lookups by result (hit: the signature check was skipped)",
            token_cache.clone(),
        );
        let audit_dropped = Family::<DropLabels, Counter>::default();
        registry.register(
            "audit_dropped",
            "Audit entries lost: the failed-authentication queue was full, or the store refused the write",
            audit_dropped.clone(),
        );
        // Usage analytics' own health, without a label per app: the counts themselves are
        // read through the admin API.
        let usage_flush_failures = Counter::default();
        registry.register(
            "usage_flush_failures",
            "Usage-count flushes the store refused (the counts are kept for the next flush)",
            usage_flush_failures.clone(),
        );
        let usage_folded = Counter::default();
        registry.register(
            "usage_folded",
            "Requests counted without their app and resource because the usage counter was full",
            usage_folded.clone(),
        );
        Self {
            usage_flush_failures,
            usage_folded,
            audit_dropped,
            registry: root,
            requests,
            latency,
            grants,
            view_apps,
            view_orgs,
            store_up,
            decisions,
            decision_latency,
            token_cache,
        }
    }

    /// Every series, in `format`.
    pub fn encode(&self, format: Exposition) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = match format {
            Exposition::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.registry)
            }
            Exposition::Text => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            }
        };
        out
    }

    pub fn grant(&self, grant: &str, ok: bool) {
        self.grants
            .get_or_create(&GrantLabels {
                grant: grant.to_owned(),
                outcome: if ok { "issued" } else { "refused" }.to_owned(),
            })
            .inc();
    }
}

impl Metrics {
    /// Count and time one gateway decision.
    pub fn decision(
        &self,
        result: &Result<portcullis_core::gateway::Allow, portcullis_core::gateway::Denial>,
        took: std::time::Duration,
    ) {
        let labels = match result {
            Ok(_) => DecisionLabels {
                outcome: "allow",
                code: "none",
            },
            Err(d) => DecisionLabels {
                outcome: "deny",
                code: d.code.code(),
            },
        };
        self.decisions.get_or_create(&labels).inc();
        self.decision_latency.observe(took.as_secs_f64());
    }

    pub fn audit_dropped(&self, reason: &'static str, n: u64) {
        self.audit_dropped
            .get_or_create(&DropLabels { reason })
            .inc_by(n);
    }

    pub fn usage_flush_failed(&self) {
        self.usage_flush_failures.inc();
    }

    pub fn usage_folded(&self, n: u64) {
        self.usage_folded.inc_by(n);
    }

    pub fn token_cache(&self, hit: bool) {
        self.token_cache
            .get_or_create(&CacheLabels {
                result: if hit { "hit" } else { "miss" },
            })
            .inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`track`] needs: the metrics, and whether to write the access log.
#[derive(Clone)]
pub struct Tracking {
    metrics: std::sync::Arc<Metrics>,
    access_log: bool,
}

impl Tracking {
    pub fn new(metrics: std::sync::Arc<Metrics>, access_log: bool) -> Self {
        Self {
            metrics,
            access_log,
        }
    }
}

/// The two formats `/metrics` writes. Both carry the same series with the same names and
/// values; they differ in how a counter's family is named (`# TYPE x counter` in
/// OpenMetrics, `# TYPE x_total counter` in the text format), how a bucket's bound is
/// written, and OpenMetrics's closing `# EOF`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exposition {
    /// OpenMetrics 1.0.0.
    OpenMetrics,
    /// The Prometheus text exposition format 0.0.4.
    Text,
}

impl Exposition {
    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Exposition::Text => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }

    /// The format for a request's `Accept` header (RFC 9110, section 12.5.1): each format
    /// takes the weight (`q`) of the most specific range that names it, and the heavier
    /// one wins. A range with a `version` parameter names a format only at the version
    /// written here (OpenMetrics 1.0.0, text 0.0.4); other parameters (`charset`,
    /// `escaping`) do not change the choice, since every name is plain ASCII.
    ///
    /// The text format is the default: it is what a scraper gets without an `Accept`
    /// header, with `*/*`, with an equal weight for both through wildcards, and when it
    /// accepts neither format (rather than a 406, which would only leave it with no
    /// metrics). Every Prometheus-compatible scraper reads the text format, and
    /// Prometheus's own client libraries answer the same way; OpenMetrics goes to
    /// scrapers that name it, as Prometheus does by default.
    ///
    /// `accept` is the header's value (several headers joined with commas; empty when
    /// there is none).
    pub fn negotiate(accept: &str) -> Exposition {
        let openmetrics = preference(accept, "application", "openmetrics-text", "1.0.0");
        let text = preference(accept, "text", "plain", "0.0.4");
        let weight = |m: Option<Preference>| m.map_or(0, |m| m.q);
        // A tie goes to OpenMetrics only when the scraper named it.
        let named = openmetrics.is_some_and(|m| m.specificity >= 2);
        let (om, txt) = (weight(openmetrics), weight(text));
        if om > txt || (om > 0 && om == txt && named) {
            Exposition::OpenMetrics
        } else {
            Exposition::Text
        }
    }
}

/// How an `Accept` header ranks one media type: the weight in thousandths, and how
/// specific the range was that gave it (0 `*/*`, 1 `type/*`, 2 `type/subtype`, 3 with a
/// matching `version`).
#[derive(Clone, Copy, Debug)]
struct Preference {
    specificity: u8,
    q: u16,
}

fn preference(accept: &str, ty: &str, subty: &str, version: &str) -> Option<Preference> {
    use mediatype::{MediaTypeList, Name, ReadParams, names};
    let version_name = Name::new("version")?;
    let mut best: Option<Preference> = None;
    // A range that does not parse is left out, as is one with an invalid weight.
    for range in MediaTypeList::new(accept).filter_map(Result::ok) {
        let specificity = if range.ty == names::_STAR {
            if range.subty != names::_STAR {
                continue;
            }
            0
        } else if range.ty != ty {
            continue;
        } else if range.subty == names::_STAR {
            1
        } else if range.subty != subty || range.suffix.is_some() {
            continue;
        } else {
            match range.get_param(version_name) {
                None => 2,
                Some(v) if v.unquoted_str() == version => 3,
                Some(_) => continue,
            }
        };
        let q = match range.get_param(names::Q) {
            None => 1000,
            Some(v) => match qvalue(&v.unquoted_str()) {
                Some(q) => q,
                None => continue,
            },
        };
        let found = Preference { specificity, q };
        if best.is_none_or(|b| (found.specificity, found.q) > (b.specificity, b.q)) {
            best = Some(found);
        }
    }
    best
}

/// A weight (`0`, `0.5`, `1.000`, at most three decimals, never above 1) in thousandths.
fn qvalue(s: &str) -> Option<u16> {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Middleware: count and time every request by route pattern and status class.
pub async fn track(State(state): State<Tracking>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let res = next.run(req).await;
    let labels = HttpLabels {
        route,
        method,
        outcome: outcome_label(res.status()),
    };
    let elapsed = start.elapsed();
    state.metrics.requests.get_or_create(&labels).inc();
    state
        .metrics
        .latency
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
    if state.access_log {
        crate::access_log::record(&labels.route, method, &res, elapsed);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_follows_the_accept_header() {
        use Exposition::{OpenMetrics, Text};
        let cases = [
            ("", Text),
            ("*/*", Text),
            ("text/plain", Text),
            ("text/plain;version=0.0.4", Text),
            ("text/plain; version=0.0.4; charset=utf-8", Text),
            ("application/json", Text),
            ("application/openmetrics-text", OpenMetrics),
            ("Application/OpenMetrics-Text; Version=1.0.0", OpenMetrics),
            (
                "application/openmetrics-text;version=\"1.0.0\"",
                OpenMetrics,
            ),
            // A version this server does not write is not OpenMetrics as it writes it.
            ("application/openmetrics-text;version=0.0.1", Text),
            ("application/openmetrics-text;version=2.0.0", Text),
            ("application/openmetrics-text;q=0", Text),
            ("application/openmetrics-text;q=0.000, */*", Text),
            // Weights decide, whatever the order.
            (
                "text/plain;q=0.5, application/openmetrics-text;q=0.6",
                OpenMetrics,
            ),
            ("application/openmetrics-text;q=0.4, text/plain;q=0.5", Text),
            ("application/openmetrics-text;q=0.9, */*", Text),
            // An invalid weight drops its range.
            ("application/openmetrics-text;q=1.5, text/plain;q=0.1", Text),
            ("application/openmetrics-text;q=abc", Text),
            // The most specific range wins, even with a lower weight.
            (
                "application/openmetrics-text;version=1.0.0;q=0.3, application/*;q=0.9, text/plain;q=0.5",
                Text,
            ),
            ("application/*;q=0.9, text/plain;q=0.5", OpenMetrics),
            // A tie: OpenMetrics when named, the text format through wildcards.
            ("application/openmetrics-text, text/plain", OpenMetrics),
            ("text/plain, application/openmetrics-text", OpenMetrics),
            ("application/*, text/*", Text),
            // Prometheus 2 by default.
            (
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                OpenMetrics,
            ),
            // Prometheus 3 by default.
            (
                "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
                OpenMetrics,
            ),
            // Prometheus told to scrape the text format only.
            ("text/plain;version=0.0.4;q=0.5,*/*;q=0.1", Text),
            // A range that does not parse is skipped, not fatal.
            ("garbage, application/openmetrics-text", OpenMetrics),
        ];
        for (accept, want) in cases {
            assert_eq!(Exposition::negotiate(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn weights_parse_as_rfc_9110_writes_them() {
        assert_eq!(qvalue("0"), Some(0));
        assert_eq!(qvalue("0.5"), Some(500));
        assert_eq!(qvalue("0.125"), Some(125));
        assert_eq!(qvalue("1"), Some(1000));
        assert_eq!(qvalue("1.000"), Some(1000));
        assert_eq!(qvalue("1.001"), None);
        assert_eq!(qvalue("0.1234"), None);
        assert_eq!(qvalue("2"), None);
        assert_eq!(qvalue("-0"), None);
        assert_eq!(qvalue(".5"), None);
        assert_eq!(qvalue("0.+5"), None);
    }

    #[test]
    fn label_values_come_from_a_fixed_set() {
        let custom = axum::http::Method::from_bytes(b"X-ANYTHING-A-CLIENT-SENDS").unwrap();
        assert_eq!(method_label(&custom), "other");
        assert_eq!(method_label(&axum::http::Method::PATCH), "PATCH");
        let status = |n| axum::http::StatusCode::from_u16(n).unwrap();
        assert_eq!(outcome_label(status(204)), "2xx");
        assert_eq!(outcome_label(status(431)), "4xx");
        assert_eq!(outcome_label(status(599)), "5xx");
    }
}
