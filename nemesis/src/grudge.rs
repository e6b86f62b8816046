//! Grudges and the pure topology functions that build them.
//!
//! A [`Grudge`] maps a node to the set of nodes whose traffic it *drops*:
//! `a: {b}` means bytes travelling from `b` to `a` never arrive (see
//! [`crate::net`] for what that does to each direction of a TCP connection).
//! Nodes absent from the map drop nothing. No topology here ever makes a
//! node drop itself.
//!
//! Every function is pure (randomness comes from the caller's `rng`), so a
//! seeded test reproduces the same partitions.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// A node's name, as the test knows it (`n1`, `n2`, ...).
pub type Node = String;

/// Node → the nodes whose traffic it drops.
pub type Grudge = BTreeMap<Node, BTreeSet<Node>>;

/// The size of a majority of `n` nodes.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// A grudge where each node drops every node outside its own component.
///
/// Nodes listed in no component are left alone: they drop nothing and
/// nobody drops them. A single component yields an empty grudge.
pub fn complete_grudge(components: &[Vec<Node>]) -> Grudge {
    let everyone: BTreeSet<Node> = components.iter().flatten().cloned().collect();
    let mut grudge = Grudge::new();
    for component in components {
        let mine: BTreeSet<Node> = component.iter().cloned().collect();
        let others: BTreeSet<Node> = everyone.difference(&mine).cloned().collect();
        if others.is_empty() {
            continue;
        }
        for node in component {
            grudge
                .entry(node.clone())
                .or_default()
                .extend(others.clone());
        }
    }
    grudge
}

/// Cuts `victim` off from every other node, in both directions.
pub fn isolate(nodes: &[Node], victim: &str) -> Grudge {
    let others: Vec<Node> = nodes.iter().filter(|n| *n != victim).cloned().collect();
    complete_grudge(&[vec![victim.to_string()], others])
}

/// Splits `nodes` in order into a minority (the first `n / 2`) and a
/// majority (the rest), each side dropping the other, as Jepsen's `bisect`.
pub fn halves(nodes: &[Node]) -> Grudge {
    let (minority, majority) = nodes.split_at(nodes.len() / 2);
    complete_grudge(&[minority.to_vec(), majority.to_vec()])
}

/// [`halves`] over a random permutation of `nodes`.
pub fn random_halves<R: Rng + ?Sized>(nodes: &[Node], rng: &mut R) -> Grudge {
    halves(&shuffled(nodes, rng))
}

/// Every node sees a majority (itself included), and no two nodes see the
/// same set of nodes — so no majority can agree on anything by itself.
///
/// The nodes are shuffled into a ring; each node sees itself and its
/// `majority(n) / 2` nearest neighbours on each side, and drops the rest.
/// This is Jepsen's `majorities-ring` made symmetric: for odd majorities
/// (5 nodes: itself and one neighbour each side) it is Jepsen's exact
/// definition; for even majorities (7 nodes: majority 4) a node sees one
/// node more than a bare majority (itself and two each side, 5 of 7), because
/// a one-sided window would make the grudge asymmetric, and on request /
/// response traffic an asymmetric cut breaks the link both ways anyway.
///
/// Small clusters, where distinct majorities cannot be built from a ring:
/// - 3 nodes: any two-node window already sees the whole ring symmetrically,
///   so the ring becomes a path `a - b - c` (only the ends drop each other):
///   views `{a,b}`, `{a,b,c}`, `{b,c}` are distinct majorities, but the
///   middle node sees everyone (this is the bridge topology).
/// - 1 or 2 nodes: the only majority is everyone; the grudge is empty.
pub fn majorities_ring<R: Rng + ?Sized>(nodes: &[Node], rng: &mut R) -> Grudge {
    let n = nodes.len();
    if n <= 2 {
        return Grudge::new();
    }
    let ring = shuffled(nodes, rng);
    if n == 3 {
        return mutual(&ring[0], &ring[2]);
    }
    let radius = majority(n) / 2;
    let mut grudge = Grudge::new();
    for (i, node) in ring.iter().enumerate() {
        let dropped: BTreeSet<Node> = ring
            .iter()
            .enumerate()
            .filter(|(j, _)| ring_distance(i, *j, n) > radius)
            .map(|(_, other)| other.clone())
            .collect();
        if !dropped.is_empty() {
            grudge.insert(node.clone(), dropped);
        }
    }
    grudge
}

