//! Fault ops: what the nemesis did, as recorded in the history.
//!
//! A [`FaultOp`] is the `info` completion of a `nemesis` op: its `f` is
//! [`FaultOp::f`] and its `value` is [`FaultOp::value`], exactly the op's
//! serialized form split in two. Each op undoes or is undone as its verb
//! says ([`Verb::undo`]).
//!
//! # Serialized form
//! Adjacently tagged with the history names: `{"f": "partition", "value":
//! {"n1": ["n2"]}}`, `{"f": "kill", "value": ["n1"]}`, `{"f": "clock",
//! "value": {"offsets_ms": {"n1": -250}}}`, `{"f": "slow", "value":
//! {"delay_ms": 50, "jitter_ms": 25, "links": [["n1", "n2"]]}}`, `{"f":
//! "flaky", "value": {"links": [["n1", "n2"]], "loss": 0.3}}`, `{"f":
//! "heal"}`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::grudge::{Grudge, Node};
use crate::verb::Verb;

/// Directed node-to-node links, `(from, to)`: the connections `from` opens
/// to `to`.
pub type Links = BTreeSet<(Node, Node)>;

/// One nemesis op as applied, as data.
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
    /// Delay these links by `delay` ± `jitter` (every link where the
    /// backend cannot choose).
    Slow {
        /// The mean added latency.
        #[serde(rename = "delay_ms", with = "millis")]
        delay: Duration,
        /// The spread around it.
        #[serde(rename = "jitter_ms", with = "millis")]
        jitter: Duration,
        /// The links slowed.
        #[serde(default)]
        links: Links,
    },
    /// Stall or reset about `loss` (0..1) of the connections on these links
    /// (every link where the backend cannot choose).
    Flaky {
        /// The links hit. (Fields in name order, as the history has always
        /// written them.)
        #[serde(default)]
        links: Links,
        /// The fraction of connections hit.
        loss: f64,
    },
    /// Undo slow and flaky.
    Fast,
}

impl FaultOp {
    /// Its verb.
    pub fn verb(&self) -> Verb {
        match self {
            FaultOp::Partition(_) => Verb::Partition,
            FaultOp::Heal => Verb::Heal,
            FaultOp::Kill(_) => Verb::Kill,
            FaultOp::Start(_) => Verb::Start,
            FaultOp::Pause(_) => Verb::Pause,
            FaultOp::Resume(_) => Verb::Resume,
            FaultOp::Clock { .. } => Verb::Clock,
            FaultOp::ResetClock => Verb::Reset,
            FaultOp::Crash(_) => Verb::Crash,
            FaultOp::Slow { .. } => Verb::Slow,
            FaultOp::Flaky { .. } => Verb::Flaky,
            FaultOp::Fast => Verb::Fast,
        }
    }

    /// The history `f` of this op.
    pub fn f(&self) -> &'static str {
        self.verb().name()
    }

    /// The op that undoes this one ([`Verb::undo`]; a start or resume of the
    /// same nodes), or `None` when this op is itself an undo.
    pub fn undo(&self) -> Option<FaultOp> {
        let nodes = || self.nodes().to_vec();
        Some(match self.verb().undo()? {
            Verb::Heal => FaultOp::Heal,
            Verb::Start => FaultOp::Start(nodes()),
            Verb::Resume => FaultOp::Resume(nodes()),
            Verb::Reset => FaultOp::ResetClock,
            Verb::Fast => FaultOp::Fast,
            // `Verb::undo` names undo verbs only.
            Verb::Partition
            | Verb::Kill
            | Verb::Pause
            | Verb::Clock
            | Verb::Crash
            | Verb::Slow
            | Verb::Flaky => return None,
        })
    }

    /// The nodes a process op names (empty for the others).
    pub fn nodes(&self) -> &[Node] {
        match self {
            FaultOp::Kill(nodes)
            | FaultOp::Start(nodes)
            | FaultOp::Pause(nodes)
            | FaultOp::Resume(nodes)
            | FaultOp::Crash(nodes) => nodes,
            _ => &[],
        }
    }

    /// The history `value`: the grudge, the target nodes, the clock offsets
    /// or the link parameters; `null` for the undo verbs without nodes.
    pub fn value(&self) -> Value {
        crate::history::value_of(self)
    }

    /// The op recorded as `f` and `value` in a history (an error when the
    /// value is not what `f` applies, e.g. a failed action's request).
    pub fn from_history(f: &str, value: &Value) -> Result<FaultOp, serde_json::Error> {
        crate::history::from_parts(f, value)
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

    fn to_ms(d: Duration) -> u64 {
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

    fn nodes(n: usize) -> Vec<Node> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn links() -> Links {
        Links::from([("n1".into(), "n2".into()), ("n2".into(), "n1".into())])
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
                jitter: Duration::from_millis(25),
                links: links(),
            },
            FaultOp::Flaky {
                loss: 0.3,
                links: links(),
            },
            FaultOp::Fast,
        ]
    }

    /// The `f` and `value` every op has always been recorded with, written
    /// by hand from the histories before slow and flaky became typed (they
    /// were `json!` values in the harness).
    const RECORDED: [(&str, &str); 12] = [
        ("partition", r#"{"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]}"#),
        ("heal", "null"),
        ("kill", r#"["n1"]"#),
        ("start", r#"["n1"]"#),
        ("pause", r#"["n2"]"#),
        ("resume", r#"["n2"]"#),
        ("clock", r#"{"offsets_ms":{"n1":-250}}"#),
        ("reset", "null"),
        ("crash", r#"["n3"]"#),
        (
            "slow",
            r#"{"delay_ms":50,"jitter_ms":25,"links":[["n1","n2"],["n2","n1"]]}"#,
        ),
        ("flaky", r#"{"links":[["n1","n2"],["n2","n1"]],"loss":0.3}"#),
        ("fast", "null"),
    ];

    #[test]
    fn every_op_is_recorded_with_the_f_and_value_histories_have_always_had() {
        for (op, (f, value)) in every_op().into_iter().zip(RECORDED) {
            assert_eq!(op.f(), f);
            assert_eq!(serde_json::to_string(&op.value()).unwrap(), value, "{op:?}");
            let back = FaultOp::from_history(f, &serde_json::from_str(value).unwrap());
            assert_eq!(back.unwrap(), op);
        }
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
    fn a_failed_actions_request_is_no_fault_op() {
        assert!(FaultOp::from_history("kill", &Value::from("random")).is_err());
        assert!(FaultOp::from_history("nap", &Value::Null).is_err());
    }
}
