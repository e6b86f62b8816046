//! Actions: what the schedule asks the nemesis to do, before it is done.
//!
//! An [`Action`] is recorded as the `nemesis` `invoke` of a history; the
//! choices it leaves open (which nodes, which topology for a plain
//! `partition`, bump or strobe) are drawn when it is applied, and the
//! completion records what was done (a [`crate::FaultOp`]).
//!
//! # Serialized form
//! Adjacently tagged with the history's `f` and `value`:
//! `{"f": "partition", "value": "partition-halves"}` (`"partition"` alone is
//! a random topology), `{"f": "kill", "value": "random"}`, `{"f": "start",
//! "value": "all"}`, `{"f": "clock", "value": "random"}`, `{"f": "heal"}`
//! (a `null` value reads back as well).

use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::grudge::{majority, Node, Partition, UnknownTopology};
use crate::verb::Verb;

/// One nemesis action, as the schedule asks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "f", content = "value", rename_all = "kebab-case")]
pub enum Action {
    /// Replace any partition in force with a grudge of this shape.
    Partition(Shape),
    /// Remove every partition.
    Heal,
    /// SIGKILL the target's nodes.
    Kill(Target),
    /// Start every node that is down.
    Start(Stopped),
    /// SIGSTOP the target's nodes.
    Pause(Target),
    /// SIGCONT every paused node.
    Resume(Stopped),
    /// Skew one node's clock.
    Clock(Skew),
    /// Put every clock back.
    Reset,
    /// Crash the target's nodes.
    Crash(Target),
    /// Delay every link to and from one random node.
    Slow,
    /// Stall or reset some connections to and from one random node.
    Flaky,
    /// Undo slow and flaky.
    Fast,
}

impl Action {
    /// Its history `f`.
    pub fn verb(&self) -> Verb {
        match self {
            Action::Partition(_) => Verb::Partition,
            Action::Heal => Verb::Heal,
            Action::Kill(_) => Verb::Kill,
            Action::Start(_) => Verb::Start,
            Action::Pause(_) => Verb::Pause,
            Action::Resume(_) => Verb::Resume,
            Action::Clock(_) => Verb::Clock,
            Action::Reset => Verb::Reset,
            Action::Crash(_) => Verb::Crash,
            Action::Slow => Verb::Slow,
            Action::Flaky => Verb::Flaky,
            Action::Fast => Verb::Fast,
        }
    }

    /// The action that undoes this one ([`Verb::undo`]), or `None` when
    /// this action is itself an undo.
    pub fn undo(&self) -> Option<Action> {
        self.verb().undo().and_then(Action::of_undo)
    }

    /// The action of an undo verb (undos leave nothing to choose); `None`
    /// for the verbs that start a fault.
    pub fn of_undo(verb: Verb) -> Option<Action> {
        match verb {
            Verb::Heal => Some(Action::Heal),
            Verb::Start => Some(Action::Start(Stopped::All)),
            Verb::Resume => Some(Action::Resume(Stopped::All)),
            Verb::Reset => Some(Action::Reset),
            Verb::Fast => Some(Action::Fast),
            Verb::Partition
            | Verb::Kill
            | Verb::Pause
            | Verb::Clock
            | Verb::Crash
            | Verb::Slow
            | Verb::Flaky => None,
        }
    }

    /// The history `value` (`null` for the actions without one).
    pub fn value(&self) -> Value {
        crate::history::value_of(self)
    }

    /// The action recorded as `f` and `value` in a history.
    pub fn from_history(f: &str, value: &Value) -> Result<Action, serde_json::Error> {
        crate::history::from_parts(f, value)
    }
}

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
    /// One of [`Target::One`], [`Target::Minority`], [`Target::Majority`]
    /// and [`Target::All`], drawn each time.
    Random,
}

impl Target {
    /// The targets [`Target::Random`] draws from.
    pub const RANDOM_CHOICES: [Target; 4] =
        [Target::One, Target::Minority, Target::Majority, Target::All];

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
            Target::Random => {
                let drawn = Self::RANDOM_CHOICES[rng.gen_range(0..Self::RANDOM_CHOICES.len())];
                return drawn.pick(nodes, None, rng);
            }
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

/// The nodes an undo brings back: every node the faults stopped (`"all"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stopped {
    /// Every node still down (for start) or paused (for resume).
    All,
}