/// Two random halves joined by one node that sees both.
///
/// As Jepsen's `bridge`: bisect a random permutation, the first node of the
/// larger half is the bridge; the halves drop each other, the bridge drops
/// nobody and nobody drops the bridge.
pub fn bridge<R: Rng + ?Sized>(nodes: &[Node], rng: &mut R) -> Grudge {
    let order = shuffled(nodes, rng);
    let (first, second) = order.split_at(order.len() / 2);
    let Some(bridge_node) = second.first() else {
        return Grudge::new();
    };
    let mut grudge = complete_grudge(&[first.to_vec(), second.to_vec()]);
    grudge.remove(bridge_node);
    for dropped in grudge.values_mut() {
        dropped.remove(bridge_node);
    }
    grudge.retain(|_, dropped| !dropped.is_empty());
    grudge
}

/// `from` drops `to`'s traffic; `to` still hears `from`.
///
/// Bytes travelling `to` → `from` are held; bytes `from` → `to` flow.
/// A node never drops itself: `one_way(a, a)` is empty.
pub fn one_way(from: &str, to: &str) -> Grudge {
    if from == to {
        return Grudge::new();
    }
    Grudge::from([(from.to_string(), BTreeSet::from([to.to_string()]))])
}

/// The directed links a grudge cuts, as `(from, to)`: bytes sent by `from`
/// never reach `to` (that is, `to` drops `from`).
pub fn links(grudge: &Grudge) -> BTreeSet<(Node, Node)> {
    grudge
        .iter()
        .flat_map(|(dropper, dropped)| {
            dropped
                .iter()
                .filter(move |sender| *sender != dropper)
                .map(move |sender| (sender.clone(), dropper.clone()))
        })
        .collect()
}

/// The nodes `node` still hears (itself included) under `grudge`.
pub fn view(nodes: &[Node], grudge: &Grudge, node: &str) -> BTreeSet<Node> {
    let dropped = grudge.get(node);
    nodes
        .iter()
        .filter(|other| !dropped.is_some_and(|d| d.contains(*other)))
        .cloned()
        .collect()
}

/// A partition topology: which grudge to build at the moment of the fault.
///
/// Serialized (and parsed) with the fault names of docs/DESIGN.md's shared
/// vocabulary. `partition` alone means "a random topology each time": see
/// [`Partition::RANDOM_CHOICES`] and [`Partition::random`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Partition {
    /// Isolate one random node ([`isolate`]).
    #[serde(rename = "partition-one")]
    One,
    /// Isolate the current primary (a random node when none is known).
    #[serde(rename = "partition-primary")]
    Primary,
    /// The nodes in their given order split into minority and majority
    /// ([`halves`]). Not in the shared vocabulary's random choice, since it
    /// always cuts the same nodes; named for tests that want exactly that.
    #[serde(rename = "partition-fixed-halves")]
    Halves,
    /// A random minority against the rest ([`random_halves`]).
    #[serde(rename = "partition-halves")]
    RandomHalves,
    /// Majorities ring ([`majorities_ring`]).
    #[serde(rename = "partition-ring")]
    Ring,
    /// Two halves joined by one node ([`bridge`]).
    #[serde(rename = "partition-bridge")]
    Bridge,
    /// A random node drops another random node's traffic ([`one_way`]).
    #[serde(rename = "partition-one-way")]
    OneWay,
}

impl Partition {
    /// The topologies the plain `partition` fault picks from.
    pub const RANDOM_CHOICES: [Partition; 6] = [
        Partition::One,
        Partition::Primary,
        Partition::RandomHalves,
        Partition::Ring,
        Partition::Bridge,
        Partition::OneWay,
    ];

