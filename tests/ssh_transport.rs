//! rafter's SSH transport against real OpenSSH servers: the test bed's hosts
//! (`scripts/testbed.sh`, systemd-nspawn hosts in network namespaces). Host keys, every way
//! of authenticating, sudo, the bastion, uploads, errors that name the host, and one
//! connection carrying every command.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::testbed::{DEFAULT_HOSTS, Testbed, target};
use rafter::ssh::{HostKeyPolicy, Session, SshError};

fn testbed() -> Testbed {
    Testbed::up(&DEFAULT_HOSTS)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

#[tokio::test]
async fn commands_run_with_their_input_status_and_output() {
    let testbed = testbed();
    let session = Session::connect(&target("cp-1", "10.250.0.11", "root"), &testbed.options())
        .await
        .unwrap();
    let output = session.run("hostname", b"").await.unwrap();
    assert!(output.success());
    assert_eq!(text(&output.stdout), "cp-1");

    let output = session
        .run_as_root("tr a-z A-Z; echo oops >&2; exit 3", b"shout")
        .await
        .unwrap();
    assert_eq!(output.status, Some(3));
    assert_eq!(text(&output.stdout), "SHOUT");
    assert_eq!(text(&output.stderr), "oops");

    let error = session
        .run_checked("the failing step", "echo 'no such thing' >&2; exit 7", b"")
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("cp-1 (root@10.250.0.11:22)"), "{message}");
    assert!(message.contains("the failing step"), "{message}");
    assert!(message.contains("exit status 7"), "{message}");
    assert!(message.contains("no such thing"), "{message}");
}

#[tokio::test]
async fn uploads_are_atomic_with_their_mode_and_large_ones_arrive_whole() {
    let testbed = testbed();
    let session = Session::connect(&target("cp-2", "10.250.0.12", "root"), &testbed.options())
        .await
        .unwrap();
    let content: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    session
        .upload("/var/tmp/rafter-test/blob", &content, 0o640)
        .await
        .unwrap();
    let seen = testbed.ssh_ok(
        "cp-2",
        "stat -c %a /var/tmp/rafter-test/blob; sha256sum < /var/tmp/rafter-test/blob; \
         ls /var/tmp/rafter-test",
    );
    let expected = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(&content))
    };
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(lines[0], "640");
    assert!(lines[1].starts_with(&expected), "{seen}");
    assert_eq!(lines[2..], ["blob"], "no temporary file is left: {seen}");
    // Not on the other hosts: each host has its own filesystem.
    assert!(
        !testbed
            .ssh("cp-3", "test -e /var/tmp/rafter-test/blob")
            .status
            .success()
    );
}

#[tokio::test]
async fn one_connection_carries_every_command() {
    let testbed = testbed();
    let accepted = || {
        testbed
            .ssh_ok(
                "cp-3",
                "journalctl -u ssh --no-pager -o cat | grep -c 'Accepted publickey for rafter ' || true",
            )
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    let before = accepted();
    // As `rafter`, whom no other test logs in as on cp-3, to count only this test's logins.
    let session = Session::connect(&target("cp-3", "10.250.0.13", "rafter"), &testbed.options())
        .await
        .unwrap();
    // More at once than sshd's MaxSessions (10) allows on one connection.
    let inputs: Vec<Vec<u8>> = (0..20).map(|i| i.to_string().into_bytes()).collect();
    let runs = inputs.iter().map(|input| session.run_as_root("cat", input));
    let outputs = futures::future::join_all(runs).await;
    for (i, output) in outputs.into_iter().enumerate() {
        assert_eq!(text(&output.unwrap().stdout), i.to_string());
    }
    session.close().await;
    assert_eq!(accepted() - before, 1, "one login for 20 commands");
}

#[tokio::test]
async fn a_non_root_user_runs_as_root_through_sudo() {
    let testbed = testbed();
    let session = Session::connect(
        &target("worker-1", "10.250.0.21", "rafter"),
        &testbed.options(),
    )
    .await
    .unwrap();
    assert_eq!(
        text(&session.run("id -un", b"").await.unwrap().stdout),
        "rafter"
    );
    let output = session
        .run_as_root("id -u; cat", b"via sudo")
        .await
        .unwrap();
    assert!(output.success(), "{}", output.stderr_text());
    assert_eq!(text(&output.stdout), "0\nvia sudo");

    // Without passwordless sudo the error says what to fix.
    testbed.ssh_ok("worker-1", "mv /etc/sudoers.d/rafter /root/sudoers.rafter");
    let refused = session.run_as_root("true", b"").await;
    testbed.ssh_ok("worker-1", "mv /root/sudoers.rafter /etc/sudoers.d/rafter");
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("worker-1"), "{message}");
    assert!(message.contains("passwordless sudo"), "{message}");
}

