//! JSON logs (one object per line, for ELK) and Prometheus metrics.

mod logging;
mod metrics;

pub use logging::init_logging;
pub use metrics::Metrics;
