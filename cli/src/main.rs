//! `edge-classify`: see the library (`src/lib.rs`) for the commands.

fn main() -> std::process::ExitCode {
    edge_classify_cli::main(std::env::args_os())
}