#[tokio::test]
async fn an_unknown_host_is_refused_unless_trust_on_first_use_is_chosen() {
    let testbed = testbed();
    let dir = tempfile::tempdir().unwrap();
    let mut options = testbed.options();
    options.known_hosts = dir.path().join("known_hosts");
    let cp1 = target("cp-1", "10.250.0.11", "root");

    let error = Session::connect(&cp1, &options).await.err().unwrap();
    assert!(matches!(error, SshError::UnknownHostKey { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("cp-1"), "{message}");
    assert!(message.contains("SHA256:"), "{message}");
    assert!(message.contains("--accept-new-host-keys"), "{message}");
    assert!(
        !options.known_hosts.exists(),
        "strict checking records nothing"
    );

    options.host_key_policy = HostKeyPolicy::AcceptNew;
    Session::connect(&cp1, &options).await.unwrap();
    let recorded = std::fs::read_to_string(&options.known_hosts).unwrap();
    let published = std::fs::read_to_string(testbed.known_hosts()).unwrap();
    let line = published
        .lines()
        .find(|line| line.starts_with("10.250.0.11 "))
        .unwrap();
    let key_of = |line: &str| line.split_whitespace().nth(2).map(str::to_string);
    assert_eq!(recorded.lines().count(), 1, "{recorded}");
    assert_eq!(key_of(&recorded), key_of(line));

    // Recorded once, the host is known even to strict checking.
    options.host_key_policy = HostKeyPolicy::Strict;
    Session::connect(&cp1, &options).await.unwrap();
}

#[tokio::test]
async fn a_changed_host_key_is_refused_whatever_the_policy() {
    let testbed = testbed();
    let dir = tempfile::tempdir().unwrap();
    let published = std::fs::read_to_string(testbed.known_hosts()).unwrap();
    // cp-2's key recorded under cp-1's address: what a machine in the middle would look like.
    let cp2_key = published
        .lines()
        .find(|line| line.starts_with("10.250.0.12 "))
        .unwrap()
        .replacen("10.250.0.12", "10.250.0.11", 1);
    let mut options = testbed.options();
    options.known_hosts = dir.path().join("known_hosts");
    std::fs::write(&options.known_hosts, format!("# comment\n{cp2_key}\n")).unwrap();
    for policy in [HostKeyPolicy::Strict, HostKeyPolicy::AcceptNew] {
        options.host_key_policy = policy;
        let error = Session::connect(&target("cp-1", "10.250.0.11", "root"), &options)
            .await
            .err()
            .unwrap();
        let message = error.to_string();
        assert!(
            matches!(error, SshError::HostKeyMismatch { line: 2, .. }),
            "{message}"
        );
        assert!(message.contains("HOST KEY MISMATCH for cp-1"), "{message}");
    }
}

fn keygen(path: &std::path::Path, passphrase: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", passphrase, "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn authentication_failures_name_the_host_the_user_and_the_key() {
    let testbed = testbed();
    let dir = tempfile::tempdir().unwrap();
    let stranger = dir.path().join("stranger");
    keygen(&stranger, "");
    let mut options = testbed.options();
    options.identity_files = vec![stranger.clone()];
    let error = Session::connect(&target("cp-1", "10.250.0.11", "root"), &options)
        .await
        .err()
        .unwrap();
    let message = error.to_string();
    assert!(matches!(error, SshError::AuthFailed { .. }), "{message}");
    assert!(message.contains("cp-1 (root@10.250.0.11:22)"), "{message}");
    assert!(message.contains("`root`"), "{message}");
    assert!(message.contains("stranger"), "{message}");

    let locked = dir.path().join("locked");
    keygen(&locked, "a passphrase");
    options.identity_files = vec![locked];
    let message = Session::connect(&target("cp-1", "10.250.0.11", "root"), &options)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("encrypted"), "{message}");
    assert!(message.contains("ssh-agent"), "{message}");

    options.identity_files.clear();
    let error = Session::connect(&target("cp-1", "10.250.0.11", "root"), &options)
        .await
        .err()
        .unwrap();
    assert!(matches!(error, SshError::NoIdentity), "{error}");
}

#[tokio::test]
async fn the_agents_identities_are_used() {
    let testbed = testbed();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let added = Command::new("ssh-add")
        .arg(testbed.key())
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", text(&added.stderr));
    // SAFETY of the test: this test binary reads SSH_AUTH_SOCK nowhere else.
    unsafe { std::env::set_var("SSH_AUTH_SOCK", &socket) };
    let mut options = testbed.options();
    options.identity_files.clear();
    options.use_agent = true;
    let connected = Session::connect(&target("cp-2", "10.250.0.12", "root"), &options).await;
    let _ = agent.kill();
    let _ = agent.wait();
    let session = connected.unwrap();
    assert_eq!(
        text(&session.run("hostname", b"").await.unwrap().stdout),
        "cp-2"
    );
}

#[tokio::test]
async fn a_bastion_carries_the_connection_to_the_host_behind_it() {
    let testbed = testbed();
    let mut options = testbed.options();
    options.bastion = Some(target("cp-1", "10.250.0.11", "root"));
    let session = Session::connect(&target("cp-3", "10.250.0.13", "root"), &options)
        .await
        .unwrap();
    let output = session
        .run("hostname; echo $SSH_CONNECTION", b"")
        .await
        .unwrap();
    let seen = text(&output.stdout);
    assert!(seen.starts_with("cp-3\n"), "{seen}");
    // The connection reaches cp-3 from cp-1's address, not from the machine's.
    assert!(seen.contains("10.250.0.11 "), "{seen}");

    // A host the bastion cannot reach is named in the error, with the bastion.
    let error = Session::connect(&target("ghost", "10.250.0.99", "root"), &options)
        .await
        .err()
        .unwrap();
    let message = error.to_string();
    assert!(message.contains("ghost"), "{message}");
    assert!(message.contains("bastion cp-1"), "{message}");
}

#[tokio::test]
async fn an_unreachable_host_fails_fast_naming_it() {
    let testbed = testbed();
    let mut options = testbed.options();
    options.connect_timeout = Duration::from_secs(2);
    // Nobody has this address: the connect times out.
    let started = Instant::now();
    let error = Session::connect(&target("ghost", "10.250.0.99", "root"), &options)
        .await
        .err()
        .unwrap();
    assert!(error.is_unreachable(), "{error}");
    assert!(error.to_string().contains("ghost"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A host that is up but has nothing on the port refuses at once.
    let mut closed = target("cp-1", "10.250.0.11", "root");
    closed.port = 2222;
    let error = Session::connect(&closed, &options).await.err().unwrap();
    assert!(matches!(error, SshError::Unreachable { .. }), "{error}");
    assert!(error.to_string().contains("cp-1"), "{error}");
}
