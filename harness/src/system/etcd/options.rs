//! etcd's options: flat test keys prefixed with its name ([`EtcdOptions`],
//! flattened into the test) and flags of `faultline run` ([`EtcdArgs`]).

use serde::{Deserialize, Serialize};

use crate::system::SystemOption;

/// How the register client reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EtcdReads {
    /// A quorum read through the leader (etcd's default range).
    #[default]
    Linearizable,
    /// `serializable: true`: the member answers from its own state, which
    /// may be stale.
    Serializable,
}

/// etcd's options in a test (keys of `--test` files and `test.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct EtcdOptions {
    /// How reads are served.
    pub etcd_reads: EtcdReads,
}

/// etcd's flags of `faultline run`; each overrides its key.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct EtcdArgs {
    /// etcd: linearizable or serializable reads [default: linearizable].
    #[arg(long, value_enum)]
    pub etcd_reads: Option<EtcdReads>,
}

impl EtcdArgs {
    /// Sets every option given as a flag.
    pub fn apply(self, options: &mut EtcdOptions) {
        if let Some(reads) = self.etcd_reads {
            options.etcd_reads = reads;
        }
    }
}

/// The options as `faultline systems` lists them.
pub const OPTIONS: [SystemOption; 1] = [SystemOption {
    key: "etcd-reads",
    values: "linearizable|serializable",
    default: "linearizable",
    about: "quorum reads, or a member's own (maybe stale) state",
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_spec::mode_name;

    #[test]
    fn the_listed_default_is_the_real_default() {
        assert_eq!(
            OPTIONS[0].default,
            mode_name(EtcdOptions::default().etcd_reads)
        );
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;
    use crate::test_spec::TestSpec;

    #[test]
    fn etcd_reads_is_a_flat_test_key() {
        let spec = TestSpec::from_toml("etcd-reads = \"serializable\"\n").unwrap();
        assert_eq!(spec.etcd.etcd_reads, EtcdReads::Serializable);
        assert!(TestSpec::from_toml("etcd-reads = \"stale\"\n").is_err());
    }
}
