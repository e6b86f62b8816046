//! Generators: the ops a test performs, as composable values (Jepsen's
//! `jepsen.generator`).
//!
//! The interpreter asks a generator for the next op whenever a worker is free
//! ([`Generator::next`]) and tells it about every completion
//! ([`Generator::update`]). A generator answers with an op, with "nothing yet,
//! ask again at time t" ([`Next::Pending`]), or with [`Next::Exhausted`].
//!
//! All randomness comes from the seeded RNG the interpreter passes in, so the
//! same seed draws the same sequence of ops; which worker runs which op, and
//! where time-based generators cut, depends on timing, as in Jepsen.

use std::time::Duration;

use checker::history::{Op, OpType};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::Value;

/// An op to invoke: what a generator produces.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    /// The function (`read`, `write`, `cas`, `add`, `txn`, or a fault name).
    pub f: String,
    /// The key, for workloads over independent keys.
    pub key: Option<String>,
    /// The value.
    pub value: Value,
    /// Send it to this node rather than the worker's own choice.
    pub node: Option<String>,
}

impl Invocation {
    /// An op with no key and no node.
    pub fn new(f: &str, value: Value) -> Self {
        Invocation {
            f: f.to_string(),
            key: None,
            value,
            node: None,
        }
    }

    /// The same op on `key`.
    pub fn on_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The same op, sent to `node`.
    pub fn on_node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }
}

/// What the interpreter knows when it asks for an op.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    /// Time since the test started.
    pub time: Duration,
    /// The free worker asking (0-based).
    pub worker: usize,
    /// How many client workers there are.
    pub workers: usize,
}

/// A generator's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// Invoke this now.
    Op(Invocation),
    /// Nothing now; ask again at this time (or after any completion).
    Pending(Option<Duration>),
    /// Nothing more, ever.
    Exhausted,
}

/// A source of ops; see the module docs.
pub trait Generator: Send {
    /// The next op for the free worker described by `ctx`.
    fn next(&mut self, ctx: &Context, rng: &mut StdRng) -> Next;
    /// Called with every completion of an op this generator produced.
    fn update(&mut self, _ctx: &Context, _completion: &Op) {}
}

/// Boxed generators compose.
pub type BoxGen = Box<dyn Generator>;

/// An endless source of ops drawn by a function.
pub struct FromFn<F>(pub F);

impl<F: FnMut(&Context, &mut StdRng) -> Invocation + Send> Generator for FromFn<F> {
    fn next(&mut self, ctx: &Context, rng: &mut StdRng) -> Next {
        Next::Op((self.0)(ctx, rng))
    }
}

/// These ops, once each, in order.
pub struct Sequence(pub std::collections::VecDeque<Invocation>);

impl Generator for Sequence {
    fn next(&mut self, _ctx: &Context, _rng: &mut StdRng) -> Next {
        self.0.pop_front().map_or(Next::Exhausted, Next::Op)
    }
}

/// Nothing at all (`--nemesis none`).
pub struct Empty;

impl Generator for Empty {
    fn next(&mut self, _ctx: &Context, _rng: &mut StdRng) -> Next {
        Next::Exhausted
    }
}

/// A random choice among generators for each op, until all are exhausted.
pub struct Mix(pub Vec<BoxGen>);

impl Generator for Mix {
    fn next(&mut self, ctx: &Context, rng: &mut StdRng) -> Next {
        let mut earliest: Option<Option<Duration>> = None;
        while !self.0.is_empty() {
            let i = rng.gen_range(0..self.0.len());
            match self.0[i].next(ctx, rng) {
                Next::Op(op) => return Next::Op(op),
                Next::Exhausted => {
                    self.0.remove(i);
                }
                Next::Pending(at) => {
                    earliest = Some(min_wake(earliest.flatten(), at));
                    break;
                }
            }
        }
        earliest.map_or(Next::Exhausted, Next::Pending)
    }

    fn update(&mut self, ctx: &Context, completion: &Op) {
        for g in &mut self.0 {
            g.update(ctx, completion);
        }
    }
}

