//! Consistency models and the anomalies each proscribes, after Elle's
//! `elle.consistency-model`: the one place this hierarchy is written.
//!
//! Two tables. [`IMPLIES`]: an anomaly and the anomalies its presence implies
//! (G0 is also a G1c; a G-single is also a G-nonadjacent, whose cycle is also
//! a G2-item; any anomaly without process or realtime edges is also its
//! `-process` variant, and a `-process` one its `-realtime` variant, since a
//! process is one sequence in real time). [`MODELS`]: a model, the weaker
//! models it implies, and the anomalies it proscribes directly.
//!
//! A found anomaly rules out every model that proscribes it or anything it
//! implies, and every model implying those. Elle's graph has more models
//! (consistent-view, cursor-stability, read-atomic, update-atomic, ...);
//! only the ones we offer are here, and each carries the proscriptions it
//! inherits through Elle's intermediate models (marked "via"). Without
//! predicates, Elle's `G-single-item` / `G-nonadjacent-item` are our
//! `G-single` / `G-nonadjacent`; Elle's names are accepted as aliases.
//! Elle's `X-cycle-exists` kinds are what a cycle search that ran out of
//! time still proves (see `super::cycle::cycle_exists`).

use std::collections::BTreeSet;

/// Anomaly → the anomalies its presence implies (Elle's `implied-anomalies`,
/// restricted to what we detect and the classes they roll up into).
pub(crate) const IMPLIES: &[(&str, &[&str])] = &[
    ("G0", &["G1c", "G0-process"]),
    ("G0-process", &["G1c-process", "G0-realtime"]),
    ("G0-realtime", &["G1c-realtime"]),
    ("G1a", &["G1"]),
    ("G1b", &["G1"]),
    ("G1c", &["G1", "G1c-process"]),
    ("G1c-process", &["G1-process", "G1c-realtime"]),
    ("G1c-realtime", &["G1-realtime"]),
    ("G1", &["G1-process"]),
    ("G1-process", &["G1-realtime"]),
    ("G1-realtime", &[]),
    ("G-single", &["G-nonadjacent", "G-single-process"]),
    (
        "G-single-process",
        &["G-nonadjacent-process", "G-single-realtime"],
    ),
    ("G-single-realtime", &["G-nonadjacent-realtime"]),
    ("G-nonadjacent", &["G2-item", "G-nonadjacent-process"]),
    (
        "G-nonadjacent-process",
        &["G2-item-process", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent-realtime", &["G2-item-realtime"]),
    ("G2-item", &["G2", "G2-item-process"]),
    ("G2-item-process", &["G2-process", "G2-item-realtime"]),
    ("G2-item-realtime", &["G2-realtime"]),
    ("G2", &["G2-process"]),
    ("G2-process", &["G2-realtime"]),
    ("G2-realtime", &[]),
    ("lost-update", &["G2-item"]),
    ("incompatible-order", &["G1a"]),
    ("dirty-update", &["G1a"]),
    ("future-read", &["G1c"]),
    ("internal", &[]),
    ("duplicate-elements", &[]),
    ("garbage-read", &[]),
];

/// A consistency model, the models it implies, the anomalies it proscribes.
pub(crate) struct Model {
    pub name: &'static str,
    pub implies: &'static [&'static str],
    pub proscribes: &'static [&'static str],
}

const fn model(
    name: &'static str,
    implies: &'static [&'static str],
    proscribes: &'static [&'static str],
) -> Model {
    Model {
        name,
        implies,
        proscribes,
    }
}