    /// Every topology.
    pub const ALL: [Partition; 7] = [
        Partition::One,
        Partition::Primary,
        Partition::Halves,
        Partition::RandomHalves,
        Partition::Ring,
        Partition::Bridge,
        Partition::OneWay,
    ];

    /// The fault name (`partition-one`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Partition::One => "partition-one",
            Partition::Primary => "partition-primary",
            Partition::Halves => "partition-fixed-halves",
            Partition::RandomHalves => "partition-halves",
            Partition::Ring => "partition-ring",
            Partition::Bridge => "partition-bridge",
            Partition::OneWay => "partition-one-way",
        }
    }

    /// One of [`Partition::RANDOM_CHOICES`], for the plain `partition` fault.
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> Partition {
        Self::RANDOM_CHOICES[rng.gen_range(0..Self::RANDOM_CHOICES.len())]
    }

    /// The grudge for `nodes` now. `primary` is only used by
    /// [`Partition::Primary`]; when it is `None` or not one of `nodes`, a
    /// random node is isolated instead.
    pub fn grudge<R: Rng + ?Sized>(
        self,
        nodes: &[Node],
        primary: Option<&str>,
        rng: &mut R,
    ) -> Grudge {
        match self {
            Partition::One => match nodes.choose(rng) {
                Some(victim) => isolate(nodes, victim),
                None => Grudge::new(),
            },
            Partition::Primary => match primary.filter(|p| nodes.iter().any(|n| n == p)) {
                Some(primary) => isolate(nodes, primary),
                None => {
                    tracing::warn!("no known primary; isolating a random node instead");
                    Partition::One.grudge(nodes, None, rng)
                }
            },
            Partition::Halves => halves(nodes),
            Partition::RandomHalves => random_halves(nodes, rng),
            Partition::Ring => majorities_ring(nodes, rng),
            Partition::Bridge => bridge(nodes, rng),
            Partition::OneWay => {
                let pair: Vec<&Node> = nodes.choose_multiple(rng, 2).collect();
                match pair.as_slice() {
                    [from, to] => one_way(from, to),
                    _ => Grudge::new(),
                }
            }
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a specific partition topology.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown partition topology {0:?} (expected one of partition-one, partition-primary, partition-halves, partition-ring, partition-bridge, partition-one-way, partition-fixed-halves)")]
pub struct UnknownTopology(pub String);

impl FromStr for Partition {
    type Err = UnknownTopology;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Partition::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| UnknownTopology(name.to_string()))
    }
}

fn shuffled<R: Rng + ?Sized>(nodes: &[Node], rng: &mut R) -> Vec<Node> {
    let mut order = nodes.to_vec();
    order.shuffle(rng);
    order
}

fn mutual(a: &str, b: &str) -> Grudge {
    let mut grudge = one_way(a, b);
    grudge.extend(one_way(b, a));
    grudge
}

