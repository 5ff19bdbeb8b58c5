//! Runs kubectl with an argv (no shell), a clean environment, an output cap, a
//! timeout and a cancel signal, and always kills and reaps what it started.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use patchbay_kubectl_protocol::{
    CANCELLED_RETURN_CODE, NOT_FOUND_RETURN_CODE, TIMEOUT_RETURN_CODE,
};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::oneshot;

/// How a command ended, ready for `command_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Exit code 0, or output cut at the cap.
    pub success: bool,
    /// Standard output (lossy UTF-8), at most the cap.
    pub output: String,
    /// Standard error or the agent's reason when the command failed.
    pub error: Option<String>,
    /// kubectl's exit code, or 124 (timeout), 130 (cancelled), 127 (no kubectl).
    pub return_code: i32,
    /// Whether the output was cut at the cap (and kubectl killed).
    pub truncated: bool,
    /// How long it ran.
    pub duration: Duration,
    /// Bytes of standard output read before stopping.
    pub stdout_bytes: u64,
}

/// What the runner needs besides the argv.
#[derive(Debug, Clone)]
pub struct Limits {
    /// When to kill the command.
    pub timeout: Duration,
    /// Where to cut standard output (and standard error).
    pub max_output_bytes: usize,
    /// kubectl's whole environment ([`crate::config::Config::kubectl_env`]).
    pub env: Vec<(String, String)>,
}

/// Reads `reader` into `buffer` until end of file or until more than `cap`
/// bytes arrived; returns whether it stopped at the cap and how much it read.
async fn read_capped(
    mut reader: impl AsyncRead + Unpin,
    cap: usize,
    buffer: &mut Vec<u8>,
) -> (bool, u64) {
    let mut chunk = [0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return (false, total),
            Ok(read) => {
                total += read as u64;
                buffer.extend_from_slice(&chunk[..read]);
                if buffer.len() > cap {
                    buffer.truncate(cap);
                    return (true, total);
                }
            }
        }
    }
}

/// `bytes` as text, cut back to a whole UTF-8 character when the cap split one.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(error) if error.error_len().is_none() => {
            String::from_utf8_lossy(&bytes[..error.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

enum Ending {
    Finished,
    TimedOut,
    Cancelled,
}

/// Runs `kubectl argv…`. `cancel` firing (or its sender being dropped) kills it.
pub async fn run(
    kubectl: &Path,
    argv: &[String],
    limits: &Limits,
    cancel: oneshot::Receiver<()>,
) -> Outcome {
    let started = Instant::now();
    let mut command = Command::new(kubectl);
    command
        .args(argv)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command.envs(limits.env.iter().map(|(name, value)| (name, value)));
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            let message = if error.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "kubectl not found at {}: install kubectl in the agent image or set PATCHBAY_KUBECTL",
                    kubectl.display()
                )
            } else {
                format!("could not start {}: {error}", kubectl.display())
            };
            return Outcome {
                success: false,
                output: String::new(),
                error: Some(message),
                return_code: NOT_FOUND_RETURN_CODE,
                truncated: false,
                duration: started.elapsed(),
                stdout_bytes: 0,
            };
        }
    };
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut out_buffer = Vec::new();
    let mut err_buffer = Vec::new();
    let mut stdout_state = None;
    let mut stderr_done = false;
    let ending = {
        let out_read = read_capped(stdout, limits.max_output_bytes, &mut out_buffer);
        let err_read = read_capped(stderr, limits.max_output_bytes, &mut err_buffer);
        let deadline = tokio::time::sleep(limits.timeout);
        tokio::pin!(out_read, err_read, deadline, cancel);
        loop {
            tokio::select! {
                result = &mut out_read, if stdout_state.is_none() => {
                    if result.0 {
                        // Cut at the cap: kubectl would block on a full pipe, so stop it.
                        let _ = child.start_kill();
                    }
                    stdout_state = Some(result);
                }
                result = &mut err_read, if !stderr_done => {
                    if result.0 {
                        let _ = child.start_kill();
                    }
                    stderr_done = true;
                }
                () = &mut deadline => {
                    let _ = child.start_kill();
                    break Ending::TimedOut;
                }
                _ = &mut cancel => {
                    let _ = child.start_kill();
                    break Ending::Cancelled;
                }
            }
            if stdout_state.is_some() && stderr_done {
                break Ending::Finished;
            }
        }
    };
    let status = child.wait().await;
    let (truncated, stdout_bytes) = stdout_state.unwrap_or((false, out_buffer.len() as u64));
    let output = text(&out_buffer);
    let stderr_text = text(&err_buffer);
    let duration = started.elapsed();
    let (success, error, return_code) = match ending {
        Ending::TimedOut => (
            false,
            Some(format!(
                "Command timed out after {} seconds",
                limits.timeout.as_secs_f64().ceil() as u64
            )),
            TIMEOUT_RETURN_CODE,
        ),
        Ending::Cancelled => (
            false,
            Some("Command cancelled".to_owned()),
            CANCELLED_RETURN_CODE,
        ),
        Ending::Finished if truncated => (true, None, 0),
        Ending::Finished => match status.ok().and_then(|status| status.code()) {
            Some(0) => (true, None, 0),
            Some(code) => (false, Some(stderr_text), code),
            None => (
                false,
                Some(format!("kubectl was killed by a signal. {stderr_text}")),
                1,
            ),
        },
    };
    Outcome {
        success,
        output,
        error,
        return_code,
        truncated,
        duration,
        stdout_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(env: Vec<(String, String)>) -> Limits {
        Limits {
            timeout: Duration::from_secs(10),
            max_output_bytes: 1024 * 1024,
            env,
        }
    }

    #[tokio::test]
    async fn the_command_sees_only_the_environment_it_is_given() {
        let (_keep, cancel) = oneshot::channel();
        let env = vec![
            ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
            ("HOME".to_owned(), "/tmp".to_owned()),
        ];
        let outcome = run(Path::new("env"), &[], &limits(env), cancel).await;
        assert!(outcome.success, "{outcome:?}");
        let mut names: Vec<&str> = outcome
            .output
            .lines()
            .filter_map(|line| line.split('=').next())
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["HOME", "PATH"],
            "nothing of the agent's own environment leaks"
        );
    }

    #[tokio::test]
    async fn stderr_is_the_error_of_a_failed_command_and_split_characters_are_dropped() {
        let (_keep, cancel) = oneshot::channel();
        let env = vec![("PATH".to_owned(), "/usr/bin:/bin".to_owned())];
        let argv = [
            "-c".to_owned(),
            "printf 'h\\303\\251llo'; echo oops >&2; exit 3".to_owned(),
        ];
        let mut limits = limits(env);
        limits.max_output_bytes = 2;
        let outcome = run(Path::new("sh"), &argv, &limits, cancel).await;
        assert!(outcome.truncated, "{outcome:?}");
        assert_eq!(outcome.output, "h", "the cut é is not half-sent");
        let (_keep, cancel) = oneshot::channel();
        let argv = [
            "-c".to_owned(),
            "echo partial; echo oops >&2; exit 3".to_owned(),
        ];
        let outcome = run(
            Path::new("sh"),
            &argv,
            &self::limits(vec![("PATH".to_owned(), "/usr/bin:/bin".to_owned())]),
            cancel,
        )
        .await;
        assert!(!outcome.success);
        assert_eq!(outcome.return_code, 3);
        assert_eq!(outcome.output, "partial\n");
        assert_eq!(outcome.error.as_deref(), Some("oops\n"));
    }
}
