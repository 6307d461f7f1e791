//! The standard `process_*` series of Prometheus client libraries (the names and meanings
//! of the official Go client's process collector), read from `/proc/self` at each scrape
//! with the `procfs` crate. Off Linux, or when `/proc` cannot be read, the series are left
//! out rather than reported wrong.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Registered on the metrics registry's root, so its series carry no `portcullis_` prefix.
#[derive(Debug, Default)]
pub struct ProcessCollector;

/// One reading of the process's figures; `None` where `/proc` did not say.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reading {
    pub cpu_seconds: Option<f64>,
    pub resident_memory_bytes: Option<f64>,
    pub virtual_memory_bytes: Option<f64>,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
    pub start_time_seconds: Option<f64>,
    pub threads: Option<f64>,
}

impl Reading {
    /// The figures of this process now.
    #[cfg(target_os = "linux")]
    pub fn now() -> Reading {
        use procfs::WithCurrentSystemInfo;
        let Ok(me) = procfs::process::Process::myself() else {
            return Reading::default();
        };
        let mut r = Reading::default();
        if let Ok(stat) = me.stat() {
            let ticks = procfs::ticks_per_second() as f64;
            r.cpu_seconds = Some((stat.utime + stat.stime) as f64 / ticks);
            r.resident_memory_bytes = Some(stat.rss_bytes().get() as f64);
            r.virtual_memory_bytes = Some(stat.vsize as f64);
            r.threads = Some(stat.num_threads as f64);
            if let Ok(boot) = procfs::boot_time_secs() {
                r.start_time_seconds = Some(boot as f64 + stat.starttime as f64 / ticks);
            }
        }
        r.open_fds = me.fd_count().ok().map(|n| n as f64);
        if let Ok(limits) = me.limits()
            && let procfs::process::LimitValue::Value(max) = limits.max_open_files.soft_limit
        {
            r.max_fds = Some(max as f64);
        }
        r
    }

    #[cfg(not(target_os = "linux"))]
    pub fn now() -> Reading {
        Reading::default()
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let r = Reading::now();
        if let Some(v) = r.cpu_seconds {
            let counter = ConstCounter::new(v);
            let metric = encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                counter.metric_type(),
            )?;
            counter.encode(metric)?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                r.resident_memory_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                r.virtual_memory_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                r.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                r.max_fds,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                r.start_time_seconds,
            ),
            (
                "process_threads",
                "Number of OS threads in the process.",
                r.threads,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let gauge = ConstGauge::new(v);
                let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
                gauge.encode(metric)?;
            }
        }
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_reading_of_this_process_is_plausible() {
        let r = Reading::now();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = r.start_time_seconds.expect("a start time");
        // Started before now, and not before this year.
        assert!(start <= now + 1.0 && start > 1.7e9, "{start} vs {now}");
        assert!(r.resident_memory_bytes.expect("an RSS") > 1_000_000.0);
        // stdin, stdout, stderr at least.
        assert!(r.open_fds.expect("open fds") >= 3.0);
        assert!(r.threads.expect("threads") >= 1.0);
        assert!(r.cpu_seconds.expect("cpu time") >= 0.0);
        assert!(r.max_fds.is_some());
    }
}
