//! Handing this process's terminal to an interactive shell in a sandbox
//! (`sandpit shell` and the dashboard's shell key): the terminal in raw
//! mode, typed bytes to the shell as they come, its output to stdout, window
//! sizes on SIGWINCH, until the shell exits or this process is told to stop
//! (SIGTERM, SIGHUP). Raw mode is put back as it was on every way out:
//! return, error and panic.
//!
//! Stdin is read by a thread that polls before it reads and stops within
//! [`STDIN_POLL`] of the session's end, so a dashboard taking its terminal
//! back loses no key press to a reader left behind.

use std::os::fd::AsFd as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::engine::sandbox::Sandbox;
use crate::engine::shell::{Shell, ShellExit, ShellOptions, TermSize};

/// How often the stdin reader looks whether the session ended.
const STDIN_POLL: Duration = Duration::from_millis(50);
/// Bytes read from the terminal at a time.
const STDIN_CHUNK: usize = 4096;

/// Opens a shell in `sandbox` and runs it on this terminal until it exits
/// or this process is told to stop; see the module's doc. Returns how it
/// ended.
///
/// Errors when the terminal cannot be put in raw mode, when the shell
/// cannot be opened (see [`Sandbox::open_shell`]), or when its processes
/// cannot be killed after.
pub async fn run_shell(sandbox: &Sandbox) -> anyhow::Result<ShellExit> {
    let shell = open_for_terminal(sandbox).await?;
    attach_terminal(shell).await
}

/// Opens a shell for this terminal: its `TERM` and size.
async fn open_for_terminal(sandbox: &Sandbox) -> anyhow::Result<Shell> {
    let options = ShellOptions {
        term: std::env::var("TERM").ok(),
        size: terminal_size(),
    };
    sandbox.open_shell(&options).await
}

/// Runs an open shell on this terminal, in raw mode, until it ends.
async fn attach_terminal(shell: Shell) -> anyhow::Result<ShellExit> {
    let _raw = RawMode::enter().context("cannot put the terminal in raw mode")?;
    let (typed, input) = mpsc::channel(16);
    let reader = StdinReader::spawn(typed)?;
    let (sizes, resizes) = mpsc::channel(4);
    let resizer = tokio::spawn(forward_resizes(sizes));
    let cancel = CancellationToken::new();
    let stopper = tokio::spawn(cancel_on_signals(cancel.clone()));

    let mut stdout = tokio::io::stdout();
    let exit = shell.attach(input, &mut stdout, resizes, cancel).await;
    resizer.abort();
    stopper.abort();
    reader.stop();
    exit
}

/// The dashboard's hand-over: gives the terminal to a shell in `user`'s
/// sandbox and takes it back. The alternate screen, mouse capture and
/// bracketed paste are left for the shell's time (raw mode stays: the shell
/// needs it), a line says how to come back, and on return they are set
/// again and the screen cleared, so the next frame redraws everything.
///
/// The caller must have stopped reading terminal events (dropped its
/// crossterm `EventStream`) first, or it would take key presses meant for
/// the shell. Errors as [`run_shell`], and when the engine does not answer
/// or `user` has no sandbox; once handed over, the screen is taken back
/// whatever happens.
pub async fn shell_from_dashboard<B: ratatui::backend::Backend>(
    terminal: &mut ratatui::Terminal<B>,
    user: &crate::engine::sandbox::UserId,
) -> anyhow::Result<ShellExit> {
    use crossterm::event::{
        DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    };
    use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
    use std::io::Write as _;

    // Opened first: a sandbox that is gone or stopped is reported without
    // the screen flashing.
    let engine = crate::engine::Engine::connect().await?;
    let Some(sandbox) = engine.find_sandbox(user).await? else {
        anyhow::bail!("user `{user}` has no sandbox");
    };
    let shell = open_for_terminal(&sandbox).await?;
    let mut stdout = std::io::stdout();
    let handed = crossterm::execute!(
        stdout,
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let exit = match handed {
        Ok(()) => {
            // Raw mode: a line break is written as the terminal needs it.
            let _ = write!(
                stdout,
                "\r\nsandpit: a shell in the sandbox of `{user}`; `exit` returns to the dashboard\r\n"
            );
            let _ = stdout.flush();
            attach_terminal(shell).await
        }
        // Dropped, the shell is ended by its tether.
        Err(err) => Err(anyhow::Error::new(err).context("cannot hand the terminal over")),
    };
    let taken_back = crossterm::execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste,
        crossterm::terminal::Clear(crossterm::terminal::ClearType::All)
    );
    // The screen is blank now: forget the last frame, so the next one is
    // drawn whole. (ratatui's `clear` would ask the terminal where its
    // cursor is first, which can stall for seconds.)
    terminal.swap_buffers();
    taken_back.context("cannot take the terminal back from the shell")?;
    exit
}

