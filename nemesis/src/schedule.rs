//! The schedule of a test's faults, as pure code over an rng.
//!
//! Every interval the [`Schedule`] starts a fault drawn (from the caller's
//! seeded rng) among the test's faults, holds it one interval, undoes it,
//! waits one interval, and so on. [`final_actions`] undoes everything the
//! faults may have done, before recovery and the final reads. The harness's
//! generator only wraps these, so the same seed gives the same schedule.

use std::time::Duration;

use rand::Rng;

use crate::action::Action;
use crate::fault::Fault;
use crate::verb::Verb;

/// What the schedule wants now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Do this now.
    Act(Action),
    /// Nothing until this time (since the test started).
    Wait(Duration),
    /// Nothing more, ever (there are no faults).
    Done,
}

/// Start a fault, hold it one interval, undo it, wait one interval; repeat.
#[derive(Clone, Debug)]
pub struct Schedule {
    faults: Vec<Fault>,
    interval: Duration,
    next_at: Option<Duration>,
    undo: Option<Action>,
}

impl Schedule {
    /// A schedule over these faults, one action every `interval`.
    pub fn new(faults: &[Fault], interval: Duration) -> Self {
        Schedule {
            faults: faults.to_vec(),
            interval,
            next_at: None,
            undo: None,
        }
    }

    /// The faults it draws from.
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    /// What to do at `now` (time since the test started). The first action
    /// comes one interval after the first call.
    pub fn next<R: Rng + ?Sized>(&mut self, now: Duration, rng: &mut R) -> Step {
        if self.faults.is_empty() {
            return Step::Done;
        }
        let due = *self.next_at.get_or_insert(now + self.interval);
        if now < due {
            return Step::Wait(due);
        }
        self.next_at = Some(now + self.interval);
        match self.undo.take() {
            Some(undo) => Step::Act(undo),
            None => {
                let fault = self.faults[rng.gen_range(0..self.faults.len())];
                self.undo = Some(fault.undo());
                Step::Act(fault.start())
            }
        }
    }
}

/// Undoes everything `faults` may have done, each kind once, in
/// [`Verb::UNDO_ORDER`]: heal, fast, resume, start, reset.
pub fn final_actions(faults: &[Fault]) -> Vec<Action> {
    Verb::UNDO_ORDER
        .into_iter()
        .filter(|verb| faults.iter().any(|f| f.undo().verb() == *verb))
        .filter_map(Action::of_undo)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn draw(faults: &[Fault], seed: u64, steps: u64) -> Vec<String> {
        let mut schedule = Schedule::new(faults, ms(10));
        let mut rng = StdRng::seed_from_u64(seed);
        (0..steps)
            .filter_map(|i| match schedule.next(ms(i * 10), &mut rng) {
                Step::Act(action) => Some(format!("{} {}", action.verb(), action.value())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_schedule_alternates_a_fault_and_its_undo_every_interval() {
        let mut schedule = Schedule::new(&[Fault::Partition, Fault::Kill], ms(1000));
        let mut rng = StdRng::seed_from_u64(4);
        assert_eq!(schedule.next(ms(0), &mut rng), Step::Wait(ms(1000)));
        let Step::Act(start) = schedule.next(ms(1000), &mut rng) else {
            panic!()
        };
        assert!([Verb::Partition, Verb::Kill].contains(&start.verb()));
        assert_eq!(schedule.next(ms(1500), &mut rng), Step::Wait(ms(2000)));
        assert_eq!(
            schedule.next(ms(2000), &mut rng),
            Step::Act(start.undo().unwrap())
        );
        assert_eq!(Schedule::new(&[], ms(1)).next(ms(0), &mut rng), Step::Done);
    }

    #[test]
    fn the_same_seed_gives_the_same_fault_schedule() {
        let faults = [Fault::Partition, Fault::Kill, Fault::Pause, Fault::Clock];
        assert_eq!(draw(&faults, 1, 40), draw(&faults, 1, 40));
        assert_ne!(draw(&faults, 1, 40), draw(&faults, 2, 40));
    }

    /// The same draws as the harness's schedule made before it moved here.
    #[test]
    fn a_fixed_seed_gives_this_fault_schedule() {
        let faults = [
            Fault::Partition,
            Fault::Kill,
            Fault::PausePrimary,
            Fault::Clock,
            Fault::Slow,
            Fault::Crash,
        ];
        assert_eq!(draw(&faults, 7, 25), PINNED_SCHEDULE);
    }

    const PINNED_SCHEDULE: [&str; 24] = [
        r#"partition "partition""#,
        "heal null",
        r#"clock "random""#,
        "reset null",
        r#"kill "random""#,
        r#"start "all""#,
        r#"crash "random""#,
        r#"start "all""#,
        r#"kill "random""#,
        r#"start "all""#,
        r#"kill "random""#,
        r#"start "all""#,
        "slow null",
        "fast null",
        r#"partition "partition""#,
        "heal null",
        r#"partition "partition""#,
        "heal null",
        r#"pause "primary""#,
        r#"resume "all""#,
        r#"crash "random""#,
        r#"start "all""#,
        r#"crash "random""#,
        r#"start "all""#,
    ];

    #[test]
    fn the_final_actions_undo_every_kind_of_fault_once_healing_first() {
        let faults = [
            Fault::Kill,
            Fault::PartitionRing,
            Fault::Pause,
            Fault::Crash,
            Fault::Clock,
        ];
        let verbs: Vec<Verb> = final_actions(&faults).iter().map(Action::verb).collect();
        assert_eq!(verbs, [Verb::Heal, Verb::Resume, Verb::Start, Verb::Reset]);
        assert_eq!(
            final_actions(&[Fault::Slow, Fault::Flaky, Fault::PartitionOne]),
            [Action::Heal, Action::Fast]
        );
        assert!(final_actions(&[]).is_empty());
    }
}