fn min_wake(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// At most `n` ops of the inner generator.
pub struct Limit {
    /// Ops still allowed.
    pub remaining: u64,
    /// The inner generator.
    pub inner: BoxGen,
}

impl Generator for Limit {
    fn next(&mut self, ctx: &Context, rng: &mut StdRng) -> Next {
        if self.remaining == 0 {
            return Next::Exhausted;
        }
        let next = self.inner.next(ctx, rng);
        if matches!(next, Next::Op(_)) {
            self.remaining -= 1;
        }
        next
    }

    fn update(&mut self, ctx: &Context, completion: &Op) {
        self.inner.update(ctx, completion);
    }
}

/// The inner generator until `limit` has passed since its first op.
pub struct TimeLimit {
    limit: Duration,
    deadline: Option<Duration>,
    inner: BoxGen,
}

impl TimeLimit {
    /// Cuts `inner` off `limit` after it is first asked.
    pub fn new(limit: Duration, inner: BoxGen) -> Self {
        TimeLimit {
            limit,
            deadline: None,
            inner,
        }
    }
}

impl Generator for TimeLimit {
    fn next(&mut self, ctx: &Context, rng: &mut StdRng) -> Next {
        let deadline = *self.deadline.get_or_insert(ctx.time + self.limit);
        if ctx.time >= deadline {
            return Next::Exhausted;
        }
        match self.inner.next(ctx, rng) {
            Next::Pending(at) => Next::Pending(Some(at.map_or(deadline, |a| a.min(deadline)))),
            other => other,
        }
    }

    fn update(&mut self, ctx: &Context, completion: &Op) {
        self.inner.update(ctx, completion);
    }
}

/// Spaces the inner generator's ops by random delays averaging `mean`
/// (uniform in `[0, 2·mean)`), across all workers: a rate limit.
pub struct Stagger {
    mean: Duration,
    next_at: Option<Duration>,
    inner: BoxGen,
}

impl Stagger {
    /// About `1 / mean` ops per second from `inner`.
    pub fn new(mean: Duration, inner: BoxGen) -> Self {
        Stagger {
            mean,
            next_at: None,
            inner,
        }
    }

    /// `rate` ops per second (no limit when `rate` is 0).
    pub fn rate(rate: f64, inner: BoxGen) -> BoxGen {
        if rate <= 0.0 {
            return inner;
        }
        Box::new(Stagger::new(Duration::from_secs_f64(1.0 / rate), inner))
    }
}

impl Generator for Stagger {
    fn next(&mut self, ctx: &Context, rng: &mut StdRng) -> Next {
        let due = *self.next_at.get_or_insert(ctx.time);
        if ctx.time < due {
            return Next::Pending(Some(due));
        }
        let next = self.inner.next(ctx, rng);
        if matches!(next, Next::Op(_)) {
            let delay = self.mean.mul_f64(rng.gen_range(0.0..2.0));
            // Catch up after a stall, but never burst more than one op's worth.
            self.next_at = Some(due.max(ctx.time.saturating_sub(self.mean)) + delay);
        }
        next
    }

    fn update(&mut self, ctx: &Context, completion: &Op) {
        self.inner.update(ctx, completion);
    }
}

/// Generators one after another: each starts once the previous one is
/// exhausted and every op it produced has completed (Jepsen's `phases`).
pub struct Phases {
    phases: std::collections::VecDeque<BoxGen>,
    outstanding: usize,
}

impl Phases {
    /// These phases, in order.
    pub fn new(phases: Vec<BoxGen>) -> Self {
        Phases {
            phases: phases.into(),
            outstanding: 0,
        }
    }
}

impl Generator for Phases {
    fn next(&mut self, ctx: &Context, rng: &mut StdRng) -> Next {
        loop {
            let Some(current) = self.phases.front_mut() else {
                return Next::Exhausted;
            };
            match current.next(ctx, rng) {
                Next::Op(op) => {
                    self.outstanding += 1;
                    return Next::Op(op);
                }
                Next::Pending(at) => return Next::Pending(at),
                Next::Exhausted if self.outstanding > 0 => return Next::Pending(None),
                Next::Exhausted => {
                    self.phases.pop_front();
                }
            }
        }
    }

    fn update(&mut self, ctx: &Context, completion: &Op) {
        if completion.op_type != OpType::Invoke {
            self.outstanding = self.outstanding.saturating_sub(1);
        }
        if let Some(current) = self.phases.front_mut() {
            current.update(ctx, completion);
        }
    }
}

/// Ops over independent keys: `active` keys at a time, each retired after
/// `per_key` ops and replaced by a fresh key (Jepsen's independent
/// generator), so that no key's history grows too long or too concurrent to
/// check. `draw` makes an op (without key) for a key.
pub struct KeyRotation<F> {
    active: Vec<(u64, u64)>,
    per_key: u64,
    next_key: u64,
    draw: F,
}

impl<F> KeyRotation<F> {
    /// Keys `0..active` first; each retires after `per_key` ops.
    pub fn new(active: usize, per_key: u64, draw: F) -> Self {
        let active = active.max(1) as u64;
        KeyRotation {
            active: (0..active).map(|k| (k, 0)).collect(),
            per_key: per_key.max(1),
            next_key: active,
            draw,
        }
    }
}

impl<F: FnMut(&mut StdRng) -> Invocation + Send> Generator for KeyRotation<F> {
    fn next(&mut self, _ctx: &Context, rng: &mut StdRng) -> Next {
        let slot = rng.gen_range(0..self.active.len());
        let (key, used) = self.active[slot];
        self.active[slot] = if used + 1 >= self.per_key {
            self.next_key += 1;
            (self.next_key - 1, 0)
        } else {
            (key, used + 1)
        };
        Next::Op((self.draw)(rng).on_key(key.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::json;

    fn ctx(ms: u64) -> Context {
        Context {
            time: Duration::from_millis(ms),
            worker: 0,
            workers: 4,
        }
    }

    fn read() -> BoxGen {
        Box::new(FromFn(|_: &Context, _: &mut StdRng| {
            Invocation::new("read", Value::Null)
        }))
    }

    fn drain(g: &mut dyn Generator, rng: &mut StdRng, ms: u64) -> Vec<Next> {
        (0..10).map(|_| g.next(&ctx(ms), rng)).collect()
    }

    #[test]
    fn the_same_seed_draws_the_same_ops() {
        let draw = |rng: &mut StdRng| Invocation::new("write", json!(rng.gen_range(0..5)));
        let run = |seed| {
            let mut g = KeyRotation::new(3, 4, draw);
            let mut rng = StdRng::seed_from_u64(seed);
            drain(&mut g, &mut rng, 0)
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn limit_stops_after_n_ops() {
        let mut g = Limit {
            remaining: 3,
            inner: read(),
        };
        let mut rng = StdRng::seed_from_u64(1);
        let ops = drain(&mut g, &mut rng, 0);
        assert_eq!(ops.iter().filter(|n| matches!(n, Next::Op(_))).count(), 3);
        assert_eq!(ops[3], Next::Exhausted);
    }

    #[test]
    fn time_limit_cuts_off_after_its_duration_from_first_use() {
        let mut g = TimeLimit::new(Duration::from_secs(1), read());
        let mut rng = StdRng::seed_from_u64(1);
        assert!(matches!(g.next(&ctx(500), &mut rng), Next::Op(_)));
        assert!(matches!(g.next(&ctx(1499), &mut rng), Next::Op(_)));
        assert_eq!(g.next(&ctx(1500), &mut rng), Next::Exhausted);
    }

    #[test]
    fn stagger_holds_the_rate_on_a_simulated_clock() {
        let mut g = Stagger::rate(100.0, read());
        let mut rng = StdRng::seed_from_u64(3);
        let mut ops = 0;
        for ms in 0..10_000 {
            while let Next::Op(_) = g.next(&ctx(ms), &mut rng) {
                ops += 1;
            }
        }
        assert!((900..=1100).contains(&ops), "100/s for 10 s gave {ops}");
    }

    #[test]
    fn phases_wait_for_outstanding_ops_before_moving_on() {
        let first = Box::new(Limit {
            remaining: 1,
            inner: read(),
        });
        let second = Box::new(Sequence(vec![Invocation::new("final", Value::Null)].into()));
        let mut g = Phases::new(vec![first, second]);
        let mut rng = StdRng::seed_from_u64(1);
        let Next::Op(op) = g.next(&ctx(0), &mut rng) else {
            panic!()
        };
        assert_eq!(op.f, "read");
        assert_eq!(
            g.next(&ctx(1), &mut rng),
            Next::Pending(None),
            "the read is still out"
        );
        let mut done = checker::history::Op::invoke(0, "read", Value::Null);
        done.op_type = OpType::Ok;
        g.update(&ctx(2), &done);
        let Next::Op(op) = g.next(&ctx(3), &mut rng) else {
            panic!()
        };
        assert_eq!(op.f, "final");
        assert_eq!(g.next(&ctx(4), &mut rng), Next::Pending(None));
        g.update(&ctx(5), &done);
        assert_eq!(g.next(&ctx(6), &mut rng), Next::Exhausted);
    }

    #[test]
    fn key_rotation_retires_keys_after_their_op_limit() {
        let mut g = KeyRotation::new(2, 5, |_: &mut StdRng| Invocation::new("read", Value::Null));
        let mut rng = StdRng::seed_from_u64(9);
        let mut per_key = std::collections::BTreeMap::new();
        for _ in 0..100 {
            let Next::Op(op) = g.next(&ctx(0), &mut rng) else {
                panic!()
            };
            *per_key
                .entry(op.key.unwrap().parse::<u64>().unwrap())
                .or_insert(0) += 1;
        }
        assert!(per_key.values().all(|&n| n <= 5), "{per_key:?}");
        assert!(per_key.len() >= 20);
    }

    #[test]
    fn mix_draws_from_every_member_until_all_are_exhausted() {
        let a = Box::new(Sequence(vec![Invocation::new("a", Value::Null); 5].into()));
        let b = Box::new(Sequence(vec![Invocation::new("b", Value::Null); 5].into()));
        let mut g = Mix(vec![a, b]);
        let mut rng = StdRng::seed_from_u64(2);
        let fs: Vec<String> = (0..11)
            .filter_map(|_| match g.next(&ctx(0), &mut rng) {
                Next::Op(op) => Some(op.f),
                _ => None,
            })
            .collect();
        assert_eq!(fs.len(), 10);
        assert_eq!(fs.iter().filter(|f| *f == "a").count(), 5);
        assert_eq!(g.next(&ctx(0), &mut rng), Next::Exhausted);
    }
}