/// The models, weakest first (Elle's `models` and
/// `direct-proscribed-anomalies`, friendly names).
pub(crate) const MODELS: &[Model] = &[
    // Adya PL-1; garbage-read (a value no txn wrote) is ours.
    model(
        "read-uncommitted",
        &[],
        &[
            "G0",
            "duplicate-elements",
            "garbage-read",
            "PL-1-cycle-exists",
        ],
    ),
    // Adya PL-2.
    model(
        "read-committed",
        &["read-uncommitted"],
        &["G1", "PL-2-cycle-exists"],
    ),
    // Adya PL-2.99; lost-update via cursor-stability (Bailis).
    model(
        "repeatable-read",
        &["read-committed"],
        &["G1", "G2-item", "lost-update", "PL-2.99-cycle-exists"],
    ),
    // Adya PL-SI, generalized: G-nonadjacent (Cerone, Gotsman); lost-update
    // via cursor-stability and update-atomic; future-read via read-atomic.
    model(
        "snapshot-isolation",
        &["read-committed"],
        &[
            "internal",
            "future-read",
            "G1",
            "G-nonadjacent",
            "lost-update",
            "PL-SI-cycle-exists",
        ],
    ),
    // Daudjee's and Cerone's strong session SI.
    model(
        "strong-session-snapshot-isolation",
        &["snapshot-isolation"],
        &[
            "G1-process",
            "G-nonadjacent-process",
            "strong-session-snapshot-isolation-cycle-exists",
        ],
    ),
    // Daudjee's strong SI.
    model(
        "strong-snapshot-isolation",
        &["strong-session-snapshot-isolation"],
        &[
            "G1-realtime",
            "G-nonadjacent-realtime",
            "strong-snapshot-isolation-cycle-exists",
        ],
    ),
    // Adya PL-3 (conflict serializability); internal per Cerone.
    model(
        "serializable",
        &["repeatable-read", "snapshot-isolation"],
        &["internal", "G1", "G2", "PL-3-cycle-exists"],
    ),
    model(
        "strong-session-serializable",
        &["serializable", "strong-session-snapshot-isolation"],
        &[
            "G1-process",
            "G2-process",
            "strong-session-serializable-cycle-exists",
        ],
    ),
    // Adya PL-SS.
    model(
        "strict-serializable",
        &[
            "serializable",
            "strong-snapshot-isolation",
            "strong-session-serializable",
        ],
        &["G1", "G1c-realtime", "G2-realtime", "PL-SS-cycle-exists"],
    ),
];

/// Other names for models and anomalies (Elle's canonical and item names).
const ALIASES: &[(&str, &str)] = &[
    ("PL-1", "read-uncommitted"),
    ("PL-2", "read-committed"),
    ("PL-2.99", "repeatable-read"),
    ("PL-SI", "snapshot-isolation"),
    ("PL-3", "serializable"),
    ("conflict-serializable", "serializable"),
    ("PL-SS", "strict-serializable"),
    ("strong-serializable", "strict-serializable"),
    ("G-single-item", "G-single"),
    ("G-single-item-process", "G-single-process"),
    ("G-single-item-realtime", "G-single-realtime"),
    ("G-nonadjacent-item", "G-nonadjacent"),
    ("G-nonadjacent-item-process", "G-nonadjacent-process"),
    ("G-nonadjacent-item-realtime", "G-nonadjacent-realtime"),
];

fn alias(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(a, _)| *a == name)
        .map_or(name, |(_, n)| n)
}

/// The model called `name` (or an alias of it).
pub(crate) fn known_model(name: &str) -> Option<&'static str> {
    let name = alias(name);
    MODELS.iter().find(|m| m.name == name).map(|m| m.name)
}

/// Every anomaly kind named in the tables.
fn all_anomalies() -> impl Iterator<Item = &'static str> {
    IMPLIES
        .iter()
        .map(|(a, _)| *a)
        .chain(MODELS.iter().flat_map(|m| m.proscribes.iter().copied()))
}

/// The anomaly kind called `name` (or an alias of it).
pub(crate) fn known_anomaly(name: &str) -> Option<&'static str> {
    let name = alias(name);
    all_anomalies().find(|a| *a == name)
}

/// `kind` and every anomaly it implies.
pub(crate) fn implied(kind: &str) -> BTreeSet<&str> {
    let mut out = BTreeSet::from([kind]);
    let mut frontier = vec![kind];
    while let Some(k) = frontier.pop() {
        let next = IMPLIES
            .iter()
            .find(|(a, _)| *a == k)
            .map_or(&[][..], |e| e.1);
        for &n in next {
            if out.insert(n) {
                frontier.push(n);
            }
        }
    }
    out
}

/// The model called `name`.
fn get(name: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.name == name)
}

