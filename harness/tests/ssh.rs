//! Remote hosts over the real OpenSSH: hosts of our own (network
//! namespaces running Debian's sshd, `support::hosts`), the controller in a
//! private namespace of its own. The group: `cargo test -p harness --test
//! ssh -- --ignored` (root, openssh-server, openssh-client).

mod support;

use std::fs::{self, File};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::ssh::{Control, Host, SshError, SshOptions};

const LIMIT: Duration = Duration::from_secs(10);

fn connect(
    hosts: &support::hosts::TestHosts,
    i: usize,
    log: &Arc<Mutex<File>>,
    dir: &Path,
) -> Control {
    let host: Host = format!("root@{}", hosts.addrs[i]).parse().unwrap();
    let options = SshOptions {
        key: Some(hosts.key.clone()),
        user: None,
        options: hosts.ssh_options(),
    };
    Control::connect(host, options, dir, log.clone(), LIMIT, |mut c| c.spawn())
        .unwrap_or_else(|e| panic!("connect to host {i}: {e}\n{}", hosts.sshd_logs()))
}

#[test]
#[ignore = "ssh group: needs root, openssh-server and openssh-client"]
fn each_host_gets_one_master_that_runs_bounded_logged_commands_and_uploads_once() {
    let hosts = hosts_or_skip!(3);
    hosts.enter_controller();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("control.log");
    let log = Arc::new(Mutex::new(File::create(&log_path).unwrap()));
    let controls: Vec<Control> = (0..3)
        .map(|i| connect(&hosts, i, &log, dir.path()))
        .collect();

    for (i, control) in controls.iter().enumerate() {
        let out = control.run("ip -4 -br addr show dev eth0", LIMIT).unwrap();
        assert!(
            out.stdout.contains(&hosts.addrs[i].to_string()),
            "host {i} answered from {}",
            out.stdout
        );
    }
    let started = std::time::Instant::now();
    let slow = controls[0].run("sleep 29.75", Duration::from_millis(500));
    assert!(matches!(slow, Err(SshError::Timeout { .. })), "{slow:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded: {:?}",
        started.elapsed()
    );
    let lingering = controls[0]
        .run("sleep 2; pgrep -af 'sleep 29[.]75' || true", LIMIT)
        .unwrap();
    assert!(
        !lingering.stdout.contains("sleep 29.75"),
        "the host still runs it: {}",
        lingering.stdout
    );
    let failed = controls[1]
        .run("echo broken >&2; exit 3", LIMIT)
        .unwrap_err();
    assert!(failed.to_string().contains("broken"), "{failed}");

    let remote = format!("/tmp/{}-upload", hosts.host_ns(2));
    let exe = Path::new(support::FAULTLINE);
    assert!(
        controls[2].upload(exe, &remote, LIMIT).unwrap(),
        "first upload is sent"
    );
    assert!(
        !controls[2].upload(exe, &remote, LIMIT).unwrap(),
        "same hash: not sent again"
    );
    let same = controls[2].run(
        &format!("cmp {remote} {} && test -x {remote}", exe.display()),
        LIMIT,
    );
    let _ = fs::remove_file(&remote);
    same.expect("the uploaded copy is the executable, still executable");

    drop(controls);
    let text = fs::read_to_string(&log_path).unwrap();
    for needle in [
        "master to root@10.77.0.2 up",
        "$ sleep 29.75",
        "killed at its time limit",
        "stderr: broken",
        "not sent",
    ] {
        assert!(
            text.contains(needle),
            "control log lacks {needle:?}:\n{text}"
        );
    }
    let left = support::processes::processes_mentioning(dir.path());
    assert!(
        left.is_empty(),
        "ssh processes left after the masters closed: {left:?}"
    );
}

#[test]
#[ignore = "ssh group: needs root, openssh-server and openssh-client"]
fn a_host_that_refuses_our_key_fails_to_connect_saying_what_ssh_said() {
    let hosts = hosts_or_skip!(1);
    hosts.enter_controller();
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Mutex::new(
        File::create(dir.path().join("control.log")).unwrap(),
    ));
    let stranger = dir.path().join("stranger");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .unwrap();
    assert!(made.success());
    let host: Host = format!("root@{}", hosts.addrs[0]).parse().unwrap();
    let options = SshOptions {
        key: Some(stranger),
        user: None,
        options: hosts.ssh_options(),
    };
    let err = Control::connect(host, options, dir.path(), log, LIMIT, |mut c| c.spawn())
        .err()
        .expect("a user without the key is refused");
    let text = err.to_string();
    assert!(
        text.contains("root@10.77.0.2") && text.contains("Permission denied"),
        "{text}"
    );
}
