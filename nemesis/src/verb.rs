//! Verbs: the `f` of every nemesis op in a history, and the one table of
//! fault/undo pairs.
//!
//! Faults come in fixed pairs: partition/heal, kill/start, crash/start,
//! pause/resume, clock/reset, slow/fast, flaky/fast ([`Verb::undo`]). Both
//! what the schedule asks ([`crate::Action`]) and what was applied
//! ([`crate::FaultOp`]) carry one of these verbs as their history `f`, so a
//! history read back pairs its fault windows by verb alone, whatever the
//! value holds (a failed action records what was asked, not what was done).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The `f` of a nemesis op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verb {
    /// Cut links (a grudge).
    Partition,
    /// Remove every partition.
    Heal,
    /// SIGKILL nodes.
    Kill,
    /// Start the nodes that are down.
    Start,
    /// SIGSTOP nodes.
    Pause,
    /// SIGCONT the paused nodes.
    Resume,
    /// Skew clocks.
    Clock,
    /// Put every clock back.
    Reset,
    /// Crash nodes (they lose what they have not fsynced).
    Crash,
    /// Delay links.
    Slow,
    /// Stall or reset some connections.
    Flaky,
    /// Undo slow and flaky.
    Fast,
}

impl Verb {
    /// Every verb.
    pub const ALL: [Verb; 12] = [
        Verb::Partition,
        Verb::Heal,
        Verb::Kill,
        Verb::Start,
        Verb::Pause,
        Verb::Resume,
        Verb::Clock,
        Verb::Reset,
        Verb::Crash,
        Verb::Slow,
        Verb::Flaky,
        Verb::Fast,
    ];

    /// The undo verbs in the order a final phase runs them: the network
    /// first (so the nodes can talk), then the processes, then the clocks.
    pub const UNDO_ORDER: [Verb; 5] = [
        Verb::Heal,
        Verb::Fast,
        Verb::Resume,
        Verb::Start,
        Verb::Reset,
    ];

    /// The verb that undoes this one, or `None` when this verb is itself an
    /// undo. The one table of fault/undo pairs.
    pub fn undo(self) -> Option<Verb> {
        match self {
            Verb::Partition => Some(Verb::Heal),
            Verb::Kill | Verb::Crash => Some(Verb::Start),
            Verb::Pause => Some(Verb::Resume),
            Verb::Clock => Some(Verb::Reset),
            Verb::Slow | Verb::Flaky => Some(Verb::Fast),
            Verb::Heal | Verb::Start | Verb::Resume | Verb::Reset | Verb::Fast => None,
        }
    }

    /// True for the verbs that start a fault (they have an undo).
    pub fn is_fault(self) -> bool {
        self.undo().is_some()
    }

    /// The history name (`partition`, `heal`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Verb::Partition => "partition",
            Verb::Heal => "heal",
            Verb::Kill => "kill",
            Verb::Start => "start",
            Verb::Pause => "pause",
            Verb::Resume => "resume",
            Verb::Clock => "clock",
            Verb::Reset => "reset",
            Verb::Crash => "crash",
            Verb::Slow => "slow",
            Verb::Flaky => "flaky",
            Verb::Fast => "fast",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An `f` that is no nemesis verb.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown nemesis verb {0:?}")]
pub struct UnknownVerb(pub String);

impl FromStr for Verb {
    type Err = UnknownVerb;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Verb::ALL
            .into_iter()
            .find(|v| v.name() == name)
            .ok_or_else(|| UnknownVerb(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verb_parses_from_its_name_and_serializes_as_it() {
        for verb in Verb::ALL {
            assert_eq!(verb.name().parse::<Verb>(), Ok(verb));
            assert_eq!(verb.to_string(), verb.name());
            assert_eq!(
                serde_json::to_string(&verb).unwrap(),
                format!("\"{}\"", verb.name())
            );
        }
        assert!("start-partition".parse::<Verb>().is_err());
    }

    #[test]
    fn faults_and_undos_pair_as_partition_heal_kill_start_pause_resume_clock_reset_slow_fast() {
        let pairs: Vec<(&str, Option<&str>)> = Verb::ALL
            .iter()
            .map(|v| (v.name(), v.undo().map(Verb::name)))
            .collect();
        assert_eq!(
            pairs,
            [
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
        let undos: Vec<Verb> = Verb::ALL.into_iter().filter(|v| !v.is_fault()).collect();
        let mut ordered = Verb::UNDO_ORDER.to_vec();
        ordered.sort();
        assert_eq!(ordered, undos, "UNDO_ORDER lists every undo once");
    }
}
