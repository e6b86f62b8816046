//! Fault ops as data: what to do, to whom, and how to undo it.
//!
//! A [`FaultOp`] is recorded in the history as a `nemesis` `info` op whose
//! `f` is [`FaultOp::f`] and whose `value` is [`FaultOp::value`]. Faults come
//! in fixed verb pairs ([`FaultOp::undo`]): partition/heal, kill/start,
//! pause/resume, clock/reset, crash/start, slow/fast, flaky/fast.
//!
//! # Serialized form
//! Adjacently tagged with the history names: `{"f": "partition", "value":
//! {"n1": ["n2"]}}`, `{"f": "kill", "value": ["n1"]}`, `{"f": "clock",
//! "value": {"offsets_ms": {"n1": -250}}}`, `{"f": "slow", "value":
//! {"delay_ms": 50, "jitter_ms": 10}}`, `{"f": "heal"}`.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::grudge::{majority, Grudge, Node};

/// Which nodes a process fault (kill, pause, crash, clock) hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// One random node.
    One,
    /// The current primary (one random node when none is known).
    Primary,
    /// A random minority: `majority(n) - 1` nodes (at least one).
    Minority,
    /// A random majority: `majority(n)` nodes.
    Majority,
    /// Every node.
    All,
}

impl Target {
    /// The nodes hit now, in the order of `nodes`. `primary` is used only by
    /// [`Target::Primary`]; when it is `None` or not one of `nodes`, a random
    /// node is picked instead.
    pub fn pick<R: Rng + ?Sized>(
        self,
        nodes: &[Node],
        primary: Option<&str>,
        rng: &mut R,
    ) -> Vec<Node> {
        let count = match self {
            Target::All => return nodes.to_vec(),
            Target::Primary => {
                if let Some(primary) = primary.filter(|p| nodes.iter().any(|n| n == p)) {
                    return vec![primary.to_string()];
                }
                tracing::warn!("no known primary; picking a random node instead");
                1
            }
            Target::One => 1,
            Target::Minority => (majority(nodes.len()) - 1).max(1),
            Target::Majority => majority(nodes.len()),
        };
        let chosen: Vec<&Node> = nodes.choose_multiple(rng, count.min(nodes.len())).collect();
        nodes
            .iter()
            .filter(|n| chosen.contains(n))
            .cloned()
            .collect()
    }
}

/// One nemesis action, as data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "f", content = "value", rename_all = "kebab-case")]
pub enum FaultOp {
    /// Replace any partition in force with this grudge.
    Partition(Grudge),
    /// Remove every partition.
    Heal,
    /// SIGKILL these nodes.
    Kill(Vec<Node>),
    /// Start these nodes again on their data directories.
    Start(Vec<Node>),
    /// SIGSTOP these nodes.
    Pause(Vec<Node>),
    /// SIGCONT these nodes.
    Resume(Vec<Node>),
    /// Shift each node's clock by the given offset in milliseconds.
    Clock {
        /// Node → clock offset in ms (negative = behind).
        offsets_ms: BTreeMap<Node, i64>,
    },
    /// Put every clock back.
    #[serde(rename = "reset")]
    ResetClock,
    /// Crash these nodes (they lose what they have not fsynced).
    Crash(Vec<Node>),
    /// Delay every node-to-node link by `delay` ± `jitter`.
    Slow {
        /// The mean added latency.
        #[serde(rename = "delay_ms", with = "millis")]
        delay: Duration,
        /// The spread around it.
        #[serde(rename = "jitter_ms", with = "millis")]
        jitter: Duration,
    },
    /// Stall or reset about `loss` (0..1) of node-to-node connections.
    Flaky {
        /// The fraction of connections hit.
        loss: f64,
    },
    /// Undo slow and flaky.
    Fast,
}

