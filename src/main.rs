//! The `countersign` binary: everything it does lives in `countersign_api::cli`.

fn main() -> std::process::ExitCode {
    countersign_api::cli::main()
}
