//! One authenticated SSH connection to a host, reused for every command of a run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::ChannelMsg;
use russh::client::{self, Handle};

use super::auth::authenticate;
use super::host_keys::HostKeyCheck;
use super::{ConnectOptions, SshError, SshTarget, shell_quote};

/// What a remote command printed and how it ended.
#[derive(Debug, Clone, Default)]
pub struct CommandOutput {
    /// The exit status; `None` when the command was killed by a signal or the channel closed
    /// without one.
    pub status: Option<u32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    fn status_text(&self) -> String {
        match self.status {
            Some(code) => format!("exit status {code}"),
            None => "no exit status: killed or disconnected".to_string(),
        }
    }
}

/// An open connection. Dropping it closes the connection (and the bastion's, if any).
pub struct Session {
    target: SshTarget,
    handle: Handle<HostKeyCheck>,
    /// Commands running at once on this connection, kept under sshd's `MaxSessions`.
    channels: tokio::sync::Semaphore,
    /// Keeps the jump host's connection open for as long as the tunnel through it is used.
    _bastion: Option<Box<Session>>,
}

/// How often an idle connection is probed, and how many unanswered probes mean the host is gone.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_MAX: usize = 3;
/// OpenSSH refuses an eleventh session channel on one connection by default (`MaxSessions
/// 10`): more commands at once wait for a free channel instead of failing. sshd frees a slot
/// a little after the channel closes, and admins may set a lower limit, so a refused open is
/// also retried (see [`Session::open_channel`]).
const MAX_CHANNELS: usize = 6;
/// Waits between retries of a refused channel open: 50 ms doubling, about 6 s in all.
const CHANNEL_RETRIES: u32 = 7;

impl Session {
    /// Connects (through the bastion when the options name one), checks the host key and
    /// authenticates.
    pub async fn connect(target: &SshTarget, options: &ConnectOptions) -> Result<Self, SshError> {
        match &options.bastion {
            None => Self::connect_direct(target, options).await,
            Some(bastion) => {
                let jump = Self::connect_direct(bastion, options).await?;
                let channel = jump
                    .handle
                    .channel_open_direct_tcpip(
                        target.address.clone(),
                        u32::from(target.port),
                        "127.0.0.1",
                        0,
                    )
                    .await
                    .map_err(|source| SshError::Tunnel {
                        host: target.describe(),
                        bastion: bastion.describe(),
                        source,
                    })?;
                let mut session = Self::handshake(target, options, channel.into_stream()).await?;
                session._bastion = Some(Box::new(jump));
                Ok(session)
            }
        }
    }

    async fn connect_direct(
        target: &SshTarget,
        options: &ConnectOptions,
    ) -> Result<Self, SshError> {
        let address = (target.address.as_str(), target.port);
        let socket = tokio::time::timeout(
            options.connect_timeout,
            tokio::net::TcpStream::connect(address),
        )
        .await
        .map_err(|_| SshError::Timeout {
            host: target.describe(),
            stage: "connecting",
            after: options.connect_timeout,
        })?
        .map_err(|source| SshError::Unreachable {
            host: target.describe(),
            source,
        })?;
        // Commands are small request/response exchanges: do not let Nagle delay them.
        let _ = socket.set_nodelay(true);
        Self::handshake(target, options, socket).await
    }

