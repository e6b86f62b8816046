//! How PostgreSQL's programs (`initdb`, `postgres`) are launched: as which
//! user, and inside which namespaces.
//!
//! # The user
//! PostgreSQL refuses to run as root. A root harness runs it as Debian's
//! `postgres` system user (made by the `postgresql-common` package), or,
//! where there is none, as `faultline-pg`, a system user it creates once
//! with `useradd --system` (and says so on stderr and in the log). A
//! harness that is not root runs it as itself.
//!
//! # The wrapper
//! Every program runs, inside the node's PID namespace
//! ([`crate::containment`]), as
//! `unshare --ipc --mount -- sh -c 'mount -t tmpfs ... /dev/shm && exec "$@"'
//! sh setpriv --reuid U --regid U --init-groups --pdeathsig SIGKILL --
//! [env LD_PRELOAD=libfaketime ...] PROGRAM ARGS`:
//! - its own IPC namespace, so its System V shared memory (the main
//!   segment, and its dynamic shared memory, `dynamic_shared_memory_type =
//!   sysv`), left behind by a SIGKILLed postmaster, vanishes with it;
//! - its own `/dev/shm` (a tmpfs in its own mount namespace), so
//!   libfaketime's shared memory objects, which a SIGKILLed process leaves
//!   in `/dev/shm`, vanish with it too (and two runs' postmasters, both
//!   pid 1 of their namespaces, never share a libfaketime object name).
//!   A harness that is not root runs `unshare --user --map-current-user
//!   --ipc -- setpriv --pdeathsig SIGKILL -- ...` instead: `mount` needs
//!   root in the user namespace and PostgreSQL refuses it, so there a
//!   SIGKILLed run with clock faults can leave libfaketime's
//!   `/dev/shm/faketime_*` behind;
//! - `setpriv --pdeathsig SIGKILL` after the user change: a change of user
//!   clears the parent-death signal that `unshare --kill-child` armed, and
//!   the postmaster would outlive a SIGKILLed harness without it;
//! - libfaketime preloaded on the program only (not on the wrappers), and
//!   only when the test has clock faults.
//!
//! Every wrapper `exec`s, so the postmaster is the PID namespace's init.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::system::db::DbError;

/// Where Debian's `postgresql-15` installs its programs.
pub const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// The user a root harness creates when there is no `postgres` user.
pub const CREATED_USER: &str = "faultline-pg";

/// Mounts a private tmpfs on `/dev/shm`, then runs its arguments.
const PRIVATE_SHM: &str =
    "mount -t tmpfs -o mode=1777,size=256m faultline-shm /dev/shm && exec \"$@\"";

/// [`PRIVATE_SHM`], and a `/proc` of the node's own PID namespace.
const PRIVATE_SHM_AND_PROC: &str = "mount -t tmpfs -o mode=1777,size=256m faultline-shm /dev/shm \
     && mount -t proc faultline-proc /proc && exec \"$@\"";

/// The unprivileged user PostgreSQL runs as (when the harness is root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerUser {
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
}

impl ServerUser {
    /// The user to run as: `None` when the harness is not root (PostgreSQL
    /// runs as the harness's own user); else `postgres`, else
    /// [`CREATED_USER`], created if missing.
    pub fn pick() -> Result<Option<ServerUser>, DbError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        if let Some(user) = lookup("postgres")? {
            return Ok(Some(user));
        }
        if let Some(user) = lookup(CREATED_USER)? {
            return Ok(Some(user));
        }
        create(CREATED_USER)?;
        lookup(CREATED_USER)?
            .map(Some)
            .ok_or_else(|| DbError::Config(format!("useradd made no user {CREATED_USER}")))
    }
}

