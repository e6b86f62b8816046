//! The fault vocabulary: every fault `--nemesis` names, what it starts with,
//! what undoes it and what it needs from the system under test.
//!
//! Names are docs/DESIGN.md's shared vocabulary: `partition` (a random topology each
//! time), `partition-one`, `partition-primary`, `partition-halves`,
//! `partition-ring`, `partition-bridge`, `partition-one-way`, `kill`,
//! `kill-primary`, `pause`, `pause-primary`, `clock`, `crash`, `slow`,
//! `flaky`; and `none` for no faults at all ([`Fault::parse_list`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::action::{Action, Shape, Skew, Target};
use crate::grudge::Partition;

/// One fault of the vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// A partition of a random topology each time.
    Partition,
    /// Isolate one random node.
    PartitionOne,
    /// Isolate the primary.
    PartitionPrimary,
    /// A random minority against the rest.
    PartitionHalves,
    /// A majorities ring.
    PartitionRing,
    /// Two halves joined by one node.
    PartitionBridge,
    /// One node drops another's traffic.
    PartitionOneWay,
    /// Kill one node, a minority, a majority or all, drawn each time.
    Kill,
    /// Kill the primary.
    KillPrimary,
    /// Pause one node, a minority, a majority or all, drawn each time.
    Pause,
    /// Pause the primary.
    PausePrimary,
    /// Bump or strobe one node's clock.
    Clock,
    /// Crash nodes: they lose what they have not fsynced, as on power loss.
    Crash,
    /// Delay every link to and from one node.
    Slow,
    /// Stall or reset some connections to and from one node.
    Flaky,
}

/// An ability of the system under test a fault uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ability {
    /// Kill a node and start it again.
    Kill,
    /// Pause a node and resume it.
    Pause,
    /// Skew a node's clock and reset it.
    Clock,
    /// Crash a node (it loses unsynced writes); it is started again by
    /// [`Ability::Kill`]'s start.
    Crash,
    /// Name the current primary (without it, `-primary` faults hit a
    /// random node).
    Primary,
}

impl Fault {
    /// Every fault, in the vocabulary's order.
    pub const ALL: [Fault; 15] = [
        Fault::Partition,
        Fault::PartitionOne,
        Fault::PartitionPrimary,
        Fault::PartitionHalves,
        Fault::PartitionRing,
        Fault::PartitionBridge,
        Fault::PartitionOneWay,
        Fault::Kill,
        Fault::KillPrimary,
        Fault::Pause,
        Fault::PausePrimary,
        Fault::Clock,
        Fault::Crash,
        Fault::Slow,
        Fault::Flaky,
    ];

    /// The name that means no faults.
    pub const NONE: &'static str = "none";

    /// The action that starts this fault.
    pub fn start(self) -> Action {
        let partition = |t| Action::Partition(Shape::Partition(t));
        match self {
            Fault::Partition => Action::Partition(Shape::Random),
            Fault::PartitionOne => partition(Partition::One),
            Fault::PartitionPrimary => partition(Partition::Primary),
            Fault::PartitionHalves => partition(Partition::RandomHalves),
            Fault::PartitionRing => partition(Partition::Ring),
            Fault::PartitionBridge => partition(Partition::Bridge),
            Fault::PartitionOneWay => partition(Partition::OneWay),
            Fault::Kill => Action::Kill(Target::Random),
            Fault::KillPrimary => Action::Kill(Target::Primary),
            Fault::Pause => Action::Pause(Target::Random),
            Fault::PausePrimary => Action::Pause(Target::Primary),
            Fault::Clock => Action::Clock(Skew::Random),
            Fault::Crash => Action::Crash(Target::Random),
            Fault::Slow => Action::Slow,
            Fault::Flaky => Action::Flaky,
        }
    }

    /// The action that undoes it.
    pub fn undo(self) -> Action {
        self.start()
            .undo()
            .expect("every fault's start action has an undo")
    }

    /// Whether it needs a network backend between the nodes.
    pub fn needs_net(self) -> bool {
        matches!(
            self.start(),
            Action::Partition(_) | Action::Slow | Action::Flaky
        )
    }

    /// The abilities of the system under test it uses.
    pub fn abilities(self) -> &'static [Ability] {
        match self {
            Fault::PartitionPrimary => &[Ability::Primary],
            Fault::Kill => &[Ability::Kill],
            Fault::KillPrimary => &[Ability::Kill, Ability::Primary],
            Fault::Pause => &[Ability::Pause],
            Fault::PausePrimary => &[Ability::Pause, Ability::Primary],
            Fault::Clock => &[Ability::Clock],
            Fault::Crash => &[Ability::Crash, Ability::Kill],
            Fault::Partition
            | Fault::PartitionOne
            | Fault::PartitionHalves
            | Fault::PartitionRing
            | Fault::PartitionBridge
            | Fault::PartitionOneWay
            | Fault::Slow
            | Fault::Flaky => &[],
        }
    }

    /// Its name (`partition-ring`, `kill-primary`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Fault::Partition => "partition",
            Fault::PartitionOne => "partition-one",
            Fault::PartitionPrimary => "partition-primary",
            Fault::PartitionHalves => "partition-halves",
            Fault::PartitionRing => "partition-ring",
            Fault::PartitionBridge => "partition-bridge",
            Fault::PartitionOneWay => "partition-one-way",
            Fault::Kill => "kill",
            Fault::KillPrimary => "kill-primary",
            Fault::Pause => "pause",
            Fault::PausePrimary => "pause-primary",
            Fault::Clock => "clock",
            Fault::Crash => "crash",
            Fault::Slow => "slow",
            Fault::Flaky => "flaky",
        }
    }

    /// Every name `--nemesis` accepts: `none`, then every fault.
    pub fn names() -> impl Iterator<Item = &'static str> {
        std::iter::once(Self::NONE).chain(Self::ALL.into_iter().map(Fault::name))
    }

    /// The faults of a `--nemesis` list, in its order; `none` adds nothing.
    pub fn parse_list<S: AsRef<str>>(names: &[S]) -> Result<Vec<Fault>, UnknownFault> {
        names
            .iter()
            .map(AsRef::as_ref)
            .filter(|name| *name != Self::NONE)
            .map(str::parse)
            .collect()
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no fault of the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault {name:?}; expected one of {}", Fault::names().collect::<Vec<_>>().join(", "))]
pub struct UnknownFault {
    /// The name given.
    pub name: String,
}

impl FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| UnknownFault {
                name: name.to_string(),
            })
    }
}

