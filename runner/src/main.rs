//! `sandpit-runner serve`: the in-sandbox runner. Speaks
//! `sandpit_runner::proto` on stdin/stdout (stdout carries only frames;
//! diagnostics go to stderr). Single-threaded; see `server.rs` for the event
//! loop, `shepherd.rs` for how a command's tree is kept and killed,
//! `daemon.rs` for background commands, `fsops.rs` for file operations.

mod daemon;
mod fsops;
mod server;
mod shepherd;
mod sys;

use std::os::fd::{FromRawFd, OwnedFd};

use sandpit_runner::proto::{self, ClientFrame, Decoder, RunnerFrame};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("serve") => serve(),
        Some("--version") => {
            println!("sandpit-runner protocol {}", proto::PROTOCOL_VERSION);
            0
        }
        _ => {
            eprintln!("usage: sandpit-runner serve");
            2
        }
    };
    std::process::exit(code);
}

/// Reads the first frame, which must be `Hello`, byte-exact (nothing after
/// it is consumed: the daemon reads the rest). `Ok(None)`: EOF first.
fn read_hello() -> Result<Option<(u32, Vec<u8>)>, String> {
    let mut len = [0u8; 4];
    match sys::read_exact(0, &mut len) {
        Ok(true) => {}
        Ok(false) => return Ok(None),
        Err(err) => return Err(format!("reading Hello: {err}")),
    }
    let size = u32::from_le_bytes(len) as usize;
    if !(proto::HEADER_LEN - 4..=proto::MAX_FRAME).contains(&size) {
        return Err(format!("the first frame's length {size} is out of bounds"));
    }
    let mut rest = vec![0u8; size];
    if !sys::read_exact(0, &mut rest).map_err(|err| format!("reading Hello: {err}"))? {
        return Err("EOF inside Hello".into());
    }
    let mut decoder = Decoder::<ClientFrame>::new();
    decoder.push(&len);
    decoder.push(&rest);
    match decoder.next() {
        Ok(Some(ClientFrame::Hello { version, key })) => Ok(Some((version, key))),
        Ok(_) => Err("the first frame is not Hello".into()),
        Err(err) => Err(err.to_string()),
    }
}

fn refuse(message: String) -> i32 {
    eprintln!("sandpit-runner: {message}");
    let mut out = Vec::new();
    RunnerFrame::Error {
        id: 0,
        code: proto::code::PROTOCOL,
        errno: 0,
        message: message.into_bytes(),
    }
    .encode(&mut out);
    let _ = sys::write_all(1, &out);
    1
}

fn serve() -> i32 {
    // First, before the key arrives: same-uid code must not read this
    // process's stdin or memory.
    sys::set_undumpable();
    let (version, key) = match read_hello() {
        Ok(Some(hello)) => hello,
        Ok(None) => return 0,
        Err(message) => return refuse(message),
    };
    if version != proto::PROTOCOL_VERSION {
        return refuse(format!(
            "protocol version {version} asked, this runner speaks {}",
            proto::PROTOCOL_VERSION
        ));
    }
    if !key.is_empty() {
        match daemon::attach(&key) {
            Ok(()) => return 0,
            Err(reason) => eprintln!(
                "sandpit-runner: no background daemon ({reason}); serving foreground commands directly"
            ),
        }
    }
    let mut server = server::Server::new(false);
    // SAFETY: fds 0 and 1 are this process's stdin and stdout, owned from
    // here on by the server.
    let (input, output) = unsafe { (OwnedFd::from_raw_fd(0), OwnedFd::from_raw_fd(1)) };
    server.add_conn(server::ConnFds {
        input,
        output,
        link: None,
    });
    server.run(None);
    0
}
