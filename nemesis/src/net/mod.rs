//! Network backends: one [`Net`] trait, applied by the user-space TCP proxy
//! ([`proxy`]) or, on Linux, by kernel rules in network namespaces.
//!
//! # What "a drops traffic from b" means
//! A grudge entry `a: {b}` means bytes *travelling from b to a* are held
//! (never delivered, never refused — like `iptables -j DROP` on packets with
//! source b arriving at a). Bytes travelling a → b are untouched, so on a
//! TCP connection only one direction stalls:
//! - on a connection b opened to a (link b→a), b's requests never reach a;
//! - on a connection a opened to b (link a→b), a's requests reach b but b's
//!   responses never come back to a.
//!
//! A symmetric partition therefore lists both `a: {b}` and `b: {a}`.

use std::time::Duration;

use std::collections::BTreeSet;

use crate::grudge::{Grudge, Node};

#[cfg(all(feature = "backends", target_os = "linux"))]
pub mod netns;
#[cfg(all(feature = "backends", target_os = "linux"))]
pub mod nodes;
#[cfg(feature = "backends")]
pub mod proxy;

/// A way to cut and slow links between nodes. Every method is idempotent.
pub trait Net: Send {
    /// Replaces any partition in force with `grudge` (node → nodes whose traffic it drops).
    fn partition(&mut self, grudge: &Grudge) -> Result<(), NetError>;
    /// Removes every partition. Idempotent.
    fn heal(&mut self) -> Result<(), NetError>;
    /// Delays every node-to-node link by `delay` ± `jitter`.
    fn slow(&mut self, delay: Duration, jitter: Duration) -> Result<(), NetError>;
    /// Stalls or resets about `loss` (0..1) of node-to-node connections.
    fn flaky(&mut self, loss: f64) -> Result<(), NetError>;
    /// Delays only these directed links (`(from, to)`: the connections
    /// `from` opens to `to`, both directions of their bytes).
    fn slow_links(
        &mut self,
        _links: &BTreeSet<(Node, Node)>,
        _delay: Duration,
        _jitter: Duration,
    ) -> Result<(), NetError> {
        Err(NetError::Unsupported(
            "this backend cannot slow chosen links".into(),
        ))
    }
    /// Stalls or resets about `loss` of the connections on these links only.
    fn flaky_links(&mut self, _links: &BTreeSet<(Node, Node)>, _loss: f64) -> Result<(), NetError> {
        Err(NetError::Unsupported(
            "this backend cannot make chosen links flaky".into(),
        ))
    }
    /// Undoes slow and flaky. Idempotent.
    fn fast(&mut self) -> Result<(), NetError>;
    /// Undoes everything (heal + fast) and releases resources; also run on drop.
    fn teardown(&mut self) -> Result<(), NetError>;
}

/// Why a network backend could not apply or undo a fault.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The backend cannot do this here (missing kernel feature, tool or
    /// privilege); the message says what is missing.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An I/O error while doing `context`.
    #[error("{context}: {source}")]
    Io {
        /// What the backend was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An external command (nft, iptables, ip, ...) failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line that was run.
        command: String,
        /// Its exit status, as text.
        status: String,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// A grudge or link named a node the backend does not know.
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    /// A fault parameter is out of range (e.g. a loss outside 0..=1).
    #[error("invalid fault parameter: {0}")]
    Invalid(String),
}

impl NetError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        NetError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Undoes every network fault (heal + fast) when dropped, so an early
/// return or a panic leaves the network whole. The backend itself stays up.
#[must_use = "the network is healed as soon as the guard is dropped"]
pub struct HealGuard<'a> {
    net: &'a mut dyn Net,
}

impl<'a> HealGuard<'a> {
    /// Applies `grudge` and returns a guard that heals it on drop.
    pub fn partition(net: &'a mut dyn Net, grudge: &Grudge) -> Result<Self, NetError> {
        net.partition(grudge)?;
        Ok(HealGuard { net })
    }

    /// Guards faults the caller applies through [`HealGuard::net`].
    pub fn new(net: &'a mut dyn Net) -> Self {
        HealGuard { net }
    }

    /// The guarded backend, to apply further faults under the same guard.
    pub fn net(&mut self) -> &mut dyn Net {
        self.net
    }
}

impl Drop for HealGuard<'_> {
    fn drop(&mut self) {
        if let Err(err) = self.net.heal() {
            tracing::error!(%err, "could not heal the network");
        }
        if let Err(err) = self.net.fast() {
            tracing::error!(%err, "could not undo slow/flaky links");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Vec<&'static str>);

    impl Net for Recorder {
        fn partition(&mut self, _: &Grudge) -> Result<(), NetError> {
            self.0.push("partition");
            Ok(())
        }
        fn heal(&mut self) -> Result<(), NetError> {
            self.0.push("heal");
            Ok(())
        }
        fn slow(&mut self, _: Duration, _: Duration) -> Result<(), NetError> {
            self.0.push("slow");
            Ok(())
        }
        fn flaky(&mut self, _: f64) -> Result<(), NetError> {
            self.0.push("flaky");
            Ok(())
        }
        fn fast(&mut self) -> Result<(), NetError> {
            self.0.push("fast");
            Ok(())
        }
        fn teardown(&mut self) -> Result<(), NetError> {
            self.0.push("teardown");
            Ok(())
        }
    }

    #[test]
    fn guard_heals_on_drop_even_after_a_panic() {
        let mut net = Recorder::default();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut guard = HealGuard::partition(&mut net, &Grudge::new()).unwrap();
            guard
                .net()
                .slow(Duration::from_millis(1), Duration::ZERO)
                .unwrap();
            panic!("test body failed");
        }));
        assert!(result.is_err());
        assert_eq!(net.0, ["partition", "slow", "heal", "fast"]);
    }
}