impl FaultOp {
    /// The history `f` of this op.
    pub fn f(&self) -> &'static str {
        match self {
            FaultOp::Partition(_) => "partition",
            FaultOp::Heal => "heal",
            FaultOp::Kill(_) => "kill",
            FaultOp::Start(_) => "start",
            FaultOp::Pause(_) => "pause",
            FaultOp::Resume(_) => "resume",
            FaultOp::Clock { .. } => "clock",
            FaultOp::ResetClock => "reset",
            FaultOp::Crash(_) => "crash",
            FaultOp::Slow { .. } => "slow",
            FaultOp::Flaky { .. } => "flaky",
            FaultOp::Fast => "fast",
        }
    }

    /// The op that undoes this one, or `None` when this op is itself an undo.
    pub fn undo(&self) -> Option<FaultOp> {
        match self {
            FaultOp::Partition(_) => Some(FaultOp::Heal),
            FaultOp::Kill(nodes) | FaultOp::Crash(nodes) => Some(FaultOp::Start(nodes.clone())),
            FaultOp::Pause(nodes) => Some(FaultOp::Resume(nodes.clone())),
            FaultOp::Clock { .. } => Some(FaultOp::ResetClock),
            FaultOp::Slow { .. } | FaultOp::Flaky { .. } => Some(FaultOp::Fast),
            FaultOp::Heal
            | FaultOp::Start(_)
            | FaultOp::Resume(_)
            | FaultOp::ResetClock
            | FaultOp::Fast => None,
        }
    }

    /// The history `value`: the grudge, the target nodes, the clock offsets
    /// or the link parameters; `null` for the undo verbs without nodes.
    pub fn value(&self) -> Value {
        match self {
            FaultOp::Partition(grudge) => json!(grudge),
            FaultOp::Kill(nodes)
            | FaultOp::Start(nodes)
            | FaultOp::Pause(nodes)
            | FaultOp::Resume(nodes)
            | FaultOp::Crash(nodes) => json!(nodes),
            FaultOp::Clock { offsets_ms } => json!({ "offsets_ms": offsets_ms }),
            FaultOp::Slow { delay, jitter } => json!({
                "delay_ms": millis::to_ms(*delay),
                "jitter_ms": millis::to_ms(*jitter),
            }),
            FaultOp::Flaky { loss } => json!({ "loss": loss }),
            FaultOp::Heal | FaultOp::ResetClock | FaultOp::Fast => Value::Null,
        }
    }

    /// True for the network faults a [`crate::net::Net`] applies.
    pub fn is_network(&self) -> bool {
        matches!(
            self,
            FaultOp::Partition(_)
                | FaultOp::Heal
                | FaultOp::Slow { .. }
                | FaultOp::Flaky { .. }
                | FaultOp::Fast
        )
    }
}

/// Durations as whole milliseconds in JSON.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn to_ms(d: Duration) -> u64 {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(to_ms(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grudge::isolate;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn nodes(n: usize) -> Vec<Node> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn every_op() -> Vec<FaultOp> {
        vec![
            FaultOp::Partition(isolate(&nodes(3), "n1")),
            FaultOp::Heal,
            FaultOp::Kill(vec!["n1".into()]),
            FaultOp::Start(vec!["n1".into()]),
            FaultOp::Pause(vec!["n2".into()]),
            FaultOp::Resume(vec!["n2".into()]),
            FaultOp::Clock {
                offsets_ms: BTreeMap::from([("n1".into(), -250)]),
            },
            FaultOp::ResetClock,
            FaultOp::Crash(vec!["n3".into()]),
            FaultOp::Slow {
                delay: Duration::from_millis(50),
                jitter: Duration::from_millis(10),
            },
            FaultOp::Flaky { loss: 0.25 },
            FaultOp::Fast,
        ]
    }

    #[test]
    fn serialized_tag_is_the_history_f_and_content_is_the_value() {
        for op in every_op() {
            let json = serde_json::to_value(&op).unwrap();
            assert_eq!(json["f"], op.f(), "{json}");
            let content = json.get("value").cloned().unwrap_or(Value::Null);
            assert_eq!(content, op.value(), "{op:?}");
            assert_eq!(serde_json::from_value::<FaultOp>(json).unwrap(), op);
        }
    }

    #[test]
    fn faults_come_in_fixed_pairs() {
        let pairs: Vec<(&str, Option<&str>)> = every_op()
            .iter()
            .map(|op| (op.f(), op.undo().map(|u| u.f())))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("partition", Some("heal")),
                ("heal", None),
                ("kill", Some("start")),
                ("start", None),
                ("pause", Some("resume")),
                ("resume", None),
                ("clock", Some("reset")),
                ("reset", None),
                ("crash", Some("start")),
                ("slow", Some("fast")),
                ("flaky", Some("fast")),
                ("fast", None),
            ]
        );
        assert_eq!(
            FaultOp::Kill(vec!["n1".into()]).undo(),
            Some(FaultOp::Start(vec!["n1".into()]))
        );
        assert_eq!(
            FaultOp::Pause(vec!["n2".into()]).undo(),
            Some(FaultOp::Resume(vec!["n2".into()]))
        );
    }

    #[test]
    fn targets_pick_the_right_number_of_distinct_nodes() {
        for n in [1, 3, 5, 7] {
            let nodes = nodes(n);
            for seed in 0..50 {
                let mut rng = StdRng::seed_from_u64(seed);
                let sizes = [
                    (Target::One, 1),
                    (Target::Minority, (majority(n) - 1).max(1)),
                    (Target::Majority, majority(n)),
                    (Target::All, n),
                ];
                for (target, size) in sizes {
                    let picked = target.pick(&nodes, None, &mut rng);
                    assert_eq!(picked.len(), size.min(n), "{target:?} on {n}");
                    let mut sorted = picked.clone();
                    sorted.dedup();
                    assert_eq!(sorted, picked);
                    assert!(picked.iter().all(|p| nodes.contains(p)));
                }
            }
        }
    }

    #[test]
    fn primary_target_is_the_primary_when_known() {
        let nodes = nodes(5);
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(
            Target::Primary.pick(&nodes, Some("n3"), &mut rng),
            vec!["n3".to_string()]
        );
        assert_eq!(Target::Primary.pick(&nodes, None, &mut rng).len(), 1);
        assert_eq!(
            serde_json::to_string(&Target::Minority).unwrap(),
            "\"minority\""
        );
    }
}
