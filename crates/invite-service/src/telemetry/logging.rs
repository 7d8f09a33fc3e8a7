use clock::SharedClock;
use tracing_subscriber::{fmt::format::Writer, fmt::time::FormatTime, EnvFilter};

/// Log timestamps come from the service clock, like every other time the service writes.
struct ClockTime(SharedClock);

impl FormatTime for ClockTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", self.0.now().format("%Y-%m-%dT%H:%M:%S%.6fZ"))
    }
}

/// Installs the JSON logger. A second call (tests start several apps in one process) is a no-op.
pub fn init_logging(filter: &str, clock: SharedClock) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_timer(ClockTime(clock))
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .try_init();
}