impl Serialize for Fault {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Fault {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verb::Verb;

    #[test]
    fn every_fault_parses_from_its_name_and_displays_and_serializes_as_it() {
        for fault in Fault::ALL {
            let name = fault.to_string();
            assert_eq!(name.parse::<Fault>(), Ok(fault));
            assert_eq!(
                serde_json::to_string(&fault).unwrap(),
                format!("\"{name}\"")
            );
            let back: Fault = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(back, fault);
        }
        let names: Vec<&str> = Fault::names().collect();
        assert_eq!(
            names,
            [
                "none",
                "partition",
                "partition-one",
                "partition-primary",
                "partition-halves",
                "partition-ring",
                "partition-bridge",
                "partition-one-way",
                "kill",
                "kill-primary",
                "pause",
                "pause-primary",
                "clock",
                "crash",
                "slow",
                "flaky",
            ]
        );
    }

    #[test]
    fn none_means_no_faults_and_an_unknown_name_says_what_is_known() {
        assert_eq!(
            Fault::parse_list(&["none", "kill", "partition-ring"]),
            Ok(vec![Fault::Kill, Fault::PartitionRing])
        );
        assert_eq!(Fault::parse_list(&["none"]), Ok(vec![]));
        let err = Fault::parse_list(&["kill", "nap"]).unwrap_err();
        assert_eq!(err.name, "nap");
        assert!(err
            .to_string()
            .starts_with("unknown fault \"nap\"; expected one of none, partition, partition-one,"));
        assert!("none".parse::<Fault>().is_err());
        assert!(serde_json::from_str::<Fault>("\"partition-fixed-halves\"").is_err());
    }

    #[test]
    fn every_fault_starts_with_its_action_and_is_undone_by_its_pair() {
        let text = |a: Action| format!("{} {}", a.verb(), a.value());
        let pairs: Vec<(String, String, String)> = Fault::ALL
            .into_iter()
            .map(|f| (f.to_string(), text(f.start()), text(f.undo())))
            .collect();
        let expected = [
            ("partition", r#"partition "partition""#, "heal null"),
            ("partition-one", r#"partition "partition-one""#, "heal null"),
            (
                "partition-primary",
                r#"partition "partition-primary""#,
                "heal null",
            ),
            (
                "partition-halves",
                r#"partition "partition-halves""#,
                "heal null",
            ),
            (
                "partition-ring",
                r#"partition "partition-ring""#,
                "heal null",
            ),
            (
                "partition-bridge",
                r#"partition "partition-bridge""#,
                "heal null",
            ),
            (
                "partition-one-way",
                r#"partition "partition-one-way""#,
                "heal null",
            ),
            ("kill", r#"kill "random""#, r#"start "all""#),
            ("kill-primary", r#"kill "primary""#, r#"start "all""#),
            ("pause", r#"pause "random""#, r#"resume "all""#),
            ("pause-primary", r#"pause "primary""#, r#"resume "all""#),
            ("clock", r#"clock "random""#, "reset null"),
            ("crash", r#"crash "random""#, r#"start "all""#),
            ("slow", "slow null", "fast null"),
            ("flaky", "flaky null", "fast null"),
        ]
        .map(|(f, s, u)| (f.to_string(), s.to_string(), u.to_string()));
        assert_eq!(pairs, expected);
        for fault in Fault::ALL {
            assert_eq!(fault.undo().verb(), fault.start().verb().undo().unwrap());
        }
        assert_eq!(Fault::Crash.undo().verb(), Verb::Start);
    }

    #[test]
    fn network_faults_need_a_backend_and_process_faults_need_abilities() {
        let networked: Vec<Fault> = Fault::ALL.into_iter().filter(|f| f.needs_net()).collect();
        assert_eq!(networked.len(), 9);
        assert!(networked
            .iter()
            .all(|f| f.name().starts_with("partition") || *f == Fault::Slow || *f == Fault::Flaky));
        assert_eq!(Fault::Kill.abilities(), [Ability::Kill]);
        assert_eq!(
            Fault::KillPrimary.abilities(),
            [Ability::Kill, Ability::Primary]
        );
        assert_eq!(
            Fault::PausePrimary.abilities(),
            [Ability::Pause, Ability::Primary]
        );
        assert_eq!(Fault::Clock.abilities(), [Ability::Clock]);
        assert_eq!(Fault::Crash.abilities(), [Ability::Crash, Ability::Kill]);
        assert_eq!(Fault::PartitionPrimary.abilities(), [Ability::Primary]);
        assert!(Fault::Slow.abilities().is_empty());
        for fault in Fault::ALL {
            assert!(!(fault.needs_net() && fault.abilities().contains(&Ability::Kill)));
        }
    }
}
