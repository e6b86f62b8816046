//! The node's modes: one enum per knob, named exactly as on the command line
//! (`--write-concern one|majority|all`, ...), in test TOML and in `/status`.

use serde::{Deserialize, Serialize};

/// When a write is acknowledged to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum WriteConcern {
    /// Ack once the primary has applied (and, with `--fsync always`, synced) the
    /// entry; replication is asynchronous.
    One,
    /// Ack once a majority of nodes, counting the primary, hold the entry durably.
    Majority,
    /// Ack once every node holds the entry (synchronous replication: blocks
    /// while any node is down).
    All,
}

/// How a primary is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Election {
    /// The reachable node with the highest numeric id claims the next term,
    /// without asking anyone. Split brain is possible.
    Bully,
    /// Votes from a majority, one vote per term, log up-to-date check; a
    /// primary steps down when it cannot reach a majority.
    Majority,
}

/// Which node serves reads and what it checks first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Reads {
    /// Any node answers from its own state (possibly stale or uncommitted).
    Local,
    /// Only the node that believes it is primary answers, without checking.
    Primary,
    /// The primary confirms its leadership with a majority after the read
    /// arrives and answers from committed state only.
    Linearizable,
}

/// Who accepts writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// A single primary accepts writes and replicates its oplog.
    Primary,
    /// Every node accepts writes and replicates them asynchronously; conflicts
    /// resolve by last-write-wins on (timestamp, node id).
    MultiPrimary,
}

/// When the oplog reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Fsync {
    /// Every batch of entries is written and `fdatasync`ed before it counts as
    /// durable (group commit).
    Always,
    /// Entries sit in the node's own buffer and are written out periodically
    /// (`--flush-interval-ms`) without fsync; a crash loses the buffer.
    Never,
}

/// The combination of modes a node runs with, as reported by `/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Modes {
    /// `--write-concern`.
    pub write_concern: WriteConcern,
    /// `--election`.
    pub election: Election,
    /// `--reads`.
    pub reads: Reads,
    /// `--topology`.
    pub topology: Topology,
    /// `--fsync`.
    pub fsync: Fsync,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_shared_vocabulary() {
        let json = serde_json::to_string(&Modes {
            write_concern: WriteConcern::Majority,
            election: Election::Bully,
            reads: Reads::Linearizable,
            topology: Topology::MultiPrimary,
            fsync: Fsync::Never,
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"write-concern":"majority","election":"bully","reads":"linearizable","topology":"multi-primary","fsync":"never"}"#
        );
        use clap::ValueEnum;
        assert_eq!(
            Topology::MultiPrimary
                .to_possible_value()
                .unwrap()
                .get_name(),
            "multi-primary"
        );
    }
}
