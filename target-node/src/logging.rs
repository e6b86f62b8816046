//! Log lines on stderr: `<time> <level> <node> <role> t<term> <message>`.
//! Role and term are published by the driver after every step.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::api::Role;

static ROLE: AtomicU8 = AtomicU8::new(1);
static TERM: AtomicU64 = AtomicU64::new(0);
static NODE_ID: OnceLock<String> = OnceLock::new();

/// Publishes the role and term shown on every log line.
pub fn set_role_and_term(role: Role, term: u64) {
    let role = match role {
        Role::Primary => 0,
        Role::Secondary => 1,
        Role::Candidate => 2,
    };
    ROLE.store(role, Ordering::Relaxed);
    TERM.store(term, Ordering::Relaxed);
}

struct NodeFormat;

impl<S, N> FormatEvent<S, N> for NodeFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        SystemTime.format_time(&mut writer)?;
        let role = ["primary", "secondary", "candidate"][ROLE.load(Ordering::Relaxed) as usize % 3];
        let id = NODE_ID.get().map_or("?", String::as_str);
        write!(
            writer,
            " {:>5} {id} {role} t{} ",
            event.metadata().level(),
            TERM.load(Ordering::Relaxed)
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Sends log lines to stderr (level from `RUST_LOG`, default `info`). Does
/// nothing if the process already has a subscriber.
pub fn init(id: &str) {
    let _ = NODE_ID.set(id.to_string());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter)
        .event_format(NodeFormat)
        .try_init();
}
