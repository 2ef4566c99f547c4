//! `sandpit-runner`: see the crate's library docs. Stub until the serving
//! loop lands.

fn main() {
    eprintln!("sandpit-runner: not implemented yet");
    std::process::exit(2);
}