/// The user `name` from the passwd database (`getent passwd`).
fn lookup(name: &str) -> Result<Option<ServerUser>, DbError> {
    let output = Command::new("getent")
        .args(["passwd", name])
        .output()
        .map_err(|e| DbError::Config(format!("cannot run getent passwd {name}: {e}")))?;
    if !output.status.success() {
        return Ok(None);
    }
    let line = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = line.trim().split(':').collect();
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u32>().ok());
    match (number(2), number(3)) {
        (Some(uid), Some(gid)) => Ok(Some(ServerUser {
            name: name.to_string(),
            uid,
            gid,
        })),
        _ => Err(DbError::Config(format!(
            "getent passwd {name}: unreadable {line:?}"
        ))),
    }
}

/// Creates the system user `name` (no home, no login shell).
fn create(name: &str) -> Result<(), DbError> {
    let note = format!(
        "faultline: PostgreSQL refuses to run as root and there is no postgres user: \
         creating the system user {name} (useradd --system)"
    );
    eprintln!("{note}");
    tracing::warn!("{note}");
    let status = Command::new("useradd")
        .args(["--system", "--user-group", "--no-create-home"])
        .args(["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"])
        .arg(name)
        .status()
        .map_err(|e| DbError::Config(format!("cannot run useradd {name}: {e}")))?;
    match status.success() {
        true => Ok(()),
        false => Err(DbError::Config(format!("useradd {name} failed: {status}"))),
    }
}

/// Clock faults through libfaketime: the library and the file it reads the
/// offset from.
#[derive(Clone, Debug)]
pub struct Faketime {
    /// The preloaded library.
    pub library: PathBuf,
    /// The timestamp file (`+0`, `-2.5`: seconds).
    pub file: PathBuf,
}

/// The PostgreSQL program `program` (in [`BIN_DIR`] of `bin_dir`) with
/// `args`, wrapped as the module docs say.
pub fn command(
    bin_dir: &Path,
    program: &str,
    args: &[String],
    user: Option<&ServerUser>,
    faketime: Option<&Faketime>,
) -> Command {
    wrapped(&bin_dir.join(program), args, user, faketime, Proc::Host)
}

/// Which `/proc` a wrapped program sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proc {
    /// The host's (the node's pids are namespace-local, `/proc`'s are
    /// not: enough for a program that never looks a pid up there).
    Host,
    /// One mounted for the node's PID namespace (root only, in the
    /// wrapper's mount namespace): Patroni finds its postmaster by the pid
    /// in `postmaster.pid` through `/proc`, and with the host's it would
    /// look at some other process.
    Own,
}

/// Any program that runs PostgreSQL (`postgres` itself, or Patroni, which
/// forks it) with `args`, wrapped as the module docs say.
pub fn wrapped(
    program: &Path,
    args: &[String],
    user: Option<&ServerUser>,
    faketime: Option<&Faketime>,
    proc: Proc,
) -> Command {
    let mut command = Command::new("unshare");
    let script = match proc {
        Proc::Host => PRIVATE_SHM,
        Proc::Own => PRIVATE_SHM_AND_PROC,
    };
    match user {
        Some(_) => command.args(["--ipc", "--mount", "--", "sh", "-c", script, "sh"]),
        // Not root: mount(8) refuses a user that is not root in its user
        // namespace, and PostgreSQL refuses one that is, so no private
        // /dev/shm (see the module docs).
        None => command.args(["--user", "--map-current-user", "--ipc", "--"]),
    };
    command.arg("setpriv");
    if let Some(user) = user {
        let name = &user.name;
        command.args([format!("--reuid={name}"), format!("--regid={name}")]);
        command.arg("--init-groups");
    }
    command.args(["--pdeathsig", "SIGKILL", "--"]);
    if let Some(faketime) = faketime {
        command.arg("env");
        command.arg(format!("LD_PRELOAD={}", faketime.library.display()));
        command.arg(format!(
            "FAKETIME_TIMESTAMP_FILE={}",
            faketime.file.display()
        ));
        // Read the offset on every call, so a shift takes effect at once.
        command.arg("FAKETIME_NO_CACHE=1");
        // Skew the wall clock only; timeouts and timers keep real time.
        command.arg("FAKETIME_DONT_FAKE_MONOTONIC=1");
    }
    command.arg(program).args(args);
    command
}

