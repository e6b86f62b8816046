//! target-node's own options: its modes and the binary that runs the nodes.
//! They keep the names they had before systems had options of their own
//! (`write-concern`, not `target-node-write-concern`): flat keys of the test
//! ([`TargetNodeOptions`], flattened into the test) and flags of
//! `faultline run` ([`TargetNodeArgs`], flattened into its flags).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use target_node::mode::{Election, Fsync, Modes, Reads, Topology, WriteConcern};

use crate::system::SystemOption;
use crate::test_spec::mode_name;

/// target-node's options in a test (keys of `--test` files and `test.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct TargetNodeOptions {
    /// When writes are acknowledged.
    pub write_concern: WriteConcern,
    /// How a primary is chosen.
    pub election: Election,
    /// Where reads are served.
    pub reads: Reads,
    /// Single primary or multi-primary.
    pub topology: Topology,
    /// Whether nodes fsync.
    pub fsync: Fsync,
    /// Launch this binary as the node instead of `faultline node`.
    pub node_bin: Option<PathBuf>,
}

impl Default for TargetNodeOptions {
    /// The strong modes: majority writes and election, linearizable reads,
    /// one primary, fsync always; this executable as the node.
    fn default() -> Self {
        TargetNodeOptions {
            write_concern: WriteConcern::Majority,
            election: Election::Majority,
            reads: Reads::Linearizable,
            topology: Topology::Primary,
            fsync: Fsync::Always,
            node_bin: None,
        }
    }
}

impl TargetNodeOptions {
    /// The nodes' modes.
    pub fn modes(&self) -> Modes {
        Modes {
            write_concern: self.write_concern,
            election: self.election,
            reads: self.reads,
            topology: self.topology,
            fsync: self.fsync,
        }
    }

    /// The part of a test's default name these options give:
    /// `majority-majority-linearizable` (write concern, election, reads).
    pub fn name_part(&self) -> String {
        format!(
            "{}-{}-{}",
            mode_name(self.write_concern),
            mode_name(self.election),
            mode_name(self.reads)
        )
    }
}

/// target-node's flags of `faultline run`; each overrides its key.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TargetNodeArgs {
    /// one, majority or all [default: majority].
    #[arg(long, value_enum)]
    pub write_concern: Option<WriteConcern>,
    /// bully or majority [default: majority].
    #[arg(long, value_enum)]
    pub election: Option<Election>,
    /// local, primary or linearizable [default: linearizable].
    #[arg(long, value_enum)]
    pub reads: Option<Reads>,
    /// primary or multi-primary [default: primary].
    #[arg(long, value_enum)]
    pub topology: Option<Topology>,
    /// always or never [default: always].
    #[arg(long, value_enum)]
    pub fsync: Option<Fsync>,
    /// Launch this binary as the node instead of `faultline node`.
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
}

impl TargetNodeArgs {
    /// Sets every option given as a flag.
    pub fn apply(self, options: &mut TargetNodeOptions) {
        macro_rules! set {
            ($($field:ident),*) => {
                $(if let Some(v) = self.$field { options.$field = v; })*
            };
        }
        set!(write_concern, election, reads, topology, fsync);
        if self.node_bin.is_some() {
            options.node_bin = self.node_bin;
        }
    }
}

/// The options as `faultline systems` lists them.
pub const OPTIONS: [SystemOption; 6] = [
    SystemOption {
        key: "write-concern",
        values: "one|majority|all",
        default: "majority",
        about: "when a write is acknowledged",
    },
    SystemOption {
        key: "election",
        values: "bully|majority",
        default: "majority",
        about: "how a primary is chosen",
    },
    SystemOption {
        key: "reads",
        values: "local|primary|linearizable",
        default: "linearizable",
        about: "where reads are served",
    },
    SystemOption {
        key: "topology",
        values: "primary|multi-primary",
        default: "primary",
        about: "one primary, or every node a primary",
    },
    SystemOption {
        key: "fsync",
        values: "always|never",
        default: "always",
        about: "whether nodes fsync their oplog",
    },
    SystemOption {
        key: "node-bin",
        values: "PATH",
        default: "faultline node",
        about: "the binary that runs a node",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listed_defaults_are_the_real_defaults() {
        let options = TargetNodeOptions::default();
        let by_key = |key: &str| OPTIONS.iter().find(|o| o.key == key).unwrap().default;
        assert_eq!(by_key("write-concern"), mode_name(options.write_concern));
        assert_eq!(by_key("election"), mode_name(options.election));
        assert_eq!(by_key("reads"), mode_name(options.reads));
        assert_eq!(by_key("topology"), mode_name(options.topology));
        assert_eq!(by_key("fsync"), mode_name(options.fsync));
    }
}