/// The dashboard's shell key, carried out by the event loop: a shell in
/// `user`'s sandbox on this terminal (see [`shell_from_dashboard`]),
/// recorded in the activity log, and how it ended in the status line.
pub async fn dashboard_shell<B: ratatui::backend::Backend>(
    terminal: &mut ratatui::Terminal<B>,
    app: &mut super::app::App,
    user: &str,
    activity: &crate::activity::ActivityLog,
) {
    app.dirty = true;
    let user = match crate::engine::sandbox::UserId::parse(user) {
        Ok(user) => user,
        Err(err) => {
            app.warn(err);
            return;
        }
    };
    let row = crate::activity::Activity::new(
        crate::activity::Source::Dashboard,
        &user,
        "shell",
        "interactive",
    );
    let started = std::time::Instant::now();
    let exit = shell_from_dashboard(terminal, &user).await;
    activity
        .record_async(shell_activity(row, &exit, started))
        .await;
    match exit {
        Ok(exit) => {
            let mut text = format!(
                "the shell in `{user}` ended with status {}",
                exit.status_code()
            );
            if let Some(reason) = exit.reason(&user.container_name()) {
                text.push_str(&format!(": {reason}"));
            }
            app.inform(text);
        }
        Err(err) => app.warn(format!("no shell in `{user}`: {err:#}")),
    }
}

/// Ends the activity-log row of a shell session, made as it opened with
/// `Activity::new(source, user, "shell", "interactive")`: how long it
/// lasted, its exit status or why it failed. What was typed is not recorded.
pub fn shell_activity(
    activity: crate::activity::Activity,
    exit: &anyhow::Result<ShellExit>,
    started: std::time::Instant,
) -> crate::activity::Activity {
    let activity = activity.finish(exit, started);
    match exit {
        Ok(exit) => activity.with_exit_code(exit.status_code()),
        Err(_) => activity,
    }
}

/// The terminal's size, when stdout is one.
fn terminal_size() -> Option<TermSize> {
    crossterm::terminal::size()
        .ok()
        .filter(|(cols, rows)| *cols > 0 && *rows > 0)
        .map(|(cols, rows)| TermSize { cols, rows })
}

/// Sends the terminal's size each time it changes, and once when it starts
/// watching: a change between the shell's opening and then is not missed.
async fn forward_resizes(sizes: mpsc::Sender<TermSize>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut changed) = signal(SignalKind::window_change()) else {
        tracing::warn!("cannot watch SIGWINCH: the shell keeps its first size");
        return;
    };
    if let Some(size) = terminal_size()
        && sizes.send(size).await.is_err()
    {
        return;
    }
    while changed.recv().await.is_some() {
        if let Some(size) = terminal_size()
            && sizes.send(size).await.is_err()
        {
            return;
        }
    }
}

/// Cancels the session on SIGTERM or SIGHUP (the terminal went away). In
/// raw mode Ctrl-C is a byte for the shell, not a signal for sandpit.
async fn cancel_on_signals(cancel: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!("cannot watch SIGTERM and SIGHUP during the shell");
        return;
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = hangup.recv() => {}
    }
    cancel.cancel();
}

/// Raw mode for the session, when the terminal is not in it already (the
/// dashboard's is); dropping it puts the terminal back.
struct RawMode {
    entered: bool,
}

impl RawMode {
    fn enter() -> std::io::Result<Self> {
        if crossterm::terminal::is_raw_mode_enabled()? {
            return Ok(Self { entered: false });
        }
        install_panic_hook();
        crossterm::terminal::enable_raw_mode()?;
        Ok(Self { entered: true })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if self.entered {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
}

/// Leaves raw mode before the default hook prints a panic, so the message
/// reads well and the terminal is usable after. Installed once.
fn install_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = crossterm::terminal::disable_raw_mode();
            previous(info);
        }));
    });
}

/// The thread copying stdin to the shell.
struct StdinReader {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StdinReader {
    fn spawn(typed: mpsc::Sender<Vec<u8>>) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sandpit-shell-stdin".to_string())
            .spawn(move || read_stdin(&typed, &stopped))
            .context("cannot start the thread reading the terminal")?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it (at most about [`STDIN_POLL`]).
    fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for StdinReader {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Copies stdin to `typed` until told to stop, stdin ends or fails, or the
/// session is gone. Reads only after a poll says there is something, and
/// never after `stop`, so no byte meant for whoever reads next is taken.
fn read_stdin(typed: &mpsc::Sender<Vec<u8>>, stop: &AtomicBool) {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: i64::from(STDIN_POLL.subsec_nanos()),
    };
    let mut buffer = vec![0u8; STDIN_CHUNK];
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!("cannot poll the terminal: {err}");
                return;
            }
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if !fds[0].revents().contains(PollFlags::IN) {
            // Hung up or invalid, with nothing left to read.
            return;
        }
        match rustix::io::read(fd, &mut buffer[..]) {
            Ok(0) => return,
            Ok(read) => {
                if typed.blocking_send(buffer[..read].to_vec()).is_err() {
                    return;
                }
            }
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(err) => {
                tracing::warn!("cannot read the terminal: {err}");
                return;
            }
        }
    }
}