/// Makes `dir` (created if missing) belong to `user`, mode 0700, as
/// `initdb` and `postgres` want their directories.
pub fn own_dir(dir: &Path, user: Option<&ServerUser>) -> Result<(), DbError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |e| crate::system::process::io_error(dir, e);
    std::fs::create_dir_all(dir).map_err(io)?;
    if let Some(user) = user {
        std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid)).map_err(io)?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)
}

/// Checks that `user` can reach `dir`: every directory above it must let
/// others through (`o+x`), as the server's user is neither their owner nor
/// in their group (a `tempfile` directory, mode 0700, does not).
pub fn check_reachable(dir: &Path, user: Option<&ServerUser>) -> Result<(), DbError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(user) = user else { return Ok(()) };
    for ancestor in dir.ancestors().skip(1) {
        let meta = std::fs::metadata(ancestor)
            .map_err(|e| crate::system::process::io_error(ancestor, e))?;
        let mode = meta.permissions().mode();
        let through = mode & 0o001 != 0
            || (meta.uid() == user.uid && mode & 0o100 != 0)
            || (meta.gid() == user.gid && mode & 0o010 != 0);
        if !through {
            return Err(DbError::Config(format!(
                "PostgreSQL runs as user {} (it refuses root), which cannot enter {} \
                 (mode {:o}): put the store where it can (e.g. /tmp/pg-store), or chmod o+x it",
                user.name,
                ancestor.display(),
                mode & 0o7777
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(command: &Command) -> Vec<String> {
        std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_root_harness_runs_the_program_as_the_user_with_a_parent_death_signal() {
        let user = ServerUser {
            name: "postgres".into(),
            uid: 101,
            gid: 104,
        };
        let args = vec!["-D".to_string(), "/run/data".to_string()];
        let command = command(Path::new(BIN_DIR), "postgres", &args, Some(&user), None);
        let line = words(&command).join(" ");
        assert!(line.starts_with("unshare --ipc --mount -- sh -c"), "{line}");
        assert!(line.contains("setpriv --reuid=postgres --regid=postgres --init-groups --pdeathsig SIGKILL -- /usr/lib/postgresql/15/bin/postgres -D /run/data"), "{line}");
        assert!(!line.contains("LD_PRELOAD"), "{line}");
    }

    #[test]
    fn a_directory_others_cannot_enter_is_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("store/run");
        std::fs::create_dir_all(&inner).unwrap();
        let user = ServerUser {
            name: "nobody-here".into(),
            uid: 65534,
            gid: 65534,
        };
        let closed = std::fs::Permissions::from_mode(0o700);
        std::fs::set_permissions(dir.path(), closed).unwrap();
        let err = check_reachable(&inner, Some(&user))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        assert!(err.contains("mode 700"), "{err}");
        let open = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(dir.path(), open).unwrap();
        check_reachable(&inner, Some(&user)).unwrap();
        check_reachable(&inner, None).unwrap();
    }

    #[test]
    fn libfaketime_is_preloaded_on_the_program_alone() {
        let faketime = Faketime {
            library: PathBuf::from("/lib/ft.so"),
            file: PathBuf::from("/run/n1.faketime"),
        };
        let command = command(Path::new("/bin"), "postgres", &[], None, Some(&faketime));
        let line = words(&command).join(" ");
        assert!(
            line.starts_with("unshare --user --map-current-user --ipc -- setpriv"),
            "{line}"
        );
        assert!(
            line.contains("--pdeathsig SIGKILL -- env LD_PRELOAD=/lib/ft.so FAKETIME_TIMESTAMP_FILE=/run/n1.faketime"),
            "{line}"
        );
        assert!(line.ends_with("/bin/postgres"), "{line}");
        assert!(
            command.get_envs().next().is_none(),
            "the wrappers get no preload"
        );
    }
}