/// Whether model `strong` implies model `weak` (or is it).
pub(crate) fn implies_model(strong: &str, weak: &str) -> bool {
    strong == weak || get(strong).is_some_and(|m| m.implies.iter().any(|i| implies_model(i, weak)))
}

/// The models ruled out by the presence of `kinds`: those proscribing one of
/// them or anything they imply, and every model implying those.
pub(crate) fn ruled_out<'a>(kinds: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'static str> {
    let all: BTreeSet<&str> = kinds.into_iter().flat_map(implied).collect();
    let direct: Vec<&str> = MODELS
        .iter()
        .filter(|m| m.proscribes.iter().any(|p| all.contains(p)))
        .map(|m| m.name)
        .collect();
    MODELS
        .iter()
        .filter(|m| direct.iter().any(|d| implies_model(m.name, d)))
        .map(|m| m.name)
        .collect()
}

/// Whether the presence of `kind` is forbidden by the requested models or
/// implies a requested anomaly.
pub(crate) fn forbidden(kind: &str, models: &BTreeSet<&str>, anomalies: &BTreeSet<&str>) -> bool {
    let out = ruled_out([kind]);
    models.iter().any(|m| out.contains(m)) || implied(kind).iter().any(|a| anomalies.contains(a))
}

/// The hierarchy as the Markdown table in README.md ("Consistency models").
pub(crate) fn markdown_table() -> String {
    let mut out = String::from(
        "| model | implies | proscribes (besides what the models it implies do) |\n|---|---|---|\n",
    );
    for m in MODELS {
        let list = |v: &[&str]| {
            v.iter()
                .map(|x| format!("`{x}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            m.name,
            list(m.implies),
            list(m.proscribes)
        ));
    }
    out.push_str("\n| anomaly | implies |\n|---|---|\n");
    for (a, i) in IMPLIES {
        let list: Vec<String> = i.iter().map(|x| format!("`{x}`")).collect();
        out.push_str(&format!("| `{a}` | {} |\n", list.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_in_the_tables_is_a_known_model_or_anomaly() {
        for m in MODELS {
            for i in m.implies {
                assert!(known_model(i).is_some(), "{i}");
            }
        }
        for (_, i) in IMPLIES {
            for a in *i {
                assert!(IMPLIES.iter().any(|(k, _)| k == a), "{a} has no row");
            }
        }
    }

    #[test]
    fn write_skew_rules_out_repeatable_read_and_serializable_but_not_snapshot_isolation() {
        let out = ruled_out(["G2-item"]);
        assert!(out.contains("repeatable-read") && out.contains("serializable"));
        assert!(!out.contains("snapshot-isolation"));
        assert!(!out.contains("strong-snapshot-isolation"));
    }

    #[test]
    fn g_nonadjacent_rules_out_snapshot_isolation_and_repeatable_read() {
        let out = ruled_out(["G-nonadjacent"]);
        assert!(out.contains("snapshot-isolation") && out.contains("repeatable-read"));
        assert!(!out.contains("read-committed"));
    }

    #[test]
    fn process_anomalies_rule_out_the_strong_session_models_only() {
        let out = ruled_out(["G-single-process"]);
        assert!(out.contains("strong-session-snapshot-isolation"));
        assert!(out.contains("strict-serializable"));
        assert!(!out.contains("serializable") && !out.contains("snapshot-isolation"));
    }

    #[test]
    fn elle_names_are_aliases() {
        assert_eq!(known_anomaly("G-single-item"), Some("G-single"));
        assert_eq!(known_model("PL-3"), Some("serializable"));
        assert_eq!(known_anomaly("G2"), Some("G2"));
        assert_eq!(known_anomaly("G3"), None);
    }

    #[test]
    fn asking_for_g1_forbids_g1a_g1b_and_g1c_but_not_g2() {
        let none = BTreeSet::new();
        let g1 = BTreeSet::from(["G1"]);
        for k in ["G1a", "G1b", "G1c", "G0", "dirty-update"] {
            assert!(forbidden(k, &none, &g1), "{k}");
        }
        assert!(!forbidden("G2-item", &none, &g1));
    }
}