    async fn handshake<S>(
        target: &SshTarget,
        options: &ConnectOptions,
        stream: S,
    ) -> Result<Self, SshError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let config = Arc::new(client::Config {
            keepalive_interval: Some(KEEPALIVE_INTERVAL),
            keepalive_max: KEEPALIVE_MAX,
            nodelay: true,
            ..client::Config::default()
        });
        let refusal = Arc::new(Mutex::new(None));
        let check = HostKeyCheck {
            host: target.describe(),
            address: target.address.clone(),
            port: target.port,
            known_hosts: options.known_hosts.clone(),
            policy: options.host_key_policy,
            refusal: Arc::clone(&refusal),
        };
        let timed_out = |stage| SshError::Timeout {
            host: target.describe(),
            stage,
            after: options.connect_timeout,
        };
        let handshake = tokio::time::timeout(
            options.connect_timeout,
            client::connect_stream(config, stream, check),
        )
        .await
        .map_err(|_| timed_out("exchanging keys"))?;
        let mut handle = match handshake {
            Ok(handle) => handle,
            Err(source) => {
                let refused = refusal.lock().ok().and_then(|mut slot| slot.take());
                return Err(refused.unwrap_or(SshError::Protocol {
                    host: target.describe(),
                    source,
                }));
            }
        };
        tokio::time::timeout(
            options.connect_timeout,
            authenticate(&mut handle, target, options),
        )
        .await
        .map_err(|_| timed_out("authenticating"))??;
        Ok(Self {
            target: target.clone(),
            handle,
            channels: tokio::sync::Semaphore::new(MAX_CHANNELS),
            _bastion: None,
        })
    }

    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// Runs `command` with the login user's shell, `stdin` as its input, and collects what it
    /// prints. A non-zero exit is not an error here: see [`Session::run_checked`].
    pub async fn run(&self, command: &str, stdin: &[u8]) -> Result<CommandOutput, SshError> {
        let protocol = |source| SshError::Protocol {
            host: self.target.describe(),
            source,
        };
        // The semaphore is never closed, so acquiring only waits.
        let _permit = self.channels.acquire().await.ok();
        let mut channel = self.open_channel().await?;
        channel.exec(true, command).await.map_err(protocol)?;
        if !stdin.is_empty() {
            channel.data(stdin).await.map_err(protocol)?;
        }
        channel.eof().await.map_err(protocol)?;
        let mut output = CommandOutput::default();
        while let Some(message) = channel.wait().await {
            match message {
                ChannelMsg::Data { data } => output.stdout.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, ext: 1 } => output.stderr.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => output.status = Some(exit_status),
                ChannelMsg::Failure => {
                    output
                        .stderr
                        .extend_from_slice(b"the host refused to run the command");
                    break;
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        if self.handle.is_closed() && output.status.is_none() {
            return Err(SshError::Protocol {
                host: self.target.describe(),
                source: russh::Error::Disconnect,
            });
        }
        Ok(output)
    }

    /// A new session channel, retrying while sshd refuses one (its session slots are full).
    async fn open_channel(&self) -> Result<russh::Channel<client::Msg>, SshError> {
        let mut wait = Duration::from_millis(50);
        let mut attempt = 0;
        loop {
            match self.handle.channel_open_session().await {
                Ok(channel) => return Ok(channel),
                Err(russh::Error::ChannelOpenFailure(_)) if attempt < CHANNEL_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(source) => {
                    return Err(SshError::Protocol {
                        host: self.target.describe(),
                        source,
                    });
                }
            }
        }
    }

    /// Runs `script` with `sh` as root: directly when logged in as root, else through
    /// passwordless `sudo`.
    pub async fn run_as_root(&self, script: &str, stdin: &[u8]) -> Result<CommandOutput, SshError> {
        let command = if self.target.user == "root" {
            format!("sh -c {}", shell_quote(script))
        } else {
            format!("sudo -n -- sh -c {}", shell_quote(script))
        };
        let output = self.run(&command, stdin).await?;
        if !output.success()
            && output
                .stderr_text()
                .contains("sudo: a password is required")
        {
            return Err(SshError::SudoPassword {
                host: self.target.describe(),
                user: self.target.user.clone(),
            });
        }
        Ok(output)
    }

    /// Like [`Session::run_as_root`], with a non-zero exit turned into an error naming the
    /// host, the command (`what`) and the end of what it printed on stderr.
    pub async fn run_checked(
        &self,
        what: &str,
        script: &str,
        stdin: &[u8],
    ) -> Result<CommandOutput, SshError> {
        let output = self.run_as_root(script, stdin).await?;
        if output.success() {
            return Ok(output);
        }
        Err(SshError::Command {
            host: self.target.describe(),
            command: what.to_string(),
            status: output.status_text(),
            stderr: tail(&output.stderr_text(), 20),
        })
    }

    /// Writes `content` to `path` as root with `mode`, atomically (a temporary file renamed
    /// over the old one), creating the parent directories.
    pub async fn upload(&self, path: &str, content: &[u8], mode: u32) -> Result<(), SshError> {
        let quoted = shell_quote(path);
        let script = format!(
            "set -e; umask 077; mkdir -p \"$(dirname {quoted})\"; \
             cat > {quoted}.rafter-upload; chmod {mode:o} {quoted}.rafter-upload; \
             mv -f {quoted}.rafter-upload {quoted}"
        );
        self.run_checked(&format!("write {path}"), &script, content)
            .await
            .map(drop)
    }

    /// Closes the connection politely.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// The last `lines` lines of `text`, trimmed.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