fn ring_distance(i: usize, j: usize, n: usize) -> usize {
    let d = i.abs_diff(j);
    d.min(n - d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn nodes(n: usize) -> Vec<Node> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    const SIZES: [usize; 3] = [3, 5, 7];
    const SEEDS: u64 = 200;

    /// Runs `check` on every size and many seeds, plus general invariants.
    fn for_each(build: impl Fn(&[Node], &mut StdRng) -> Grudge, check: impl Fn(&[Node], &Grudge)) {
        for n in SIZES {
            let nodes = nodes(n);
            for seed in 0..SEEDS {
                let grudge = build(&nodes, &mut StdRng::seed_from_u64(seed));
                assert_never_drops_itself(&grudge);
                assert!(grudge
                    .keys()
                    .chain(grudge.values().flatten())
                    .all(|x| nodes.contains(x)));
                check(&nodes, &grudge);
            }
        }
    }

    fn assert_never_drops_itself(grudge: &Grudge) {
        for (node, dropped) in grudge {
            assert!(!dropped.contains(node), "{node} drops itself in {grudge:?}");
            assert!(!dropped.is_empty(), "empty entry for {node}");
        }
    }

    fn symmetric(grudge: &Grudge) -> bool {
        links(grudge)
            .iter()
            .all(|(a, b)| links(grudge).contains(&(b.clone(), a.clone())))
    }

    /// Components of the "sees" relation for symmetric grudges that are complete.
    fn components(nodes: &[Node], grudge: &Grudge) -> BTreeSet<BTreeSet<Node>> {
        nodes.iter().map(|n| view(nodes, grudge, n)).collect()
    }

    #[test]
    fn isolation_leaves_the_victim_seeing_only_itself() {
        for n in SIZES {
            let nodes = nodes(n);
            for victim in &nodes {
                let grudge = isolate(&nodes, victim);
                assert_never_drops_itself(&grudge);
                assert!(symmetric(&grudge));
                assert_eq!(
                    view(&nodes, &grudge, victim),
                    BTreeSet::from([victim.clone()])
                );
                for other in nodes.iter().filter(|o| *o != victim) {
                    let expected: BTreeSet<Node> =
                        nodes.iter().filter(|x| *x != victim).cloned().collect();
                    assert_eq!(view(&nodes, &grudge, other), expected);
                }
            }
        }
    }

    #[test]
    fn halves_are_two_components_of_floor_and_ceil_size() {
        let check = |nodes: &[Node], grudge: &Grudge| {
            assert!(symmetric(grudge));
            let parts = components(nodes, grudge);
            let sizes: BTreeSet<usize> = parts.iter().map(|c| c.len()).collect();
            assert_eq!(parts.len(), 2, "{grudge:?}");
            assert_eq!(
                sizes,
                BTreeSet::from([nodes.len() / 2, nodes.len().div_ceil(2)])
            );
            assert_eq!(parts.iter().map(|c| c.len()).sum::<usize>(), nodes.len());
        };
        for_each(|nodes, _| halves(nodes), check);
        for_each(random_halves, check);
        // Fixed halves: the smaller side comes first, as Jepsen's bisect.
        let grudge = halves(&nodes(5));
        assert_eq!(
            view(&nodes(5), &grudge, "n1"),
            BTreeSet::from(["n1".into(), "n2".into()])
        );
    }

    #[test]
    fn random_halves_vary_with_the_seed() {
        let nodes = nodes(5);
        let distinct: BTreeSet<Grudge> = (0..50)
            .map(|seed| random_halves(&nodes, &mut StdRng::seed_from_u64(seed)))
            .collect();
        assert!(distinct.len() > 1);
    }

    #[test]
    fn ring_nodes_each_see_a_distinct_majority() {
        for_each(majorities_ring, |nodes, grudge| {
            assert!(symmetric(grudge));
            let views: Vec<BTreeSet<Node>> = nodes.iter().map(|n| view(nodes, grudge, n)).collect();
            for v in &views {
                assert!(v.len() >= majority(nodes.len()), "{v:?} in {grudge:?}");
            }
            let distinct: BTreeSet<&BTreeSet<Node>> = views.iter().collect();
            assert_eq!(
                distinct.len(),
                nodes.len(),
                "views not distinct: {grudge:?}"
            );
            if nodes.len() >= 5 {
                // No node sees everyone: every majority is partial.
                assert!(views.iter().all(|v| v.len() < nodes.len()));
            }
        });
    }

    #[test]
    fn ring_on_five_nodes_is_jepsens_exact_ring() {
        let nodes = nodes(5);
        for seed in 0..SEEDS {
            let grudge = majorities_ring(&nodes, &mut StdRng::seed_from_u64(seed));
            for node in &nodes {
                assert_eq!(view(&nodes, &grudge, node).len(), 3);
            }
        }
    }

    #[test]
    fn ring_on_tiny_clusters_is_empty_and_four_is_a_ring() {
        let mut rng = StdRng::seed_from_u64(1);
        assert!(majorities_ring(&nodes(1), &mut rng).is_empty());
        assert!(majorities_ring(&nodes(2), &mut rng).is_empty());
        let four = nodes(4);
        let grudge = majorities_ring(&four, &mut rng);
        let views: BTreeSet<BTreeSet<Node>> =
            four.iter().map(|n| view(&four, &grudge, n)).collect();
        assert_eq!(views.len(), 4);
        assert!(views.iter().all(|v| v.len() == 3));
    }

    #[test]
    fn bridge_node_sees_everyone_and_the_others_see_their_half_and_the_bridge() {
        for_each(bridge, |nodes, grudge| {
            assert!(symmetric(grudge));
            let everyone: BTreeSet<Node> = nodes.iter().cloned().collect();
            let bridges: Vec<&Node> = nodes
                .iter()
                .filter(|n| view(nodes, grudge, n) == everyone)
                .collect();
            assert_eq!(bridges.len(), 1, "{grudge:?}");
            let bridge_node = bridges[0];
            let sides: BTreeSet<BTreeSet<Node>> = nodes
                .iter()
                .filter(|n| *n != bridge_node)
                .map(|n| view(nodes, grudge, n))
                .collect();
            assert_eq!(sides.len(), 2, "{grudge:?}");
            for side in &sides {
                assert!(side.contains(bridge_node));
                assert!(side.len() < nodes.len());
            }
            let (a, b) = (sides.first().unwrap(), sides.last().unwrap());
            let overlap: Vec<&Node> = a.intersection(b).collect();
            assert_eq!(overlap, vec![bridge_node]);
            assert_eq!(a.len() + b.len() - 1, nodes.len());
        });
    }

    #[test]
    fn one_way_is_asymmetric() {
        let grudge = one_way("a", "b");
        assert_eq!(
            links(&grudge),
            BTreeSet::from([("b".to_string(), "a".to_string())])
        );
        let nodes = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            view(&nodes, &grudge, "a"),
            BTreeSet::from(["a".to_string()])
        );
        assert_eq!(
            view(&nodes, &grudge, "b"),
            BTreeSet::from(["a".to_string(), "b".to_string()])
        );
        assert!(one_way("a", "a").is_empty());
        for_each(
            |nodes, rng| Partition::OneWay.grudge(nodes, None, rng),
            |_, grudge| {
                assert_eq!(links(grudge).len(), 1);
                assert!(!symmetric(grudge));
            },
        );
    }

    #[test]
    fn every_topology_respects_the_invariants() {
        for topology in Partition::ALL {
            for_each(
                |nodes, rng| topology.grudge(nodes, Some("n1"), rng),
                |_, g| assert!(!g.is_empty()),
            );
        }
    }

    #[test]
    fn primary_topology_isolates_the_primary_or_a_random_node() {
        let nodes = nodes(5);
        let mut rng = StdRng::seed_from_u64(3);
        assert_eq!(
            Partition::Primary.grudge(&nodes, Some("n4"), &mut rng),
            isolate(&nodes, "n4")
        );
        let fallback = Partition::Primary.grudge(&nodes, Some("zz"), &mut rng);
        assert_eq!(components(&nodes, &fallback).len(), 2);
    }

    #[test]
    fn topology_names_round_trip() {
        for topology in Partition::ALL {
            assert_eq!(topology.name().parse::<Partition>(), Ok(topology));
            let json = serde_json::to_string(&topology).unwrap();
            assert_eq!(json, format!("\"{}\"", topology.name()));
            assert_eq!(serde_json::from_str::<Partition>(&json).unwrap(), topology);
        }
        assert!("partition".parse::<Partition>().is_err());
        let mut rng = StdRng::seed_from_u64(9);
        assert!(Partition::RANDOM_CHOICES.contains(&Partition::random(&mut rng)));
    }

    #[test]
    fn links_point_from_sender_to_dropper() {
        let grudge = isolate(&nodes(3), "n1");
        let expected: BTreeSet<(Node, Node)> =
            [("n1", "n2"), ("n1", "n3"), ("n2", "n1"), ("n3", "n1")]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
        assert_eq!(links(&grudge), expected);
    }
}