/// How a clock is skewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Skew {
    /// Shift the clock once.
    Bump,
    /// Flip between the offset and none every 100 ms until reset.
    Strobe,
    /// A bump or a strobe, drawn each time.
    Random,
}

/// The shape of a partition: a topology, or one drawn each time.
///
/// Serialized as the fault name: `"partition"` for [`Shape::Random`], the
/// topology's name (`"partition-ring"`, ...) otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// One of [`Partition::RANDOM_CHOICES`], drawn each time.
    Random,
    /// Always this topology.
    Partition(Partition),
}

impl Shape {
    /// The name of [`Shape::Random`].
    pub const RANDOM: &'static str = "partition";

    /// The topology to cut now: drawn for [`Shape::Random`].
    pub fn topology<R: Rng + ?Sized>(self, rng: &mut R) -> Partition {
        match self {
            Shape::Random => Partition::random(rng),
            Shape::Partition(topology) => topology,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Random => f.write_str(Self::RANDOM),
            Shape::Partition(topology) => topology.fmt(f),
        }
    }
}

impl FromStr for Shape {
    type Err = UnknownTopology;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if name == Self::RANDOM {
            return Ok(Shape::Random);
        }
        name.parse().map(Shape::Partition)
    }
}

impl Serialize for Shape {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn nodes(n: usize) -> Vec<Node> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn actions_serialize_as_the_recorded_invocations() {
        let cases = [
            (
                Action::Partition(Shape::Random),
                "partition",
                r#""partition""#,
            ),
            (
                Action::Partition(Shape::Partition(Partition::Ring)),
                "partition",
                r#""partition-ring""#,
            ),
            (Action::Heal, "heal", "null"),
            (Action::Kill(Target::Random), "kill", r#""random""#),
            (Action::Kill(Target::Primary), "kill", r#""primary""#),
            (Action::Start(Stopped::All), "start", r#""all""#),
            (Action::Pause(Target::Random), "pause", r#""random""#),
            (Action::Resume(Stopped::All), "resume", r#""all""#),
            (Action::Clock(Skew::Random), "clock", r#""random""#),
            (Action::Clock(Skew::Strobe), "clock", r#""strobe""#),
            (Action::Reset, "reset", "null"),
            (Action::Crash(Target::Random), "crash", r#""random""#),
            (Action::Slow, "slow", "null"),
            (Action::Flaky, "flaky", "null"),
            (Action::Fast, "fast", "null"),
        ];
        for (action, f, value) in cases {
            assert_eq!(action.verb().name(), f, "{action:?}");
            assert_eq!(action.value().to_string(), value, "{action:?}");
            let back = Action::from_history(f, &serde_json::from_str(value).unwrap()).unwrap();
            assert_eq!(back, action);
        }
        assert!(Action::from_history("kill", &Value::from("everyone")).is_err());
        assert!(Action::from_history("partition", &Value::from("partition-x")).is_err());
    }

    #[test]
    fn every_fault_action_has_one_undo_and_undos_have_none() {
        let undo = |a: Action| a.undo().map(|u| (u.verb().name(), u.value().to_string()));
        assert_eq!(
            undo(Action::Partition(Shape::Random)),
            Some(("heal", "null".into()))
        );
        assert_eq!(
            undo(Action::Crash(Target::One)),
            Some(("start", r#""all""#.into()))
        );
        assert_eq!(
            undo(Action::Pause(Target::Primary)),
            Some(("resume", r#""all""#.into()))
        );
        for verb in Verb::ALL {
            assert_eq!(Action::of_undo(verb).is_some(), !verb.is_fault(), "{verb}");
        }
        for verb in Verb::UNDO_ORDER {
            assert_eq!(Action::of_undo(verb).unwrap().undo(), None);
        }
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
    fn a_random_target_draws_its_target_then_picks_with_the_same_rng() {
        let nodes = nodes(5);
        for seed in 0..50 {
            let mut rng = StdRng::seed_from_u64(seed);
            let picked = Target::Random.pick(&nodes, Some("n1"), &mut rng);
            let mut again = StdRng::seed_from_u64(seed);
            let drawn = Target::RANDOM_CHOICES[again.gen_range(0..4)];
            assert_eq!(picked, drawn.pick(&nodes, None, &mut again));
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
